// Many packets per engine call: a WriteBatch into one ring endpoint, a ReadBatch out of the other.
import assert from 'node:assert/strict';
import { loadCoreSync, ReadBatch, VmbusRing, WriteBatch } from 'sgring';

const core = loadCoreSync();
const ring = VmbusRing.create(core, { dataSize: 64 * 1024 });
const peer = VmbusRing.attach(core, ring.ptr, ring.totalBytes); // the reader's endpoint
const messages = Array.from({ length: 1000 }, (_, i) => new TextEncoder().encode(`message ${i}`));

const out = new WriteBatch(core, { capacity: 256 });
const inb = new ReadBatch(core, { bytes: 64 * 1024 });
let received = 0;
for (let i = 0; i < messages.length || out.remaining > 0;) {
  while (i < messages.length && out.add(messages[i], 6, 0, BigInt(i))) i++; // false: batch full, send first
  ring.writeBatch(out);        // writes from out.cursor on; out.remaining > 0 if the ring filled up
  if (out.signal) { /* interrupt the peer here */ }
  if (out.remaining === 0) out.clear();
  peer.readBatch(inb);         // the peer drains (in a real setup: another thread, on its signal)
  while (inb.next()) {
    assert.equal(inb.transactionIdLo, received);
    received++;                // inb.type, inb.payloadOffset, inb.payloadLength: the packet in core memory
  }
}
assert.equal(received, messages.length);
console.log(`${received} packets, none dropped`);
