// Differential properties: prpWalk, prpWalkBatch, prpBuild and prpBuildBatch of the Wasm engine
// against their reference twins, called raw on identical, partly hostile memory images (list
// pages full of good, misaligned, zero, outside and looping entries; hostile configs and
// pointer arguments). Return values and every byte of every region must agree.
import fc from 'fast-check';
import { describe, it } from 'vitest';
import type { Core } from '../../src/index';
import { check } from '../util/fc';
import {
  addr64, cfgArb, CMDS, countArb, GUEST, noise, OUT_CAP, POOL, ptrArb, sameOnBoth, SEGS, twinCores, u32, writeCfg,
  type Layout,
} from './prp-diff-harness';

const K4 = 4096;
/** Guest pages that hold planted PRP lists. */
const LIST_PAGES = [0x4000, 0x5000, 0x9000, 0x20000];

/**
 * Planted list pages: runs of good page addresses (aligned to the walk's page size, partly
 * contiguous so merging happens), now and then one hostile entry, and a last slot that chains
 * to a list page (itself, an earlier one: loops) or to something hostile.
 */
const listArb = (align: number) => fc.record({
  base: fc.integer({ min: 0, max: GUEST / align - 1 }),
  stride: fc.constantFrom(1, 1, 2, 3),
  bad: fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0, max: 511 }), addr64(K4, 4)) }),
  zeroAt: fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 511 }) }),
  chain: fc.oneof(fc.constantFrom(...LIST_PAGES).map((p) => [p, 0] as [number, number]), addr64(align, 8)),
});
const imageArb = (align: number) => fc.record({ seed: fc.integer({ min: 1, max: 0x7fffffff }), align: fc.constant(align), lists: fc.array(listArb(align), { minLength: 4, maxLength: 4 }) });

const walkCmdArb = fc.record({
  prp1: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: GUEST / 4 - 1 }).map((d) => [d * 4, 0] as [number, number]) }, { weight: 1, arbitrary: addr64(K4, 4) }),
  prp2: fc.oneof({ weight: 5, arbitrary: fc.tuple(fc.constantFrom(...LIST_PAGES), fc.integer({ min: 0, max: 511 })).map(([p, q]) => [p + 8 * q, 0] as [number, number]) },
    { weight: 3, arbitrary: addr64(K4, 8) }),
  length: fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: 1, max: 3 * K4 }) },
    { weight: 3, arbitrary: fc.integer({ min: 1, max: 600 * K4 }) }, { weight: 3, arbitrary: fc.integer({ min: 1, max: 1100 }).map((n) => n * K4) },
    { weight: 1, arbitrary: u32 }),
});

const buildArb = fc.record({
  segs: fc.array(fc.record({ addr: addr64(K4, 4), len: fc.oneof(fc.constant(K4), fc.integer({ min: 0, max: 3 * K4 }), u32) }), { minLength: 1, maxLength: SEGS }),
  // Mostly a well-formed transfer: first at a dword offset, then whole pages, the last short.
  shaped: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  pool: fc.array(fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...LIST_PAGES).map((p) => [p, 0] as [number, number]) }, { weight: 2, arbitrary: addr64(K4, 8) }), { minLength: POOL, maxLength: POOL }),
});

type Image = ReturnType<typeof imageArb> extends fc.Arbitrary<infer T> ? T : never;
type Build = typeof buildArb extends fc.Arbitrary<infer T> ? T : never;

function plantImage(c: Core, l: Layout, img: Image): void {
  noise(c, l, img.seed);
  const dv = new DataView(c.u8.buffer, c.guestBase);
  const slots = GUEST / img.align;
  img.lists.forEach((list, k) => {
    const page = LIST_PAGES[k]!;
    for (let i = 0; i < 511; i++) dv.setBigUint64(page + 8 * i, BigInt(((list.base + i * list.stride) % slots) * img.align), true);
    if (list.zeroAt !== null) dv.setBigUint64(page + 8 * list.zeroAt, 0n, true);
    if (list.bad !== null) dv.setUint32(page + 8 * list.bad[0], list.bad[1][0], true), dv.setUint32(page + 8 * list.bad[0] + 4, list.bad[1][1], true);
    dv.setUint32(page + 8 * 511, list.chain[0], true);
    dv.setUint32(page + 8 * 511 + 4, list.chain[1], true);
  });
}

