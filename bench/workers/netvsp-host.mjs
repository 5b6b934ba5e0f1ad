// Host side of the netvsc suite's two-thread cases: two netvsps on one switch, on a HostBus in
// this worker, served with serveAsync until the guest says stop.

import { parentPort, workerData } from 'node:worker_threads';
import { HostBus, instanceGuid, IommuDomain, loadCoreSync, MessageTransport, NetvspDevice, VirtualSwitch } from '../../dist/index.mjs';

const { memory, transport, control } = workerData;
const core = loadCoreSync({ memory });
try {
  const dma = IommuDomain.create(core, 'netvsp', { mode: 'identity' });
  const bus = new HostBus(MessageTransport.attach(core, transport), { dma });
  const sw = new VirtualSwitch();
  for (const i of [0, 1]) bus.offer(new NetvspDevice({ dma, mac: `00:15:5d:00:00:0${i}`, switch: sw, name: `netvsp${i}`, instanceId: instanceGuid(0xa + i) }).offer());
  await bus.serveAsync(() => Atomics.load(new Int32Array(control), 0) === 1, 60_000);
  parentPort.postMessage({ ok: true });
} catch (e) {
  parentPort.postMessage({ error: `netvsp host: ${e?.stack ?? e}` });
}
