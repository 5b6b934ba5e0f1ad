// NvmeDriver and NvmeController together: bring-up, reads and writes of every size through
// real queue memory and a strict IOMMU domain, the frankendrive drives under a real driver,
// retries, a lost command recovered by abort and reset, and the trace tshark decodes.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { firstDiff } from '../util/fc';
import {
  drop, Iommu, loadCoreSync, MemoryDisk, MemorySink, NvmeController, NvmeDriver, pageAllocator, PcapngWriter, randomFailure, readOnlyAfter,
  reincarnation, SgringError, TapRegistry, temperamental, traceTap, vendorCommand, type NvmeDriverOptions,
} from '../../src/index';
import { haveTool } from '../util/tools';
import { postCqe } from '../../src/devices/nvme/queues';

function rig(o: { taps?: TapRegistry; blocks?: number; driver?: Partial<NvmeDriverOptions>; grant?: boolean } = {}) {
  const core = loadCoreSync({ guestBytes: 64 << 20 });
  const pages = pageAllocator(core, { startGpa: 0x10_0000 });
  const dma = new Iommu(core).domain('nvme0');
  if (o.grant !== false) dma.map(0, 64 << 20); // the driver grants the device all of guest RAM here
  const disk = MemoryDisk.create(core, { blockCount: o.blocks ?? 65536 });
  const ctrl = new NvmeController(core, { dma, namespaces: [{ backend: disk }], taps: o.taps, maxQueues: 4 });
  const drv = new NvmeDriver(core, ctrl, { allocPages: pages, ioQueues: 2, queueDepth: 32, ...o.driver });
  return { core, pages, dma, disk, ctrl, drv };
}

const pattern = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed * 13) & 0xff);
const codeOf = async (p: Promise<unknown>) => p.then(() => 'ok', (e) => (e instanceof SgringError ? `${e.code}${e.details?.sc !== undefined ? ` ${e.details.sct}/${(e.details.sc as number).toString(16)}` : ''}` : String(e)));

