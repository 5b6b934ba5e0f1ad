// The batch classifier against a plain restatement of the §4.7 rule table (BigInt, one segment
// at a time), on raw 64-bit segment entries (addresses up to 2^64, so the overflow bit is
// reachable), both rules and several page sizes, on both engines.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { constants as K } from '../../src/index';
import { core, ENGINES } from '../util/engines';
import { check } from '../util/fc';

interface RawSeg { addr: bigint; len: number }

/** The class byte the table in spec §4.7 (plus the NVMe PRP dword rule) gives one segment. */
function modelClass(s: RawSeg, i: number, n: number, pageSize: number, nvme: boolean): number {
  const P = BigInt(pageSize);
  const first = i === 0;
  const last = i === n - 1;
  const pos = first && last ? K.CLS_ONLY : first ? K.CLS_FIRST : last ? K.CLS_LAST : K.CLS_MIDDLE;
  const end = s.addr + BigInt(s.len);
  const startsAtZero = s.addr % P === 0n;
  const endsAtPageEnd = end % P === 0n;
  const empty = s.len === 0;
  const overflow = end > 1n << 64n;
  const odd = s.addr % 4n !== 0n;
  const violation = empty || overflow ||
    (!first && !startsAtZero) || // every segment but the first starts at offset 0
    (!last && !endsAtPageEnd) || // every segment but the last runs to its page end
    (nvme && first && odd); // PRP1 is dword aligned
  return pos | (startsAtZero ? K.CLS_START_ALIGNED : 0) | (endsAtPageEnd ? K.CLS_END_ALIGNED : 0) | (violation ? K.CLS_VIOLATION : 0) |
    (empty ? K.CLS_EMPTY : 0) | (odd ? K.CLS_DWORD_MISALIGNED : 0) | (overflow ? K.CLS_OVERFLOW : 0);
}

const PAGE_SIZES = [4096, 8192, 65536, 1 << 27];
const U64 = (1n << 64n) - 1n;

/** Addresses on and near page boundaries of every supported size, and near 2^64. */
const addrArb = fc.oneof(
  fc.record({ page: fc.bigInt({ min: 0n, max: 1n << 20n }), off: fc.constantFrom(0, 1, 2, 4, 0x100, 0xe00, 0xffc, 0xfff) })
    .map(({ page, off }) => page * 4096n + BigInt(off)),
  fc.record({ page: fc.bigInt({ min: 0n, max: 64n }), off: fc.integer({ min: 0, max: (1 << 27) - 1 }) }).map(({ page, off }) => page * BigInt(1 << 27) + BigInt(off)),
  fc.bigInt({ min: 0n, max: U64 }),
  fc.integer({ min: 0, max: 0x3000 }).map((d) => (1n << 64n) - BigInt(d)).filter((a) => a <= U64),
);
const lenArb = fc.oneof(
  fc.constantFrom(0, 1, 4, 0x100, 0xe00, 0x1000, 0x2000, 0x10000, 1 << 27, 0xffffffff),
  fc.integer({ min: 0, max: 0xffffffff }),
  fc.integer({ min: 1, max: 8 }).map((k) => k * 4096),
);
/** Legal-ish lists (built from page runs) and wild ones. */
const listArb = fc.oneof(
  fc.array(fc.record({ addr: addrArb, len: lenArb }), { maxLength: 40 }),
  fc.record({ pageSize: fc.constantFrom(...PAGE_SIZES), pages: fc.array(fc.bigInt({ min: 0n, max: 1n << 30n }), { minLength: 1, maxLength: 40 }), head: fc.integer({ min: 0, max: 4095 }), tail: fc.integer({ min: 1, max: 4096 }) })
    .map(({ pageSize, pages, head, tail }) => pages.map((p, i): RawSeg => {
      const P = BigInt(pageSize);
      const start = i === 0 ? BigInt(head) : 0n;
      const len = (i === pages.length - 1 ? Math.min(tail, pageSize) : pageSize) - Number(start);
      return { addr: p * P + start, len: Math.max(len, 1) };
    })),
);

describe.each(ENGINES)('classifier against the rule-table model (%s)', (engine) => {
  it('class bytes and the first violation match the model for every rule and page size', () => {
    const c = core(engine);
    const segs = c.alloc(40 * 16, 8);
    const classes = c.alloc(40, 8);
    check(fc.property(listArb, fc.constantFrom(...PAGE_SIZES), fc.boolean(), (list, pageSize, nvme) => {
      const dv = c.dv;
      list.forEach((s, i) => {
        dv.setBigUint64(segs + 16 * i, s.addr, true);
        dv.setUint32(segs + 16 * i + 8, s.len, true);
        dv.setUint32(segs + 16 * i + 12, 0xdeadbeef, true); // flags are ignored
      });
      c.u8.fill(0xcc, classes, classes + 40);
      const got = c.fn.pageListClassify(segs, list.length, pageSize, nvme ? K.PL_RULE_NVME_PRP : K.PL_RULE_HYPERV, classes);
      const want = list.map((s, i) => modelClass(s, i, list.length, pageSize, nvme));
      expect(Array.from(c.u8.subarray(classes, classes + list.length))).toEqual(want);
      const first = want.findIndex((cls) => (cls & K.CLS_VIOLATION) !== 0);
      expect(got).toBe(first < 0 ? list.length : first);
      // Nothing past the n class bytes is written.
      expect(Array.from(c.u8.subarray(classes + list.length, classes + 40))).toEqual(new Array(40 - list.length).fill(0xcc));
    }), 500);
  });

  it('an end of exactly 2^64 is not an overflow; one byte more is', () => {
    const c = core(engine);
    const segs = c.alloc(16, 8);
    const classes = c.alloc(8, 8);
    c.dv.setBigUint64(segs, U64 - 0xfffn, true);
    c.dv.setUint32(segs + 8, 0x1000, true);
    expect(c.fn.pageListClassify(segs, 1, 4096, 0, classes)).toBe(1);
    expect(c.u8[classes]).toBe(K.CLS_ONLY | K.CLS_START_ALIGNED | K.CLS_END_ALIGNED);
    c.dv.setUint32(segs + 8, 0x1001, true);
    expect(c.fn.pageListClassify(segs, 1, 4096, 0, classes)).toBe(0);
    expect(c.u8[classes]! & K.CLS_OVERFLOW).toBe(K.CLS_OVERFLOW);
  });
});
