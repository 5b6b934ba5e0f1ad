// Host side of "cross-thread, batch": drains the ring with readBatch until `packets` packets
// arrived, checking each one's length and sequence number, and times first to last packet.

import { workerData, parentPort } from 'node:worker_threads';
import { loadCoreSync, VmbusRing, ReadBatch } from '../../dist/index.mjs';
import { startTogether } from '../lib/threads.mjs';

const { memory, ringPtr, ringBytes, packets, payloadBytes, readBytes } = workerData;
const core = loadCoreSync({ memory });
const ring = VmbusRing.attach(core, ringPtr, ringBytes);
const batch = new ReadBatch(core, { bytes: readBytes });
const u32 = core.u32;

startTogether(workerData);
let received = 0;
let firstCount = 0;
let tFirst = 0;
let emptyPolls = 0;
let error = null;
while (received < packets && error === null) {
  const n = ring.readBatch(batch);
  if (n === 0) {
    emptyPolls++;
    continue;
  }
  if (received === 0) {
    tFirst = performance.now();
    firstCount = n;
  }
  while (batch.next()) {
    const seq = u32[batch.payloadOffset >> 2];
    if (batch.payloadLength !== payloadBytes || seq !== received) {
      error = `packet ${received}: got seq ${seq} with ${batch.payloadLength} payload bytes, expected seq ${received} with ${payloadBytes}`;
      break;
    }
    received++;
  }
}
const tLast = performance.now();
parentPort.postMessage({ received, firstCount, ms: tLast - tFirst, emptyPolls, error });
