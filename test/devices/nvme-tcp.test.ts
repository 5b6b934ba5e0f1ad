// The NVMe/TCP target against a host built by hand (test/util/nvme-tcp-host.ts): the whole
// bring-up a Linux host does, reads and writes through in-capsule data, R2T + H2CData and C2HData,
// the discovery subsystem, digests, and each bad-input item of spec/hardening.md §3.10.
import { afterEach, describe, expect, it } from 'vitest';
import { IommuDomain, loadCoreSync, MemoryDisk, NvmeController, pageAllocator, TapRegistry } from '../../src/index';
import { NvmeTcpTarget } from '../../src/node/index';
import { connectData, cqeCid, cqeDw0, cqeStatus, RawQueue, type Received } from '../util/nvme-tcp-host';

const SUBNQN = 'nqn.2026-12.io.sgring:unit';
const HOSTNQN = 'nqn.2026-12.io.sgring:host';
const open: { close(): unknown }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
});

async function rig(o: { taps?: TapRegistry; hosts?: string[] } = {}) {
  const core = loadCoreSync({ guestBytes: 16 << 20 });
  const dma = IommuDomain.create(core, 'nvme0', { mode: 'identity' });
  const disk = MemoryDisk.create(core, { blockCount: 8192 });
  const controller = new NvmeController(core, { dma, namespaces: [{ backend: disk }], maxQueues: 4, taps: o.taps });
  const pages = pageAllocator(core);
  const gate = { open: true };
  const allocPages = Object.assign((n: number) => {
    if (!gate.open) throw new Error('out of pages');
    return pages(n);
  }, { free: (gpa: number) => pages.free(gpa) });
  const target = new NvmeTcpTarget({ controller, allocPages, subnqn: SUBNQN, port: 0, hosts: o.hosts });
  await target.listen();
  open.push(target);
  return { core, disk, controller, target, pages, gate };
}

async function queue(port: number, dgst = 0): Promise<RawQueue> {
  const q = await RawQueue.open(port);
  open.push(q);
  q.send(q.icReq(dgst));
  const r = (await q.next())!;
  expect(r.type).toBe(1);
  q.digests = { header: (dgst & 1) !== 0, data: (dgst & 2) !== 0 };
  return q;
}

/** Sends a capsule and returns every PDU up to and including its CapsuleResp. */
async function cmd(q: RawQueue, sqe: Uint8Array, inCapsule?: Uint8Array): Promise<{ resp: Received; data: Received[] }> {
  q.send(q.capsule(sqe, inCapsule));
  const data: Received[] = [];
  for (;;) {
    const p = await q.next();
    if (!p) throw new Error('connection closed');
    if (p.type === 5) return { resp: p, data };
    data.push(p);
  }
}

const connectSqe = (q: RawQueue, qid: number, sqsize = 31, kato = 0) => {
  const s = q.sqe(0x7f, { fctype: 0x01, length: 1024, inCapsule: true, cdw: { 12: kato } });
  const dv = new DataView(s.buffer);
  dv.setUint16(42, qid, true);
  dv.setUint16(44, sqsize, true);
  return s;
};

/** Admin connect, CC.EN, CSTS.RDY, then `io` I/O queues connected: as Linux brings a controller up. */
async function bringUp(port: number, io = 1) {
  const admin = await queue(port);
  const c = await cmd(admin, connectSqe(admin, 0), connectData(SUBNQN, HOSTNQN));
  expect(cqeStatus(c.resp)).toBe(0);
  const cntlid = cqeDw0(c.resp) & 0xffff;
  const prop = (fctype: number, offset: number, size8: boolean, value = 0) => {
    const s = admin.sqe(0x7f, { fctype, cdw: { 10: size8 ? 1 : 0, 11: offset, 12: value } });
    return cmd(admin, s);
  };
  const cap = await prop(0x04, 0, true);
  expect(cqeStatus(cap.resp)).toBe(0);
  expect(cqeDw0(cap.resp) & 0xffff).toBe(1023);
  expect(cqeStatus((await prop(0x00, 0x14, false, 0x00460001)).resp)).toBe(0);
  expect(cqeDw0((await prop(0x04, 0x1c, false)).resp) & 1).toBe(1);
  const id = await cmd(admin, admin.sqe(0x06, { cdw: { 10: 1 }, length: 4096 }));
  expect(cqeStatus(id.resp)).toBe(0);
  const idData = id.data[0]!.data;
  const dv = new DataView(idData.buffer, idData.byteOffset);
  const ioqs: RawQueue[] = [];
  for (let qid = 1; qid <= io; qid++) {
    const q = await queue(port);
    const r = await cmd(q, connectSqe(q, qid, 127), connectData(SUBNQN, HOSTNQN, cntlid));
    expect(cqeStatus(r.resp)).toBe(0);
    ioqs.push(q);
  }
  return { admin, io: ioqs, cntlid, identify: { ioccsz: dv.getUint32(1792, true), cntlid: dv.getUint16(78, true), sgls: dv.getUint32(536, true), subnqn: new TextDecoder().decode(idData.subarray(768, 768 + SUBNQN.length)) } };
}

