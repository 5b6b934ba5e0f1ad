// Cross-thread stress of one VMBus ring (spec/vmbus.md §1): a guest writer worker and a host
// reader worker over one shared memory. Packets carry 0..300 bytes cut from a seeded random
// pool (so records of every size, and wraps at every 8-byte alignment, show up), their u32
// sequence number and a checksum; the reader finds 0 lost, 0 duplicated, 0 corrupted. Both
// sides follow the signalling rules through Doorbells with bounded waits (see workers/).
import { describe, expect, it } from 'vitest';
import { loadCoreSync, VmbusRing } from '../../src/index';
import { expectClean, readFlippingTid, runPair, setupRing } from './harness';
import { tiedHi } from './workers/common.mjs';

describe('cross-thread stress: one writer worker, one reader worker, one shared ring', () => {
  it('10^6 packets through the batch API (WriteBatch / ReadBatch), wasm engine', async () => {
    const s = setupRing({ dataSize: 64 * 1024 });
    const count = 1_000_000;
    const [w, r] = await runPair(s, { engine: 'wasm', count, writerMode: 'batch', readerMode: 'batch', batchSize: 64 });
    expectClean(w, r, count);
    expect(r.wraps as number).toBeGreaterThan(1000);
    expect(w.hostSignals as number).toBeLessThan(count / 10);
  });

  it('10^5 packets through the batch API, reference engine', async () => {
    const s = setupRing({ dataSize: 16 * 1024 });
    const count = 100_000;
    const [w, r] = await runPair(s, { engine: 'reference', count, writerMode: 'batch', readerMode: 'batch', batchSize: 32, readBytes: 8192 });
    expectClean(w, r, count);
  });

  it.each(['wasm', 'reference'] as const)('per packet: writePacket / gather writePacket / write against readPacket / readInto (%s)', async (engine) => {
    const s = setupRing({ dataSize: 16 * 1024 });
    const count = engine === 'wasm' ? 200_000 : 50_000;
    const [w, r] = await runPair(s, { engine, count, writerMode: 'packet', readerMode: 'packet' });
    expectClean(w, r, count);
  });

  it.each(['wasm', 'reference'] as const)('per packet into ring.drain, the mask / drain / unmask / re-check loop (%s)', async (engine) => {
    const s = setupRing({ dataSize: 8 * 1024 });
    const count = engine === 'wasm' ? 100_000 : 30_000;
    const [w, r] = await runPair(s, { engine, count, writerMode: 'packet', readerMode: 'drain' });
    expectClean(w, r, count);
  });
});

describe('shared memory across threads (spec/hardening.md §3.9)', () => {
  // The writer's transaction ids have tied halves (hi = lo ^ 0xdeadbeef): a value assembled from
  // halves of two different packets, or from a half-written id, fails the tie.
  it.each([
    ['wasm', 'batch', 'batch'],
    ['wasm', 'packet', 'packet'],
    ['reference', 'batch', 'batch'],
    ['reference', 'packet', 'packet'],
  ] as const)('[H67] 64-bit transaction ids with tied halves are never seen torn over 10^5 packets (%s, %s writer, %s reader)', async (engine, wm, rm) => {
    const s = setupRing({ dataSize: 8 * 1024 });
    const count = 100_000;
    const [w, r] = await runPair(s, { engine, count, writerMode: wm, readerMode: rm, tidMode: 'tied', readBytes: 4096 });
    expectClean(w, r, count); // includes torn === 0 and every payload checked against the pool
  });

  // Message passing: the writer copies the payload, then publishes the write index; a reader that
  // sees the index must see the whole payload. The ring is the smallest allowed (one data page), so
  // every byte of it held another packet's bytes one lap earlier: a payload read too early would
  // carry those stale bytes and fail its checksum. The reader busy-polls, so it looks at each
  // packet the moment its index is published.
  it.each([
    ['wasm', 'packet', 'packet'],
    ['wasm', 'batch', 'batch'],
    ['reference', 'packet', 'packet'],
  ] as const)('[H68] a reader that sees a published packet sees all of its payload, never stale bytes (%s, %s)', async (engine, wm, rm) => {
    const s = setupRing({ dataSize: 4096 });
    const count = engine === 'wasm' ? 100_000 : 40_000;
    const [w, r] = await runPair(s, { engine, count, writerMode: wm, readerMode: rm, batchSize: 8, readBytes: 1024, reader: { poll: true } });
    expectClean(w, r, count);
    // Each data byte was overwritten many times over.
    expect(r.wraps as number).toBeGreaterThan(count / 30);
  });
});

describe('shared memory across threads, hostile peer (spec/hardening.md §3.9)', () => {
  // A writer thread keeps flipping a published packet's 64-bit transaction id in place between
  // tied values with tear-free 64-bit stores. The engine must take its private copy of the id
  // with one 64-bit access, so every read form sees one whole value. (The reference engine used
  // to read the halves with two DataView.getUint32 calls and showed up to ~500 torn reads a
  // second here; fixed.)
  it.each(['wasm', 'reference'] as const)('[H67] a peer flipping a published transaction id in place never makes the reader see a torn value (%s; peekPacket, readPacket, readInto, readBatch)', async (engine) => {
    const { reads, torn, flips } = await readFlippingTid(engine, 800);
    expect(torn).toEqual({ peekPacket: 0, readPacket: 0, readInto: 0, readBatch: 0 });
    expect(reads).toBeGreaterThan(20_000);
    expect(flips).toBeGreaterThan(100_000);
  });

  // Regression test: the reference engine used to take the id as two DataView.getUint32 reads of
  // shared memory (tidLo, then tidHi), which J1 lists as able to tear. Cross-thread that showed
  // only now and then (0 to ~500 torn reads per 1.5 s run here), so this test plays the peer
  // deterministically: it wraps DataView.prototype.getUint32 for one read and, right after the
  // low half of the id is read, stores a whole new tied id. A read done with one 64-bit access
  // never calls the hook.
  it('[H67] reference engine, deterministic: a peer store to the transaction id in the middle of a read gives the old or the new id, never a torn mix', () => {
    const core = loadCoreSync({ shared: true, engine: 'reference' });
    const tx = VmbusRing.create(core, { dataSize: 4096 });
    const rx = VmbusRing.attach(core, tx.ptr, tx.totalBytes);
    expect(tx.write(new Uint8Array(40), 6, 0, 1, tiedHi(1))).toBe(3);
    const tidAt = tx.ptr + 4096 + 8;
    const big = new BigUint64Array(core.memory.buffer);
    const getUint32 = DataView.prototype.getUint32;
    let stores = 0;
    DataView.prototype.getUint32 = function (this: DataView, off: number, le?: boolean) {
      const v = getUint32.call(this, off, le);
      // The peer's whole 64-bit store lands right after the reader took the low half.
      if (off === tidAt && stores++ === 0) Atomics.store(big, tidAt / 8, (BigInt(tiedHi(2)) << 32n) | 2n);
      return v;
    };
    let p;
    try {
      p = rx.readPacket();
    } finally {
      DataView.prototype.getUint32 = getUint32;
    }
    const lo = Number(p!.transactionId & 0xffffffffn);
    const hi = Number(p!.transactionId >> 32n);
    expect({ lo, hi: hi.toString(16) }).toEqual({ lo, hi: tiedHi(lo).toString(16) });
  });
});
