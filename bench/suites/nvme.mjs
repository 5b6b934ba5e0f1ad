// Suite "nvme": the driver and the controller over real queue memory, a strict IOMMU domain and
// a memory disk: 4 KiB random reads and writes at queue depth 1 and 32 (the caller's Uint8Array,
// and straight into guest memory as a guest's driver reads), 128 KiB sequential reads (against
// the copy limit: between two buffers in cache, and streaming from a disk-sized region as the
// read does), the controller in a worker, and reads with a trace tap attached. Each ops/s is
// whole I/Os: driver submit -> controller -> disk -> completion reaped. Rows with heap bytes per
// I/O say what a steady stream of them allocates.

import { Worker } from 'node:worker_threads';
import {
  Iommu, IommuDomain, loadCoreSync, MemoryDisk, NvmeController, NvmeDriver, NvmeMmioChannel, NvmeRemote, pageAllocator, PcapngWriter, TapRegistry, traceTap,
} from '../../dist/index.mjs';
import { alternate, copyLimit, fillPattern, heapPerIo, iops, streamCopyLimit } from '../lib/io.mjs';
import { makeCase } from '../lib/timing.mjs';

const SUITE = 'nvme';
const BLOCKS = 1 << 17; // 64 MiB disk

async function rig({ trace = false } = {}) {
  const core = loadCoreSync({ guestBytes: 256 << 20 });
  const dma = new Iommu(core).domain('nvme0');
  dma.map(0, 256 << 20);
  const taps = new TapRegistry();
  const disk = MemoryDisk.create(core, { blockCount: BLOCKS });
  fillPattern(core.u8, disk.ptr, BLOCKS * 512);
  const ctrl = new NvmeController(core, { dma, namespaces: [{ backend: disk }], taps });
  const allocPages = pageAllocator(core);
  const drv = new NvmeDriver(core, ctrl, { allocPages, ioQueues: 1, queueDepth: 64 });
  await drv.init();
  if (trace) taps.attach('*:*:*', traceTap(new PcapngWriter({ write() {} })));
  return { core, drv, allocPages };
}

/** One I/O of the driver on namespace 1: into or from the caller's Uint8Array, or guest pages (`guest`: their address). */
function ioFn(drv, op, bytes, guest) {
  const buf = new Uint8Array(bytes);
  const segs = guest === undefined ? null : [{ addr: guest, len: bytes }];
  if (op === 'read') return segs ? (lba) => drv.read(1, lba, bytes / 512, segs) : (lba) => drv.read(1, lba, bytes / 512, buf);
  return segs ? (lba) => drv.write(1, lba, bytes / 512, segs) : (lba) => drv.write(1, lba, buf);
}

/** `iops` of the driver's reads or writes. */
function run(drv, op, o) {
  return iops(ioFn(drv, op, o.bytes, o.guest), { diskBlocks: BLOCKS, ...o });
}

/** The controller in a worker (serveNvme over the MMIO channel), the driver here: 4 KiB random reads at QD 32. */
async function twoThreads(ms) {
  const core = loadCoreSync({ shared: true, guestBytes: 256 << 20, initialBytes: 320 << 20 });
  const dma = IommuDomain.create(core, 'nvme0', { mode: 'strict' });
  dma.map(0, 256 << 20);
  const channel = NvmeMmioChannel.create(core);
  const worker = new Worker(new URL('../workers/nvme-controller.mjs', import.meta.url), { workerData: { memory: core.memory, channel: channel.ptr, domain: dma.ptr, blocks: BLOCKS } });
  const done = new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const remote = new NvmeRemote(channel);
  try {
    const drv = new NvmeDriver(core, remote, { allocPages: pageAllocator(core), ioQueues: 1, queueDepth: 64, timeoutMs: 10_000 });
    await drv.init();
    return await run(drv, 'read', { depth: 32, bytes: 4096, ms });
  } finally {
    remote.close();
    const r = await done;
    await worker.terminate();
    if (r.error) throw new Error(r.error);
  }
}