const rw = (q: RawQueue, opcode: number, lba: number, blocks: number, inCapsule = false) =>
  q.sqe(opcode, { nsid: 1, cdw: { 10: lba, 12: blocks - 1 }, length: blocks * 512, inCapsule });

const pattern = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed * 7) & 0xff);

describe('NvmeTcpTarget', () => {
  it('brings a controller up as Linux does; Identify carries the fabrics fields', async () => {
    const { target } = await rig();
    const s = await bringUp(target.port, 2);
    expect(s.identify).toEqual({ ioccsz: 4 + 8192 / 16, cntlid: s.cntlid, sgls: 0x100001, subnqn: SUBNQN });
    expect(target.counters.associations).toBe(1);
  });

  it('writes in-capsule and through R2T + H2CData, reads through C2HData; the disk holds the bytes', async () => {
    const { target, core, disk } = await rig();
    const { io: [q] } = await bringUp(target.port);
    const small = pattern(4096, 1);
    expect(cqeStatus((await cmd(q!, rw(q!, 0x01, 10, 8, true), small)).resp)).toBe(0);
    expect(core.u8.slice(disk.ptr + 10 * 512, disk.ptr + 10 * 512 + 4096)).toEqual(small);
    // 300 KiB: three R2Ts of at most 128 KiB each
    const big = pattern(300 * 1024, 2);
    const w = rw(q!, 0x01, 100, 600);
    const cid = new DataView(w.buffer).getUint16(2, true);
    q!.send(q!.capsule(w));
    for (let got = 0; got < big.length;) {
      const r2t = (await q!.next())!;
      expect(r2t.type).toBe(9);
      const h = new DataView(r2t.hdr.buffer, r2t.hdr.byteOffset);
      const [ttag, off, len] = [h.getUint16(10, true), h.getUint32(12, true), h.getUint32(16, true)];
      expect([h.getUint16(8, true), off]).toEqual([cid, got]);
      for (let at = off; at < off + len; at += 32 * 1024) q!.send(q!.h2cData(cid, ttag, at, big.subarray(at, Math.min(at + 32 * 1024, off + len)), at + 32 * 1024 >= off + len));
      got += len;
    }
    const resp = (await q!.next())!;
    expect([resp.type, cqeStatus(resp), cqeCid(resp)]).toEqual([5, 0, cid]);
    expect(core.u8.slice(disk.ptr + 100 * 512, disk.ptr + 100 * 512 + big.length)).toEqual(big);
    const rd = await cmd(q!, rw(q!, 0x02, 100, 600));
    expect(cqeStatus(rd.resp)).toBe(0);
    expect(rd.data.map((p) => p.type)).toEqual([7]);
    expect(rd.data[0]!.data).toEqual(big);
  });
});

