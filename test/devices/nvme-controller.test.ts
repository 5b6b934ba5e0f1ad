// The NVMe controller driven through real queue memory by a minimal host (nvme-host.ts):
// registers and enable, Identify, queue creation with its statuses, reads and writes through
// PRP lists and the strict IOMMU domain, doorbell validation, a full CQ, taps.
import { describe, expect, it } from 'vitest';
import { NVME_SC, readOnlyAfter, TapRegistry, vendorCommand } from '../../src/index';
import { Host, PAGE, sc, sct } from './nvme-host';

describe('NVMe controller: registers and enable', () => {
  it('reports CAP, VS 1.4, and comes ready on CC.EN with a valid admin queue', () => {
    const h = new Host();
    const cap = h.ctrl.mmioRead(0, 8) as bigint;
    expect(Number(cap & 0xffffn) + 1).toBe(1024); // MQES + 1
    expect((cap >> 37n) & 1n).toBe(1n); // NVM command set
    expect((cap >> 32n) & 0xfn).toBe(0n); // DSTRD 0
    expect(h.r32(0x08)).toBe(0x00010400);
    expect(h.r32(0x1c) & 1).toBe(0);
    expect(h.enable()).toBe(1); // RDY, no CFS
    h.w32(0x14, 0); // reset
    expect(h.r32(0x1c) & 1).toBe(0);
  });

  it('[H53] CC.EN with AQA of one entry, a bad IOSQES or an admin queue the device may not reach sets CFS, not RDY', () => {
    for (const [aqa, ccv, asq] of [[0, 0x00460001, true], [0x001f001f, 0x00450001, true], [0x001f001f, 0x00460001, false]] as const) {
      const h = new Host();
      h.w32(0x24, aqa);
      h.ctrl.mmioWrite(0x28, 8, BigInt(asq ? h.pages(1) : 0x1f0_0000)); // 0x1f00000: the BAR window, never DMA-able
      h.ctrl.mmioWrite(0x30, 8, BigInt(h.pages(1)));
      h.w32(0x14, ccv);
      expect(h.r32(0x1c) & 3).toBe(2);
    }
  });

  it('[H54] misaligned, narrow, out-of-range and read-only register accesses are ignored, counted, and read as 0', () => {
    const h = new Host();
    h.enable();
    for (const [off, size] of [[0x15, 4], [0x14, 2], [h.ctrl.barSize - 4, 8], [h.ctrl.barSize, 4], [-4, 4], [NaN, 4]] as const) {
      h.ctrl.mmioWrite(off, size as 4, 0xffffffff);
      expect(h.ctrl.mmioRead(off, size as 4)).toEqual(size === 8 ? 0n : 0);
    }
    h.w32(0x08, 0); // VS is read-only
    h.w32(0x1c, 0xffffffff); // CSTS too
    expect([h.r32(0x08), h.r32(0x1c)]).toEqual([0x00010400, 1]);
    expect(h.ctrl.counters.mmioIgnored).toBeGreaterThanOrEqual(6);
    expect(h.ctrl.counters.mmioReadOnly).toBe(2);
  });

  it('a shutdown (CC.SHN) reports SHST complete at once', () => {
    const h = new Host();
    h.enable();
    h.w32(0x14, 0x00464001); // SHN = 1 (normal)
    expect((h.r32(0x1c) >> 2) & 3).toBe(2);
  });
});

