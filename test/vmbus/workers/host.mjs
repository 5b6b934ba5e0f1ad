// Host end of the two-thread VMBus tests: a HostBus offering one storage channel whose device
// echoes every request's payload in its completion. It serves with the doorbell-only loop of
// HostBus.serve — woken by nothing but the guest's rings — until the control word says stop.
//
// workerData: { memory, transport, control (SharedArrayBuffer), waitMs }

import { workerData, parentPort } from 'node:worker_threads';
import { loadCoreSync, MessageTransport, HostBus } from '../../../dist/index.mjs';
import { identityDma, describeError } from './common.mjs';

const d = workerData;
const core = loadCoreSync({ memory: d.memory });
const control = new Int32Array(d.control);
const stats = { requests: 0, opened: 0 };
let hostCh = null;
let bus = null;
try {
  bus = new HostBus(MessageTransport.attach(core, d.transport), { dma: identityDma(core) });
  bus.offer({
    classId: 'storage',
    onOpen: (ch) => {
      hostCh = ch;
      stats.opened++;
      ch.onPacket = (p) => {
        stats.requests++;
        ch.complete(p, p.payload());
      };
    },
  });
  bus.serve(() => Atomics.load(control, 0) === 1, d.waitMs);
  parentPort.postMessage({ type: 'done', ok: true, ...stats, channel: hostCh?.stats, end: bus.end.stats, inFlight: hostCh?.peerInFlight.size });
} catch (e) {
  parentPort.postMessage({ type: 'done', ok: false, error: describeError(e), ...stats, channel: hostCh?.stats, end: bus?.end.stats });
}
