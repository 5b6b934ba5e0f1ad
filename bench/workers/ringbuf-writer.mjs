// ringbuf.js beside "cross-thread, batch": the same stream of `packets` packets of
// `payloadBytes`, each starting with its u32 sequence number, pushed `batchSize` at a time
// into a ringbuf.js RingBuffer (a byte stream over a SharedArrayBuffer), polling while full.

import { workerData, parentPort } from 'node:worker_threads';
import { RingBuffer } from 'ringbuf.js';
import { startTogether } from '../lib/threads.mjs';

const { sab, packets, payloadBytes, batchSize } = workerData;
const rb = new RingBuffer(sab, Uint8Array);
const batch = new Uint8Array(batchSize * payloadBytes);
const view = new DataView(batch.buffer);

startTogether(workerData);
const t0 = performance.now();
let fullPolls = 0;
for (let seq = 0; seq < packets;) {
  const k = Math.min(batchSize, packets - seq);
  for (let i = 0; i < k; i++) view.setUint32(i * payloadBytes, seq + i, true);
  const bytes = k * payloadBytes;
  for (let done = 0; done < bytes;) {
    const n = rb.push(batch, bytes - done, done);
    if (n === 0) fullPolls++;
    done += n;
  }
  seq += k;
}
parentPort.postMessage({ sent: packets, ms: performance.now() - t0, fullPolls });