function putU64(c: Core, at: number, [lo, hi]: [number, number]): void {
  c.u32[at >> 2] = lo >>> 0;
  c.u32[(at >> 2) + 1] = hi >>> 0;
}

function plantBuild(c: Core, l: Layout, b: Build): number {
  let shapedAt = 0x30000;
  b.segs.forEach((s, i) => {
    const p = l.segs + 16 * i;
    if (b.shaped && i < 20) {
      const first = i === 0;
      putU64(c, p, [first ? shapedAt + (s.addr[0] & 0xffc) : shapedAt, 0]);
      c.u32[(p + 8) >> 2] = first ? K4 - (s.addr[0] & 0xffc) : i === Math.min(19, b.segs.length - 1) ? (s.len % K4) + 1 : K4 * (1 + (s.len & 1));
      shapedAt += 2 * K4 * (1 + (s.len & 1));
    } else {
      putU64(c, p, s.addr);
      c.u32[(p + 8) >> 2] = s.len;
    }
  });
  b.pool.forEach((a, j) => putU64(c, l.pool + 8 * j, a));
  return b.shaped ? Math.min(b.segs.length, 20) : b.segs.length;
}

describe('differential: PRP functions, wasm engine == reference engine on hostile images', () => {
  const { cores, l, regions } = twinCores();

  it('prpWalk and prpWalkBatch agree on results, segments, records and scratch snapshots', () => {
    const arb = cfgArb.chain((k) => fc.tuple(fc.constant(k), imageArb([8192, 65536].includes(k.mps) ? k.mps : K4)));
    check(fc.property(arb, fc.array(walkCmdArb, { minLength: 1, maxLength: CMDS }), countArb(OUT_CAP), ptrArb, fc.boolean(),
      ([k, img], cmds, outCap, shift, batch) => {
        const plant = (c: Core) => {
          plantImage(c, l, img);
          writeCfg(c, l, k);
          cmds.forEach((cmd, i) => {
            const p = l.cmds + 32 * i;
            putU64(c, p, cmd.prp1);
            putU64(c, p + 8, cmd.prp2);
            c.u32[(p + 16) >> 2] = cmd.length;
          });
        };
        const label = () => JSON.stringify({ k, cmds, outCap, shift, batch });
        sameOnBoth(cores, regions, plant, (c) => (batch
          ? c.fn.prpWalkBatch(l.cfg, l.cmds + shift, cmds.length, l.out, outCap)
          : c.fn.prpWalk(l.cfg, l.cmds + shift, cmds[0]!.length, l.out, outCap)), label);
      }), 400);
  });

  it('prpBuild and prpBuildBatch agree on results, records and every byte of guest memory', () => {
    check(fc.property(cfgArb, fc.integer({ min: 1, max: 0x7fffffff }), buildArb, fc.array(fc.oneof({ weight: 4, arbitrary: fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 12 })) }, { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0, max: SEGS + 2 }), fc.integer({ min: 0, max: 24 })) }), { minLength: 1, maxLength: CMDS }),
      countArb(POOL), ptrArb, fc.boolean(), (k, seed, b, ranges, poolCount, shift, batch) => {
        let nsegs = 0;
        const plant = (c: Core) => {
          noise(c, l, seed);
          writeCfg(c, l, k);
          nsegs = plantBuild(c, l, b);
          ranges.forEach(([first, count], i) => {
            c.u32[(l.cmds + 32 * i + 24) >> 2] = first;
            c.u32[(l.cmds + 32 * i + 28) >> 2] = count;
          });
        };
        const label = () => JSON.stringify({ k, b, ranges, poolCount, shift, batch });
        sameOnBoth(cores, regions, plant, (c) => (batch
          ? c.fn.prpBuildBatch(l.cfg, l.cmds, ranges.length, l.segs + shift, nsegs, l.pool, poolCount)
          : c.fn.prpBuild(l.cfg, l.segs, nsegs, l.pool + shift, poolCount, l.cmds)), label);
      }), 400);
  });
});
