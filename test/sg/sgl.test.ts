// SGL (spec/nvme.md §4) on both engines: descriptor encoding, the builder's three shapes
// (inline Data Block, one Last Segment, chained Segments with the exact-fit rule), walking
// hand-made SGLs, and a build -> walk round-trip property against a plain model.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildSgl, decodeSglDescriptor, encodeSglDescriptor, NvmeBuildBatch, NvmeWalkBatch, walkSgl, type NvmeSegment as Segment } from '../../src/index';
import { check } from '../util/fc';
import { ENGINES, getU64, guestCore, MiB, mergeModel, putDesc, segmentsOf } from './prp-helpers';

describe('SGL descriptor encoding', () => {
  it('encodes address, length and identifier little-endian with zero reserved bytes', () => {
    const b = encodeSglDescriptor({ addr: 0x1_2345_6789n, length: 0x1000, type: 'lastSegment' });
    expect(Array.from(b)).toEqual([0x89, 0x67, 0x45, 0x23, 1, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0x30]);
    expect(decodeSglDescriptor(b)).toEqual({ addr: 0x1_2345_6789n, length: 0x1000, id: 0x30, type: 'lastSegment' });
    expect(decodeSglDescriptor(encodeSglDescriptor({ addr: 0, length: 1, id: 0x5a })).type).toBe('type0x5');
  });
});

describe.each(ENGINES)('SGL build and walk (%s)', (engine) => {
  const c = guestCore(engine);

  it('one segment: a Data Block inline in SGL1, no list page used', () => {
    const b = buildSgl(c, { segments: [{ addr: 0x12345, len: 777 }], listPages: [0x10000] });
    expect(b.sgl1).toEqual({ addr: 0x12345n, length: 777, id: 0x00, type: 'data' });
    expect(b.listPages).toEqual([]);
    expect(segmentsOf(walkSgl(c, { sgl1: b.sgl1Bytes, length: 777 }))).toEqual([{ addr: 0x12345, len: 777 }]);
    // A longer Data Block than the transfer maps only the transfer (QEMU: min of both).
    expect(segmentsOf(walkSgl(c, { sgl1: b.sgl1Bytes, length: 700 }))).toEqual([{ addr: 0x12345, len: 700 }]);
  });

  it('several segments: SGL1 is a Last Segment over one descriptor array', () => {
    const segs = [{ addr: 0x20001, len: 3 }, { addr: 0x30000, len: 5000 }, { addr: 0x7, len: 9 }];
    const b = buildSgl(c, { segments: segs, listPages: [0x10000, 0x11000] });
    expect(b.sgl1).toMatchObject({ addr: 0x10000n, length: 48, type: 'lastSegment' });
    expect(b.listPages).toEqual([0x10000n]);
    expect(getU64(c, 0x10000, 6)).toEqual([0x20001n, 3n | (0n << 56n), 0x30000n, 5000n, 0x7n, 9n]);
    expect(segmentsOf(walkSgl(c, { sgl1: b.sgl1Bytes, length: 5012, merge: false }))).toEqual(segs);
  });

  it('exact fit: 256 descriptors fill a 4 KiB page as data; 257 chain through a Last Segment', () => {
    const segs = Array.from({ length: 257 }, (_, i) => ({ addr: 0x100000 + 32 * i, len: 16 }));
    const fit = buildSgl(c, { segments: segs.slice(0, 256), listPages: [0x10000, 0x11000] });
    expect(fit.sgl1).toMatchObject({ addr: 0x10000n, length: 4096, type: 'lastSegment' });
    expect(fit.listPages).toEqual([0x10000n]);
    expect(segmentsOf(walkSgl(c, { sgl1: fit.sgl1Bytes, length: 256 * 16 }))).toEqual(segs.slice(0, 256));
    const chained = buildSgl(c, { segments: segs, listPages: [0x10000, 0x11000] });
    expect(chained.sgl1).toMatchObject({ addr: 0x10000n, length: 4096, type: 'segment' });
    expect(chained.listPages).toEqual([0x10000n, 0x11000n]);
    // Slot 255 of the first page: a Last Segment of 2 descriptors at the second page.
    const dv = new DataView(c.u8.buffer, c.guestBase);
    expect([dv.getUint32(0x10000 + 255 * 16, true), dv.getUint32(0x10000 + 255 * 16 + 8, true), c.u8[c.guestBase + 0x10000 + 255 * 16 + 15]]).toEqual([0x11000, 32, 0x30]);
    expect(segmentsOf(walkSgl(c, { sgl1: chained.sgl1Bytes, length: 257 * 16 }))).toEqual(segs);
  });

  it('a first pool page with an offset holds fewer descriptors; three pages chain Segment -> Segment -> Last', () => {
    // 16 slots after offset 0xF00 (15 data + pointer), 255 + pointer, then exactly 256: 526.
    const segs = Array.from({ length: 526 }, (_, i) => ({ addr: 0x200000 + 64 * i, len: 48 }));
    const b = buildSgl(c, { segments: segs, listPages: [0x10f00, 0x11000, 0x12000, 0x13000] });
    expect(b.sgl1).toMatchObject({ addr: 0x10f00n, length: 256, type: 'segment' }); // 16 slots after 0xF00
    expect(b.listPages).toEqual([0x10f00n, 0x11000n, 0x12000n]);
    expect(c.u8[c.guestBase + 0x10f00 + 15 * 16 + 15]).toBe(0x20);
    expect(c.u8[c.guestBase + 0x11000 + 255 * 16 + 15]).toBe(0x30);
    expect(new DataView(c.u8.buffer, c.guestBase).getUint32(0x11000 + 255 * 16 + 8, true)).toBe(4096);
    expect(segmentsOf(walkSgl(c, { sgl1: b.sgl1Bytes, length: 526 * 48, merge: false }))).toEqual(segs);
  });

  it('walks a hand-made chain with zero-length descriptors skipped and contiguous data merged', () => {
    putDesc(c, 0x40000, 0x50000, 100, 0x00);
    putDesc(c, 0x40010, 0x99999, 0, 0x00); // zero length: skipped
    putDesc(c, 0x40020, 0x41000, 32, 0x30); // -> Last Segment of 2
    putDesc(c, 0x41000, 0x50064, 28, 0x00); // contiguous with the first
    putDesc(c, 0x41010, 0x0, 8, 0x00); // address 0 is an address
    const sgl1 = encodeSglDescriptor({ addr: 0x40000, length: 48, type: 'segment' });
    expect(segmentsOf(walkSgl(c, { sgl1, length: 136 }))).toEqual([{ addr: 0x50000, len: 128 }, { addr: 0, len: 8 }]);
    expect(segmentsOf(walkSgl(c, { sgl1, length: 136, merge: false }))).toEqual([{ addr: 0x50000, len: 100 }, { addr: 0x50064, len: 28 }, { addr: 0, len: 8 }]);
  });

  it('batch forms build and walk several SGLs in one call each', () => {
    const transfers: Segment[][] = [[{ addr: 0x1000, len: 10 }], [{ addr: 0x2000, len: 20 }, { addr: 0x3000, len: 30 }], [], [{ addr: 0x5000, len: 1 }, { addr: 0x5001, len: 2 }]];
    const builds = new NvmeBuildBatch(c, { format: 'sgl', capacity: 4, listPages: [0x60000, 0x61000, 0x62000] });
    transfers.forEach((t) => builds.add(t));
    expect(builds.run()).toBe(2);
    const walks = new NvmeWalkBatch(c, { format: 'sgl', capacity: 4 });
    transfers.forEach((_, i) => walks.addSgl(builds.result(i).dptr, builds.result(i).length));
    expect(walks.run()).toBe(4);
    transfers.forEach((t, i) => {
      expect(walks.status(i)).toBeNull();
      expect(walks.segments(i)).toEqual(mergeModel(t));
    });
  });
});

