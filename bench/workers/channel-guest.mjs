// Guest side of "channel round trip, two threads": connects, opens the storage channel, and
// keeps `window` 64-byte requests in flight, written a batch at a time (ch.batch); times the
// round trips after `warmup` of them.
// Spins up to `spinMs` on read-only checks, then sleeps on its doorbell (both sides wake only on signals).

import { workerData, parentPort } from 'node:worker_threads';
import { loadCoreSync, MessageTransport, GuestBus, bumpPageAllocator } from '../../dist/index.mjs';

const { memory, transport, control, count, warmup, window, pages, spinMs } = workerData;
const core = loadCoreSync({ memory });
const stop = new Int32Array(control);
let bus = null;
try {
  bus = new GuestBus(MessageTransport.attach(core, transport), { allocPages: bumpPageAllocator(core), timeoutMs: 10_000 });
  await bus.connect();
  const ch = await bus.open(bus.offers.all()[0], { txPages: pages, rxPages: pages, channel: { transactions: window } });
  let done = 0;
  ch.onCompletion = () => done++;
  const payload = new Uint8Array(64);
  const bell = bus.end.ownBell;
  const total = warmup + count;
  let sent = 0;
  let t0 = 0;
  let waits = 0;
  while (done < total) {
    if (t0 === 0 && done >= warmup) t0 = performance.now();
    const seen = bell.value;
    let progress = 0;
    ch.batch(() => {
      while (sent < total && ch.transactions.outstanding < window && ch.request(payload) !== 0) {
        sent++;
        progress++;
      }
    });
    progress += ch.poll();
    if (progress > 0) continue;
    // Spin on read-only checks for up to spinMs first (a poll would write the interrupt mask the
    // host reads): on a VM a futex wake-up can cost hundreds of microseconds.
    const until = performance.now() + spinMs;
    let spun = false;
    for (let i = 1; !(spun = ch.hasWork()); i++) if ((i & 127) === 0 && performance.now() > until) break;
    if (spun) continue;
    waits++;
    if (!bell.waitUntil(() => bell.value !== seen, 10_000)) throw new Error(`no signal for 10 s after ${done} completions`);
  }
  const ms = performance.now() - t0;
  Atomics.store(stop, 0, 1);
  bus.end.peerBell.ring();
  parentPort.postMessage({ timed: total - warmup, ms, waits, signals: ch.stats.writeSignals + ch.stats.readSignals });
} catch (e) {
  Atomics.store(stop, 0, 1);
  bus?.end.peerBell.ring();
  parentPort.postMessage({ error: `guest: ${e?.stack ?? e}` });
}
