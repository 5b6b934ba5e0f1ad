// Host side of "channel round trip, two threads": a HostBus whose storage device completes every
// in-band request with a 64-byte reply; serves on its doorbell until the guest says stop.

import { workerData, parentPort } from 'node:worker_threads';
import { loadCoreSync, MessageTransport, HostBus, IommuDomain } from '../../dist/index.mjs';

const { memory, transport, control, spinPolls } = workerData;
const core = loadCoreSync({ memory });
const stop = new Int32Array(control);
const dma = IommuDomain.create(core, 'vmbus-host', { mode: 'identity' });
try {
  const bus = new HostBus(MessageTransport.attach(core, transport), { dma });
  const reply = new Uint8Array(64);
  let requests = 0;
  bus.offer({ classId: 'storage', onOpen: (ch) => (ch.onPacket = (p) => (requests++, ch.complete(p, reply))) });
  bus.serve(() => Atomics.load(stop, 0) === 1, 20_000, spinPolls);
  parentPort.postMessage({ requests });
} catch (e) {
  parentPort.postMessage({ error: `host: ${e?.stack ?? e}` });
}
