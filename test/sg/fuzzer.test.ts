// The policy fuzzer: it must find what is wrong with the driver models, shrink it, explain it,
// and find nothing wrong with the optimal planner.
import { describe, expect, it } from 'vitest';
import {
  bouncePolicies, checkPageList, freebsdSgBounce, linuxLegacyBounce,
  type BouncePolicy,
} from '../../src/index';
import { findCounterexample, formatCounterexample } from '../../src/fuzz/index';

const SEED = 3;
const POOL = Array.from({ length: 8 }, (_, k) => 0x100_0000 + k * 4096);

describe('findCounterexample', () => {
  it('finds a small list that freebsdSgBounce maps wrongly, and explains what the host would read', () => {
    const ce = findCounterexample(bouncePolicies.freebsdSgBounce, { rule: 'hyperv', seed: SEED, runs: 2000 });
    expect(ce).not.toBeNull();
    expect(ce!.seed).toBe(SEED);
    expect(ce!.segments.length).toBeLessThanOrEqual(3);
    // With this seed: an unaligned first piece bounced to offset 0 of its bounce page (spec §4.7 A).
    expect(ce!.violation).toMatch(/^page entry 0 .*the host reads transfer byte 1 /);
    // The violation is real: the checker agrees on the returned plan, and the plan reproduces.
    expect(checkPageList(ce!.segments, ce!.plan!, 'hyperv')).toEqual({ ok: false, violation: ce!.violation });
    expect(freebsdSgBounce(ce!.segments, { rule: 'hyperv', bouncePages: Array.from({ length: 64 }, (_, k) => (0x10000 + k) * 4096) })).toEqual(ce!.plan);
    const text = formatCounterexample(ce!);
    expect(text).toContain('| segment | address | page offset | length | ends at |');
    expect(text).toContain(ce!.violation);
  });

  it('finds nothing wrong with the optimal planner, for correctness or for minimality, under both rules', () => {
    for (const rule of ['hyperv', 'nvme-prp'] as const) {
      for (const check of ['correct', 'minimal'] as const) {
        expect(findCounterexample(bouncePolicies.optimal, { rule, seed: SEED, runs: 300, check })).toBeNull();
      }
    }
    expect(findCounterexample(bouncePolicies.optimal, { rule: 'nvme-prp', pageSize: 16384, seed: SEED, runs: 100 })).toBeNull();
  });

  it('finds linuxLegacyBounce correct but not minimal: it bounces whole transfers', () => {
    expect(findCounterexample(linuxLegacyBounce, { rule: 'hyperv', seed: SEED, runs: 400 })).toBeNull();
    const ce = findCounterexample(linuxLegacyBounce, { rule: 'hyperv', seed: SEED, runs: 400, check: 'minimal' });
    expect(ce?.violation).toMatch(/^the plan copies \d+ bytes where \d+ suffice$/);
  });

  it('catches a policy that throws on plannable lists, and one that forgets the last partial page', () => {
    const refuses: BouncePolicy = () => {
      throw new Error('not today');
    };
    expect(findCounterexample(refuses, { rule: 'hyperv', seed: SEED, runs: 10 })?.violation).toMatch(/refused a list that can be planned/);
    const short: BouncePolicy = (segs, opts) => {
      const plan = bouncePolicies.optimal(segs, opts);
      return plan.pages.length > 1 ? { ...plan, pages: plan.pages.slice(0, -1) } : plan;
    };
    expect(findCounterexample(short, { rule: 'hyperv', seed: SEED, runs: 200 })?.violation).toMatch(/page entries/);
  });
});

describe('the driver models on the spec §4.7 examples', () => {
  const opts = { rule: 'hyperv' as const, bouncePages: POOL };

  it('example A: FreeBSD\'s S/G check bounces segment 0 of a compliant list and breaks it', () => {
    const segs = [{ addr: 0x1234_5e00, len: 0x200 }, { addr: 0x2000_0000, len: 0x1000 }, { addr: 0x3000_0000, len: 0x800 }];
    const plan = freebsdSgBounce(segs, opts);
    expect(plan).toMatchObject({ byteOffset: 0, pages: [POOL[0]! / 4096, 0x20000, 0x30000], bouncedBytes: 0x200 });
    expect(checkPageList(segs, plan, 'hyperv').ok).toBe(false);
    expect(checkPageList(segs, linuxLegacyBounce(segs, opts), 'hyperv').ok).toBe(true);
  });

  it('example B: the short middle segment is bounced alone, and the host still reads a hole', () => {
    const segs = [{ addr: 0x1000_0000, len: 0x1000 }, { addr: 0x2000_0100, len: 0x200 }, { addr: 0x3000_0000, len: 0x1000 }];
    const plan = freebsdSgBounce(segs, opts);
    expect(plan).toMatchObject({ byteOffset: 0, pages: [0x10000, POOL[1]! / 4096, 0x30000], bouncedBytes: 0x200 });
    expect(checkPageList(segs, plan, 'hyperv').violation).toMatch(/transfer byte 4608/);
    expect(linuxLegacyBounce(segs, opts).bouncedBytes).toBe(0x2200);
  });

  it('example C: two pieces of one page give the same PFN twice and too many entries', () => {
    const segs = [{ addr: 0x100_0e00, len: 0x100 }, { addr: 0x100_0f00, len: 0x100 }];
    const plan = freebsdSgBounce(segs, opts);
    expect(plan.pages).toEqual([0x1000, 0x1000, 0x1001]);
    expect(checkPageList(segs, plan, 'hyperv').violation).toMatch(/has 3 page entries/);
  });
});

describe('examples/fuzz-bounce-policy.mjs', () => {
  it('prints the list that breaks freebsdSgBounce and our legal plan for it', async () => {
    const { execFileSync } = await import('node:child_process');
    const script = new URL('../../examples/fuzz-bounce-policy.mjs', import.meta.url);
    const out = execFileSync(process.execPath, [script.pathname], { encoding: 'utf8', timeout: 60_000 });
    expect(out).toContain('freebsdSgBounce breaks this list (seed 3)');
    expect(out).toContain('| 0 | 0x10200 | 0x200 | 1 | 0x201 |');
    expect(out).toMatch(/planPageList: .* -> legal and exact/);
  });
});
