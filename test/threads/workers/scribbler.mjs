// Hostile peer for checklist 73: scribbles over the ring's data area (never its header page)
// until told to stop: random bytes at random offsets, and now and then a plausible-looking
// packet header word (valid or invalid type, hlen, tlen, flags) at an 8-aligned offset, so the
// reader's checks and its copy race with changes of every kind. It never writes the canary byte.
//
// workerData: { memory, dataPtr, dataSize, seed, control: SharedArrayBuffer (Int32: [0] stop, [1] started) }

import { workerData, parentPort } from 'node:worker_threads';
import { xorshift, CANARY } from './common.mjs';

const { memory, dataPtr, dataSize, seed, control } = workerData;
const ctl = new Int32Array(control);
const u8 = new Uint8Array(memory.buffer);
const next = xorshift(seed);
const TYPES = [6, 7, 9, 11, 6, 6, 1, 0xffff];
const byte = (b) => (b === CANARY ? 0x5a : b);
let writes = 0;
Atomics.store(ctl, 1, 1);
Atomics.notify(ctl, 1);
while (Atomics.load(ctl, 0) === 0) {
  for (let k = 0; k < 64; k++) {
    const r = next();
    if ((r & 3) === 0) {
      // A header word: type u16, hlen u16, tlen u16, flags u16.
      const at = dataPtr + ((next() % dataSize) & ~7);
      const tlenQ = next() % ((dataSize >> 3) + 8);
      const hlen = next() % 6;
      const flags = (next() & 7) === 0 ? next() & 0xffff : next() & 1;
      const type = TYPES[next() & 7];
      const words = [type & 0xff, type >> 8, hlen, 0, tlenQ & 0xff, tlenQ >> 8, flags & 0xff, flags >> 8];
      for (let i = 0; i < 8; i++) u8[at + i] = byte(words[i]);
    } else {
      const len = 1 + (next() % 48);
      const at = next() % (dataSize - len + 1);
      for (let i = 0; i < len; i++) u8[dataPtr + at + i] = byte(next() & 0xff);
    }
    writes++;
  }
}
parentPort.postMessage({ type: 'done', ok: true, writes });
