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
  const target = new NvmeTcpTarget({ controller, allocPages: pageAllocator(core), subnqn: SUBNQN, port: 0, hosts: o.hosts });
  await target.listen();
  open.push(target);
  return { core, disk, controller, target };
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