describe('NvmeTcpTarget: discovery and digests', () => {
  it('the discovery subsystem answers Identify (a discovery controller) and lists the subsystem in log page 0x70', async () => {
    const { target } = await rig();
    const q = await queue(target.port);
    const c = await cmd(q, connectSqe(q, 0), connectData('nqn.2014-08.org.nvmexpress.discovery', HOSTNQN));
    expect(cqeStatus(c.resp)).toBe(0);
    const id = await cmd(q, q.sqe(0x06, { cdw: { 10: 1 }, length: 4096 }));
    expect(id.data[0]!.data[111]).toBe(2); // CNTRLTYPE discovery
    const log = await cmd(q, q.sqe(0x02, { cdw: { 10: 0x70 | ((2048 / 4 - 1) << 16) }, length: 2048 }));
    expect(cqeStatus(log.resp)).toBe(0);
    const d = log.data[0]!.data;
    const dv = new DataView(d.buffer, d.byteOffset);
    const text = (at: number, n: number) => new TextDecoder().decode(d.subarray(at, at + n)).replace(/[\0 ]+$/, '');
    expect([Number(dv.getBigUint64(8, true)), d[1024], d[1025], text(1024 + 32, 32), text(1024 + 256, 256), text(1024 + 768, 256)])
      .toEqual([1, 3, 1, String(target.port), '127.0.0.1', SUBNQN]);
  });

  it('header and data digests when the host asks: every PDU carries them, and the I/O still round-trips', async () => {
    const { target } = await rig();
    const admin = await queue(target.port, 3);
    const c = await cmd(admin, connectSqe(admin, 0), connectData(SUBNQN, HOSTNQN));
    expect(cqeStatus(c.resp)).toBe(0);
    expect(c.resp.flags & 1).toBe(1);
    const en = admin.sqe(0x7f, { fctype: 0x00, cdw: { 11: 0x14, 12: 0x00460001 } });
    expect(cqeStatus((await cmd(admin, en)).resp)).toBe(0);
    const q = await queue(target.port, 3);
    expect(cqeStatus((await cmd(q, connectSqe(q, 1, 63), connectData(SUBNQN, HOSTNQN, cqeDw0(c.resp) & 0xffff))).resp)).toBe(0);
    const data = pattern(4096, 5);
    expect(cqeStatus((await cmd(q, rw(q, 0x01, 0, 8, true), data)).resp)).toBe(0);
    const r = await cmd(q, rw(q, 0x02, 0, 8));
    expect([r.data[0]!.flags & 3, cqeStatus(r.resp)]).toEqual([3, 0]);
    expect(r.data[0]!.data).toEqual(data);
  });
});