describe('NvmeDriver over NvmeController', () => {
  it('brings the controller up: identify, the namespace, two I/O queue pairs', async () => {
    const { drv, ctrl } = rig({ blocks: 10_000 });
    await drv.init();
    expect(ctrl.ready).toBe(true);
    expect(drv.namespaces).toEqual([{ nsid: 1, blockSize: 512, blockCount: 10_000 }]);
    expect(drv.ioQueueCount).toBe(2);
    expect(drv.maxTransfer).toBe(1 << 20);
    expect(new TextDecoder().decode(drv.identify!.subarray(24, 35))).toBe('sgring NVMe');
  });

  it('writes and reads back 1 block, 8 KiB, 128 KiB (PRP list) and 1 MiB; flush; pages given back', async () => {
    const { drv, disk, core, pages } = rig();
    await drv.init();
    const before = pages.stats().usedPages;
    for (const [lba, bytes] of [[0, 512], [7, 8192], [1000, 128 * 1024], [4096, 1 << 20]] as const) {
      const data = pattern(bytes, lba);
      await drv.write(1, lba, data);
      expect(firstDiff(core.u8.slice(disk.ptr + lba * 512, disk.ptr + lba * 512 + bytes), data)).toBe(-1);
      expect(firstDiff(await drv.read(1, lba, bytes / 512), data)).toBe(-1);
    }
    // Into a caller's buffer longer than the read (its staging page reused): only the blocks read change.
    for (let i = 0; i < 2; i++) {
      const into = new Uint8Array(4096).fill(0xee);
      await drv.read(1, 0, 1, into);
      expect(firstDiff(into.subarray(0, 512), pattern(512, 0))).toBe(-1);
      expect(into.subarray(512).every((b) => b === 0xee)).toBe(true);
    }
    await drv.flush(1);
    expect(pages.stats().usedPages).toBeGreaterThan(before); // staging runs kept for the next I/Os
    drv.releaseBuffers();
    expect(pages.stats().usedPages).toBe(before);
  });

  it.each(['auto', 'prp'] as const)('reads and writes straight to the caller\'s guest segments: PRPs when the list obeys the rule, else an SGL (dataPointer %s: bounced)', async (dataPointer) => {
    const { drv, core, disk } = rig({ driver: { dataPointer } });
    await drv.init();
    const g = (gpa: number, n: number) => core.u8.subarray(core.guestBase + gpa, core.guestBase + gpa + n);
    // Legal for PRPs: a dword-aligned start running to its page end, then whole pages elsewhere.
    const legal = [{ addr: 0x380_0400, len: 3072 }, { addr: 0x390_0000, len: 4096 }, { addr: 0x388_0000, len: 1024 }];
    const data = pattern(8192, 3);
    let at = 0;
    for (const s of legal) {
      g(s.addr, s.len).set(data.subarray(at, at + s.len));
      at += s.len;
    }
    await drv.write(1, 40, 16, legal);
    expect(firstDiff(core.u8.slice(disk.ptr + 40 * 512, disk.ptr + 40 * 512 + 8192), data)).toBe(-1);
    // An empty segment names no page: a read led by one lands in the segments that hold bytes, nowhere else.
    g(0x3d0_0000, 4096).fill(0xee);
    g(0x3d1_0000, 8192).fill(0);
    await drv.read(1, 40, 16, [{ addr: 0x3d0_0000, len: 0 }, { addr: 0x3d1_0000, len: 8192 }]);
    expect(firstDiff(g(0x3d1_0000, 8192).slice(), data)).toBe(-1);
    expect(g(0x3d0_0000, 4096).every((b) => b === 0xee)).toBe(true);
    // Not legal: pieces starting mid-page (the D1964 shape) and an odd length in the middle.
    const odd = [{ addr: 0x3a0_0200, len: 3584 }, { addr: 0x3b0_0200, len: 1000 }, { addr: 0x3c0_0000, len: 3608 }];
    await drv.read(1, 40, 16, odd);
    at = 0;
    for (const s of odd) {
      expect(firstDiff(g(s.addr, s.len).slice(), data.subarray(at, at + s.len))).toBe(-1);
      at += s.len;
    }
    await drv.write(1, 80, 16, odd);
    expect(firstDiff(await drv.read(1, 80, 16), data)).toBe(-1);
    // The SGL path copies nothing; the PRP path bounces what the plan says, the same in both directions.
    expect([drv.stats.sglCommands, drv.stats.bouncedBytes > 0]).toEqual(dataPointer === 'auto' ? [2, false] : [0, true]);
    expect(await codeOf(drv.read(1, 0, 2, [{ addr: 0x3a0_0000, len: 512 }]))).toBe('InvalidArgument'); // 512 bytes for 2 blocks
    expect(await codeOf(drv.write(1, 0, 2, new Uint8Array(512)))).toBe('InvalidArgument');
  });

  it('a batch submitted in one turn rings the SQ doorbell once and gets one interrupt for all its completions', async () => {
    const { drv, ctrl, core, disk } = rig({ driver: { ioQueues: 1 } });
    await drv.init();
    core.u8.set(pattern(16 * 4096, 3), disk.ptr);
    const doorbells: number[] = [];
    const write = ctrl.mmioWrite.bind(ctrl);
    ctrl.mmioWrite = (offset, size, value) => {
      if (offset === 0x1008) doorbells.push(Number(value)); // SQ 1 tail
      write(offset, size, value);
    };
    let interrupts = 0;
    const handler = ctrl.onInterrupt!;
    ctrl.onInterrupt = (v) => {
      if (v === 1) interrupts++;
      handler(v);
    };
    const reads = Array.from({ length: 16 }, (_, i) => drv.read(1, i * 8, 8));
    expect(doorbells).toEqual([]); // rung when this turn's submissions are done
    const got = await Promise.all(reads);
    expect(doorbells).toHaveLength(1);
    expect(interrupts).toBe(1);
    for (let i = 0; i < 16; i++) expect(firstDiff(got[i]!, pattern(16 * 4096, 3).subarray(i * 4096, (i + 1) * 4096))).toBe(-1);
  });

  it('errors carry the NVMe status; bad arguments are refused before anything is sent', async () => {
    const { drv } = rig({ blocks: 100 });
    await drv.init();
    expect(await codeOf(drv.read(1, 99, 2))).toBe('NvmeCommandFailed 0/80'); // LBA out of range
    expect(await codeOf(drv.read(2, 0, 1))).toBe('InvalidArgument');
    expect(await codeOf(drv.write(1, 0, new Uint8Array(100)))).toBe('InvalidArgument');
    expect(await codeOf(drv.read(1, -1, 1))).toBe('InvalidArgument');
    expect(await codeOf(new NvmeDriver(loadCoreSync(), { mmioRead: () => 0, mmioWrite: () => {} }, { allocPages: () => 0 }).read(1, 0, 1))).toBe('InvalidArgument');
    expect(() => new NvmeDriver(loadCoreSync(), { mmioRead: () => 0, mmioWrite: () => {} }, { allocPages: () => 0, dataPointer: 'sgl' as 'auto' })).toThrow(/dataPointer/);
  });

  it('a controller that will not come ready (admin queue not granted to the device) fails init with NvmeControllerFailed', async () => {
    const { drv } = rig({ grant: false });
    expect(await codeOf(drv.init())).toBe('NvmeControllerFailed');
  });
});

