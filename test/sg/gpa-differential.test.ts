// Differential properties: every page-list function of the Wasm engine against its reference
// twin, called directly (no façade) on identical, partly hostile memory images and arguments.
// Return values and every byte the functions may touch (segment list, PFN list, input bytes,
// output, result block, class bytes) must agree.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadCoreSync, type Core } from '../../src/index';
import { check, firstDiff } from '../util/fc';

const NSEG = 64;
const SRC = 2048;
const OUT = 2048;

interface Layout { segs: number; pfns: number; src: number; out: number; res: number; classes: number }

function layout(c: Core): Layout {
  return { segs: c.alloc(NSEG * 16, 8), pfns: c.alloc(NSEG * 8, 8), src: c.alloc(SRC, 8), out: c.alloc(OUT, 8), res: c.alloc(16, 8), classes: c.alloc(NSEG, 8) };
}

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
/** Guest addresses: near page boundaries, below and above 2^52, near 2^64. */
const addrArb = fc.oneof(
  { weight: 4, arbitrary: fc.record({ pfn: fc.bigInt({ min: 0n, max: 0x3ffn }), off: fc.constantFrom(0, 4, 0x10, 0xe00, 0xff0, 0xfff) }).map(({ pfn, off }) => pfn * 4096n + BigInt(off)) },
  { weight: 1, arbitrary: fc.bigInt({ min: (1n << 52n) - 0x10000n, max: (1n << 52n) + 0x10000n }) },
  { weight: 1, arbitrary: u64 },
);
const lenArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(0x10, 0x200, 0xe00, 0x1000, 0x2000, 0x3000) },
  { weight: 1, arbitrary: fc.constantFrom(0, 1, 0xfffff000, 0xffffffff) },
  { weight: 1, arbitrary: u32 },
);
/** A planted GPA range: clean, or hostile in its fields. */
const cleanRangeArb = fc.record({
  count: fc.integer({ min: 1, max: 0x4000 }),
  offset: fc.integer({ min: 0, max: 0xfff }),
  pfnDelta: fc.constant(0),
  pfns: fc.array(fc.bigInt({ min: 0n, max: 0x1000n }), { minLength: 8, maxLength: 8 }),
  contiguous: fc.boolean(),
});
const hostileRangeArb = fc.record({
  count: fc.oneof(fc.integer({ min: 0, max: 0x4000 }), fc.constantFrom(0, 0xfffff000, 0xffffffff), u32),
  offset: fc.oneof(fc.integer({ min: 0, max: 0xfff }), fc.constantFrom(0x1000, 0xffffffff)),
  pfnDelta: fc.integer({ min: -2, max: 2 }),
  pfns: fc.array(fc.oneof({ weight: 3, arbitrary: fc.bigInt({ min: 0n, max: 0x1000n }) }, { weight: 1, arbitrary: u64 }), { minLength: 8, maxLength: 8 }),
  contiguous: fc.boolean(),
});
const rangeArb = fc.oneof({ weight: 6, arbitrary: cleanRangeArb }, { weight: 1, arbitrary: hostileRangeArb });

/** A list legal under §4.7 for every prefix: unaligned head, whole pages, a short tail. */
const legalSegsArb = fc.record({ head: fc.integer({ min: 0, max: 0xfff }), pfns: fc.array(fc.bigInt({ min: 0n, max: 0xfffffn }), { minLength: NSEG, maxLength: NSEG }), tail: fc.integer({ min: 1, max: 0x1000 }) })
  .map(({ head, pfns, tail }) => pfns.map((p, i) => ({ addr: p * 4096n + BigInt(i === 0 ? head : 0), len: i === 0 ? 0x1000 - head : i === NSEG - 1 ? tail : 0x1000, flags: i })));
const wildSegsArb = fc.array(fc.record({ addr: addrArb, len: lenArb, flags: u32 }), { minLength: NSEG, maxLength: NSEG });

const imageArb = fc.record({
  segs: fc.oneof(legalSegsArb, wildSegsArb),
  pfns: fc.array(fc.oneof({ weight: 8, arbitrary: fc.bigInt({ min: 0n, max: 0xfffffn }) }, { weight: 1, arbitrary: u64 }), { minLength: NSEG, maxLength: NSEG }),
  ranges: fc.array(rangeArb, { maxLength: 8 }),
  noise: fc.uint8Array({ minLength: 64, maxLength: 64 }),
});