describe('NvmeTcpTarget: bad input from the host', () => {
  const term = (p: Received | null) => (p && p.type === 3 ? new DataView(p.hdr.buffer, p.hdr.byteOffset).getUint16(8, true) : p ? `type ${p.type}` : 'closed');

  it('[H74] hlen, pdo or plen that disagree with the type or each other end that connection with C2HTermReq; other connections keep serving', async () => {
    const { target } = await rig();
    const good = await bringUp(target.port);
    const bad: [(q: RawQueue) => Uint8Array, number][] = [
      [(q) => { const b = q.capsule(q.sqe(0x18)); b[2] = 80; return b; }, 1], // hlen wrong for a capsule
      [(q) => { const b = q.capsule(q.sqe(0x18), new Uint8Array(16)); b[3] = 40; return b; }, 1], // pdo < hlen
      [(q) => { const b = q.capsule(q.sqe(0x18), new Uint8Array(16)); b[3] = 200; return b; }, 1], // pdo > plen
      [(q) => { const b = q.capsule(q.sqe(0x18)); new DataView(b.buffer).setUint32(4, 16, true); return b; }, 1], // plen < hlen
      [() => { const b = new Uint8Array(72); b.set([4, 0, 72, 72]); new DataView(b.buffer).setUint32(4, 64 << 20, true); return b; }, 5], // plen above the maximum: Data Transfer Limit Exceeded
    ];
    for (const [make, fes] of bad) {
      const q = await queue(target.port);
      q.send(make(q));
      expect(term(await q.next())).toBe(fes);
      expect(await q.next()).toBeNull();
    }
    expect(target.counters.terminated).toBe(5);
    const d = pattern(512, 3);
    expect(cqeStatus((await cmd(good.io[0]!, rw(good.io[0]!, 0x01, 1, 1, true), d)).resp)).toBe(0);
  });

  it('[H75] an unknown PDU type, a second ICReq, a capsule before ICReq, H2CData with no R2T, and C2H types from the host end the connection', async () => {
    const { target } = await rig();
    const cases: [string, (q: RawQueue) => Uint8Array, boolean][] = [
      ['unknown type', (q) => q.pdu(0x0f, 24, () => {}), true],
      ['second ICReq', (q) => q.icReq(), true],
      ['capsule before ICReq', (q) => q.capsule(q.sqe(0x18)), false],
      ['H2CData with no R2T', (q) => q.h2cData(1, 7, 0, new Uint8Array(8)), true],
      ['C2HData from the host', (q) => q.pdu(0x07, 24, () => {}, new Uint8Array(4)), true],
      ['CapsuleResp from the host', (q) => q.pdu(0x05, 24, () => {}), true],
    ];
    for (const [what, make, afterIc] of cases) {
      const q = afterIc ? await queue(target.port) : await RawQueue.open(target.port);
      open.push(q);
      q.send(make(q));
      const t = term(await q.next());
      expect([1, 2], what).toContain(t);
      expect(await q.next(), what).toBeNull();
    }
    expect(target.counters.terminated).toBe(cases.length);
  });

  it('[H76] H2CData outside the R2T window ends the connection; in-capsule data that disagrees with its SGL, or beyond IOCCSZ, fails the command; nothing lands on the disk', async () => {
    const { target, core, disk } = await rig();
    const { io: [q] } = await bringUp(target.port);
    // in-capsule: SGL says 4096, 512 bytes come
    expect(cqeStatus((await cmd(q!, rw(q!, 0x01, 0, 8, true), new Uint8Array(512).fill(9))).resp) & 0xff).toBe(0x0f);
    // in-capsule beyond the 8 KiB the target takes
    expect(cqeStatus((await cmd(q!, rw(q!, 0x01, 0, 32, true), new Uint8Array(16384).fill(9))).resp) & 0xff).toBe(0x0f);
    // an SGL that describes less than the blocks the command moves
    const short = rw(q!, 0x02, 0, 8);
    new DataView(short.buffer).setUint32(32, 512, true);
    expect(cqeStatus((await cmd(q!, short)).resp) & 0xff).toBe(0x0f);
    expect(core.u8.subarray(disk.ptr, disk.ptr + 16384).every((b) => b === 0)).toBe(true);
    // H2CData beyond what the R2T asked
    const w = rw(q!, 0x01, 0, 8);
    const cid = new DataView(w.buffer).getUint16(2, true);
    q!.send(q!.capsule(w));
    const r2t = (await q!.next())!;
    const ttag = new DataView(r2t.hdr.buffer, r2t.hdr.byteOffset).getUint16(10, true);
    q!.send(q!.h2cData(cid, ttag, 2048, new Uint8Array(4096).fill(7)));
    expect(term(await q!.next())).toBe(4); // Data Transfer Out of Range
    expect(core.u8.subarray(disk.ptr, disk.ptr + 16384).every((b) => b === 0)).toBe(true);
  });

  it('[H76] staging is bounded: nothing is staged before Connect, running out of pages fails the command (retryable), a host may not hold more data phases than its queue has slots', async () => {
    const { target, pages, gate } = await rig();
    const early = await queue(target.port);
    const before = pages.stats().usedPages;
    expect(cqeStatus((await cmd(early, rw(early, 0x02, 0, 64))).resp) & 0xff).toBe(0x0c); // Command Sequence Error
    expect(pages.stats().usedPages).toBe(before);
    const { io: [q] } = await bringUp(target.port);
    gate.open = false;
    const r = await cmd(q!, rw(q!, 0x02, 0, 8));
    expect([cqeStatus(r.resp), target.counters.stagingRefused]).toEqual([0x06, 1]); // Internal Error, no DNR
    gate.open = true;
    expect(cqeStatus((await cmd(q!, rw(q!, 0x02, 0, 8))).resp)).toBe(0);
    // 200 writes that never send their data: the ones beyond the queue's slots fail at once
    for (let i = 0; i < 200; i++) q!.send(q!.capsule(rw(q!, 0x01, i, 8)));
    let r2ts = 0;
    let refused = 0;
    for (let i = 0; i < 200; i++) {
      const p = (await q!.next())!;
      if (p.type === 9) r2ts++;
      else if (p.type === 5 && cqeStatus(p) === 0x06) refused++;
    }
    expect([r2ts, refused]).toEqual([127, 73]);
    expect(target.counters.internalErrors).toBe(0);
  });

  it('[H76] a host that sends reads but does not take their data: past 8 MiB unsent the connection stops taking its PDUs; once the host reads, every response arrives', async () => {
    const { target } = await rig();
    const { io: [q] } = await bringUp(target.port);
    q!.socket.pause(); // the host stops reading
    for (let i = 0; i < 24; i++) q!.send(q!.capsule(rw(q!, 0x02, 0, 2048))); // 24 reads of 1 MiB
    await new Promise((r) => setTimeout(r, 300));
    expect(target.counters.outputPauses).toBeGreaterThanOrEqual(1);
    expect(target.counters.bytesOut).toBeLessThan(20 << 20); // not all 24 MiB were made and held
    q!.socket.resume();
    let ok = 0;
    while (ok < 24) {
      const p = (await q!.next(5000))!;
      if (p.type === 5) {
        expect(cqeStatus(p)).toBe(0);
        ok++;
      } else expect([p.type, p.data.length]).toEqual([7, 1 << 20]);
    }
  });

  it('[H77] a header digest mismatch ends the connection; a data digest mismatch fails the command with Transient Transport Error, nothing written', async () => {
    const { target, core, disk } = await rig();
    const admin = await queue(target.port, 3);
    const c = await cmd(admin, connectSqe(admin, 0), connectData(SUBNQN, HOSTNQN));
    await cmd(admin, admin.sqe(0x7f, { fctype: 0x00, cdw: { 11: 0x14, 12: 0x00460001 } }));
    const q = await queue(target.port, 3);
    await cmd(q, connectSqe(q, 1, 63), connectData(SUBNQN, HOSTNQN, cqeDw0(c.resp) & 0xffff));
    const bad = q.capsule(rw(q, 0x01, 0, 8, true), pattern(4096, 1));
    bad[bad.length - 1] ^= 0xff; // the data digest
    q.send(bad);
    const r = (await q.next())!;
    expect([r.type, cqeStatus(r)]).toEqual([5, 0x22]);
    expect(core.u8.subarray(disk.ptr, disk.ptr + 4096).every((b) => b === 0)).toBe(true);
    expect(target.counters.dataDigestErrors).toBe(1);
    const hbad = q.capsule(q.sqe(0x00, { nsid: 1 }));
    hbad[72] ^= 0xff; // the header digest
    q.send(hbad);
    expect(term(await q.next())).toBe(3);
  });

  it('[H78] Connect: unknown subsystem, a host not allowed, an I/O queue before the admin queue, a cntlid not allocated, a qid above the queues, sqsize 0 or above MQES: refused with the field named, nothing allocated', async () => {
    const { target } = await rig({ hosts: [HOSTNQN] });
    const refused = async (qid: number, sqsize: number, data: Uint8Array) => {
      const q = await queue(target.port);
      const r = await cmd(q, connectSqe(q, qid, sqsize), data);
      return [cqeStatus(r.resp) & 0x7ff, cqeDw0(r.resp)];
    };
    const IP = 0x182;
    expect(await refused(0, 31, connectData('nqn.2026-12.io.sgring:other', HOSTNQN))).toEqual([IP, (1 << 16) | 256]);
    expect(await refused(0, 31, connectData(SUBNQN, 'nqn.2026-12.io.sgring:stranger'))).toEqual([0x184, 0]);
    expect(await refused(1, 31, connectData(SUBNQN, HOSTNQN, 1))).toEqual([IP, (1 << 16) | 16]); // no association yet
    expect(await refused(0, 0, connectData(SUBNQN, HOSTNQN))).toEqual([IP, 44]);
    expect(await refused(0, 5000, connectData(SUBNQN, HOSTNQN))).toEqual([IP, 44]);
    expect(target.association).toBeNull();
    const s = await bringUp(target.port);
    expect(await refused(1, 31, connectData(SUBNQN, HOSTNQN, s.cntlid + 1))).toEqual([IP, (1 << 16) | 16]);
    expect(await refused(9, 31, connectData(SUBNQN, HOSTNQN, s.cntlid))).toEqual([IP, 42]);
    expect(await refused(1, 31, connectData(SUBNQN, HOSTNQN, s.cntlid))).toEqual([IP, 42]); // queue 1 is connected already
    expect(await refused(0, 31, connectData(SUBNQN, HOSTNQN))).toEqual([0x181, 0]); // controller busy: one association at a time
    expect(target.counters.connectRefused).toBe(9);
    // The host goes away: its association ends and a new one can start.
    s.admin.close();
    for (let i = 0; i < 50 && target.association; i++) await new Promise((r) => setTimeout(r, 10));
    expect(target.association).toBeNull();
    await bringUp(target.port);
  });

  it('[H78] a host that stops sending keep-alives loses its association when KATO runs out', async () => {
    const { target } = await rig();
    const admin = await queue(target.port);
    const c = await cmd(admin, connectSqe(admin, 0, 31, 200), connectData(SUBNQN, HOSTNQN));
    expect(cqeStatus(c.resp)).toBe(0);
    for (let i = 0; i < 300 && target.association; i++) await new Promise((r) => setTimeout(r, 10));
    expect(target.association).toBeNull();
    expect(target.counters.keepAliveExpired).toBe(1);
  });
});
