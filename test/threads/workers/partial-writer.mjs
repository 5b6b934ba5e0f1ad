// A guest writer that dies mid-packet (checklist 72). It writes `complete` whole packets the
// normal way, then lays the next record's header, transaction id and the first half of its
// payload straight into the data area at the write index, and:
//  - variant 'unpublished': never publishes the write index (it was stopped before step 6 of
//    spec §1.7);
//  - variant 'header-published': publishes a write index covering only the 16 header bytes, as a
//    peer that is broken or killed between two partial publications would.
// It then reports where it stopped and spins until the test terminates it.
//
// workerData: { memory, engine, ringPtr, ringBytes, complete, payloadLen, variant }

import { workerData, parentPort } from 'node:worker_threads';
import { loadCoreSync, VmbusRing } from '../../../dist/index.mjs';
import { tiedHi } from './common.mjs';

const d = workerData;
const core = loadCoreSync({ memory: d.memory, engine: d.engine ?? 'wasm' });
const ring = VmbusRing.attach(core, d.ringPtr, d.ringBytes);
for (let i = 0; i < d.complete; i++) {
  const payload = Uint8Array.from({ length: 24 + i }, (_, j) => (i * 31 + j) & 0xff);
  if ((ring.write(payload, 6, 0, i, tiedHi(i)) & 1) === 0) throw new Error('ring unexpectedly full');
}
const u32 = core.u32;
const w = Atomics.load(u32, ring.ptr >> 2);
const padded = (d.payloadLen + 16 + 7) & ~7;
const at = ring.ptr + 4096 + w; // the caller keeps the record clear of the wrap
const dv = new DataView(core.u8.buffer);
dv.setUint16(at, 6, true); // type: in-band
dv.setUint16(at + 2, 2, true); // hlen: 2 q-words
dv.setUint16(at + 4, padded >> 3, true); // tlen
dv.setUint16(at + 6, 0, true); // flags
dv.setUint32(at + 8, 0xfeed, true);
dv.setUint32(at + 12, tiedHi(0xfeed), true);
for (let j = 0; j < d.payloadLen >> 1; j++) core.u8[at + 16 + j] = 0xa5;
if (d.variant === 'header-published') Atomics.store(u32, ring.ptr >> 2, w + 16);
parentPort.postMessage({ type: 'stopped', writeIndex: w, recordBytes: padded + 8 });
for (;;) {
  // Stopped mid-packet: the test terminates this thread here.
}
