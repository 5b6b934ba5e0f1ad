// Host end of the two-thread netvsc test: two netvsps on one switch, on a HostBus in this worker,
// served with HostBus.serveAsync until the control word says stop.
//
// workerData: { memory, transport, control (SharedArrayBuffer) }

import { parentPort, workerData } from 'node:worker_threads';
import { HostBus, instanceGuid, IommuDomain, loadCoreSync, MessageTransport, NetvspDevice, VirtualSwitch } from '../../../dist/index.mjs';

const d = workerData;
const core = loadCoreSync({ memory: d.memory });
const control = new Int32Array(d.control);
try {
  const dma = IommuDomain.create(core, 'netvsp', { mode: 'identity' });
  const bus = new HostBus(MessageTransport.attach(core, d.transport), { dma });
  const sw = new VirtualSwitch();
  const devs = ['0a', '0b'].map((x, i) => new NetvspDevice({ dma, mac: `00:15:5d:00:00:${x}`, switch: sw, name: `netvsp${i}`, instanceId: instanceGuid(0xa + i) }));
  for (const dev of devs) bus.offer(dev.offer());
  await bus.serveAsync(() => Atomics.load(control, 0) === 1, 10_000);
  parentPort.postMessage({ ok: true, devs: devs.map((x) => x.counters), ports: sw.list().map((p) => p.counters) });
} catch (e) {
  parentPort.postMessage({ ok: false, error: String(e?.stack ?? e) });
}
