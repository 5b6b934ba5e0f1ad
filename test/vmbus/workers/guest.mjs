// Guest end of the two-thread VMBus tests: connects, opens the storage channel and keeps
// `window` requests in flight until `count` completions came back, each carrying its sequence
// number; checks for lost, duplicated and corrupt completions. With mode 'doorbell' it sleeps
// only on its doorbell ("woken by nothing but a signal"), with 'work' on ch.waitForWork.
//
// workerData: { memory, transport, control, count, window, pages, mode, waitMs }

import { workerData, parentPort } from 'node:worker_threads';
import { loadCoreSync, MessageTransport, GuestBus, bumpPageAllocator } from '../../../dist/index.mjs';
import { describeError } from './common.mjs';

const d = workerData;
const core = loadCoreSync({ memory: d.memory });
const control = new Int32Array(d.control);
const stats = { sent: 0, completed: 0, dup: 0, corrupt: 0, errors: 0, waits: 0, ms: 0 };
let ch = null;
let bus = null;
try {
  const t = MessageTransport.attach(core, d.transport);
  bus = new GuestBus(t, { allocPages: bumpPageAllocator(core), timeoutMs: d.waitMs });
  await bus.connect();
  const offer = bus.offers.all().find((o) => o.className === 'storage');
  ch = await bus.open(offer, { txPages: d.pages, rxPages: d.pages, channel: { transactions: d.window } });
  const seen = new Uint8Array(d.count);
  ch.onCompletion = (seq, err, pkt) => {
    if (err) {
      stats.errors++;
      return;
    }
    if (core.u32[pkt.offset >> 2] !== seq) stats.corrupt++;
    if (seen[seq]) stats.dup++;
    else {
      seen[seq] = 1;
      stats.completed++;
    }
  };
  const payload = new Uint8Array(64);
  const pv = new DataView(payload.buffer);
  const bell = bus.end.ownBell;
  const t0 = performance.now();
  let next = 0;
  while (stats.completed + stats.errors < d.count) {
    const before = bell.value;
    let progress = 0;
    while (next < d.count && ch.transactions.outstanding < d.window) {
      pv.setUint32(0, next, true);
      if (ch.request(payload, next) === 0) break;
      next++;
      progress++;
    }
    progress += ch.poll();
    if (progress > 0) continue;
    stats.waits++;
    const woken = d.mode === 'doorbell' ? bell.waitUntil(() => bell.value !== before, d.waitMs) : ch.waitForWork(d.waitMs);
    if (!woken) throw new Error(`guest: no signal within ${d.waitMs} ms (sent ${next}, completed ${stats.completed}): a lost wakeup`);
  }
  stats.ms = performance.now() - t0;
  stats.sent = next;
  Atomics.store(control, 0, 1);
  bus.end.peerBell.ring(); // wake the host so it sees the stop word
  parentPort.postMessage({ type: 'done', ok: true, ...stats, channel: ch.stats, table: ch.transactions.counters, end: bus.end.stats });
} catch (e) {
  Atomics.store(control, 0, 1);
  bus?.end.peerBell.ring();
  parentPort.postMessage({ type: 'done', ok: false, error: describeError(e), ...stats, channel: ch?.stats, end: bus?.end.stats });
}
