// Hostile ring contents and bad arguments: spec/hardening.md §3.1-3.2, items 1-12. Each case
// checks the typed error, the documented behaviour (E: error, no state change; B: endpoint
// marked broken until reset) and that nothing else happened (no RuntimeError, no index moved).
import { describe, expect, it } from 'vitest';
import { VmbusRing, WriteBatch, ReadBatch, type Core } from '../../src/index';
import { core, ENGINES } from '../util/engines';
import { expectCode } from '../util/errors';

function setup(engine: 'wasm' | 'reference', dataSize = 8192) {
  const c = core(engine);
  const ring = VmbusRing.create(c, { dataSize });
  const hdr = (i: number, v?: number) => {
    if (v !== undefined) c.u32[(ring.ptr >> 2) + i] = v >>> 0;
    return c.u32[(ring.ptr >> 2) + i]!;
  };
  const data = () => ring.bytes.subarray(4096);
  return { c, ring, hdr, data };
}

/** Writes a raw header word pair at data offset `at` and publishes w so the record looks present. */
function plantHeader(c: Core, ring: VmbusRing, at: number, type: number, hlen: number, tlen: number, flags: number, w: number) {
  const d = new DataView(c.u8.buffer, ring.ptr + 4096);
  d.setUint16(at, type, true);
  d.setUint16(at + 2, hlen, true);
  d.setUint16(at + 4, tlen, true);
  d.setUint16(at + 6, flags, true);
  c.u32[ring.ptr >> 2] = w;
}

