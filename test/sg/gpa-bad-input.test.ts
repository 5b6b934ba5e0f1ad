// Hostile GPA ranges (spec/hardening.md §3.2 items 14-15, §1.6 O2: OpenVMM gparange) and the
// unaligned head/tail case of §3.4 item 33. Every refusal is behaviour E: a typed SgringError
// naming the range and its byte offset, nothing emitted, nothing broken (broken = false).
import { describe, expect, it } from 'vitest';
import { constants as K, decodeGpaRanges, encodeGpaPageList, encodeGpaRange, encodeGpaRanges, type Core } from '../../src/index';
import { core, ENGINES } from '../util/engines';
import { expectCode } from '../util/errors';

/** Builds a range image from raw u32/u64 fields (no validation: the point is hostile input). */
function image(ranges: { count: number; offset: number; pfns: (number | bigint)[] }[]): Uint8Array {
  const parts: number[] = [];
  const dv = new DataView(new ArrayBuffer(8));
  for (const r of ranges) {
    dv.setUint32(0, r.count >>> 0, true);
    dv.setUint32(4, r.offset >>> 0, true);
    parts.push(...new Uint8Array(dv.buffer));
    for (const p of r.pfns) {
      dv.setBigUint64(0, BigInt(p), true);
      parts.push(...new Uint8Array(dv.buffer));
    }
  }
  return Uint8Array.from(parts);
}

/** Engine-level decode into a 64-entry segment list; returns status and the result block. */
function rawDecode(c: Core, bytes: Uint8Array, rangeCount: number) {
  const src = c.alloc(Math.max(8, bytes.length), 8);
  const out = c.alloc(64 * 16, 8);
  const res = c.alloc(16, 8);
  c.u8.set(bytes, src);
  const st = c.fn.gpaDecode(src, bytes.length, rangeCount, 0, out, 64, res);
  const r = c.u32.slice(res >> 2, (res >> 2) + 4);
  return { st, index: r[0], bytes: r[1], count: r[2], detail: r[3] };
}

const ok = { count: 0x1000, offset: 0, pfns: [0x10] };

