// Controller side of the nvme suite's two-thread case: an NvmeController over the shared memory
// with its DMA domain attached from the main thread's and a memory disk, served until the
// driver side closes the MMIO channel.

import { parentPort, workerData } from 'node:worker_threads';
import { IommuDomain, loadCoreSync, MemoryDisk, NvmeController, NvmeMmioChannel, serveNvme } from '../../dist/index.mjs';
import { fillPattern } from '../lib/io.mjs';

const { memory, channel, domain, blocks } = workerData;
try {
  const core = loadCoreSync({ memory });
  const dma = IommuDomain.attach(core, domain, 'nvme0');
  const disk = MemoryDisk.create(core, { blockCount: blocks });
  fillPattern(core.u8, disk.ptr, blocks * 512);
  const ctrl = new NvmeController(core, { dma, namespaces: [{ backend: disk }], maxQueues: 4 });
  serveNvme(ctrl, NvmeMmioChannel.attach(core, channel));
  parentPort.postMessage({ ok: true });
} catch (e) {
  parentPort.postMessage({ error: `nvme controller: ${e?.stack ?? e}` });
}
