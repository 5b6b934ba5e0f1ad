// Host side of "channel round trip, two threads": a HostBus whose storage device completes every
// in-band request with a 64-byte reply; serves on its doorbell until the guest says stop.

import { workerData, parentPort } from 'node:worker_threads';
import { loadCoreSync, MessageTransport, HostBus, SgringError } from '../../dist/index.mjs';

const { memory, transport, control, spinPolls } = workerData;
const core = loadCoreSync({ memory });
const stop = new Int32Array(control);
// Identity DMA over the guest RAM window (the Iommu's identity domain once it lands).
const translate = (gpa, len) => {
  if (!(gpa >= 0 && len >= 0 && len <= core.guestBytes && gpa <= core.guestBytes - len)) throw new SgringError('OutsideGuestRam', `[${gpa}, +${len})`);
  return core.guestBase + gpa;
};
const dma = { translate, read: () => { throw new Error('unused'); }, write: () => { throw new Error('unused'); } };
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
