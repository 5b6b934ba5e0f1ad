// The known bugs of bhyve's and QEMU's NVMe emulation (spec/nvme.md §6.6, §6.7; hardening §3.7)
// as regression tests of the controller: each feeds the bad input and checks the correct outcome.
import { describe, expect, it } from 'vitest';
import { NVME_SC } from '../../src/index';
import { Host, PAGE, sc, sct } from './nvme-host';

describe('NVMe regressions (nvme.md §6.6)', () => {
  it('[H55] #1 #15 Identify with PRP1 at offset 0x800 and a distant PRP2 splits at the page end; nothing lands after PRP1\'s page', async () => {
    const h = new Host();
    h.enable();
    const a = h.pages(2); // PRP1's page and the page after it (which must stay untouched)
    const b = h.pages(1);
    h.guest(a + PAGE, PAGE).fill(0xee);
    h.guest(b, PAGE).fill(0xee);
    expect((await h.cmd(0, h.sqe(0x06, 0, { 10: 1 }, a + 0x800, b))).status).toBe(0);
    expect(new TextDecoder().decode(h.guest(a + 0x800 + 24, 11))).toBe('sgring NVMe'); // the first 2048 bytes at PRP1
    expect(h.guest(a + 0x800 + 512, 1)[0]).toBe(0x66); // SQES
    expect(h.guest(b, 2048).every((x) => x === 0)).toBe(true); // bytes 2048..4095 (zero here) in PRP2's page
    expect(h.guest(b + 2048, 2048).every((x) => x === 0xee)).toBe(true); // and no further
    expect(h.guest(a + PAGE, PAGE).every((x) => x === 0xee)).toBe(true); // nothing after PRP1's page
    expect((await h.cmd(0, h.sqe(0x06, 0, { 10: 2 }, a + 0x800, b))).status).toBe(0); // CNS 02h too
  });

  it('[H55] #10 Get Log Page (SMART, 512 bytes) with NUMD 128 dwords at offset 400 writes exactly 112 bytes', async () => {
    const h = new Host();
    h.enable();
    const buf = h.pages(1);
    h.guest(buf, PAGE).fill(0xaa);
    expect((await h.cmd(0, h.sqe(0x02, 0, { 10: 0x02 | (127 << 16), 12: 400 }, buf))).status).toBe(0);
    expect(h.guest(buf + 112, 400).every((x) => x === 0xaa)).toBe(true); // untouched past the page's end
    h.guest(buf, PAGE).fill(0xaa);
    expect((await h.cmd(0, h.sqe(0x02, 0, { 10: 0x02 | (0 << 16), 12: 60 }, buf))).status).toBe(0); // offset 60, 4 bytes
    expect(h.guest(buf + 4, 60).every((x) => x === 0xaa)).toBe(true); // bhyve wrote 64 here
  });

  it('#4 PRP1 = 0 is an address like any other (a valid guest page), never merged with a previous segment', async () => {
    const h = new Host();
    h.dma.map(0, PAGE);
    h.enable();
    await h.createQueuePair(1);
    h.guest(0, 512).fill(0x42);
    expect((await h.cmd(1, h.write(1, 5, 1, 0, 0))).status).toBe(0);
    expect(h.core.u8[h.disk.ptr + 5 * 512]).toBe(0x42);
  });

  it('[H50] #7 a doorbell before CSTS.RDY is ignored (and fetches nothing)', () => {
    const h = new Host();
    h.w32(0x1000, 1);
    h.w32(0x1000 + 12, 1);
    expect(h.ctrl.counters.doorbellNotReady).toBe(2);
    expect(h.enable()).toBe(1);
  });

  it('[H53] #9 after a refused enable (CFS), RDY stays 0 until a reset and a good enable', () => {
    const h = new Host();
    expect(h.enable(32, 0x00450001) & 3).toBe(2); // bad IOSQES: CFS, not RDY
    h.w32(0x14, 0);
    expect(h.r32(0x1c) & 3).toBe(0);
    h.w32(0x14, 0x00460001);
    expect(h.r32(0x1c) & 3).toBe(1);
  });

  it('[H51] #14 Create CQ with interrupt vector maxq+1 is Invalid Interrupt Vector', async () => {
    const h = new Host({ maxQueues: 4 });
    h.enable();
    const ring = h.pages(1);
    const c = await h.cmd(0, h.sqe(0x05, 0, { 10: (15 << 16) | 1, 11: (5 << 16) | 3 }, ring));
    expect([sct(c.status), sc(c.status)]).toEqual([1, 0x08]);
    expect((await h.cmd(0, h.sqe(0x05, 0, { 10: (15 << 16) | 1, 11: (4 << 16) | 3 }, ring))).status).toBe(0);
  });

  it('#19 Abort answers DW0 bit 0 = 1 (not aborted), legal; #20 NLB 0xFFFF and SLBA 2^63; #21 NSID 0', async () => {
    const h = new Host();
    h.enable();
    await h.createQueuePair(1);
    expect(await h.cmd(0, h.sqe(0x08, 0, { 10: (1 << 16) | 1 }))).toMatchObject({ status: 0, cdw0: 1 });
    const b = h.buffer(4096);
    expect(sc((await h.cmd(1, h.sqe(0x02, 1, { 10: 0, 12: 0xffff }, b.prp1, b.prp2))).status)).toBe(0x02);
    expect((await h.cmd(1, h.sqe(0x02, 1, { 10: 0, 11: 0x8000_0000, 12: 0 }, b.prp1, 0))).status).toBe(NVME_SC.lbaOutOfRange);
    expect((await h.cmd(1, h.read(0, 0, 1, b.prp1, 0))).status).toBe(NVME_SC.invalidNamespace);
  });

  it('#23 Number of Queues set twice: the second is a Command Sequence Error; after a reset it may be set again', async () => {
    const h = new Host();
    h.enable();
    expect((await h.cmd(0, h.sqe(0x09, 0, { 10: 0x07, 11: 0x00010001 }))).status).toBe(0);
    expect((await h.cmd(0, h.sqe(0x09, 0, { 10: 0x07, 11: 0x00010001 }))).status).toBe(NVME_SC.commandSequenceError);
    h.w32(0x14, 0);
    h.enable();
    expect((await h.cmd(0, h.sqe(0x09, 0, { 10: 0x07, 11: 0x00010001 }))).status).toBe(0);
  });

  it('#24 more AERs than AERL + 1: the extra one is Asynchronous Event Request Limit Exceeded', () => {
    const h = new Host();
    h.enable();
    h.submit(0, ...Array.from({ length: 5 }, () => h.sqe(0x0c)));
    const got = h.reap(0);
    expect(got).toHaveLength(1);
    expect([sct(got[0]!.status), sc(got[0]!.status)]).toEqual([1, 0x05]);
    expect(h.ctrl.pending).toBe(4);
  });

  it('[V10] an asynchronous backend\'s read goes through a staging region: a page the host takes back before the data arrives is never written', async () => {
    let release = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const h = new Host({
      wrap: (d) => ({
        blockSize: d.blockSize, blockCount: d.blockCount, readOnly: false,
        read: async (lba, n, ptr) => { await gate; d.read(lba, n, ptr); },
        write: (lba, n, ptr) => d.write(lba, n, ptr), flush: () => {},
      }),
    });
    h.enable();
    await h.createQueuePair(1);
    h.core.u8.fill(0xab, h.disk.ptr, h.disk.ptr + PAGE);
    const buf = h.pages(1);
    const [cid] = h.submit(1, h.read(1, 0, 8, buf, 0));
    await new Promise((r) => setTimeout(r, 0)); // fetched and checked; the disk has not answered
    h.dma.unmap(buf, PAGE);
    release();
    let cqe;
    for (let i = 0; i < 100 && !cqe; i++) {
      await new Promise((r) => setTimeout(r, 0));
      cqe = h.reap(1).find((c) => c.cid === cid);
    }
    expect(sc(cqe!.status)).toBe(NVME_SC.dataTransferError);
    expect(h.guest(buf, PAGE).every((b) => b === 0)).toBe(true);
  });
});