describe.each(ENGINES)('GPA range bad input (%s)', (engine) => {
  it('[H14] range_count = 0 is refused (GpaRangeCountZero), even with valid ranges present', () => {
    const c = core(engine);
    expectCode(() => decodeGpaRanges(c, image([ok]), 0), 'GpaRangeCountZero');
    expect(rawDecode(c, image([ok]), 0).st).toBe(K.E_GpaRangeCountZero);
  });

  it('[H14] a range_count implying more ranges than the bytes hold is refused (GpaRangeTooSmall) at the missing range', () => {
    const c = core(engine);
    const e = expectCode(() => decodeGpaRanges(c, image([ok, ok]), 3), 'GpaRangeTooSmall');
    expect(e.details).toMatchObject({ range: 2, offset: 32 });
    // A header cut in half: 4 bytes where 8 are needed.
    expectCode(() => decodeGpaRanges(c, image([ok, ok]).subarray(0, 20), 2), 'GpaRangeTooSmall');
    // A huge count ends after the bytes, not after 2^32 rounds (hardening P4).
    expect(rawDecode(c, image([ok, ok, ok]), 0xffffffff)).toMatchObject({ st: K.E_GpaRangeTooSmall, index: 3, bytes: 48 });
  });

  it('[H14] a byte_count implying more PFNs than present is refused (GpaRangeTooSmall, detail = PFNs needed)', () => {
    const c = core(engine);
    const bad = image([{ count: 0x2001, offset: 0, pfns: [1, 2] }]); // needs 3 PFNs
    expect(rawDecode(c, bad, 1)).toMatchObject({ st: K.E_GpaRangeTooSmall, index: 0, bytes: 0, detail: 3 });
    expectCode(() => decodeGpaRanges(c, bad, 1), 'GpaRangeTooSmall');
    // The offset counts too: 0x1000 bytes from offset 0x10 touch two pages.
    expectCode(() => decodeGpaRanges(c, image([{ count: 0x1000, offset: 0x10, pfns: [1] }]), 1), 'GpaRangeTooSmall');
    // In a later range, the error names that range and where it starts.
    expect(rawDecode(c, image([ok, { count: 0x1001, offset: 0, pfns: [7] }]), 2)).toMatchObject({ index: 1, bytes: 16 });
  });

  it('[H15] byte_count = 0 is refused (GpaEmptyByteCount)', () => {
    const c = core(engine);
    expectCode(() => decodeGpaRanges(c, image([{ count: 0, offset: 0, pfns: [1] }]), 1), 'GpaEmptyByteCount');
    expect(rawDecode(c, image([ok, { count: 0, offset: 5, pfns: [1] }]), 2)).toMatchObject({ st: K.E_GpaEmptyByteCount, index: 1, bytes: 16 });
  });

  it('[H15] byte_offset above 0xFFF is refused (GpaOffsetTooLarge; OpenVMM large_offset); 0xFFF is fine', () => {
    const c = core(engine);
    for (const offset of [0x1000, 0x1fff, 0xffffffff]) {
      expectCode(() => decodeGpaRanges(c, image([{ count: 1, offset, pfns: [0xdeadbeef] }]), 1), 'GpaOffsetTooLarge');
    }
    const d = decodeGpaRanges(c, image([{ count: 1, offset: 0xfff, pfns: [0x22] }]), 1);
    expect(d.segments).toEqual([{ addr: 0x22fff, len: 1, range: 0 }]);
  });

  it('[H15] byte_offset + byte_count (+4095) overflowing 32 bits is refused (GpaOverflow); the largest legal count decodes', () => {
    const c = core(engine);
    for (const [count, offset] of [[0xffffffff, 0], [0xfffff001, 0], [0xffffe002, 0xfff]]) {
      expect(rawDecode(c, image([{ count, offset, pfns: [1] }]), 1).st).toBe(K.E_GpaOverflow);
    }
    // count = 0xFFFFF000 - offset is the boundary: ceil(0xFFFFF000 / 4096) = 2^20 - 1 contiguous PFNs.
    const pages = 0xfffff;
    const big = new Uint8Array(8 + 8 * pages);
    const dv = new DataView(big.buffer);
    dv.setUint32(0, 0xffffe001, true);
    dv.setUint32(4, 0xfff, true);
    for (let i = 0; i < pages; i++) dv.setUint32(8 + 8 * i, 0x1000 + i, true);
    const src = c.alloc(big.length, 8);
    const out = c.alloc(16, 8);
    const res = c.alloc(16, 8);
    c.u8.set(big, src);
    expect(c.fn.gpaDecode(src, big.length, 1, 0, out, 1, res)).toBe(1);
    expect(c.u32[(out >> 2) + 2]).toBe(0xffffe001);
    expect(c.u32[(res >> 2) + 1]).toBe(big.length);
  });

  it('[H15] a PFN at or above 2^40 (PFN*4096 past 52 bits, or past 2^64) is refused (GpaPfnTooLarge, naming the PFN)', () => {
    const c = core(engine);
    for (const pfn of [1n << 40n, (1n << 52n) - 1n, 1n << 52n, 0xffffffffffffffffn]) {
      const bad = image([ok, { count: 0x1800, offset: 0, pfns: [5, pfn] }]);
      expect(rawDecode(c, bad, 2)).toMatchObject({ st: K.E_GpaPfnTooLarge, index: 1, bytes: 16, detail: 1 });
      expectCode(() => decodeGpaRanges(c, bad, 2), 'GpaPfnTooLarge');
    }
    const top = decodeGpaRanges(c, image([{ count: 0x1000, offset: 0, pfns: [2 ** 40 - 1] }]), 1);
    expect(top.segments[0]!.addr).toBe(2 ** 52 - 4096);
    expect(Number.isSafeInteger(top.segments[0]!.addr + top.segments[0]!.len)).toBe(true);
  });

  it('[H15] the encoders refuse to build what a host must refuse', () => {
    const c = core(engine);
    expectCode(() => encodeGpaRange(c, { byteCount: 0, byteOffset: 0, pfns: [] }), 'GpaEmptyByteCount');
    expectCode(() => encodeGpaRange(c, { byteCount: 1, byteOffset: 0x1000, pfns: [1] }), 'GpaOffsetTooLarge');
    expectCode(() => encodeGpaRange(c, { byteCount: 0xfffff001, byteOffset: 0, pfns: [1] }), 'GpaOverflow');
    const e = expectCode(() => encodeGpaRange(c, { byteCount: 0x1001, byteOffset: 0, pfns: [1] }), 'GpaPfnCountMismatch');
    expect(e.details?.pfnsRequired).toBe(2);
    expectCode(() => encodeGpaRange(c, { byteCount: 0x1000, byteOffset: 0, pfns: [1, 2] }), 'GpaPfnCountMismatch');
    expectCode(() => encodeGpaRange(c, { byteCount: 8, byteOffset: 0, pfns: [2 ** 40] }), 'GpaPfnTooLarge');
    expectCode(() => encodeGpaRange(c, []), 'GpaEmptyByteCount');
    expectCode(() => encodeGpaPageList(c, []), 'GpaRangeCountZero');
    expectCode(() => encodeGpaRanges(c, [{ addr: 0x1000, len: 0x1000 }, { addr: 0x9000, len: 0 }]), 'GpaEmptyByteCount');
    expectCode(() => encodeGpaPageList(c, [{ addr: 2 ** 52 - 8, len: 16 }]), 'GpaPfnTooLarge');
    // Two 4 GiB-ish segments make one range too long for byte_count.
    expectCode(() => encodeGpaRange(c, [{ addr: 0, len: 0xfffff000 }, { addr: 0x100000000, len: 0x1000 }]), 'GpaOverflow');
  });

  it('[H33] an unaligned head and tail (a 64-byte header split across two pages) encode into exactly 2 PFNs; an exact buffer is not "too small"', () => {
    const c = core(engine);
    const split = [{ addr: 0x12345ff0, len: 0x10 }, { addr: 0x20000000, len: 0x30 }];
    const want = encodeGpaRange(c, split);
    expect(want.length).toBe(8 + 2 * 8);
    const ptr = c.alloc(32);
    expect(encodeGpaRange(c, split, { into: { ptr, len: 24 } }).length).toBe(24);
    const e = expectCode(() => encodeGpaRange(c, split, { into: { ptr, len: 23 } }), 'BufferTooSmall');
    expect(e.details?.needed).toBe(24);
    const d = decodeGpaRanges(c, want, 1);
    expect(d.ranges).toEqual([{ byteCount: 0x40, byteOffset: 0xff0, pfns: [0x12345, 0x20000] }]);
    expect(d.segments).toEqual([{ addr: 0x12345ff0, len: 0x10, range: 0 }, { addr: 0x20000000, len: 0x30, range: 0 }]);
  });

  it('[H33] a head that ends at the page end needs no extra PFN; a spare PFN after the range is not consumed', () => {
    const c = core(engine);
    const img = image([{ count: 0x1200, offset: 0xe00, pfns: [0x40, 0x41, 0x99] }]);
    const d = decodeGpaRanges(c, img, 1);
    expect(d.bytes).toBe(8 + 2 * 8);
    expect(d.segments).toEqual([{ addr: 0x40e00, len: 0x1200, range: 0 }]);
    expect(encodeGpaRange(c, [{ addr: 0x40e00, len: 0x200 }, { addr: 0x41000, len: 0x1000 }]).length).toBe(24);
  });

  it('[H33] the page list and the multi-range form split an unaligned head and tail without refusing them', () => {
    const c = core(engine);
    const split = [{ addr: 0x7ff8, len: 0x10 }, { addr: 0x9004, len: 0x20 }];
    const pl = encodeGpaPageList(c, split);
    expect(pl.rangeCount).toBe(3);
    expect(decodeGpaRanges(c, pl.bytes, 3).segments.map(({ addr, len }) => [addr, len])).toEqual([[0x7ff8, 8], [0x8000, 8], [0x9004, 0x20]]);
    const mr = encodeGpaRanges(c, split);
    expect(mr.rangeCount).toBe(2);
    expect(decodeGpaRanges(c, mr.bytes, 2).segments.map(({ addr, len }) => [addr, len])).toEqual([[0x7ff8, 0x10], [0x9004, 0x20]]);
  });

  it('an image larger than one GPA-direct packet can carry is BufferTooSmall with its size; `into` writes it anyway', () => {
    const c = core(engine);
    const huge = [{ addr: 0x100000000, len: 0xfffff000 }]; // 2^20 - 1 pages: an 8 MiB image
    const e = expectCode(() => encodeGpaRange(c, huge), 'BufferTooSmall');
    expect(e.details?.needed).toBe(8 + 8 * 0xfffff);
    const ptr = c.alloc(8 + 8 * 0xfffff, 8);
    const img = encodeGpaRange(c, huge, { into: { ptr, len: 8 + 8 * 0xfffff } });
    expect(img.length).toBe(8 + 8 * 0xfffff);
    expect(new DataView(img.buffer, img.byteOffset).getUint32(8 + 8 * 0xffffe, true)).toBe(0x100000 + 0xffffe);
  });

  it('engine: bad pointers, misaligned lists and unknown flags are InvalidArgument, with nothing written', () => {
    const c = core(engine);
    const segs = c.alloc(64, 8);
    const out = c.alloc(64, 8);
    const res = c.alloc(16, 8);
    const size = c.byteLength;
    c.u32[(segs >> 2) + 2] = 8;
    c.u8.fill(0xaa, res, res + 16);
    for (const st of [
      c.fn.gpaEncode(segs + 4, 1, out, 64, res), c.fn.gpaEncode(segs, 1, size - 8, 64, res), c.fn.gpaEncode(segs, 1, out, 64, res + 2),
      c.fn.gpaEncode(segs, 1, out, 64, size), c.fn.gpaEncodePages(segs, 0x8000000, out, 64, res), c.fn.gpaEncodeMulti(segs, 1, 2, out, 64, res),
      c.fn.gpaEncodeRange(0, 8, segs + 4, 1, out, 64, res), c.fn.gpaDecode(segs, 16, 1, 2, out, 4, res), c.fn.gpaDecode(segs, 16, 1, 0, out + 4, 4, res),
      c.fn.gpaDecode(size - 4, 16, 1, 0, out, 4, res), c.fn.gpaDecode(segs, 16, 1, 0, out, 4, -8),
    ]) expect(st).toBe(K.E_InvalidArgument);
    expect(Array.from(c.u8.subarray(res, res + 16))).toEqual(new Array(16).fill(0xaa));
  });
});