describe('NVMe controller: admin commands', () => {
  it('Identify controller, namespace and the active namespace list', async () => {
    const h = new Host({ blocks: 10_000 });
    h.enable();
    const buf = h.pages(1);
    expect((await h.cmd(0, h.sqe(0x06, 0, { 10: 1 }, buf))).status).toBe(0);
    const id = h.guest(buf, 4096);
    const dv = new DataView(id.buffer, id.byteOffset, 4096);
    expect(new TextDecoder().decode(id.subarray(24, 35))).toBe('sgring NVMe');
    expect([id[77], id[512], id[513], dv.getUint32(516, true), dv.getUint32(80, true)]).toEqual([9, 0x66, 0x44, 1, 0x00010400]);
    expect((await h.cmd(0, h.sqe(0x06, 1, { 10: 0 }, buf))).status).toBe(0);
    expect([dv.getBigUint64(0, true), id[130]]).toEqual([10_000n, 9]);
    expect((await h.cmd(0, h.sqe(0x06, 0, { 10: 2 }, buf))).status).toBe(0);
    expect([dv.getUint32(0, true), dv.getUint32(4, true)]).toEqual([1, 0]);
    expect(sc((await h.cmd(0, h.sqe(0x06, 7, { 10: 0 }, buf))).status)).toBe(0x0b); // Invalid Namespace
    expect(sc((await h.cmd(0, h.sqe(0x06, 0, { 10: 0x55 }, buf))).status)).toBe(0x02);
    expect(sc((await h.cmd(0, h.sqe(0xc5, 0))).status)).toBe(0x01); // Invalid Opcode
  });

  it('[H51] queue creation statuses: QID 0, QID too large, existing, missing CQ, sizes, misaligned, non-contiguous, vector; CQ in use', async () => {
    const h = new Host({ maxQueues: 4 });
    h.enable();
    const ring = h.pages(4);
    const cq = (qid: number, size: number, flags = 3, vector = qid, base = ring) => h.cmd(0, h.sqe(0x05, 0, { 10: ((size - 1) << 16) | qid, 11: (vector << 16) | flags }, base));
    const sq = (qid: number, size: number, cqid: number, flags = 1, base = ring + 2 * PAGE) => h.cmd(0, h.sqe(0x01, 0, { 10: ((size - 1) << 16) | qid, 11: (cqid << 16) | flags }, base));
    const ok = async (p: Promise<{ status: number }>) => expect((await p).status).toBe(0);
    const status = async (p: Promise<{ status: number }>, want: number) => expect((await p).status).toBe(want);
    await status(cq(0, 16), NVME_SC.invalidQueueId);
    await status(cq(5, 16), NVME_SC.invalidQueueId);
    await status(cq(1, 1), NVME_SC.invalidQueueSize);
    await status(cq(1, 2048), NVME_SC.invalidQueueSize);
    await status(cq(1, 16, 2), NVME_SC.invalidField); // PC = 0
    await status(cq(1, 16, 3, 1, ring + 8), NVME_SC.invalidField); // misaligned
    await status(cq(1, 16, 3, 99), NVME_SC.invalidInterruptVector);
    await status(cq(1, 16, 3, 1, 0x1f0_0000), NVME_SC.invalidField); // the BAR window
    await ok(cq(1, 16));
    await status(cq(1, 16), NVME_SC.invalidQueueId); // exists
    await status(sq(1, 16, 2), NVME_SC.completionQueueInvalid);
    await status(sq(1, 16, 0), NVME_SC.completionQueueInvalid);
    await ok(sq(1, 16, 1));
    await status(h.cmd(0, h.sqe(0x04, 0, { 10: 1 })), NVME_SC.invalidQueueDeletion); // SQ 1 still on it
    await ok(h.cmd(0, h.sqe(0x00, 0, { 10: 1 })));
    await ok(h.cmd(0, h.sqe(0x04, 0, { 10: 1 })));
    await status(h.cmd(0, h.sqe(0x04, 0, { 10: 1 })), NVME_SC.invalidQueueId);
  });

  it('Get/Set Features and Get Log Page, with offsets past the page refused [H55]', async () => {
    const h = new Host({ maxQueues: 8 });
    h.enable();
    const nq = await h.cmd(0, h.sqe(0x09, 0, { 10: 0x07, 11: 0x00030003 }));
    expect([nq.status, nq.cdw0]).toEqual([0, 0x00070007]);
    expect((await h.cmd(0, h.sqe(0x0a, 0, { 10: 0x06 }))).cdw0).toBe(1);
    expect((await h.cmd(0, h.sqe(0x09, 0, { 10: 0x06, 11: 0 }))).status).toBe(0);
    expect((await h.cmd(0, h.sqe(0x0a, 0, { 10: 0x06 }))).cdw0).toBe(0);
    expect(sc((await h.cmd(0, h.sqe(0x0a, 0, { 10: 0x77 }))).status)).toBe(0x02);
    const buf = h.pages(1);
    expect((await h.cmd(0, h.sqe(0x02, 0, { 10: 0x02 | (127 << 16) }, buf))).status).toBe(0); // SMART, 512 bytes
    expect(new DataView(h.guest(buf, 4).buffer, h.guest(buf, 4).byteOffset).getUint16(1, true)).toBe(296);
    expect(sc((await h.cmd(0, h.sqe(0x02, 0, { 10: 0x02 | (127 << 16), 12: 512 }, buf))).status)).toBe(0x02); // offset = size
    expect(sct((await h.cmd(0, h.sqe(0x02, 0, { 10: 0x42 | (127 << 16) }, buf))).status)).toBe(1); // Invalid Log Page
  });
});

