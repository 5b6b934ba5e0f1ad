// Host side of the storvsc suite's two-thread cases: a StorvspDevice with one memory disk on a
// HostBus in this worker, served with serveAsync until the guest says stop.

import { parentPort, workerData } from 'node:worker_threads';
import { HostBus, IommuDomain, loadCoreSync, MemoryDisk, MessageTransport, StorvspDevice } from '../../dist/index.mjs';
import { fillPattern } from '../lib/io.mjs';

const { memory, transport, control, blocks, subChannels } = workerData;
const core = loadCoreSync({ memory });
try {
  const dma = IommuDomain.create(core, 'storvsp0', { mode: 'identity' });
  const bus = new HostBus(MessageTransport.attach(core, transport), { dma });
  const disk = MemoryDisk.create(core, { blockCount: blocks });
  fillPattern(core.u8, disk.ptr, blocks * 512);
  bus.offer(new StorvspDevice({ dma, targets: [{ target: 0, lun: 0, backend: disk }], subChannels: { bus, max: subChannels } }).offer());
  await bus.serveAsync(() => Atomics.load(new Int32Array(control), 0) === 1, 60_000);
  parentPort.postMessage({ ok: true });
} catch (e) {
  parentPort.postMessage({ error: `storvsp host: ${e?.stack ?? e}` });
}
