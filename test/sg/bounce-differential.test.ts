// Differential properties: planPages, bounceCopyOut, bounceZero and bounceCopyBack of the Wasm
// engine against their reference twins, called directly on identical memory, with valid and
// hostile segment lists, pools and plan images. Statuses and every byte they may touch agree.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadCoreSync, type Core } from '../../src/index';
import { check, firstDiff } from '../util/fc';

const GUEST = 256 * 1024;
const OUT = 64 * 1024;

function rig() {
  const cores = [loadCoreSync({ engine: 'wasm', guestBytes: GUEST }), loadCoreSync({ engine: 'reference', guestBytes: GUEST })];
  const lay = cores.map((c) => ({ segs: c.alloc(16 * 16, 8), pool: c.alloc(32 * 8, 8), out: c.alloc(OUT, 8) }));
  expect(lay[0]).toEqual(lay[1]);
  expect(cores[0]!.guestBase).toBe(cores[1]!.guestBase);
  return { cores, l: lay[0]! };
}

const u64 = (c: Core, at: number, v: number) => {
  c.u32[at >> 2] = v % 2 ** 32;
  c.u32[(at >> 2) + 1] = Math.floor(v / 2 ** 32);
};

const segArb = fc.record({
  addr: fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0, max: GUEST - 1 }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 ** 53 - 1 }) },
  ),
  len: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 3 * 4096 }) }, { weight: 1, arbitrary: fc.constantFrom(0, 0xffffffff) }),
});

describe('differential: bounce planner and copies, wasm == reference', () => {
  const { cores, l } = rig();
  const regions = (c: Core) => [c.view(l.out, OUT), c.view(c.guestBase, GUEST)];
  const same = (what: string) => {
    const [a, b] = [regions(cores[0]!), regions(cores[1]!)];
    a.forEach((r, i) => {
      const d = firstDiff(r, b[i]!);
      expect(d, `${what}: region ${i} differs at ${d}`).toBe(-1);
    });
  };

  it('planPages agrees on random and hostile lists, pools, limits and page sizes', () => {
    check(
      fc.property(
        fc.array(segArb, { maxLength: 12 }),
        fc.array(fc.oneof(fc.integer({ min: 0, max: GUEST / 4096 - 1 }).map((f) => f * 4096), fc.integer({ min: 0, max: GUEST })), { maxLength: 24 }),
        fc.constantFrom(0, 1, 2),
        fc.constantFrom(4096, 4096, 8192, 65536, 1000),
        fc.oneof(fc.constant(0xffffffff), fc.integer({ min: 0, max: 12 })),
        fc.oneof(fc.constant(GUEST), fc.integer({ min: 0, max: 2 ** 52 }), fc.constant(2 ** 53)),
        fc.oneof(fc.constant(OUT), fc.integer({ min: 0, max: 2048 })),
        (segs, pool, rule, pageSize, maxPages, limit, cap) => {
          const st = cores.map((c) => {
            segs.forEach((s, i) => {
              u64(c, l.segs + 16 * i, s.addr);
              c.u32[(l.segs + 16 * i + 8) >> 2] = s.len;
            });
            pool.forEach((b, k) => u64(c, l.pool + 8 * k, b));
            c.u8.fill(0x5a, l.out, l.out + OUT);
            return c.fn.planPages(l.segs, segs.length, pageSize, rule, maxPages, l.pool, pool.length, limit % 2 ** 32, Math.floor(limit / 2 ** 32), l.out, cap);
          });
          expect(st[0]).toBe(st[1]);
          same(`planPages -> ${st[0]}`);
        },
      ),
      300,
    );
  });

  it('the copy functions agree on valid plans and on corrupted plan images', () => {
    check(
      fc.property(
        fc.array(fc.record({ addr: fc.integer({ min: 0, max: GUEST / 2 - 16384 }), len: fc.integer({ min: 1, max: 6000 }) }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.tuple(fc.nat(OUT / 4 - 1), fc.integer({ min: 0, max: 0xffffffff })), { maxLength: 6 }),
        fc.integer({ min: 0, max: 40000 }),
        fc.integer({ min: 0, max: 2 }),
        (segs, corruption, actual, which) => {
          // Plan each list with the wasm planner into both memories, then corrupt both identically.
          const pool = Array.from({ length: 24 }, (_, k) => GUEST / 2 + k * 4096);
          const st = cores.map((c) => {
            segs.forEach((s, i) => {
              u64(c, l.segs + 16 * i, s.addr + i * 4); // distinct, possibly overlapping pieces
              c.u32[(l.segs + 16 * i + 8) >> 2] = s.len;
            });
            pool.forEach((b, k) => u64(c, l.pool + 8 * k, b));
            for (let i = 0; i < GUEST; i += 4) c.u32[(c.guestBase + i) >> 2] = (i * 2654435761) >>> 0;
            return c.fn.planPages(l.segs, segs.length, 4096, 0, 0xffffffff, l.pool, pool.length, GUEST, 0, l.out, OUT);
          });
          expect(st[0]).toBe(st[1]);
          if (st[0] !== 0) return;
          const bytes = cores[0]!.u32[(l.out + 28) >> 2]!; // PLAN_NEEDED
          for (const c of cores) for (const [word, v] of corruption) if (word * 4 < bytes) c.u32[(l.out >> 2) + word] = v;
          const res = cores.map((c) => {
            const args = [l.segs, segs.length, l.out, bytes, c.guestBase, GUEST] as const;
            return which === 0 ? c.fn.bounceCopyOut(...args) : which === 1 ? c.fn.bounceZero(...args) : c.fn.bounceCopyBack(...args, actual);
          });
          expect(res[0]).toBe(res[1]);
          same(`copy function ${which} -> ${res[0]}`);
        },
      ),
      150,
    );
  });
});
