// Host end of the two-thread storvsc test: a HostBus in this worker offering a StorvspDevice with
// two memory disks, served with HostBus.serveAsync (so the device's asynchronous answers go out
// while it sleeps on its doorbell) until the control word says stop.
//
// workerData: { memory, transport, control (SharedArrayBuffer), blocks, subChannels }

import { parentPort, workerData } from 'node:worker_threads';
import { HostBus, IommuDomain, loadCoreSync, MemoryDisk, MessageTransport, StorvspDevice } from '../../../dist/index.mjs';

const d = workerData;
const core = loadCoreSync({ memory: d.memory });
const control = new Int32Array(d.control);
try {
  const dma = IommuDomain.create(core, 'storvsp0', { mode: 'identity' });
  const bus = new HostBus(MessageTransport.attach(core, d.transport), { dma });
  const disk = () => MemoryDisk.create(core, { blockCount: d.blocks });
  const dev = new StorvspDevice({ dma, targets: [{ target: 0, lun: 0, backend: disk() }, { target: 0, lun: 1, backend: disk() }], subChannels: { bus, max: d.subChannels } });
  bus.offer(dev.offer());
  await bus.serveAsync(() => Atomics.load(control, 0) === 1, 10_000);
  parentPort.postMessage({ ok: true, counters: dev.counters, perChannel: [...dev.perChannel.values()] });
} catch (e) {
  parentPort.postMessage({ ok: false, error: String(e?.stack ?? e) });
}
