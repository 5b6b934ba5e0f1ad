// Differential property: dmaCheck, dmaGather and dmaScatter of the Wasm engine against their
// reference twins, called directly on identical memory, with valid and hostile domain images,
// segment lists, lengths, generations and pointers (overlapping, misaligned, outside memory).
// Statuses and every byte below the allocation top (guest RAM, domain, list, result, buffer) agree.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { constants as K, loadCoreSync, type Core } from '../../src/index';
import { check, firstDiff } from '../util/fc';

const GUEST = 256 * 1024;
const PAGES = GUEST / 4096;
const BUF = 64 * 1024;
const MAX_SEGS = 12;

function rig() {
  const cores = [loadCoreSync({ engine: 'wasm', guestBytes: GUEST }), loadCoreSync({ engine: 'reference', guestBytes: GUEST })];
  const lay = cores.map((c) => ({
    dom: c.alloc(K.DOM_HEADER_SIZE + PAGES / 4, 8), segs: c.alloc(MAX_SEGS * 16, 8), res: c.alloc(16, 8), buf: c.alloc(BUF, 8),
    top: c.alloc(0, 8), size: c.byteLength,
  }));
  expect(lay[0]).toEqual(lay[1]);
  expect(cores[0]!.guestBase).toBe(cores[1]!.guestBase);
  return { cores, l: lay[0]! };
}

const u64Arb: fc.Arbitrary<bigint> = fc.oneof(
  { weight: 24, arbitrary: fc.integer({ min: 0, max: GUEST - 1 }).map(BigInt) },
  { weight: 2, arbitrary: fc.integer({ min: GUEST - 8192, max: GUEST + 8192 }).map(BigInt) },
  { weight: 1, arbitrary: fc.constantFrom(0n, 2n ** 52n, 2n ** 64n - 1n, 2n ** 64n - 4096n, 2n ** 32n) },
  { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) },
);
const segArb = fc.record({
  addr: u64Arb,
  len: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 3 * 4096 }) }, { weight: 1, arbitrary: fc.constantFrom(0, 1, 0xffffffff, 0x80000000) }),
});
const windowArb = fc.record({ start: u64Arb, len: fc.oneof(fc.integer({ min: 0, max: 3 * 4096 }).map(BigInt), fc.constantFrom(2n ** 64n - 1n, 2n ** 63n)) });
const domArb = fc.record({
  mode: fc.constantFrom(K.DOM_MODE_STRICT, K.DOM_MODE_STRICT, K.DOM_MODE_IDENTITY),
  table: fc.oneof(fc.constant('full'), fc.constant('random'), fc.constant('sparse')),
  tableWords: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: PAGES / 16, maxLength: PAGES / 16 }),
  pages: fc.oneof({ weight: 5, arbitrary: fc.constant(PAGES) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: PAGES }) }, { weight: 1, arbitrary: fc.constant(0xffffffff) }),
  windows: fc.oneof(fc.constant<{ start: bigint; len: bigint }[]>([]), fc.array(windowArb, { maxLength: 4 })),
  windowCount: fc.option(fc.integer({ min: 0, max: 6 }), { freq: 6 }),
  generation: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 0x7fffffff }).map((x) => (x * 2) >>> 0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }) }),
  corrupt: fc.option(fc.tuple(fc.nat(K.DOM_HEADER_SIZE / 4 - 1), fc.integer({ min: 0, max: 0xffffffff })), { freq: 8 }),
});

type Pick = 'good' | number;
const ptrArb = (extra: number[]): fc.Arbitrary<Pick> => fc.oneof({ weight: 12, arbitrary: fc.constant('good' as const) }, { weight: 1, arbitrary: fc.constantFrom(...extra) });

function writeU64(c: Core, at: number, v: bigint | number): void {
  const b = BigInt(v);
  c.u32[at >> 2] = Number(b & 0xffffffffn);
  c.u32[(at >> 2) + 1] = Number((b >> 32n) & 0xffffffffn);
}