describe.each(ENGINES)('SGL build -> walk round trip (%s)', (engine) => {
  const c = guestCore(engine, 8 * MiB);
  const segArb = fc.record({ addr: fc.integer({ min: 2 * MiB, max: 8 * MiB - 70000 }), len: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 65536 })) });
  const arb = fc.record({
    segs: fc.oneof(fc.array(segArb, { maxLength: 8 }), fc.array(segArb, { minLength: 250, maxLength: 700 })),
    mps: fc.constantFrom(4096, 8192),
    firstOffset: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 254 }).map((k) => 16 * k)),
    merge: fc.boolean(),
  });

  it('walking what buildSgl wrote gives the segments back (merged when asked)', () => {
    check(fc.property(arb, ({ segs, mps, firstOffset, merge }) => {
      const pool = [0x100000 + firstOffset, ...[1, 2, 3, 4].map((j) => 0x100000 + j * mps)];
      const b = buildSgl(c, { segments: segs, listPages: pool, mps });
      const length = segs.reduce((n, s) => n + s.len, 0);
      expect(b.length).toBe(length);
      if (segs.length <= 1) expect(b.sgl1.type).toBe('data');
      const r = walkSgl(c, { sgl1: b.sgl1Bytes, length, merge, maxMappings: 1024 });
      expect(segmentsOf(r)).toEqual(length === 0 ? [] : merge ? mergeModel(segs) : segs);
    }), 120);
  });
});
