// Hostile peer that keeps rewriting one 64-bit word of a published packet in place, cycling
// through `values` with tear-free 64-bit Atomics stores (J1), until told to stop. Used on a
// transaction id (checklist 67: the values have tied halves, so a reader that assembles the id
// from two separate 32-bit reads of shared memory can see a torn mix) and on a packet header
// word (checklist 73: the lengths change between a reader's checks and its copy).
//
// workerData: { memory, addr (8-aligned), values: bigint[], control: SharedArrayBuffer
//   (Int32: [0] stop, [1] started) }

import { workerData, parentPort } from 'node:worker_threads';

const { memory, addr, values, control } = workerData;
const ctl = new Int32Array(control);
const big = new BigUint64Array(memory.buffer);
const at = addr / 8;
const n = values.length;
let flips = 0;
Atomics.store(ctl, 1, 1);
Atomics.notify(ctl, 1);
while (Atomics.load(ctl, 0) === 0) {
  for (let i = 0; i < 256; i++) Atomics.store(big, at, values[(flips + i) % n]);
  flips += 256;
}
parentPort.postMessage({ type: 'done', ok: true, flips });