describe('differential: DMA functions, wasm == reference', () => {
  const { cores, l } = rig();
  const g = cores[0]!.guestBase;
  const hostile = [0, 4, 2, g, g + 0x1000, g + GUEST - 8, l.dom, l.dom + 8, l.segs + 8, l.res + 4, l.buf + 3, l.buf + BUF - 16, l.size - 16, l.size, 0xfffffff0];

  it('agree on statuses, result blocks and every byte, for valid and hostile input', () => {
    check(
      fc.property(
        domArb, fc.array(segArb, { maxLength: MAX_SEGS }), fc.nat(0xffff),
        fc.record({ fn: fc.constantFrom('check', 'gather', 'scatter'), access: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(1, 2, 3) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 8 }) }) }),
        fc.record({ dom: ptrArb(hostile), segs: ptrArb(hostile), res: ptrArb(hostile), buf: ptrArb(hostile), noDomain: fc.boolean() }),
        fc.oneof({ weight: 4, arbitrary: fc.constant('total' as const) }, { weight: 2, arbitrary: fc.integer({ min: 0, max: BUF }) }, { weight: 1, arbitrary: fc.constantFrom(0, 0x7fffffff, 0x80000000, 0xffffffff) }),
        fc.oneof({ weight: 6, arbitrary: fc.constant('current' as const) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }) }),
        (dom, segs, seed, op, ptrs, lenPick, genPick) => {
          let total = 0;
          for (const sg of segs) total += sg.len;
          const len = lenPick === 'total' ? Math.min(total, BUF) : lenPick;
          const p = (x: Pick, good: number) => (x === 'good' ? good : x);
          const domPtr = ptrs.noDomain ? 0 : p(ptrs.dom, l.dom);
          const gen = genPick === 'current' ? dom.generation : genPick;
          const st = cores.map((c) => {
            const u32 = c.u32;
            for (let i = 0; i < GUEST / 4; i++) u32[(g >> 2) + i] = Math.imul(i + seed, 2654435761) >>> 0;
            for (let i = 0; i < BUF / 4; i++) u32[(l.buf >> 2) + i] = Math.imul(i ^ seed, 40503) >>> 0;
            c.u8.fill(0xee, l.res, l.res + 16);
            // The domain image.
            c.u8.fill(0, l.dom, l.dom + K.DOM_HEADER_SIZE);
            u32[(l.dom + K.DOM_MAGIC) >> 2] = K.DOM_MAGIC_VALUE;
            u32[(l.dom + K.DOM_MODE) >> 2] = dom.mode;
            u32[(l.dom + K.DOM_GENERATION) >> 2] = dom.generation;
            u32[(l.dom + K.DOM_PAGES) >> 2] = dom.pages;
            u32[(l.dom + K.DOM_WINDOW_COUNT) >> 2] = dom.windowCount ?? dom.windows.length;
            dom.windows.forEach((w, i) => {
              writeU64(c, l.dom + K.DOM_WINDOWS + 16 * i, w.start);
              writeU64(c, l.dom + K.DOM_WINDOWS + 16 * i + 8, w.len);
            });
            dom.tableWords.forEach((w, i) => {
              u32[((l.dom + K.DOM_HEADER_SIZE) >> 2) + i] = dom.table === 'full' ? 0xffffffff : dom.table === 'sparse' ? w | (w >>> 1) | 0x55555555 : w;
            });
            if (dom.corrupt) u32[(l.dom >> 2) + dom.corrupt[0]] = dom.corrupt[1];
            segs.forEach((s, i) => {
              writeU64(c, l.segs + 16 * i, s.addr);
              u32[((l.segs + 16 * i) >> 2) + 2] = s.len;
              u32[((l.segs + 16 * i) >> 2) + 3] = seed;
            });
            const args = [domPtr, gen, g, GUEST, p(ptrs.segs, l.segs), segs.length] as const;
            if (op.fn === 'check') return c.fn.dmaCheck(...args, op.access, len, p(ptrs.res, l.res));
            const f = op.fn === 'gather' ? c.fn.dmaGather : c.fn.dmaScatter;
            return f(...args, p(ptrs.buf, l.buf), len, p(ptrs.res, l.res));
          });
          expect(st[0], `status (wasm ${st[0]}, reference ${st[1]})`).toBe(st[1]);
          const [a, b] = cores.map((c) => c.u8.subarray(0, l.top));
          const d = firstDiff(a!, b!);
          expect(d, `${op.fn} -> ${st[0]}: memory differs at ${d}`).toBe(-1);
        },
      ),
      600,
    );
  });

  it('agree on the statuses a valid layout produces (sanity: every outcome occurs)', () => {
    // The property above must not pass vacuously: the same generators reach success and each fault.
    const seen = new Set<number>();
    const c = cores[0]!;
    const u32 = c.u32;
    u32[(l.dom + K.DOM_MAGIC) >> 2] = K.DOM_MAGIC_VALUE;
    u32[(l.dom + K.DOM_MODE) >> 2] = K.DOM_MODE_STRICT;
    u32[(l.dom + K.DOM_GENERATION) >> 2] = 2;
    u32[(l.dom + K.DOM_PAGES) >> 2] = PAGES;
    u32[(l.dom + K.DOM_WINDOW_COUNT) >> 2] = 1;
    writeU64(c, l.dom + K.DOM_WINDOWS, 0x3_0000);
    writeU64(c, l.dom + K.DOM_WINDOWS + 8, 0x1000);
    for (let i = 0; i < PAGES / 16; i++) u32[((l.dom + K.DOM_HEADER_SIZE) >> 2) + i] = i === 0 ? 0x5555ffff : 0xffffffff;
    const one = (addr: number, len: number, gen = 2) => {
      writeU64(c, l.segs, addr);
      u32[(l.segs >> 2) + 2] = len;
      seen.add(c.fn.dmaScatter(l.dom, gen, g, GUEST, l.segs, 1, l.buf, len, l.res));
    };
    one(0x1000, 64);
    one(0xa000, 64);
    one(0x3_0000, 64);
    one(GUEST - 8, 64);
    one(0x1000, 64, 4);
    seen.add(c.fn.dmaScatter(l.dom, 2, g, GUEST, l.segs, 1, l.buf, 65, l.res));
    expect([...seen].sort()).toEqual([64, K.E_IommuFault, K.E_DmaStale, K.E_DmaDeviceWindow, K.E_OutsideGuestRam, K.E_DmaOverrun].sort());
  });
});