describe('NvmeDriver against a controller that misbehaves', () => {
  it('[H57] more commands than the queue holds wait for a free command id; every one completes, in order of submission', async () => {
    const { drv, core, disk } = rig({ driver: { ioQueues: 1, queueDepth: 4 } });
    await drv.init();
    core.u8.set(pattern(200 * 512, 9), disk.ptr);
    const reads = Array.from({ length: 200 }, (_, i) => drv.read(1, i, 1));
    const got = await Promise.all(reads);
    got.forEach((b, i) => expect(firstDiff(b, pattern(200 * 512, 9).subarray(i * 512, (i + 1) * 512))).toBe(-1));
    await Promise.all(Array.from({ length: 50 }, (_, i) => drv.write(1, 1000 + i, pattern(512, i))));
    for (let i = 0; i < 50; i++) expect(firstDiff(core.u8.slice(disk.ptr + (1000 + i) * 512, disk.ptr + (1001 + i) * 512), pattern(512, i))).toBe(-1);
  });

  it('[H59] CQEs with a CID not outstanding, a duplicate CID, another SQ ID or an SQ head out of range are ignored and counted', async () => {
    const taps = new TapRegistry();
    const { drv, ctrl, dma } = rig({ taps, driver: { ioQueues: 1, queueDepth: 8, timeoutMs: 60_000 } });
    await drv.init();
    await drv.read(1, 0, 1); // completes with cid 0, which goes back to the top of the free list
    let reached = () => {};
    const held = new Promise<void>((r) => (reached = r));
    taps.attach('nvme:io:decode', () => reached());
    taps.attach('nvme:io:decode', drop({ rate: 1, seed: 1, kinds: ['read'] }));
    const pending = drv.read(1, 1, 1); // cid 0 again, held by the device
    await held;
    const cq = ctrl.cqs.get(1)!;
    // [cdw0, sqhd, sqid, cid, status]
    const inject = (...c: [number, number, number, number, number][]) => {
      for (const x of c) postCqe(dma, cq, ...x);
      ctrl.onInterrupt!(1);
    };
    // cid 5 never issued; cid 0 on SQ 3; cid 0 with SQHD 0xffff: none settles the held read.
    inject([0, 1, 1, 5, 0], [0, 1, 3, 0, 0], [0, 0xffff, 1, 0, 0]);
    expect(drv.stats.bogusCompletions).toBe(3);
    inject([0, 2, 1, 0, 0]); // a well-formed completion for cid 0 settles it
    await pending;
    inject([0, 2, 1, 0, 0]); // the same CID again: a duplicate
    expect(drv.stats.bogusCompletions).toBe(4);
  });

  it('[H59] CAP.TO = 0, CAP.MQES = 0xFFFF and a CSTS.RDY that never sets: init fails with NvmeControllerFailed within a bounded wait', async () => {
    const { ctrl, pages, core } = rig();
    const liar = {
      mmioRead: (off: number, size: 4 | 8) => (off === 0 ? (BigInt(ctrl.mmioRead(0, 8)) & ~0xff00ffffn) | 0xffffn : off === 0x1c ? 0 : ctrl.mmioRead(off, size)),
      mmioWrite: (off: number, size: 4 | 8, v: number | bigint) => ctrl.mmioWrite(off, size, v),
    };
    const drv = new NvmeDriver(core, liar, { allocPages: pages });
    const t = performance.now();
    expect(await codeOf(drv.init())).toBe('NvmeControllerFailed');
    expect(performance.now() - t).toBeLessThan(3000);
  });
});

