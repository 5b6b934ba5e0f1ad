// Guest side of "cross-thread, batch": writes `packets` packets of `payloadBytes`, each carrying
// its u32 sequence number, `batchSize` per writeBatch, polling while the ring is full.

import { workerData, parentPort } from 'node:worker_threads';
import { loadCoreSync, VmbusRing, WriteBatch } from '../../dist/index.mjs';
import { startTogether } from '../lib/threads.mjs';

const { memory, ringPtr, ringBytes, packets, payloadBytes, batchSize } = workerData;
const core = loadCoreSync({ memory });
const ring = VmbusRing.attach(core, ringPtr, ringBytes);
const src = core.alloc(batchSize * payloadBytes, 8);
const batch = new WriteBatch(core, { capacity: batchSize, arenaBytes: 0 });
const u32 = core.u32;

/** Queues packets [0, k) of the source region (descriptors stay valid across rounds). */
const queue = (k) => {
  batch.clear();
  for (let i = 0; i < k; i++) batch.addRef(src + i * payloadBytes, payloadBytes);
};
queue(batchSize);

startTogether(workerData);
const t0 = performance.now();
let fullPolls = 0;
for (let seq = 0; seq < packets;) {
  const k = Math.min(batchSize, packets - seq);
  if (k < batchSize) queue(k);
  // The previous round is in the ring already, so its source slots can be reused.
  for (let i = 0; i < k; i++) u32[(src + i * payloadBytes) >> 2] = seq + i;
  batch.cursor = 0;
  while (batch.remaining > 0) {
    if (ring.writeBatch(batch) === 0) fullPolls++;
  }
  seq += k;
}
parentPort.postMessage({ sent: packets, ms: performance.now() - t0, fullPolls });
