// ringbuf.js beside "cross-thread, batch": pops the stream up to `readBytes` at a time and
// checks every packet's sequence number, timing the packets after `warmupPackets` (as
// ring-reader.mjs does for sgring).

import { workerData, parentPort } from 'node:worker_threads';
import { RingBuffer } from 'ringbuf.js';
import { startTogether } from '../lib/threads.mjs';

const { sab, packets, warmupPackets, payloadBytes, readBytes } = workerData;
const rb = new RingBuffer(sab, Uint8Array);
const buf = new Uint8Array(readBytes - (readBytes % payloadBytes));
const view = new DataView(buf.buffer);

startTogether(workerData);
let received = 0;
let timedFrom = -1;
let tStart = 0;
let emptyPolls = 0;
let error = null;
let partial = 0; // bytes of a packet split across two pops, kept at the start of buf
while (received < packets && error === null) {
  const n = rb.pop(buf, buf.length - partial, partial);
  if (n === 0) {
    emptyPolls++;
    continue;
  }
  if (timedFrom < 0 && received >= warmupPackets) {
    tStart = performance.now();
    timedFrom = received;
  }
  const have = partial + n;
  const whole = have - (have % payloadBytes);
  for (let at = 0; at < whole; at += payloadBytes) {
    const seq = view.getUint32(at, true);
    if (seq !== received) {
      error = `packet ${received}: got seq ${seq}`;
      break;
    }
    received++;
  }
  partial = have - whole;
  if (partial > 0) buf.copyWithin(0, whole, have);
}
const ms = performance.now() - tStart;
parentPort.postMessage({ received, timedPackets: received - timedFrom, ms, emptyPolls, error });