describe('the frankendrive drives under a real driver', () => {
  it('"No Writes": after 5 writes every write fails 01/82 with DNR (no retry); reads go on', async () => {
    const taps = new TapRegistry();
    const { drv } = rig({ taps });
    await drv.init();
    taps.attach('nvme:io:decode', readOnlyAfter(5));
    const results = [];
    for (let i = 0; i < 7; i++) results.push(await codeOf(drv.write(1, i * 8, pattern(4096, i))));
    expect(results).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'NvmeCommandFailed 1/82', 'NvmeCommandFailed 1/82']);
    expect(drv.stats.retries).toBe(0);
    expect(await drv.read(1, 8, 8)).toEqual(pattern(4096, 1));
  });

  it('"Temperamental" and "Reincarnation": the driver sees the medium go read-only, and come back', async () => {
    const taps = new TapRegistry();
    const { drv } = rig({ taps });
    await drv.init();
    const h = taps.attach('nvme:io:decode', temperamental({ probability: 0.3, seed: 11 }));
    const t = [];
    for (let i = 0; i < 20; i++) t.push(await codeOf(drv.write(1, i, pattern(512, i))));
    const first = t.indexOf('NvmeCommandFailed 1/82');
    expect(first).toBeGreaterThan(0);
    expect(t.slice(first).every((x) => x === 'NvmeCommandFailed 1/82')).toBe(true);
    h.detach();
    taps.attach('nvme:io:decode', reincarnation({ after: 3, window: 2 }));
    const r = [];
    for (let i = 0; i < 8; i++) r.push(await codeOf(drv.write(1, i, pattern(512, i))));
    expect(r).toEqual(['ok', 'ok', 'ok', 'NvmeCommandFailed 1/82', 'NvmeCommandFailed 1/82', 'ok', 'ok', 'ok']);
  });

  it('the vendor "sum" command at 0xC0 through adminPassthrough', async () => {
    const taps = new TapRegistry();
    const { drv } = rig({ taps });
    await drv.init();
    const sum = () => drv.adminPassthrough(drv.sqe(0xc0, 0, { 10: 40, 11: 2 }));
    expect((await sum()).status & 0xff).toBe(0x01); // Invalid Opcode without the tap
    taps.attach('nvme:admin:decode', vendorCommand(0xc0, (c) => c[10]! + c[11]!));
    expect(await sum()).toMatchObject({ status: 0, cdw0: 42 });
  });

  it('an error without DNR is retried up to the limit: random media errors are ridden out', async () => {
    const taps = new TapRegistry();
    const { drv } = rig({ taps, driver: { retries: 5 } });
    await drv.init();
    taps.attach('nvme:io:decode', randomFailure({ rate: 0.3, seed: 5, kinds: ['read'] }));
    for (let i = 0; i < 20; i++) expect(await codeOf(drv.read(1, i, 1))).toBe('ok');
    expect(drv.stats.retries).toBeGreaterThan(3);
  });

  it('a lost command (dropped by a tap) times out, is aborted, and after a controller reset is submitted again and completes', async () => {
    const taps = new TapRegistry();
    const { drv, ctrl } = rig({ taps, driver: { timeoutMs: 40 } });
    await drv.init();
    await drv.write(1, 50, pattern(512, 50));
    const h = taps.attach('nvme:io:decode', drop({ rate: 1, seed: 1, kinds: ['read'] }));
    taps.attach('nvme:admin:decode', (ctx) => {
      if (ctx.io.opcode === 0x08) h.detach(); // the device comes back when the driver aborts
    });
    const read = drv.read(1, 50, 1);
    expect(await read).toEqual(pattern(512, 50));
    expect(drv.stats).toMatchObject({ timeouts: 1, aborts: 1, resets: 1 });
    expect(ctrl.ready).toBe(true);
    expect(await drv.read(1, 50, 1)).toEqual(pattern(512, 50));
  });
});

const haveTshark = haveTool('tshark', ['--version'], 'tshark', 'the NVMe trace decode test');

describe.skipIf(!haveTshark)('the controller\'s trace', () => {
  it('tshark decodes the driver\'s commands as NVMe/TCP with no malformed packet, and shows 01/82 where it was injected', async () => {
    const taps = new TapRegistry();
    const { drv } = rig({ taps });
    const sink = new MemorySink();
    const w = new PcapngWriter(sink);
    taps.attach('*:*:*', traceTap(w));
    await drv.init();
    taps.attach('nvme:io:decode', readOnlyAfter(2));
    for (let i = 0; i < 4; i++) await codeOf(drv.write(1, i * 8, pattern(4096, i)));
    await drv.read(1, 0, 8);
    w.close();
    const dir = mkdtempSync(join(tmpdir(), 'sgring-nvme-'));
    try {
      const file = join(dir, 'nvme.pcapng');
      writeFileSync(file, sink.bytes());
      const run = (...a: string[]) => execFileSync('tshark', ['-r', file, ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      expect(run('-Y', '_ws.malformed || _ws.expert.severity >= 0x00800000').trim()).toBe('');
      const io = run('-Y', 'nvme.cqe.cid && nvme-tcp.cmd.qid != 0 && !(nvme.cqe.cid == 0xfffe)', '-T', 'fields', '-e', 'nvme.cmd_pkt', '-e', 'nvme.cqe.status.sct', '-e', 'nvme.cqe.status.sc')
        .trim().split('\n').map((l) => l.split('\t').slice(1).join('/'));
      expect(io).toEqual(['0x0000/0x0000', '0x0000/0x0000', '0x0001/0x0082', '0x0001/0x0082', '0x0000/0x0000']);
      const h2c = run('-Y', 'nvme-tcp.type == 6', '-T', 'fields', '-e', 'nvme-tcp.data.length').trim().split('\n');
      expect(h2c).toEqual(['4096', '4096']); // the two writes the tap refused at decode never moved their data
      const admin = run('-Y', 'nvme.cmd.opc && nvme-tcp.cmd.qid == 0 && !(nvme.cmd.opc == 0x7f)', '-T', 'fields', '-e', 'nvme.cmd.opc').trim().split('\n');
      expect(admin).toEqual(['0x06', '0x06', '0x09', '0x05', '0x01', '0x05', '0x01']); // identify x2, queues, create CQ/SQ x2
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
