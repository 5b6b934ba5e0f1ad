// spec/vmbus.md §2.5 worked example (storvsc read of 6656 bytes at offset 0xE00 of PFN 0x12345,
// then PFNs 0x20000 and 0x30000) in all three encodings, and its decode, on both engines.
import { describe, expect, it } from 'vitest';
import {
  decodeGpaRanges, encodeGpaPageList, encodeGpaRange, encodeGpaRanges, gpaDirectPacketSize,
} from '../../src/index';
import { core, ENGINES } from '../util/engines';

const SEGMENTS = [
  { addr: 0x12345e00, len: 0x200 },
  { addr: 0x20000000, len: 0x1000 },
  { addr: 0x30000000, len: 0x800 },
];
const RANGE = { byteCount: 6656, byteOffset: 0xe00, pfns: [0x12345, 0x20000, 0x30000] };

const le32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
const le64 = (v: number) => [...le32(v % 2 ** 32), ...le32(Math.floor(v / 2 ** 32))];
const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');

// { byte_count 0x1A00, byte_offset 0xE00, pfn[3] }: 8 + 3*8 = 32 bytes.
const IMAGE = Uint8Array.from([...le32(0x1a00), ...le32(0xe00), ...le64(0x12345), ...le64(0x20000), ...le64(0x30000)]);

describe.each(ENGINES)('spec §2.5 GPA range example (%s)', (engine) => {
  it('encodes the segment list into { 0x1A00, 0xE00, [0x12345, 0x20000, 0x30000] }, byte for byte', () => {
    const c = core(engine);
    const img = encodeGpaRange(c, SEGMENTS);
    expect(hexOf(img)).toBe(hexOf(IMAGE));
    expect(img.length).toBe(32);
  });

  it('encodes the same image from byteOffset/byteCount/PFNs, and into a caller region', () => {
    const c = core(engine);
    expect(hexOf(encodeGpaRange(c, RANGE))).toBe(hexOf(IMAGE));
    const ptr = c.alloc(64);
    const view = encodeGpaRange(c, SEGMENTS, { into: { ptr, len: 64 } });
    expect(view.byteOffset).toBe(ptr);
    expect(hexOf(view)).toBe(hexOf(IMAGE));
    expect(hexOf(encodeGpaRange(c, RANGE, { into: { ptr: ptr + 8, len: 32 } }))).toBe(hexOf(IMAGE));
  });

  it('hlen arithmetic: 24 + 8 + 24 = 56 bytes (7 q-words); with a 64-byte vstor packet tlen = 15, ring use 128', () => {
    const c = core(engine);
    const img = encodeGpaRange(c, SEGMENTS);
    expect(24 + img.length).toBe(56);
    expect(gpaDirectPacketSize(img.length, 64)).toEqual({ hlen: 7, tlen: 15, ringBytes: 128 });
  });

  it('decodes back to the range and the three physical segments; 32 bytes consumed', () => {
    const c = core(engine);
    // The upper-protocol message follows the ranges: trailing bytes are not consumed.
    const packet = new Uint8Array(32 + 64).fill(0xee);
    packet.set(IMAGE);
    const d = decodeGpaRanges(c, packet, 1);
    expect(d.bytes).toBe(32);
    expect(d.ranges).toEqual([RANGE]);
    expect(d.segments).toEqual(SEGMENTS.map((s) => ({ ...s, range: 0 })));
    // From a region of core memory too.
    const ptr = c.alloc(packet.length);
    c.u8.set(packet, ptr);
    expect(decodeGpaRanges(c, { ptr, len: packet.length }, 1)).toEqual(d);
  });

  it('merges physically contiguous pages of one range unless perPage is asked for', () => {
    const c = core(engine);
    const img = encodeGpaRange(c, { byteCount: 0x2800, byteOffset: 0x800, pfns: [0x100, 0x101, 0x102] });
    expect(decodeGpaRanges(c, img, 1).segments).toEqual([{ addr: 0x100800, len: 0x2800, range: 0 }]);
    expect(decodeGpaRanges(c, img, 1, { perPage: true }).segments).toEqual([
      { addr: 0x100800, len: 0x800, range: 0 }, { addr: 0x101000, len: 0x1000, range: 0 }, { addr: 0x102000, len: 0x1000, range: 0 },
    ]);
  });

  it('single-page list: three 16-byte entries { len, offset, pfn } with range_count 3', () => {
    const c = core(engine);
    const { bytes, rangeCount } = encodeGpaPageList(c, SEGMENTS);
    expect(rangeCount).toBe(3);
    const want = Uint8Array.from([
      ...le32(0x200), ...le32(0xe00), ...le64(0x12345),
      ...le32(0x1000), ...le32(0), ...le64(0x20000),
      ...le32(0x800), ...le32(0), ...le64(0x30000),
    ]);
    expect(hexOf(bytes)).toBe(hexOf(want));
    expect(decodeGpaRanges(c, bytes, 3).segments).toEqual(SEGMENTS.map((s, i) => ({ ...s, range: i })));
  });

  it('single-page list cuts a segment that crosses page boundaries into one entry per page', () => {
    const c = core(engine);
    // 0x5FF0 .. 0x700F: the last 0x10 bytes of page 5, all of page 6, the first 0x10 of page 7.
    const { bytes, rangeCount } = encodeGpaPageList(c, [{ addr: 0x5ff0, len: 0x1020 }]);
    expect(rangeCount).toBe(3);
    const d = decodeGpaRanges(c, bytes, 3);
    expect(d.ranges).toEqual([
      { byteCount: 0x10, byteOffset: 0xff0, pfns: [0x5] },
      { byteCount: 0x1000, byteOffset: 0, pfns: [0x6] },
      { byteCount: 0x10, byteOffset: 0, pfns: [0x7] },
    ]);
    expect(d.segments).toEqual([
      { addr: 0x5ff0, len: 0x10, range: 0 }, { addr: 0x6000, len: 0x1000, range: 1 }, { addr: 0x7000, len: 0x10, range: 2 },
    ]);
  });

  it('multi-range form: one range for the legal list when merging, one per segment as netvsc builds', () => {
    const c = core(engine);
    const merged = encodeGpaRanges(c, SEGMENTS);
    expect(merged.rangeCount).toBe(1);
    expect(hexOf(merged.bytes)).toBe(hexOf(IMAGE));
    const per = encodeGpaRanges(c, SEGMENTS, { perSegment: true });
    expect(per.rangeCount).toBe(3);
    expect(per.bytes.length).toBe(3 * 16);
    const d = decodeGpaRanges(c, per.bytes, 3);
    expect(d.ranges).toEqual([
      { byteCount: 0x200, byteOffset: 0xe00, pfns: [0x12345] },
      { byteCount: 0x1000, byteOffset: 0, pfns: [0x20000] },
      { byteCount: 0x800, byteOffset: 0, pfns: [0x30000] },
    ]);
    expect(d.bytes).toBe(48);
  });
});