describe.each(ENGINES)('ring bad input (%s)', (engine) => {
  it('[H1] a write or read index beyond the data area or not 8-aligned breaks the endpoint (InvalidRingPointer)', () => {
    for (const [w, r] of [[8192, 0], [0, 8192], [12, 0], [0, 4], [0xffffffff, 0], [0, 0x80000000]] as const) {
      const { ring, hdr } = setup(engine);
      hdr(0, w);
      hdr(1, r);
      const e = expectCode(() => ring.readPacket(), 'InvalidRingPointer');
      expect(e.broken).toBe(true);
      expect(ring.state().broken).toBe('InvalidRingPointer');
      // Sticky: every later call on this endpoint reports it, the writer's too, until reset.
      expectCode(() => ring.skipPacket(), 'InvalidRingPointer');
      expect(hdr(1)).toBe(r >>> 0);
      ring.reset();
      expect(ring.readPacket()).toBeNull();
    }
    const { ring, hdr } = setup(engine);
    hdr(1, 4100);
    expectCode(() => ring.writePacket({ type: 6, payload: new Uint8Array(8) }), 'InvalidRingPointer');
    expect(hdr(0)).toBe(0);
    const b = new WriteBatch(ring.core);
    b.add(new Uint8Array(8));
    expectCode(() => ring.writeBatch(b), 'InvalidRingPointer');
  });

  it('[H2] 1 to 15 readable bytes (a partial header) break the endpoint (InvalidDataAvailable)', () => {
    const { ring, hdr } = setup(engine);
    hdr(0, 8);
    expectCode(() => ring.readPacket(), 'InvalidDataAvailable');
    const s2 = setup(engine);
    s2.hdr(0, 8);
    expectCode(() => s2.ring.readBatch(new ReadBatch(s2.c)), 'InvalidDataAvailable');
  });

  it('[H3] ring memory that is not whole pages, too small, too large or outside memory is refused at construction', () => {
    const c = core(engine);
    const ptr = c.alloc(64 * 1024, 4096);
    for (const total of [4096, 4096 + 100, 8192 + 8, 0, 2 ** 32, 2 ** 31]) {
      expectCode(() => VmbusRing.attach(c, ptr, total), 'InvalidRingMemory');
    }
    expectCode(() => VmbusRing.attach(c, c.byteLength - 4096, 8192), 'InvalidRingMemory');
    expectCode(() => VmbusRing.attach(c, ptr + 4, 8192), 'InvalidRingMemory');
    expectCode(() => VmbusRing.create(c, { dataSize: 1000 }), 'InvalidRingMemory');
    expect(VmbusRing.attach(c, ptr, 8192).dataSize).toBe(4096);
  });

  it('[H4] a packet that can never fit gives InvalidMessageLength, not "full" forever', () => {
    const { ring, hdr } = setup(engine, 4096);
    expect(ring.maxPayload).toBe(4096 - 32);
    expectCode(() => ring.writePacket({ type: 6, payload: new Uint8Array(4096 - 31) }), 'InvalidMessageLength');
    expectCode(() => ring.write(new Uint8Array(70000)), 'InvalidMessageLength');
    expect(hdr(0)).toBe(0);
    expect(ring.writePacket({ type: 6, payload: new Uint8Array(4096 - 32) }).written).toBe(true);
    // In a batch the bad entry is named and nothing is written.
    const { ring: r2, hdr: h2 } = setup(engine, 4096);
    const b = new WriteBatch(r2.core, { arenaBytes: 8192 });
    b.add(new Uint8Array(8));
    b.add(new Uint8Array(4096));
    const e = expectCode(() => r2.writeBatch(b), 'InvalidMessageLength');
    expect(e.details).toMatchObject({ index: 1 });
    expect(h2(0)).toBe(0);
    // A tlen beyond u16 can never be framed, whatever the ring size.
    const big = setup(engine, 1 << 20);
    expectCode(() => big.ring.write(new Uint8Array(0xffff * 8)), 'InvalidMessageLength');
  });

  it('[H5] a full ring reports written=false with the size needed, sets pending_send_sz, and clears it once space returns', () => {
    const { ring, hdr } = setup(engine, 4096);
    const payload = new Uint8Array(1000);
    let n = 0;
    while (ring.writePacket({ type: 6, payload }).written) n++;
    expect(n).toBe(3); // a 4th 1024-byte record would fill 4096 exactly: refused (spec §1.5)
    expect(ring.state().pendingSendSize).toBe(1024);
    expect(ring.write(payload)).toBe(0);
    const reader = VmbusRing.attach(ring.core, ring.ptr, ring.totalBytes);
    const p = reader.readPacket()!;
    expect(p.signal).toBe(true); // the consumer freed enough for the blocked producer
    expect(ring.writePacket({ type: 6, payload }).written).toBe(true);
    expect(hdr(3)).toBe(0);
    // Without the feature bit the producer polls: nothing is advertised.
    const { c: c2 } = setup(engine);
    const quiet = VmbusRing.create(c2, { dataSize: 4096, featureBits: 0 });
    while (quiet.write(payload) !== 0);
    expect(quiet.state().pendingSendSize).toBe(0);
  });

  it('[H6] garbage in interrupt_mask, pending_send_sz and feature_bits is never used as a size', () => {
    const { ring, hdr } = setup(engine);
    hdr(2, 0xfffffffe); // mask: any non-zero value means masked
    expect(ring.writePacket({ type: 6, payload: new Uint8Array(8) })).toEqual({ written: true, signal: false });
    hdr(2, 0);
    hdr(3, 0xffffffff); // pending larger than the ring: clamped, so never "enough space"
    hdr(16, 0xfffffffe); // feature bits without bit 0
    expect(ring.readPacket()!.signal).toBe(false);
    ring.writePacket({ type: 6, payload: new Uint8Array(8) });
    hdr(16, 0xffffffff);
    expect(ring.readPacket()!.signal).toBe(false);
    expect(ring.state().broken).toBeNull();
  });

  it('[H7] packets spanning the end of the data area are split and rejoined exactly, at size-8, size-16 and an exact wrap', () => {
    for (const start of [8192 - 8, 8192 - 16, 8192 - 40]) {
      const { ring, hdr } = setup(engine);
      hdr(0, start);
      hdr(1, start);
      const payload = Uint8Array.from({ length: 16 }, (_, i) => i + 1); // record of 40 bytes
      ring.writePacket({ type: 6, payload, transactionId: 0x1122334455667788n });
      expect(hdr(0)).toBe((start + 40) % 8192);
      const p = ring.readPacket()!;
      expect(Array.from(p.payload)).toEqual(Array.from(payload));
      expect(p.transactionId).toBe(0x1122334455667788n);
    }
  });

  it('[H8] data already copied out stays valid when the peer rewinds the indices or rewrites the ring', () => {
    const { ring, hdr, data } = setup(engine);
    const payload = Uint8Array.from({ length: 48 }, (_, i) => i);
    for (let i = 0; i < 3; i++) ring.writePacket({ type: 6, payload });
    const p = ring.readPacket()!;
    const batch = new ReadBatch(ring.core);
    expect(ring.readBatch(batch)).toBe(2);
    hdr(0, 0);
    hdr(1, 0);
    data().fill(0xee);
    expect(Array.from(p.payload)).toEqual(Array.from(payload));
    for (const q of batch) expect(Array.from(q.payload)).toEqual(Array.from(payload));
  });

  it('[H10] len8 < offset8, offset8 < 2 or a packet longer than the bytes available break the endpoint', () => {
    const cases: [hlen: number, tlen: number][] = [[2, 1], [0, 4], [1, 4], [3, 2], [2, 0], [2, 0xffff], [2, 9]];
    for (const [hlen, tlen] of cases) {
      const { c, ring, hdr } = setup(engine);
      plantHeader(c, ring, 0, 6, hlen, tlen, 0, 72); // 72 bytes published: tlen 8 fits, 9 does not
      expectCode(() => ring.readPacket(), 'InvalidDescriptorLengths');
      expect(hdr(1)).toBe(0);
      expectCode(() => ring.peekPacket(), 'InvalidDescriptorLengths');
    }
    // The same record with consistent lengths reads fine.
    const { c, ring } = setup(engine);
    plantHeader(c, ring, 0, 6, 2, 8, 0, 72);
    expect(ring.readPacket()!.payload.length).toBe(48);
  });

  it('[H11] an unknown packet type breaks the endpoint and is never delivered', () => {
    for (const type of [0, 1, 5, 8, 10, 12, 13, 0xffff]) {
      const { c, ring, hdr } = setup(engine);
      plantHeader(c, ring, 0, type, 2, 4, 0, 40);
      expectCode(() => ring.readPacket(), 'InvalidDescriptorType');
      expect(hdr(1)).toBe(0);
      const b = new ReadBatch(c);
      expectCode(() => ring.readBatch(b), 'InvalidDescriptorType');
    }
    // Our own writer refuses to frame such a packet (caller error, ring untouched).
    const { ring, hdr } = setup(engine);
    const e = expectCode(() => ring.writePacket({ type: 5, payload: new Uint8Array(8) }), 'InvalidArgument');
    expect(e.broken).toBe(false);
    expect(hdr(0)).toBe(0);
  });

  it('[H12] flag bits other than completion-requested break the endpoint', () => {
    for (const flags of [2, 3, 0x8000, 0xffff]) {
      const { c, ring } = setup(engine);
      plantHeader(c, ring, 0, 6, 2, 4, flags, 40);
      expectCode(() => ring.readPacket(), 'InvalidDescriptorFlags');
    }
    const { c, ring } = setup(engine);
    plantHeader(c, ring, 0, 6, 2, 4, 1, 40);
    expect(ring.readPacket()!.flags).toBe(1);
  });

  it('[H10] good packets before a corrupt record are delivered by a batch read; the next read reports the corruption', () => {
    const { c, ring, hdr } = setup(engine);
    ring.writePacket({ type: 6, payload: new Uint8Array(24) });
    ring.writePacket({ type: 6, payload: new Uint8Array(24) });
    const w = hdr(0);
    plantHeader(c, ring, w, 6, 2, 0x200, 0, w + 40);
    const b = new ReadBatch(c);
    expect(ring.readBatch(b)).toBe(2);
    expect(hdr(1)).toBe(w);
    expectCode(() => ring.readBatch(b), 'InvalidDescriptorLengths');
  });

  it('[H10] an output buffer too small for the packet consumes nothing and leaves the last-packet fields alone', () => {
    const { ring, hdr } = setup(engine);
    ring.writePacket({ type: 9, flags: 1, transactionId: 7n, payload: new Uint8Array(8) });
    ring.writePacket({ type: 6, payload: new Uint8Array(200) });
    expect(ring.readInto(new Uint8Array(8))).toBe(8);
    expect([ring.lastType, ring.lastFlags, ring.lastTransactionIdLo]).toEqual([9, 1, 7]);
    const r = hdr(1);
    const e = expectCode(() => ring.readInto(new Uint8Array(64)), 'BufferTooSmall');
    expect(e.details).toMatchObject({ needed: 200 });
    expect(e.broken).toBe(false);
    expect(hdr(1)).toBe(r);
    expect([ring.lastType, ring.lastFlags, ring.lastTransactionIdLo]).toEqual([9, 1, 7]);
    expect(ring.readInto(new Uint8Array(256))).toBe(200);
    const small = new ReadBatch(ring.core, { bytes: 64 });
    ring.writePacket({ type: 6, payload: new Uint8Array(200) });
    expectCode(() => ring.readBatch(small), 'BufferTooSmall');
  });

  it('bad arguments from the caller are InvalidArgument errors, never traps', () => {
    const { c, ring } = setup(engine);
    expectCode(() => ring.writePacket({ type: 6, payload: new Uint8Array(8), transactionId: -1n }), 'InvalidArgument');
    expectCode(() => ring.writePacket({ type: 6, payload: new Uint8Array(8), transactionId: 2n ** 64n }), 'InvalidArgument');
    expectCode(() => ring.writeFrom(c.byteLength - 4, 64), 'InvalidArgument');
    expectCode(() => ring.readAt(c.byteLength - 4, 64), 'InvalidArgument');
    const b = new WriteBatch(c);
    b.addRef(c.byteLength, 8);
    expectCode(() => ring.writeBatch(b), 'InvalidArgument');
    expectCode(() => c.alloc(-1), 'InvalidArgument');
    expectCode(() => c.alloc(8, 3), 'InvalidArgument');
    expectCode(() => c.view(c.byteLength, 1), 'InvalidArgument');
    expect(ring.state().broken).toBeNull();
  });
});