describe('NVMe controller: I/O', () => {
  it('writes and reads back through PRP1, PRP2 and a PRP list, and the disk holds the bytes', async () => {
    const h = new Host();
    h.enable();
    await h.createQueuePair(1, 64);
    for (const [blocks, offset] of [[1, 0], [8, 0], [16, 512], [64, 1024]] as const) {
      const src = h.buffer(blocks * 512, offset);
      const data = Uint8Array.from({ length: blocks * 512 }, (_, i) => (i * 31 + blocks) & 0xff);
      h.guest(src.prp1, data.length).set(data);
      const w = await h.cmd(1, h.write(1, 100, blocks, src.prp1, src.prp2));
      expect([w.status, w.sqid]).toEqual([0, 1]);
      expect(h.core.u8.slice(h.disk.ptr + 100 * 512, h.disk.ptr + 100 * 512 + data.length)).toEqual(data); // views re-made: memory may have grown
      const dst = h.buffer(blocks * 512, offset);
      expect((await h.cmd(1, h.read(1, 100, blocks, dst.prp1, dst.prp2))).status).toBe(0);
      expect(h.guest(dst.prp1, blocks * 512).slice()).toEqual(data);
    }
    expect(h.interrupts).toContain(1);
    expect((await h.cmd(1, h.sqe(0x00, 1))).status).toBe(0); // Flush
  });

  it('[H25] LBA out of range, a bad namespace, MDTS, and write-zeroes / deallocate / compare', async () => {
    const h = new Host({ blocks: 1000 });
    h.enable();
    await h.createQueuePair(1);
    const b = h.buffer(4096);
    expect((await h.cmd(1, h.read(1, 999, 2, b.prp1, b.prp2))).status).toBe(NVME_SC.lbaOutOfRange);
    expect((await h.cmd(1, h.read(2, 0, 1, b.prp1, b.prp2))).status).toBe(NVME_SC.invalidNamespace);
    expect(sc((await h.cmd(1, h.read(1, 0, 65535, b.prp1, b.prp2))).status)).toBe(0x02); // > MDTS
    h.guest(b.prp1, 4096).fill(0x77);
    await h.cmd(1, h.write(1, 10, 8, b.prp1, b.prp2));
    expect((await h.cmd(1, h.sqe(0x05, 1, { 10: 10, 12: 7 }, b.prp1, b.prp2))).status).toBe(0); // Compare: equal
    expect((await h.cmd(1, h.sqe(0x08, 1, { 10: 12, 12: 1 }))).status).toBe(0); // Write Zeroes blocks 12-13
    expect((await h.cmd(1, h.sqe(0x05, 1, { 10: 10, 12: 7 }, b.prp1, b.prp2))).status).toBe(NVME_SC.compareFailure);
    const range = h.pages(1);
    new DataView(h.core.u8.buffer, h.core.guestBase + range).setUint32(4, 2, true); // 2 blocks
    new DataView(h.core.u8.buffer, h.core.guestBase + range).setBigUint64(8, 10n, true); // from LBA 10
    expect((await h.cmd(1, h.sqe(0x09, 1, { 10: 0, 11: 4 }, range))).status).toBe(0); // Deallocate
    expect(h.core.u8[h.disk.ptr + 10 * 512]).toBe(0);
    expect(h.core.u8[h.disk.ptr + 14 * 512]).toBe(0x77);
  });

  it('[H24] a data pointer into the BAR window or unmapped memory is a Data Transfer Error; nothing moves', async () => {
    const h = new Host();
    h.enable();
    await h.createQueuePair(1);
    expect((await h.cmd(1, h.read(1, 0, 1, 0x1f0_0000, 0))).status).toBe(NVME_SC.dataTransferError);
    expect((await h.cmd(1, h.write(1, 0, 1, 0x1a0_0000, 0))).status).toBe(NVME_SC.dataTransferError); // not granted
    expect((await h.cmd(1, h.read(1, 0, 1, 0x10_0002, 0))).status & 0xff).toBe(0x13); // PRP offset invalid
  });

  it('[H24] a PRP list or an SGL segment in memory the device may not read is a Data Transfer Error; nothing moves', async () => {
    const h = new Host();
    h.enable();
    await h.createQueuePair(1);
    h.core.u8.fill(0x5a, h.disk.ptr, h.disk.ptr + 32 * 512);
    const u64 = (gpa: number, v: number) => h.core.dv.setBigUint64(h.core.guestBase + gpa, BigInt(v), true);
    // A list page the device has no read grant on.
    const b = h.buffer(3 * PAGE);
    h.dma.unmap(b.prp2, PAGE);
    expect((await h.cmd(1, h.read(1, 0, 24, b.prp1, b.prp2))).status).toBe(NVME_SC.dataTransferError);
    expect(h.guest(b.gpa, 3 * PAGE).every((x) => x === 0)).toBe(true);
    // A chained list: PRP2 points 16 bytes before the end of a readable page, so its second entry
    // chains to a page the device may only write.
    const data = h.pages(4);
    const [l1, l2] = [h.pages(1), h.pages(1)];
    u64(l1 + PAGE - 16, data + PAGE);
    u64(l1 + PAGE - 8, l2);
    u64(l2, data + 2 * PAGE);
    u64(l2 + 8, data + 3 * PAGE);
    expect((await h.cmd(1, h.read(1, 0, 32, data, l1 + PAGE - 16))).status).toBe(0);
    expect(h.guest(data, 4 * PAGE).every((x) => x === 0x5a)).toBe(true);
    h.guest(data, 4 * PAGE).fill(0);
    h.dma.map(l2, PAGE, { read: false, write: true });
    expect((await h.cmd(1, h.read(1, 0, 32, data, l1 + PAGE - 16))).status).toBe(NVME_SC.dataTransferError);
    expect(h.guest(data, 4 * PAGE).every((x) => x === 0)).toBe(true);
    // SGL: a Last Segment descriptor pointing at an unreadable segment list.
    const seg = h.pages(1);
    const dst = h.pages(1);
    u64(seg, dst);
    h.core.dv.setUint32(h.core.guestBase + seg + 8, 4096, true);
    h.dma.unmap(seg, PAGE);
    const sgl = h.read(1, 0, 8, 0, 0);
    sgl[1] = 0x40; // PSDT 01: SGL
    new DataView(sgl.buffer).setBigUint64(24, BigInt(seg), true);
    new DataView(sgl.buffer).setUint32(32, 16, true);
    sgl[39] = 0x30; // Last Segment descriptor
    expect((await h.cmd(1, sgl)).status).toBe(NVME_SC.dataTransferError);
    expect(h.guest(dst, PAGE).every((x) => x === 0)).toBe(true);
    h.dma.map(seg, PAGE); // granted: the same command now reads
    const again = h.read(1, 0, 8, 0, 0);
    again.set(sgl.subarray(1, 2), 1);
    again.set(sgl.subarray(24, 40), 24);
    expect((await h.cmd(1, again)).status).toBe(0);
    expect(h.guest(dst, PAGE).every((x) => x === 0x5a)).toBe(true);
  });

  it('a read-only disk refuses writes with Namespace Is Write Protected', async () => {
    const h = new Host({ readOnly: true });
    h.enable();
    await h.createQueuePair(1);
    const b = h.buffer(512);
    expect((await h.cmd(1, h.write(1, 0, 1, b.prp1, 0))).status).toBe(NVME_SC.namespaceWriteProtected);
    expect((await h.cmd(1, h.read(1, 0, 1, b.prp1, 0))).status).toBe(0);
  });
});

