// One VMBus ring, both endpoints in one thread: a packet written and read back.
import assert from 'node:assert/strict';
import { loadCoreSync, VmbusRing } from 'sgring';

const core = loadCoreSync();                              // Wasm engine, its own memory
const ring = VmbusRing.create(core, { dataSize: 12288 }); // 4096-byte header page + 3 data pages

const { written, signal } = ring.writePacket({
  type: 6,                                  // in-band
  flags: 1,                                 // completion requested
  transactionId: 42n,
  payload: new Uint8Array([1, 2, 3]),       // or a list of buffers: a gather write
});
// written === false means full (never a partial packet); signal === true means the rules of
// the spec say the reader must be interrupted now (empty -> non-empty, reader not masked).
assert.deepEqual({ written, signal }, { written: true, signal: true });

const p = ring.readPacket();                // { type, flags, transactionId, payload, signal } | null
// p.payload is a private copy of bytes [hlen*8, tlen*8): 8 bytes here (3 + zero padding).
// p.signal === true means a blocked writer asked (pending_send_sz) for the room just freed.
assert.equal(p.transactionId, 42n);
assert.deepEqual([...p.payload], [1, 2, 3, 0, 0, 0, 0, 0]);
console.log(`read tid ${p.transactionId}, ${p.payload.length} payload bytes`);
