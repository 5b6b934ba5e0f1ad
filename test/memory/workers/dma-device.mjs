// Device thread of the cross-thread IOMMU tests: attaches to a domain by pointer in shared
// memory and DMAs while the guest (main) thread maps, unmaps and resets it.
//  - phase 'lockstep': for round r the main thread changes one page (or resets), publishes r
//    with Atomics.store, and waits; this thread then DMAs and checks the outcome against its own
//    model of round r (message passing, checklist 68: after the publication the change is seen),
//    and a request begun before a reset must fail DmaStale.
//  - phase 'hammer': scatters to one mapped page until told to stop while the main thread
//    remaps its neighbours in the same table word: the page must never fault (a partial-word
//    update never passes through a state that revokes other pages).
//
// workerData: { memory, engine, domPtr, mailbox: SharedArrayBuffer (Int32: [0] round published,
//   [1] round done, [2] stop, [3] started), phase, rounds, base, hammerPage, waitMs }

import { workerData, parentPort } from 'node:worker_threads';
import { loadCoreSync, IommuDomain } from '../../../dist/index.mjs';

const d = workerData;
const P = 4096;
const core = loadCoreSync({ memory: d.memory, engine: d.engine });
const dom = IommuDomain.attach(core, d.domPtr, 'device thread');
const mb = new Int32Array(d.mailbox);
const stats = { rounds: 0, mismatches: [], dmas: 0, faults: 0, stale: 0 };
const data = new Uint8Array(16).fill(0x3c);

const codeOf = (f) => {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (e?.name !== 'SgringError') throw e;
    return e.code;
  }
};

/** Round r's change, the same function the main thread applies: page, and bits after it (-1 = reset). */
function action(r) {
  if (r % 50 === 0) return { page: -1, bits: 0 };
  const page = r % 8;
  return { page, bits: [3, 0, 1][r % 3] };
}

try {
  if (d.phase === 'lockstep') {
    const model = new Array(8).fill(0);
    let ctx = dom.begin();
    for (let r = 1; r <= d.rounds; r++) {
      if (Atomics.wait(mb, 0, r - 1, d.waitMs) === 'timed-out' && Atomics.load(mb, 0) !== r) throw new Error(`round ${r} never published`);
      const a = action(r);
      if (a.page < 0) model.fill(0);
      else model[a.page] = a.bits;
      const page = a.page < 0 ? r % 8 : a.page;
      const seg = [{ addr: d.base + page * P + (r % 64), len: 16 }];
      const want = (bit) => (a.page < 0 ? 'DmaStale' : model[page] & bit ? 'ok' : 'IommuFault');
      const got = [codeOf(() => dom.scatter(seg, data, { context: ctx })), codeOf(() => dom.gather(seg, { context: ctx }))];
      const expected = [want(2), want(1)];
      if (got[0] !== expected[0] || got[1] !== expected[1]) stats.mismatches.push({ r, got, expected });
      stats.rounds++;
      ctx = dom.begin();
      Atomics.store(mb, 1, r);
      Atomics.notify(mb, 1);
    }
  } else {
    const seg = [{ addr: d.base + d.hammerPage * P, len: 16 }];
    Atomics.store(mb, 3, 1);
    Atomics.notify(mb, 3);
    while (Atomics.load(mb, 2) === 0) {
      for (let i = 0; i < 64; i++) {
        const c = codeOf(() => dom.scatter(seg, data));
        stats.dmas++;
        if (c !== 'ok') {
          stats.faults++;
          if (stats.mismatches.length < 5) stats.mismatches.push({ dma: stats.dmas, code: c });
        }
      }
    }
  }
  parentPort.postMessage({ type: 'done', ok: true, ...stats });
} catch (e) {
  parentPort.postMessage({ type: 'done', ok: false, error: String(e?.stack ?? e), ...stats });
}
