// Suite "nvme": the driver and the controller in one thread over real queue memory, a strict
// IOMMU domain and a memory disk: 4 KiB random reads and writes at queue depth 1 and 32, 128 KiB
// sequential reads (against the copy limit), and the same reads with a trace tap attached.
// Each ops/s is whole I/Os: driver submit -> controller -> disk -> completion reaped.

import { Iommu, loadCoreSync, MemoryDisk, MemorySink, NvmeController, NvmeDriver, pageAllocator, PcapngWriter, TapRegistry, traceTap } from '../../dist/index.mjs';
import { copyLimit, iops } from '../lib/io.mjs';
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

/** `iops` of the driver's reads or writes on namespace 1. */
function run(drv, op, o) {
  const buf = new Uint8Array(o.bytes);
  return iops((lba) => (op === 'read' ? drv.read(1, lba, o.bytes / 512, buf) : drv.write(1, lba, buf)), { diskBlocks: BLOCKS, ...o });
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
    add('4 KiB random read, QD 1', 4096, await run(drv, 'read', { depth: 1, bytes: 4096, ms }));
    add('4 KiB random read, QD 32', 4096, await run(drv, 'read', { depth: 32, bytes: 4096, ms }));
    add('4 KiB random write, QD 1', 4096, await run(drv, 'write', { depth: 1, bytes: 4096, ms }));
    add('4 KiB random write, QD 32', 4096, await run(drv, 'write', { depth: 32, bytes: 4096, ms }));
    add('128 KiB sequential read, QD 8', 131072, await run(drv, 'read', { depth: 8, bytes: 131072, ms, sequential: true }));
    add('128 KiB sequential read, QD 8', 131072, copyLimit(131072), 'copy-limit');
    const traced = await rig({ trace: true });
    add('4 KiB random read, QD 32, traced', 4096, await run(traced.drv, 'read', { depth: 32, bytes: 4096, ms }));
    return rows;
  },
};
