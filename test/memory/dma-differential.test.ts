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

describe('differential: dmaCopyBatch, wasm == reference (copies as if in order)', () => {
  const MEM = 256 * 1024;
  const cores = [loadCoreSync({ engine: 'wasm', guestBytes: MEM }), loadCoreSync({ engine: 'reference', guestBytes: MEM })];
  const g = cores[0]!.guestBase;
  const table = cores.map((c) => c.alloc(64 * 12, 8));
  expect(table[0]).toBe(table[1]);
  const size = cores[0]!.byteLength;
  // Mostly places in one 256 KiB window, so destinations and sources meet often (and are apart often);
  // now and then a region that leaves memory, or a table that does.
  const entryArb = fc.record({
    dst: fc.oneof({ weight: 20, arbitrary: fc.integer({ min: 0, max: MEM - 1 }).map((x) => g + x) }, { weight: 1, arbitrary: fc.constantFrom(size - 8, size, 0xfffffff0) }),
    src: fc.oneof({ weight: 20, arbitrary: fc.integer({ min: 0, max: MEM - 1 }).map((x) => g + x) }, { weight: 1, arbitrary: fc.constantFrom(size - 8, size, 0xfffffff0) }),
    len: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 9000 }) }, { weight: 1, arbitrary: fc.constantFrom(4096, 0xffffffff) }),
  });

  it('agree on status and every byte, interleaved or not, with overlapping, disjoint and out-of-memory entries', () => {
    let interleavedCandidates = 0;
    check(
      fc.property(fc.array(entryArb, { maxLength: 40 }), fc.constantFrom(0, 64, 1024, 4096), fc.nat(0xffff), fc.option(fc.constantFrom(0, size, 0xfffffff0), { freq: 12 }), (entries, chunk, seed, tablePtr) => {
        const fits = entries.every((e) => e.len <= MEM && e.dst + e.len <= g + MEM && e.src + e.len <= g + MEM);
        if (fits && entries.length > 1) interleavedCandidates++;
        const st = cores.map((c, k) => {
          const u32 = c.u32;
          for (let i = 0; i < MEM / 4; i++) u32[(g >> 2) + i] = Math.imul(i + seed, 2654435761) >>> 0;
          entries.forEach((e, i) => {
            u32[(table[k]! >> 2) + 3 * i] = e.dst >>> 0;
            u32[(table[k]! >> 2) + 3 * i + 1] = e.src >>> 0;
            u32[(table[k]! >> 2) + 3 * i + 2] = e.len >>> 0;
          });
          return c.fn.dmaCopyBatch(tablePtr ?? table[k]!, entries.length, chunk);
        });
        expect(st[0], `status (wasm ${st[0]}, reference ${st[1]})`).toBe(st[1]);
        // Guest memory, where the copies land (the table is written the same in both).
        const [a, b] = cores.map((c) => c.u8.subarray(g, g + MEM));
        const d = firstDiff(a!, b!);
        expect(d, `memory differs at ${d}`).toBe(-1);
      }),
      500,
    );
    expect(interleavedCandidates).toBeGreaterThan(50);
  });

  it('interleaves disjoint copies (the bytes are those of the copies in order) and refuses a region outside memory before copying anything', () => {
    const c = cores[0]!;
    const u32 = c.u32;
    const t = table[0]! >> 2;
    for (let i = 0; i < 8; i++) c.u8.fill(i + 1, g + 0x1000 * i, g + 0x1000 * (i + 1));
    // Eight disjoint 3000-byte copies from the first half into the second half, 1 KiB at a time.
    for (let i = 0; i < 8; i++) [u32[t + 3 * i], u32[t + 3 * i + 1], u32[t + 3 * i + 2]] = [g + 0x10000 + 0x1000 * i, g + 0x1000 * i, 3000];
    expect(c.fn.dmaCopyBatch(table[0]!, 8, 1024)).toBe(0);
    for (let i = 0; i < 8; i++) {
      const d = c.u8.subarray(g + 0x10000 + 0x1000 * i, g + 0x10000 + 0x1000 * i + 3000);
      expect(d.every((x) => x === i + 1)).toBe(true);
    }
    // A chain (each copy's source is the previous destination): only the in-order copy gives 1 everywhere.
    for (let i = 0; i < 4; i++) [u32[t + 3 * i], u32[t + 3 * i + 1], u32[t + 3 * i + 2]] = [g + 0x1000 * (i + 1), g + 0x1000 * i, 4096];
    expect(c.fn.dmaCopyBatch(table[0]!, 4, 1024)).toBe(0);
    expect(c.u8.subarray(g, g + 0x5000).every((x) => x === 1)).toBe(true);
    // The third entry leaves memory: InvalidArgument, and the first two did not move either.
    c.u8.fill(9, g + 0x20000, g + 0x21000);
    for (let i = 0; i < 3; i++) [u32[t + 3 * i], u32[t + 3 * i + 1], u32[t + 3 * i + 2]] = [g + 0x30000 + 0x1000 * i, g + 0x20000, i === 2 ? 0xffffffff : 4096];
    expect(c.fn.dmaCopyBatch(table[0]!, 3, 1024)).toBe(K.E_InvalidArgument);
    expect(c.u8[g + 0x30000]).not.toBe(9);
    // A destination on the table itself (P5): refused, nothing moves.
    [u32[t + 2]] = [4096];
    [u32[t + 3], u32[t + 4], u32[t + 5]] = [table[0]! + 8, g + 0x20000, 16];
    expect(c.fn.dmaCopyBatch(table[0]!, 2, 0)).toBe(K.E_InvalidArgument);
    expect(c.u8[g + 0x30000]).not.toBe(9);
  });
});
