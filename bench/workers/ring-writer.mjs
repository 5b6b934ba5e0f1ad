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

startTogether(workerData);
const t0 = performance.now();
let fullPolls = 0;
for (let seq = 0; seq < packets;) {
  const k = Math.min(batchSize, packets - seq);
  batch.clear();
  for (let i = 0; i < k; i++) {
    const at = src + i * payloadBytes;
    u32[at >> 2] = seq + i;
    batch.addRef(at, payloadBytes);
  }
  while (batch.remaining > 0) {
    if (ring.writeBatch(batch) === 0) fullPolls++;
  }
  seq += k;
}
parentPort.postMessage({ sent: packets, ms: performance.now() - t0, fullPolls });