describe('NVMe controller: queues under stress', () => {
  it('[H50] a doorbell beyond the queue size or for a missing queue is ignored and raises an Asynchronous Event', async () => {
    const h = new Host();
    h.enable();
    h.submit(0, h.sqe(0x0c)); // AER outstanding
    expect(h.reap(0)).toEqual([]);
    h.w32(0x1000 + 8 * 3, 1); // SQ 3 does not exist
    const [aer] = h.reap(0);
    expect([aer!.status, aer!.cdw0 & 7, (aer!.cdw0 >> 8) & 0xff, (aer!.cdw0 >> 16) & 0xff]).toEqual([0, 0, 1, 1]);
    h.submit(0, h.sqe(0x0c));
    h.w32(0x1000, 999); // admin SQ tail beyond its 32 entries
    const [aer2] = h.reap(0);
    expect((aer2!.cdw0 >> 8) & 0xff).toBe(2);
    expect(h.ctrl.counters).toMatchObject({ doorbellNoQueue: 1, doorbellBadValue: 1 });
    // The admin queue still works.
    expect((await h.cmd(0, h.sqe(0x0a, 0, { 10: 0x07 }))).status).toBe(0);
  });

  it('[H58] a full CQ holds completions until the head doorbell, none lost or duplicated; SQ heads reported', async () => {
    const h = new Host();
    h.enable();
    await h.createQueuePair(1, 8); // 8 slots: at most 7 completions visible at once
    const b = h.buffer(512);
    const cids = h.submit(1, ...Array.from({ length: 7 }, () => h.read(1, 0, 1, b.prp1, 0)));
    const first = h.reap(1, false); // the host does not ring the head doorbell
    expect(first.map((c) => c.cid)).toEqual(cids);
    const more = h.submit(1, ...Array.from({ length: 3 }, () => h.read(1, 0, 1, b.prp1, 0)));
    expect(h.reap(1, false)).toEqual([]); // the CQ is full: nothing new visible
    h.w32(0x1000 + 12, 7); // head doorbell: 7 slots free again
    const rest = h.reap(1);
    expect(rest.map((c) => c.cid)).toEqual(more);
    expect(rest.map((c) => c.sqhd)).toEqual([0, 1, 2]); // wrapped 8-entry SQ
  });

  it('[H52] delete and re-create a queue: head, tail and phase start over', async () => {
    const h = new Host();
    h.enable();
    await h.createQueuePair(1, 4);
    const b = h.buffer(512);
    for (let i = 0; i < 5; i++) expect((await h.cmd(1, h.read(1, 0, 1, b.prp1, 0))).status).toBe(0); // wraps the 4-entry queues
    await h.cmd(0, h.sqe(0x00, 0, { 10: 1 }));
    await h.cmd(0, h.sqe(0x04, 0, { 10: 1 }));
    const [cqr, sqr] = await h.createQueuePair(1, 4);
    expect([cqr.status, sqr.status]).toEqual([0, 0]);
    const c = await h.cmd(1, h.read(1, 0, 1, b.prp1, 0));
    expect([c.status, c.sqhd, c.phase]).toEqual([0, 1, 1]);
  });

  it('INTMS masks vector 0 until INTMC clears it', async () => {
    const h = new Host();
    h.enable();
    h.w32(0x0c, 1);
    await h.cmd(0, h.sqe(0x0a, 0, { 10: 0x07 }));
    expect(h.interrupts.filter((v) => v === 0)).toEqual([]);
    h.w32(0x10, 1);
    await h.cmd(0, h.sqe(0x0a, 0, { 10: 0x07 }));
    expect(h.interrupts).toContain(0);
  });
});

