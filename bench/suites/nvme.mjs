// Suite "nvme": the driver and the controller in one thread over real queue memory, a strict
// IOMMU domain and a memory disk: 4 KiB random reads and writes at queue depth 1 and 32, 128 KiB
// sequential reads (against the copy limit), and the same reads with a trace tap attached.
// Each ops/s is whole I/Os: driver submit -> controller -> disk -> completion reaped.

import { Iommu, loadCoreSync, MemoryDisk, MemorySink, NvmeController, NvmeDriver, pageAllocator, PcapngWriter, TapRegistry, traceTap } from '../../dist/index.mjs';
import { makeCase } from '../lib/timing.mjs';

const SUITE = 'nvme';
const BLOCKS = 1 << 17; // 64 MiB disk

async function rig({ trace = false } = {}) {
  const core = loadCoreSync({ guestBytes: 256 << 20 });
  const dma = new Iommu(core).domain('nvme0');
  dma.map(0, 256 << 20);
  const taps = new TapRegistry();
  const ctrl = new NvmeController(core, { dma, namespaces: [{ backend: MemoryDisk.create(core, { blockCount: BLOCKS }) }], taps });
  const drv = new NvmeDriver(core, ctrl, { allocPages: pageAllocator(core), ioQueues: 1, queueDepth: 64 });
  await drv.init();
  if (trace) taps.attach('*:*:*', traceTap(new PcapngWriter({ write() {} })));
  return { core, drv };
}

/** I/Os per second over `ms`: `depth` in flight, each `bytes`, random 4 KiB-aligned LBAs (or sequential). */
async function iops(drv, { op, depth, bytes, ms, sequential = false }) {
  const blocks = bytes / 512;
  const buf = new Uint8Array(bytes);
  let next = 0;
  let done = 0;
  let seed = 12345;
  const lba = () => {
    if (sequential) return (next = (next + blocks) % (BLOCKS - blocks));
    seed = (seed * 1103515245 + 12345) >>> 0;
    return (seed % (BLOCKS / 8 - 1)) * 8;
  };
  const one = () => (op === 'read' ? drv.read(1, lba(), blocks, buf) : drv.write(1, lba(), buf));
  // warm up
  for (let i = 0; i < 200; i++) await one();
  const until = performance.now() + ms;
  const t0 = performance.now();
  const worker = async () => {
    while (performance.now() < until) {
      await one();
      done++;
    }
  };
  await Promise.all(Array.from({ length: depth }, worker));
  return (done / (performance.now() - t0)) * 1000;
}

function copyLimit(bytes) {
  const core = loadCoreSync({ guestBytes: 4 << 20 });
  const fn = core.fn.copyLimit;
  const g = core.guestBase;
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < 200) {
    fn(g, 0, g + (2 << 20), 0, bytes, 16);
    n += 16;
  }
  return (n / (performance.now() - t0)) * 1000;
}

export default {
  name: SUITE,
  keyFigures: [
    { label: '4 KiB random read, QD 32, one thread, IOPS (target 1 M)', of: { suite: SUITE, name: '4 KiB random read, QD 32', engine: 'wasm', payloadBytes: 4096 } },
    { label: '4 KiB random read, QD 1, IOPS', of: { suite: SUITE, name: '4 KiB random read, QD 1', engine: 'wasm', payloadBytes: 4096 } },
    { label: '128 KiB sequential read, wasm / copy limit (target 0.7)', of: { suite: SUITE, name: '128 KiB sequential read, QD 8', engine: 'wasm', payloadBytes: 131072 }, over: { suite: SUITE, name: '128 KiB sequential read, QD 8', engine: 'copy-limit', payloadBytes: 131072 } },
    { label: '4 KiB random read QD 32, with a trace tap / without', of: { suite: SUITE, name: '4 KiB random read, QD 32, traced', engine: 'wasm', payloadBytes: 4096 }, over: { suite: SUITE, name: '4 KiB random read, QD 32', engine: 'wasm', payloadBytes: 4096 } },
  ],
  async run(ctx) {
    const ms = ctx.quick ? 400 : 2000;
    const rows = [];
    const add = (name, bytes, rate, engine = 'wasm') => {
      rows.push(makeCase({ suite: SUITE, name, engine, payloadBytes: bytes }, rate));
      ctx.log(`  ${name} (${engine}): ${(rate / 1e3).toFixed(1)} k/s`);
    };
    const { drv } = await rig();
    add('4 KiB random read, QD 1', 4096, await iops(drv, { op: 'read', depth: 1, bytes: 4096, ms }));
    add('4 KiB random read, QD 32', 4096, await iops(drv, { op: 'read', depth: 32, bytes: 4096, ms }));
    add('4 KiB random write, QD 1', 4096, await iops(drv, { op: 'write', depth: 1, bytes: 4096, ms }));
    add('4 KiB random write, QD 32', 4096, await iops(drv, { op: 'write', depth: 32, bytes: 4096, ms }));
    add('128 KiB sequential read, QD 8', 131072, await iops(drv, { op: 'read', depth: 8, bytes: 131072, ms, sequential: true }));
    add('128 KiB sequential read, QD 8', 131072, copyLimit(131072), 'copy-limit');
    const traced = await rig({ trace: true });
    add('4 KiB random read, QD 32, traced', 4096, await iops(traced.drv, { op: 'read', depth: 32, bytes: 4096, ms }));
    return rows;
  },
};
