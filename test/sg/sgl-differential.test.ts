// Differential properties: sglWalk, sglWalkBatch, sglBuild and sglBuildBatch of the Wasm engine
// against their reference twins on identical, partly hostile images (segments of mixed
// descriptor types, zero and huge lengths, overflowing addresses, chains that loop or point
// outside guest RAM; hostile configs and pointer arguments). Results and bytes must agree.
import fc from 'fast-check';
import { describe, it } from 'vitest';
import type { Core } from '../../src/index';
import { check } from '../util/fc';
import {
  addr64, cfgArb, CMDS, countArb, GUEST, noise, OUT_CAP, POOL, ptrArb, sameOnBoth, SEGS, twinCores, u32, writeCfg,
  type Layout,
} from './prp-diff-harness';

/** Guest pages holding planted descriptor segments. */
const SEG_PAGES = [0x4000, 0x6000, 0x9000, 0x20000];

const idArb = fc.oneof({ weight: 10, arbitrary: fc.constant(0x00) }, { weight: 1, arbitrary: fc.constantFrom(0x20, 0x30) },
  { weight: 1, arbitrary: fc.constantFrom(0x10, 0x01, 0x50, 0x21, 0xf0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) });
const lenArb = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 5000 }) }, { weight: 1, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: u32 });
/** A pointer to (into) one of the planted segments, with a length in whole or odd descriptors. */
const pointerArb = fc.record({
  id: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(0x20, 0x30) }, { weight: 1, arbitrary: idArb }),
  page: fc.constantFrom(...SEG_PAGES),
  at: fc.integer({ min: 0, max: 40 }),
  n: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 300 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 5000 }) }),
  odd: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 15 }) }),
  wild: fc.oneof({ weight: 8, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: addr64(4096, 16) }),
});
const descArb = fc.record({ id: idArb, len: lenArb, addr: addr64(4096, 1), ptr: pointerArb, isPtr: fc.oneof({ weight: 5, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }) });

type Desc = typeof descArb extends fc.Arbitrary<infer T> ? T : never;
type Ptr = typeof pointerArb extends fc.Arbitrary<infer T> ? T : never;

const imageArb = fc.record({
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
  // Per segment page: a prefix of planted descriptors (repeated), then its last planted slot.
  segments: fc.array(fc.record({ clean: fc.boolean(), descs: fc.array(descArb, { minLength: 1, maxLength: 12 }), count: fc.integer({ min: 1, max: 300 }), tail: pointerArb }), { minLength: 4, maxLength: 4 }),
});
type Image = typeof imageArb extends fc.Arbitrary<infer T> ? T : never;

function putDesc(dv: DataView, at: number, lo: number, hi: number, len: number, id: number): void {
  dv.setUint32(at, lo, true);
  dv.setUint32(at + 4, hi, true);
  dv.setUint32(at + 8, len, true);
  dv.setUint32(at + 12, id * 0x1000000, true);
}

function putPtr(dv: DataView, at: number, p: Ptr): void {
  const [lo, hi] = p.wild ?? [p.page + 16 * p.at, 0];
  putDesc(dv, at, lo, hi, p.n * 16 + p.odd, p.id);
}

function putAny(dv: DataView, at: number, d: Desc): void {
  if (d.isPtr) putPtr(dv, at, d.ptr);
  else putDesc(dv, at, d.addr[0], d.addr[1], d.len, d.id);
}

function plantImage(c: Core, l: Layout, img: Image): void {
  noise(c, l, img.seed);
  const dv = new DataView(c.u8.buffer, c.guestBase);
  img.segments.forEach((s, k) => {
    const page = SEG_PAGES[k]!;
    for (let i = 0; i < s.count; i++) {
      const d = s.descs[i % s.descs.length]!;
      // A clean segment holds only Data Blocks inside guest RAM (some of length 0).
      if (s.clean) putDesc(dv, page + 16 * i, d.addr[0] % (GUEST - 8192), 0, d.len % 8192, 0);
      else putAny(dv, page + 16 * i, d);
    }
    putPtr(dv, page + 16 * s.count, s.tail);
  });
}

const cmdArb = fc.record({
  sgl1: fc.oneof({ weight: 4, arbitrary: pointerArb.map((p) => ({ ptr: p, desc: null })) }, { weight: 2, arbitrary: descArb.map((d) => ({ ptr: null, desc: d })) }),
  length: fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 6, arbitrary: fc.integer({ min: 1, max: 200000 }) }, { weight: 1, arbitrary: u32 }),
  // Mostly the exact data length of the segment SGL1 points to, so walks also succeed.
  exact: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 2, arbitrary: fc.constant(false) }),
});

