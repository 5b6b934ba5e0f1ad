// Host side of "cross-thread, batch": drains the ring with readBatch until `packets` packets
// arrived, checking each one's length and sequence number. The clock starts once
// `warmupPackets` have arrived: the first million or so packets run before the JIT has
// optimized either side's loop, at about half the steady rate.

import { workerData, parentPort } from 'node:worker_threads';
import { loadCoreSync, VmbusRing, ReadBatch } from '../../dist/index.mjs';
import { startTogether } from '../lib/threads.mjs';

const { memory, ringPtr, ringBytes, packets, warmupPackets, payloadBytes, readBytes } = workerData;
const core = loadCoreSync({ memory });
const ring = VmbusRing.attach(core, ringPtr, ringBytes);
const batch = new ReadBatch(core, { bytes: readBytes });
const u32 = core.u32;

startTogether(workerData);
let received = 0;
let timedFrom = -1; // packet count when the clock started
let tStart = 0;
let emptyPolls = 0;
let error = null;
while (received < packets && error === null) {
  const n = ring.readBatch(batch);
  if (n === 0) {
    emptyPolls++;
    continue;
  }
  if (timedFrom < 0 && received >= warmupPackets) {
    tStart = performance.now();
    timedFrom = received;
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
const ms = performance.now() - tStart;
parentPort.postMessage({ received, timedPackets: received - timedFrom, ms, emptyPolls, error });
