// The controller thread of the two-thread NVMe test: an NvmeController over the shared memory,
// its DMA domain attached from the main thread's, a memory disk, served until the driver closes.
// With `readOnlyAfter` the controller has taps (readOnlyAfter(n) at nvme:io:decode), whose
// commands finish in promises: it is served by serveNvmeAsync.
// workerData: { memory, channel, domain, blocks, readOnlyAfter? }
import { parentPort, workerData } from 'node:worker_threads';
import {
  IommuDomain, loadCoreSync, MemoryDisk, NvmeController, NvmeMmioChannel, readOnlyAfter, serveNvme, serveNvmeAsync, TapRegistry,
} from '../../../dist/index.mjs';

const d = workerData;
try {
  const core = loadCoreSync({ memory: d.memory });
  const dma = IommuDomain.attach(core, d.domain, 'nvme0');
  const taps = d.readOnlyAfter === undefined ? undefined : new TapRegistry();
  taps?.attach('nvme:io:decode', readOnlyAfter(d.readOnlyAfter));
  const ctrl = new NvmeController(core, { dma, namespaces: [{ backend: MemoryDisk.create(core, { blockCount: d.blocks }) }], maxQueues: 4, taps });
  if (taps) await serveNvmeAsync(ctrl, NvmeMmioChannel.attach(core, d.channel));
  else serveNvme(ctrl, NvmeMmioChannel.attach(core, d.channel));
  parentPort.postMessage({ health: { reads: Number(ctrl.health.readCommands), writes: Number(ctrl.health.writeCommands) } });
} catch (e) {
  parentPort.postMessage({ error: String(e?.stack ?? e) });
}