export default {
  name: SUITE,
  keyFigures: [
    { label: '4 KiB random read, QD 32, one thread, IOPS (target 1 M)', of: { suite: SUITE, name: '4 KiB random read, QD 32', engine: 'wasm', payloadBytes: 4096 } },
    { label: '4 KiB random read, QD 1, IOPS', of: { suite: SUITE, name: '4 KiB random read, QD 1', engine: 'wasm', payloadBytes: 4096 } },
    { label: '4 KiB random read, QD 32, into guest memory, IOPS', of: { suite: SUITE, name: '4 KiB random read into guest memory, QD 32', engine: 'wasm', payloadBytes: 4096 } },
    { label: '4 KiB random read, QD 32, controller in a worker, IOPS', of: { suite: SUITE, name: '4 KiB random read, QD 32, two threads', engine: 'wasm', payloadBytes: 4096 } },
    { label: '4 KiB random read, QD 32, heap bytes per I/O', of: { suite: SUITE, name: '4 KiB random read, QD 32', engine: 'wasm', payloadBytes: 4096 }, heap: true },
    { label: '4 KiB random read into guest memory, QD 32, heap bytes per I/O', of: { suite: SUITE, name: '4 KiB random read into guest memory, QD 32', engine: 'wasm', payloadBytes: 4096 }, heap: true },
    { label: 'a bare promise round trip, QD 32, heap bytes (the floor of a promise API)', of: { suite: SUITE, name: 'bare promise round trip, QD 32', engine: 'baseline', payloadBytes: 0 }, heap: true },
    { label: '128 KiB sequential read into guest memory / streaming copy limit (target 0.7)', of: { suite: SUITE, name: '128 KiB sequential read into guest memory, QD 8', engine: 'wasm', payloadBytes: 131072 }, over: { suite: SUITE, name: '128 KiB sequential read, QD 8', engine: 'copy-limit, streaming', payloadBytes: 131072 } },
    { label: '128 KiB sequential read into guest memory / in-cache copy limit', of: { suite: SUITE, name: '128 KiB sequential read into guest memory, QD 8', engine: 'wasm', payloadBytes: 131072 }, over: { suite: SUITE, name: '128 KiB sequential read, QD 8', engine: 'copy-limit', payloadBytes: 131072 } },
    { label: '4 KiB random read QD 32, with a trace tap / without', of: { suite: SUITE, name: '4 KiB random read, QD 32, traced', engine: 'wasm', payloadBytes: 4096 }, over: { suite: SUITE, name: '4 KiB random read, QD 32', engine: 'wasm', payloadBytes: 4096 } },
  ],
  async run(ctx) {
    const ms = ctx.quick ? 400 : 2000;
    const rows = [];
    const add = (name, bytes, rate, engine = 'wasm', heapBytesPerOp = undefined) => {
      rows.push({ ...makeCase({ suite: SUITE, name, engine, payloadBytes: bytes }, rate), ...(heapBytesPerOp === undefined ? {} : { heapBytesPerOp }) });
      ctx.log(`  ${name} (${engine}): ${(rate / 1e3).toFixed(1)} k/s${heapBytesPerOp === undefined ? '' : `, ${Math.round(heapBytesPerOp)} heap B/I/O`}`);
    };
    const { drv, allocPages } = await rig();
    const guest = allocPages(32); // 128 KiB of guest pages the reads into guest memory land in
    const heap = (op, o) => heapPerIo(ioFn(drv, op, o.bytes, o.guest), { diskBlocks: BLOCKS, ...o });
    add('4 KiB random read, QD 1', 4096, await run(drv, 'read', { depth: 1, bytes: 4096, ms }));
    add('4 KiB random read, QD 32', 4096, await run(drv, 'read', { depth: 32, bytes: 4096, ms }), 'wasm', await heap('read', { depth: 32, bytes: 4096 }));
    add('4 KiB random read into guest memory, QD 32', 4096, await run(drv, 'read', { depth: 32, bytes: 4096, ms, guest }), 'wasm', await heap('read', { depth: 32, bytes: 4096, guest }));
    // What the harness and a promise cost by themselves: a promise made with an executor and
    // resolved at once, awaited as every I/O is (the driver returns one such promise per command).
    const bare = (lba) => new Promise((resolve) => resolve(lba));
    add('bare promise round trip, QD 32', 0, await iops(bare, { depth: 32, bytes: 4096, ms, diskBlocks: BLOCKS }), 'baseline', await heapPerIo(bare, { depth: 32, bytes: 4096, diskBlocks: BLOCKS }));
    add('4 KiB random write, QD 1', 4096, await run(drv, 'write', { depth: 1, bytes: 4096, ms }));
    add('4 KiB random write, QD 32', 4096, await run(drv, 'write', { depth: 32, bytes: 4096, ms }));
    add('128 KiB sequential read, QD 8', 131072, await run(drv, 'read', { depth: 8, bytes: 131072, ms, sequential: true }));
    // The key ratio: the reads and the streaming limit measured in turn (five rounds each).
    const [seq, limit] = await alternate(5, () => run(drv, 'read', { depth: 8, bytes: 131072, ms: ms / 5, sequential: true, guest }), () => streamCopyLimit(131072, BLOCKS * 512, ms / 5));
    add('128 KiB sequential read into guest memory, QD 8', 131072, seq);
    add('128 KiB sequential read, QD 8', 131072, copyLimit(131072), 'copy-limit');
    add('128 KiB sequential read, QD 8', 131072, limit, 'copy-limit, streaming');
    add('4 KiB random read, QD 32, two threads', 4096, await twoThreads(ms));
    const traced = await rig({ trace: true });
    add('4 KiB random read, QD 32, traced', 4096, await run(traced.drv, 'read', { depth: 32, bytes: 4096, ms }));
    return rows;
  },
};
