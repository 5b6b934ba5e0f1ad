// Differential harness for the PRP and SGL engine functions: two cores (wasm, reference) with
// the same layout, the same planted memory image, the same raw call; then the return values
// and every byte of every region a call may touch must agree.
import fc from 'fast-check';
import { expect } from 'vitest';
import { loadCoreSync, type Core } from '../../src/index';
import { firstDiff } from '../util/fc';

export const GUEST = 256 * 1024;
export const OUT_CAP = 640;
export const CMDS = 8;
export const SEGS = 64;
export const POOL = 8;
export const SCRATCH = 65536 + 1024;

export interface Layout {
  cfg: number;
  scratch: number;
  out: number;
  cmds: number;
  segs: number;
  pool: number;
}

export function twinCores(): { cores: Core[]; l: Layout; regions: (readonly [string, number, number])[] } {
  const cores = (['wasm', 'reference'] as const).map((engine) => loadCoreSync({ engine, guestBytes: GUEST, initialBytes: 2 << 20 }));
  const layouts = cores.map((c) => ({
    cfg: c.alloc(48, 8), scratch: c.alloc(SCRATCH, 8), out: c.alloc(OUT_CAP * 16, 8),
    cmds: c.alloc(CMDS * 32, 8), segs: c.alloc(SEGS * 16, 8), pool: c.alloc(POOL * 8, 8),
  }));
  expect(layouts[0]).toEqual(layouts[1]);
  expect(cores[0]!.guestBase).toBe(cores[1]!.guestBase);
  const l = layouts[0]!;
  const c = cores[0]!;
  const regions = [
    ['guest', c.guestBase, GUEST], ['cfg', l.cfg, 48], ['scratch', l.scratch, SCRATCH], ['out', l.out, OUT_CAP * 16],
    ['cmds', l.cmds, CMDS * 32], ['segs', l.segs, SEGS * 16], ['pool', l.pool, POOL * 8],
  ] as const;
  return { cores, l, regions: [...regions] };
}

/** Runs `call` on both cores after `plant`, then compares the result and every region. */
export function sameOnBoth(cores: Core[], regions: (readonly [string, number, number])[], plant: (c: Core) => void,
  call: (c: Core) => number, label: () => string): number {
  const results = cores.map((c) => {
    plant(c);
    return call(c);
  });
  expect(results[0], `${label()}: return value`).toBe(results[1]);
  for (const [name, ptr, len] of regions) {
    const d = firstDiff(cores[0]!.view(ptr, len), cores[1]!.view(ptr, len));
    expect(d, `${label()}: region ${name} differs at +${d}`).toBe(-1);
  }
  return results[0]!;
}

// ---- arbitraries shared by both files ----

export const u32 = fc.integer({ min: 0, max: 0xffffffff });
/** A 64-bit value as [lo, hi]: mostly inside the guest window, sometimes anywhere. */
export const addr64 = (mps: number, align: number) => fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: GUEST / align - 1 }).map((k) => [k * align, 0] as [number, number]) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: GUEST / mps - 1 }).map((k) => [k * mps, 0] as [number, number]) },
  { weight: 1, arbitrary: fc.constant([0, 0] as [number, number]) },
  { weight: 1, arbitrary: fc.integer({ min: GUEST - 64, max: GUEST + 64 }).map((v) => [v, 0] as [number, number]) },
  { weight: 1, arbitrary: fc.tuple(u32, u32) },
  { weight: 1, arbitrary: fc.tuple(u32, fc.constant(0xffffffff)) },
);

export const cfgArb = fc.record({
  mps: fc.oneof({ weight: 12, arbitrary: fc.constant(4096) }, { weight: 4, arbitrary: fc.constantFrom(8192, 65536) },
    { weight: 1, arbitrary: fc.constantFrom(0, 2048, 4097, 131072, 12288) }),
  maxBytes: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 1 << 21 }) }, { weight: 1, arbitrary: u32 }),
  flags: fc.integer({ min: 0, max: 15 }),
  maxMappings: fc.oneof({ weight: 8, arbitrary: fc.constant(1024) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 8 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 700 }) }),
  maxDescriptors: fc.oneof({ weight: 8, arbitrary: fc.constant(65536) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 64 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 2000 }) }),
  scratchBytes: fc.oneof({ weight: 20, arbitrary: fc.constant(SCRATCH) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: SCRATCH }) },
    { weight: 1, arbitrary: fc.constantFrom(4096, 4096 + 8, 8192 + 8, 4096 + 24) }),
  guestBytes: fc.oneof({ weight: 20, arbitrary: fc.constant(GUEST) }, { weight: 2, arbitrary: fc.integer({ min: 0, max: GUEST }) },
    { weight: 1, arbitrary: fc.constant(0x7fff0000) }),
  scratchShift: fc.oneof({ weight: 30, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(4, 1 << 30) }),
});
export type Cfg = typeof cfgArb extends fc.Arbitrary<infer T> ? T : never;

export function writeCfg(c: Core, l: Layout, k: Cfg): void {
  const u = c.u32;
  const p = l.cfg >> 2;
  u.fill(0, p, p + 12);
  u[p] = k.mps;
  u[p + 1] = k.maxBytes;
  u[p + 2] = k.flags;
  u[p + 3] = c.guestBase;
  u[p + 4] = k.guestBytes;
  u[p + 5] = k.maxMappings;
  u[p + 6] = (l.scratch + k.scratchShift) >>> 0;
  u[p + 7] = k.scratchBytes;
  u[p + 8] = k.maxDescriptors;
}

/** Fills guest memory, scratch, out and the record areas with a seeded pattern. */
export function noise(c: Core, l: Layout, seed: number): void {
  const u8 = c.u8;
  let x = seed | 1;
  const fill = (ptr: number, len: number) => {
    for (let i = 0; i < len; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      u8[ptr + i] = x & 0xff;
    }
  };
  fill(c.guestBase, GUEST);
  fill(l.scratch, SCRATCH);
  fill(l.out, OUT_CAP * 16);
  fill(l.cmds, CMDS * 32);
  fill(l.segs, SEGS * 16);
  fill(l.pool, POOL * 8);
}

/** Hostile raw pointer arguments: mostly the real region, sometimes misaligned or outside memory. */
export const ptrArb = fc.oneof({ weight: 12, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(1, 4, 0x7ffffff0, 0xfffffff8) });
export const countArb = (max: number) => fc.oneof({ weight: 10, arbitrary: fc.integer({ min: 0, max }) }, { weight: 1, arbitrary: fc.constantFrom(0xffffffff, 0x8000000, max + 1) });
