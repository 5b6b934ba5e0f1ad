// The VmbusRing façade on both engines: gather writes, peek/skip, the allocation-free and
// zero-copy forms, batches, the mask/drain/unmask loop and the two signalling rules.
import { describe, expect, it } from 'vitest';
import { ReadBatch, VmbusRing, WriteBatch } from '../../src/index';
import { core, ENGINES } from '../util/engines';

const bytes = (n: number, seed = 0) => Uint8Array.from({ length: n }, (_, i) => (seed + i * 13) & 0xff);

describe.each(ENGINES)('VmbusRing (%s)', (engine) => {
  const make = (dataSize = 16384) => {
    const c = core(engine);
    return { c, ring: VmbusRing.create(c, { dataSize }) };
  };

  it('gather-writes a payload given as several buffers, zero-padded to 8 bytes', () => {
    const { ring } = make();
    const parts = [bytes(3, 1), bytes(0), bytes(10, 50), bytes(7, 90)];
    expect(ring.writePacket({ type: 9, flags: 1, transactionId: 42, payload: parts })).toEqual({ written: true, signal: true });
    const p = ring.readPacket()!;
    expect([p.type, p.flags, p.transactionId]).toEqual([9, 1, 42n]);
    expect(p.payload.length).toBe(24); // 20 bytes padded to 24: payload = tlen*8 - hlen*8
    expect(Array.from(p.payload)).toEqual([...parts.flatMap((x) => Array.from(x)), 0, 0, 0, 0]);
  });

  it('writes a caller-built packet image whose header covers descriptors (GPA-direct, offset8 = 5)', () => {
    const { ring } = make();
    const image = new Uint8Array(56);
    const dv = new DataView(image.buffer);
    dv.setUint16(0, 9, true); // GPA direct
    dv.setUint16(2, 5, true); // 40-byte header: 16 + 8 (prefix) + 16 (one single-page range)
    dv.setUint16(6, 1, true);
    dv.setUint32(8, 77, true);
    dv.setUint32(20, 1, true); // range_count
    image.set(bytes(16, 3), 40); // the message after the header
    expect(ring.writeRaw(image)).toBe(3);
    expect(ring.bytes[4096 + 4]).toBe(7); // len8 set by the writer
    const p = ring.readPacket()!;
    expect([p.type, p.flags, p.transactionId]).toEqual([9, 1, 77n]);
    expect(Array.from(p.payload)).toEqual(Array.from(bytes(16, 3)));
    // Images a reader would reject are refused before anything is written.
    for (const [off, v] of [[0, 5], [2, 1], [2, 8], [6, 2]] as const) {
      const bad = image.slice();
      new DataView(bad.buffer).setUint16(off, v, true);
      expect(() => ring.writeRaw(bad)).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
    }
    expect(() => ring.writeRaw(image.subarray(0, 50))).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
    expect(ring.state().writeIndex).toBe(ring.state().readIndex);
  });

  it('peeks without consuming, skips without copying, and reads what was peeked', () => {
    const { ring } = make();
    ring.writePacket({ type: 6, payload: bytes(16, 1), transactionId: 2n ** 63n + 5n });
    ring.writePacket({ type: 11, payload: bytes(8, 2) });
    const peeked = ring.peekPacket()!;
    expect(peeked.transactionId).toBe(2n ** 63n + 5n);
    expect(ring.state().readIndex).toBe(0);
    expect(ring.readPacket()).toEqual({ ...peeked, signal: false });
    expect(ring.skipPacket()).toEqual({ bytes: 24, signal: false });
    expect(ring.lastType).toBe(11);
    expect(ring.readPacket()).toBeNull();
    expect(ring.skipPacket()).toBeNull();
    expect(ring.peekPacket()).toBeNull();
  });

  it('offers allocation-free and zero-copy forms with the header fields in last*', () => {
    const { c, ring } = make();
    expect(ring.write(bytes(40, 3), 6, 1, 7, 8)).toBe(3);
    const dest = new Uint8Array(64);
    expect(ring.readInto(dest)).toBe(40);
    expect(Array.from(dest.subarray(0, 40))).toEqual(Array.from(bytes(40, 3)));
    expect([ring.lastType, ring.lastFlags, ring.lastTransactionIdLo, ring.lastTransactionIdHi, ring.lastPacketBytes]).toEqual([6, 1, 7, 8, 56]);
    expect(ring.readInto(dest)).toBe(-1);
    const src = c.alloc(128);
    const dst = c.alloc(128);
    c.u8.set(bytes(128, 9), src);
    expect(ring.writeFrom(src, 128, 7)).toBe(3);
    expect(ring.readAt(dst, 128)).toBe(128);
    expect(Array.from(c.view(dst, 128))).toEqual(Array.from(bytes(128, 9)));
    expect(ring.readAt(dst, 128)).toBe(-1);
  });

  it('moves many packets per call with batches; partial batches resume from the cursor', () => {
    const { c, ring } = make(8192);
    const wb = new WriteBatch(c, { capacity: 300, arenaBytes: 300 * 104 });
    for (let i = 0; i < 300; i++) expect(wb.add(bytes(i % 100, i), 6, i & 1, BigInt(i) << 40n)).toBe(true);
    const rb = new ReadBatch(c, { bytes: 4096 });
    let next = 0;
    let rounds = 0;
    while (next < 300) {
      ring.writeBatch(wb);
      if (wb.remaining > 0) expect(wb.needed).toBe(((16 + (wb.cursor % 100) + 7) & ~7) + 8);
      while (ring.readBatch(rb) > 0) {
        while (rb.next()) {
          expect(rb.type).toBe(6);
          expect(rb.flags).toBe(next & 1);
          expect(rb.transactionId).toBe(BigInt(next) << 40n);
          expect(Array.from(rb.payload().subarray(0, next % 100))).toEqual(Array.from(bytes(next % 100, next)));
          expect(rb.payloadLength).toBe(((next % 100) + 7) & ~7);
          next++;
        }
      }
      rounds++;
    }
    expect(rounds).toBeGreaterThanOrEqual(3); // ~24 KiB of records through an 8 KiB ring
    expect(wb.remaining).toBe(0);
    wb.clear();
    expect(wb.length).toBe(0);
    // A batch refuses entries beyond its capacity or arena.
    const tiny = new WriteBatch(c, { capacity: 1, arenaBytes: 8 });
    expect(tiny.add(bytes(16))).toBe(false);
    expect(tiny.add(bytes(8))).toBe(true);
    expect(tiny.add(bytes(1))).toBe(false);
  });

  it('signals the consumer only on the empty -> non-empty transition and never while it is masked (§1.9.1)', () => {
    const { c, ring } = make();
    const reader = VmbusRing.attach(c, ring.ptr, ring.totalBytes);
    expect(ring.writePacket({ type: 6, payload: bytes(8) }).signal).toBe(true);
    expect(ring.writePacket({ type: 6, payload: bytes(8) }).signal).toBe(false);
    reader.readPacket();
    expect(ring.writePacket({ type: 6, payload: bytes(8) }).signal).toBe(false); // not yet empty
    reader.readPacket();
    reader.readPacket();
    reader.beginRead();
    expect(ring.writePacket({ type: 6, payload: bytes(8) }).signal).toBe(false); // masked
    expect(reader.endRead()).toBe(true); // arrived while masked: keep draining
    expect(reader.drain(() => {}).packets).toBe(1);
    expect(ring.state().interruptMask).toBe(0);
    expect(ring.writePacket({ type: 6, payload: bytes(8) }).signal).toBe(true);
  });

  it('signals a blocked producer only when a read makes room for what it asked (§1.9.2)', () => {
    const { c, ring } = make(4096);
    const reader = VmbusRing.attach(c, ring.ptr, ring.totalBytes);
    const big = bytes(1000);
    while (ring.writePacket({ type: 6, payload: big }).written);
    // Producer asks for 1024 bytes; 1024 are free (not enough: exact fill is refused).
    expect(ring.state()).toMatchObject({ pendingSendSize: 1024, availableToWrite: 1024 });
    const seen: boolean[] = [];
    const { packets, signal } = reader.drain((p) => seen.push(p.signal));
    expect(packets).toBe(3);
    expect(seen).toEqual([true, false, false]); // only the read that crossed the threshold
    expect(signal).toBe(true);
  });

  it('drains with a budget, leaving the rest for the next round', () => {
    const { ring } = make();
    for (let i = 0; i < 10; i++) ring.writePacket({ type: 6, payload: bytes(8, i) });
    const got: number[] = [];
    expect(ring.drain((p) => got.push(p.payload[0]!), 4).packets).toBe(4);
    expect(ring.drain((p) => got.push(p.payload[0]!)).packets).toBe(6);
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => bytes(8, i)[0]));
  });
});
