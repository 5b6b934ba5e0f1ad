// Echo peer for the main-thread (non-blocking) tests of checklist 70. This worker may block: it
// reads packets from ring `in` (draining with the mask loop, sleeping on `myBell`) and writes each
// payload and transaction id back into ring `out`, ringing `peerBell` when the write says signal.
// The first reply can be held back by `delayMs`, so the main thread is seen waiting.
//
// workerData: { memory, engine, inPtr, inBytes, outPtr, outBytes, myBell, peerBell, count, delayMs, waitMs }

import { workerData, parentPort } from 'node:worker_threads';
import { loadCoreSync, VmbusRing, Doorbell } from '../../../dist/index.mjs';
import { describeError } from './common.mjs';

const d = workerData;
const core = loadCoreSync({ memory: d.memory, engine: d.engine ?? 'wasm' });
const stats = { echoed: 0, peerSignals: 0, sleeps: 0 };
try {
  const rx = VmbusRing.attach(core, d.inPtr, d.inBytes);
  const tx = VmbusRing.attach(core, d.outPtr, d.outBytes);
  const myBell = Doorbell.attach(core, d.myBell);
  const peerBell = Doorbell.attach(core, d.peerBell);
  while (stats.echoed < d.count) {
    stats.sleeps++;
    if (!myBell.waitUntil(() => rx.availableToRead > 0, d.waitMs)) {
      throw new Error(`echo: nothing arrived within ${d.waitMs} ms after ${stats.echoed} echoes`);
    }
    if (stats.echoed === 0 && d.delayMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, d.delayMs);
    rx.drain((p) => {
      for (;;) {
        const r = tx.writePacket({ type: p.type, transactionId: p.transactionId, payload: p.payload });
        if (r.written) {
          if (r.signal) {
            peerBell.ring();
            stats.peerSignals++;
          }
          break;
        }
        // The main thread reads its ring without ever blocking; poll politely until there is room.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
      }
      stats.echoed++;
    });
  }
  parentPort.postMessage({ type: 'done', ok: true, ...stats });
} catch (e) {
  parentPort.postMessage({ type: 'done', ok: false, error: describeError(e), ...stats });
}
