// The core heap (src/engine/heap.ts): size classes, reuse after free, alignment, zeroing,
// refused frees, bounded use under churn, and one heap shared by every Core over a memory.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadCoreSync } from '../../src/index';
import { classOf, classSize } from '../../src/engine/heap';
import { expectCode } from '../util/errors';
import { check } from '../util/fc';

describe('size classes', () => {
  it('the class of n is the smallest class that holds n, and wastes under 25% above 128 B', () => {
    for (const n of [1, 16, 17, 128, 129, 160, 161, 256, 257, 4096, 4097, 69632 + 4096, 2 ** 31 - 1, 2 ** 31]) {
      const c = classOf(n);
      expect(classSize(c)).toBeGreaterThanOrEqual(n);
      if (c > 0) expect(classSize(c - 1)).toBeLessThan(n);
    }
    expect(classSize(classOf(2 ** 31))).toBe(2 ** 31);
    check(fc.property(fc.integer({ min: 129, max: 2 ** 31 }), (n) => {
      const c = classOf(n);
      return classSize(c) >= n && classSize(c - 1) < n && classSize(c) < n * 1.25;
    }));
  });
});

describe('core.alloc and core.free', () => {
  it('a freed region is reused by the next request of its class, zeroed again', () => {
    const core = loadCoreSync();
    const a = core.alloc(100);
    core.u8.fill(0xab, a, a + 100);
    core.free(a);
    const b = core.alloc(100);
    expect(b).toBe(a);
    expect(core.u8.subarray(b, b + 100).every((x) => x === 0)).toBe(true);
    expect(core.heapStats().liveBlocks).toBe(1);
  });

  it('honours every alignment up to 64 KiB, also on a reused block', () => {
    const core = loadCoreSync({ engine: 'reference' });
    for (let align = 1; align <= 65536; align *= 2) {
      const p = core.alloc(5000, align);
      expect(p % align).toBe(0);
      core.free(p);
      const q = core.alloc(5000 + 16, Math.min(align * 2, 65536));
      expect(q % Math.min(align * 2, 65536)).toBe(0);
      core.free(q);
    }
  });

  it('live regions never overlap (random alloc/free sequences)', () => {
    const core = loadCoreSync();
    check(fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 20000 }), fc.constantFrom(1, 8, 64, 4096), fc.boolean()), { maxLength: 60 }), (ops) => {
      const live: [number, number][] = [];
      for (const [n, align, freeOne] of ops) {
        if (freeOne && live.length > 0) core.free(live.splice(n % live.length, 1)[0][0]);
        const p = core.alloc(n, align);
        core.u8.fill(0x5a, p, p + n);
        for (const [q, m] of live) if (p < q + m && q < p + n) return false;
        live.push([p, n]);
      }
      for (const [q] of live) core.free(q);
      return true;
    }));
  });

  it('refuses a double free, a pointer it never returned and a non-integer, without changing the heap', () => {
    const core = loadCoreSync();
    const p = core.alloc(64);
    const before = core.heapStats();
    for (const bad of [p + 16, p - 16, 0, 4096, NaN, 1.5, -16, 2 ** 40, core.byteLength + 16]) expectCode(() => core.free(bad), 'InvalidArgument');
    expect(core.heapStats()).toEqual(before);
    core.free(p);
    expect(expectCode(() => core.free(p), 'InvalidArgument').message).toMatch(/freed already/);
  });

  it('refuses sizes and alignments that are not integers or powers of two', () => {
    const core = loadCoreSync();
    for (const [n, a] of [[NaN, 8], [-1, 8], [1.5, 8], [8, 3], [8, 0], [8, NaN], [2 ** 53, 8]]) expectCode(() => core.alloc(n, a), 'InvalidArgument');
    expectCode(() => core.alloc(2 ** 31), 'OutOfMemory');
  });

  it('churn of mixed sizes stays flat after the first round: the heap stops growing', () => {
    const core = loadCoreSync();
    const sizes = [24, 200, 4096 + 8192, 65536 + 4096, 1000, 33];
    const round = () => {
      const ps = sizes.map((n, i) => core.alloc(n, i % 2 ? 4096 : 8));
      for (const p of ps.reverse()) core.free(p);
    };
    round();
    const after1 = core.heapStats().heapBytes;
    for (let i = 0; i < 10000; i++) round();
    expect(core.heapStats().heapBytes).toBe(after1);
    expect(core.heapStats().liveBlocks).toBe(0);
  });

  it('two Cores over one shared memory share one heap: a region allocated by one is freed by the other and reused', () => {
    const a = loadCoreSync({ shared: true, guestBytes: 65536 });
    const b = loadCoreSync({ memory: a.memory, engine: 'reference' });
    expect(b.guestBase).toBe(a.guestBase);
    const p = a.alloc(3000);
    b.free(p);
    expect(b.alloc(3000)).toBe(p);
    expect(a.heapStats()).toEqual(b.heapStats());
  });
});