/** The data bytes a clean planted segment holds in descriptors [at, at + n), or null. */
function exactLength(img: Image, p: Ptr): number | null {
  const s = img.segments[SEG_PAGES.indexOf(p.page)]!;
  if (!s.clean || p.wild || p.at + p.n > s.count) return null;
  let n = 0;
  for (let i = p.at; i < p.at + p.n; i++) n += s.descs[i % s.descs.length]!.len % 8192;
  return n;
}

describe('differential: SGL functions, wasm engine == reference engine on hostile images', () => {
  const { cores, l, regions } = twinCores();

  it('sglWalk and sglWalkBatch agree on results, segments, records and scratch snapshots', () => {
    check(fc.property(cfgArb, imageArb, fc.array(cmdArb, { minLength: 1, maxLength: CMDS }), countArb(OUT_CAP), ptrArb, fc.boolean(),
      (k, img, cmds, outCap, shift, batch) => {
        const plant = (c: Core) => {
          plantImage(c, l, img);
          writeCfg(c, l, k);
          const dv = new DataView(c.u8.buffer);
          cmds.forEach((cmd, i) => {
            const p = l.cmds + 32 * i;
            if (cmd.sgl1.ptr) putPtr(dv, p, cmd.sgl1.ptr);
            else putAny(dv, p, cmd.sgl1.desc!);
            const exact = cmd.exact && cmd.sgl1.ptr ? exactLength(img, cmd.sgl1.ptr) : null;
            dv.setUint32(p + 16, exact ?? cmd.length, true);
          });
        };
        const label = () => JSON.stringify({ k, cmds, outCap, shift, batch });
        sameOnBoth(cores, regions, plant, (c) => (batch
          ? c.fn.sglWalkBatch(l.cfg, l.cmds + shift, cmds.length, l.out, outCap)
          : c.fn.sglWalk(l.cfg, l.cmds + shift, c.u32[(l.cmds + 16) >> 2]!, l.out, outCap)), label);
      }), 400);
  });

  it('sglBuild and sglBuildBatch agree on results, records and every byte of guest memory', () => {
    const segArb = fc.record({
      addr: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: GUEST - 1 }).map((a) => [a, 0] as [number, number]) }, { weight: 1, arbitrary: addr64(4096, 1) }),
      len: fc.oneof({ weight: 40, arbitrary: fc.integer({ min: 1, max: 5000 }) }, { weight: 1, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: u32 }),
    });
    const poolArb = fc.oneof({ weight: 6, arbitrary: fc.tuple(fc.constantFrom(...SEG_PAGES), fc.integer({ min: 0, max: 255 })).map(([p, q]) => [p + (q < 200 ? 0 : 16 * q), 0] as [number, number]) }, { weight: 1, arbitrary: addr64(4096, 16) });
    check(fc.property(cfgArb, fc.integer({ min: 1, max: 0x7fffffff }), fc.array(segArb, { minLength: 1, maxLength: SEGS }), fc.array(poolArb, { minLength: POOL, maxLength: POOL }),
      fc.array(fc.oneof({ weight: 4, arbitrary: fc.tuple(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 12 })) },
        { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0, max: SEGS + 2 }), fc.integer({ min: 0, max: 40 })) }), { minLength: 1, maxLength: CMDS }), countArb(POOL), ptrArb, fc.boolean(),
      (k, seed, segs, pool, ranges, poolCount, shift, batch) => {
        const plant = (c: Core) => {
          noise(c, l, seed);
          writeCfg(c, l, k);
          const u = c.u32;
          segs.forEach((s, i) => {
            u[(l.segs >> 2) + 4 * i] = s.addr[0];
            u[(l.segs >> 2) + 4 * i + 1] = s.addr[1];
            u[(l.segs >> 2) + 4 * i + 2] = s.len;
          });
          pool.forEach(([lo, hi], j) => {
            u[(l.pool >> 2) + 2 * j] = lo;
            u[(l.pool >> 2) + 2 * j + 1] = hi;
          });
          ranges.forEach(([first, count], i) => {
            u[(l.cmds + 32 * i + 24) >> 2] = first;
            u[(l.cmds + 32 * i + 28) >> 2] = count;
          });
        };
        const label = () => JSON.stringify({ k, segs, pool, ranges, poolCount, shift, batch });
        sameOnBoth(cores, regions, plant, (c) => (batch
          ? c.fn.sglBuildBatch(l.cfg, l.cmds, ranges.length, l.segs + shift, segs.length, l.pool, poolCount)
          : c.fn.sglBuild(l.cfg, l.segs, segs.length, l.pool + shift, poolCount, l.cmds)), label);
      }), 400);
  });
});