/** A pointer argument: usually the region, sometimes misaligned or past the end of memory. */
const ptrArb = fc.oneof({ weight: 30, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 7 }) }, { weight: 1, arbitrary: fc.constant(-1) });
const nArb = fc.oneof({ weight: 12, arbitrary: fc.integer({ min: 0, max: NSEG }) }, { weight: 1, arbitrary: fc.constantFrom(NSEG + 1, 0x7ffffff, 0xffffffff) });
/** A cap: fixed, or (negative) "the size the first call reported needing, minus k" to hit every boundary. */
const capArb = fc.oneof({ weight: 3, arbitrary: fc.constant(OUT) }, { weight: 2, arbitrary: fc.integer({ min: 0, max: OUT }) }, { weight: 1, arbitrary: fc.constant(OUT + 1) },
  { weight: 3, arbitrary: fc.oneof(fc.constantFrom(-1, -2, -8, -9, -16, -17, -25), fc.integer({ min: -40, max: -1 })) });
const pageSizeArb = fc.oneof({ weight: 8, arbitrary: fc.constantFrom(4096, 8192, 65536, 1 << 27) }, { weight: 1, arbitrary: fc.constantFrom(0, 2048, 4097, 1 << 28) });

const opArb = fc.oneof(
  fc.record({ op: fc.constant('classify' as const), n: nArb, pageSize: pageSizeArb, rule: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(0, 1) }, { weight: 1, arbitrary: fc.constant(2) }), segsAt: ptrArb, clsAt: ptrArb }),
  fc.record({ op: fc.constantFrom('encode' as const, 'encodePages' as const), n: nArb, cap: capArb, segsAt: ptrArb, outAt: ptrArb, resAt: ptrArb }),
  fc.record({ op: fc.constant('encodeMulti' as const), n: nArb, mode: fc.constantFrom(0, 1, 0, 1, 2), cap: capArb, segsAt: ptrArb, outAt: ptrArb }),
  fc.record({ op: fc.constant('encodeRange' as const), byteOffset: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 0xfff }) }, { weight: 1, arbitrary: u32 }),
    byteCount: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 0x40000 }) }, { weight: 1, arbitrary: u32 }),
    npfnDelta: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -2, max: 2 }) }), cap: capArb, pfnsAt: ptrArb }),
  fc.record({ op: fc.constant('decode' as const), len: fc.oneof(fc.constant(SRC), fc.integer({ min: 0, max: SRC })), rangeDelta: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: -3, max: 3 }) }, { weight: 1, arbitrary: u32 }),
    flags: fc.constantFrom(0, 1, 0, 1, 2), cap: fc.oneof(fc.constant(OUT / 16), fc.integer({ min: 0, max: OUT / 16 })), srcAt: ptrArb, outAt: ptrArb }),
);

type Image = typeof imageArb extends fc.Arbitrary<infer T> ? T : never;
type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

/** Plants the image; returns the range count of the planted GPA ranges. */
function plant(c: Core, l: Layout, img: Image): number {
  const u8 = c.u8;
  const dv = c.dv;
  img.segs.forEach((s, i) => {
    dv.setBigUint64(l.segs + 16 * i, s.addr, true);
    dv.setUint32(l.segs + 16 * i + 8, s.len, true);
    dv.setUint32(l.segs + 16 * i + 12, s.flags, true);
  });
  img.pfns.forEach((p, i) => dv.setBigUint64(l.pfns + 8 * i, p, true));
  for (let i = 0; i < SRC; i++) u8[l.src + i] = img.noise[i % 64]! ^ (i >> 6);
  let at = 0;
  for (const r of img.ranges) {
    const pages = Math.max(0, Math.min(8, Math.ceil(((r.offset & 0xfff) + (r.count % 0x8000)) / 4096) + r.pfnDelta));
    if (at + 8 + 8 * pages > SRC) break;
    dv.setUint32(l.src + at, r.count, true);
    dv.setUint32(l.src + at + 4, r.offset, true);
    for (let k = 0; k < pages; k++) dv.setBigUint64(l.src + at + 8 + 8 * k, r.contiguous ? r.pfns[0]! + BigInt(k) : r.pfns[k]!, true);
    at += 8 + 8 * pages;
  }
  u8.fill(0x5a, l.out, l.out + OUT);
  u8.fill(0xa5, l.res, l.res + 16);
  u8.fill(0x3c, l.classes, l.classes + NSEG);
  return img.ranges.length;
}