describe('NVMe controller: taps', () => {
  it('the frankendrive read-only drive and the vendor sum command, through the controller\'s own stages', async () => {
    const taps = new TapRegistry();
    const h = new Host({ taps });
    expect(taps.stages().map((s) => s.name)).toContain('nvme:io:execute');
    taps.attach('nvme:io:decode', readOnlyAfter(2));
    taps.attach('nvme:admin:decode', vendorCommand(0xc0, (c) => c[10]! + c[11]!));
    h.enable();
    await h.createQueuePair(1);
    const b = h.buffer(512);
    const st = [];
    for (let i = 0; i < 4; i++) st.push((await h.cmd(1, h.write(1, i, 1, b.prp1, 0))).status);
    expect(st).toEqual([0, 0, NVME_SC.writeToReadOnlyRange, NVME_SC.writeToReadOnlyRange]);
    const sum = await h.cmd(0, h.sqe(0xc0, 0, { 10: 40, 11: 2 }));
    expect([sum.status, sum.cdw0]).toEqual([0, 42]);
  });
});

describe('NVMe controller: interrupt and register taps', () => {
  it('nvme:msix:writeback sees each interrupt and may drop it; pci:regwrite:decode may veto a register write', async () => {
    const taps = new TapRegistry();
    const h = new Host({ taps });
    const seen: number[] = [];
    const m = taps.attach('nvme:msix:writeback', (ctx) => {
      seen.push(ctx.completion.cdw0);
      ctx.drop();
    });
    h.enable();
    await h.cmd(0, h.sqe(0x0a, 0, { 10: 0x07 }));
    expect(seen).toEqual([0]);
    expect(h.interrupts).toEqual([]); // dropped: the host found the completion by polling
    m.detach();
    await h.cmd(0, h.sqe(0x0a, 0, { 10: 0x07 }));
    expect(h.interrupts).toEqual([0]);
    taps.attach('pci:regwrite:decode', (ctx) => {
      if (ctx.io.opcode === 0x14) ctx.drop(); // CC writes never arrive
    });
    h.w32(0x14, 0);
    expect(h.r32(0x1c) & 1).toBe(1); // still ready: the reset was vetoed
  });
});
