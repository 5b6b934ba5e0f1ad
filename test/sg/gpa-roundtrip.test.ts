// Encode -> decode round trips (fast-check) through the façade, on both engines: every encoding
// of a segment list decodes back to the same bytes of guest memory, in the same order.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classifySegments, decodeGpaRanges, encodeGpaPageList, encodeGpaRange, encodeGpaRanges, SgringError } from '../../src/index';
import { core, ENGINES } from '../util/engines';
import { check } from '../util/fc';
import { anyListArb, legalListArb, mergeContiguous, PAGE, pieces } from './arbitraries';

const strip = (segs: { addr: number; len: number }[]) => segs.map(({ addr, len }) => ({ addr, len }));

describe.each(ENGINES)('GPA round trips (%s)', (engine) => {
  const c = core(engine);

  it('a legal list -> one range -> the same page pieces (perPage) and the same bytes merged', () => {
    check(fc.property(legalListArb, (list) => {
      const img = encodeGpaRange(c, list);
      const want = pieces(list);
      expect(img.length).toBe(8 + 8 * want.length);
      const perPage = decodeGpaRanges(c, img, 1, { perPage: true });
      expect(perPage.bytes).toBe(img.length);
      expect(perPage.segments).toEqual(want.map(({ addr, len }) => ({ addr, len, range: 0 })));
      const total = list.reduce((a, s) => a + s.len, 0);
      expect(perPage.ranges).toEqual([{ byteCount: total, byteOffset: list[0]!.addr % PAGE, pfns: want.map((p) => Math.floor(p.addr / PAGE)) }]);
      // N = ceil((byte_offset + byte_count) / 4096), spec §2.5.
      expect(want.length).toBe(Math.ceil(((list[0]!.addr % PAGE) + total) / PAGE));
      expect(strip(decodeGpaRanges(c, img, 1).segments)).toEqual(mergeContiguous(want));
      // The fields form encodes the same image.
      expect(Array.from(encodeGpaRange(c, perPage.ranges[0]!))).toEqual(Array.from(img));
    }));
  });

  it('any list -> single-page list -> one range per page piece, in order', () => {
    check(fc.property(anyListArb, (list) => {
      const { bytes, rangeCount } = encodeGpaPageList(c, list);
      const want = pieces(list);
      expect(rangeCount).toBe(want.length);
      expect(bytes.length).toBe(16 * want.length);
      const d = decodeGpaRanges(c, bytes, rangeCount);
      expect(d.segments).toEqual(want.map(({ addr, len }, range) => ({ addr, len, range })));
      expect(d.ranges.every((r) => r.pfns.length === 1)).toBe(true);
    }));
  });

  it('any list -> multi-range form (both modes) -> the same page pieces; merging gives one range exactly when the list is legal', () => {
    check(fc.property(fc.oneof(anyListArb, legalListArb), (list) => {
      const want = pieces(list);
      const per = encodeGpaRanges(c, list, { perSegment: true });
      expect(per.rangeCount).toBe(list.length);
      const dp = decodeGpaRanges(c, per.bytes, per.rangeCount, { perPage: true });
      expect(dp.segments).toEqual(want.map(({ addr, len, seg }) => ({ addr, len, range: seg })));
      const merged = encodeGpaRanges(c, list);
      expect(merged.rangeCount).toBeLessThanOrEqual(per.rangeCount);
      expect(strip(decodeGpaRanges(c, merged.bytes, merged.rangeCount, { perPage: true }).segments)).toEqual(strip(want));
      const legal = classifySegments(c, list).firstViolation === -1;
      expect(merged.rangeCount === 1).toBe(legal);
      if (legal) expect(Array.from(merged.bytes)).toEqual(Array.from(encodeGpaRange(c, list)));
    }));
  });

  it('the single-range encoder succeeds exactly when the classifier finds no violation, and fails at the same segment', () => {
    check(fc.property(fc.oneof(anyListArb, legalListArb), (list) => {
      const { firstViolation } = classifySegments(c, list);
      let got = -1;
      try {
        encodeGpaRange(c, list);
      } catch (e) {
        expect(e).toBeInstanceOf(SgringError);
        expect((e as SgringError).code).toBe('PageListRule');
        got = (e as SgringError).details!.segment as number;
      }
      expect(got).toBe(firstViolation);
    }));
  });

  it('decoding is a pure function of the bytes: a second decode of the same image is identical', () => {
    check(fc.property(legalListArb, (list) => {
      const img = encodeGpaRange(c, list);
      expect(decodeGpaRanges(c, img, 1)).toEqual(decodeGpaRanges(c, img.slice(), 1));
    }), 50);
  });
});