/** The region pointer, or a misaligned one, or one past the end of memory. */
const at = (c: Core, base: number, delta: number) => (delta < 0 ? c.byteLength - 4 : base + delta);

function run(c: Core, l: Layout, op: Op, ranges: number): number {
  if ('cap' in op && op.op !== 'decode' && op.cap < 0) {
    // Learn the size the image needs, then call again with that size minus 0..39 bytes.
    const st = call(c, l, { ...op, cap: OUT }, ranges);
    const needed = c.u32[(l.res >> 2) + 1]!;
    c.u8.fill(0x5a, l.out, l.out + OUT); // so the second call's (partial) writes show
    return st < 0 && st !== -2 ? st : call(c, l, { ...op, cap: Math.max(0, Math.min(OUT, needed + op.cap + 1)) }, ranges);
  }
  return call(c, l, op, ranges);
}

function call(c: Core, l: Layout, op: Op, ranges: number): number {
  const f = c.fn;
  switch (op.op) {
    case 'classify':
      return f.pageListClassify(at(c, l.segs, op.segsAt), op.n, op.pageSize, op.rule, at(c, l.classes, op.clsAt));
    case 'encode':
      return f.gpaEncode(at(c, l.segs, op.segsAt), op.n, at(c, l.out, op.outAt), op.cap, at(c, l.res, op.resAt));
    case 'encodePages':
      return f.gpaEncodePages(at(c, l.segs, op.segsAt), op.n, at(c, l.out, op.outAt), op.cap, at(c, l.res, op.resAt));
    case 'encodeMulti':
      return f.gpaEncodeMulti(at(c, l.segs, op.segsAt), op.n, op.mode, at(c, l.out, op.outAt), op.cap, l.res);
    case 'encodeRange': {
      const need = Math.ceil(((op.byteOffset % 0x1000) + (op.byteCount % 0x40001)) / 4096);
      const npfn = Math.max(0, Math.min(NSEG, need + op.npfnDelta));
      return f.gpaEncodeRange(op.byteOffset, op.byteCount, at(c, l.pfns, op.pfnsAt), npfn, l.out, op.cap, l.res);
    }
    case 'decode':
      return f.gpaDecode(at(c, l.src, op.srcAt), op.len, (ranges + op.rangeDelta) >>> 0, op.flags, at(c, l.out, op.outAt), op.cap, l.res);
  }
}

describe('differential: wasm engine == reference engine on hostile page-list images', () => {
  it('every page-list function returns the same status and leaves the same bytes', () => {
    const cores = [loadCoreSync({ engine: 'wasm' }), loadCoreSync({ engine: 'reference' })];
    const layouts = cores.map(layout);
    expect(layouts[0]).toEqual(layouts[1]);
    expect(cores[0]!.byteLength).toBe(cores[1]!.byteLength);
    const l = layouts[0]!;
    const regions = [[l.segs, NSEG * 16], [l.pfns, NSEG * 8], [l.src, SRC], [l.out, OUT], [l.res, 16], [l.classes, NSEG]] as const;
    const seen = new Set<number>();
    check(
      fc.property(imageArb, fc.array(opArb, { minLength: 1, maxLength: 6 }), (img, ops) => {
        const counts = cores.map((c) => plant(c, l, img));
        ops.forEach((op, step) => {
          const [a, b] = cores.map((c, i) => run(c, l, op, counts[i]!));
          seen.add(a!);
          expect(a, `step ${step} ${JSON.stringify(op)}: status`).toBe(b);
          for (const [ptr, len] of regions) {
            const d = firstDiff(cores[0]!.view(ptr, len), cores[1]!.view(ptr, len));
            expect(d, `step ${step} ${JSON.stringify(op)}: bytes differ at +${d} of region ${ptr}`).toBe(-1);
          }
        });
      }),
      500,
    );
    // The images reach every status of the module, not only the easy ones.
    for (const st of [-1, -2, -20, -21, -22, -23, -24, -25, -26, -27]) expect(seen.has(st), `status ${st} reached`).toBe(true);
  });
});
