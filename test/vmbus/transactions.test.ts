// The requester's transaction table (spec §2.9, hardening L6) and the in-flight set of peer
// requests: checklist 16 (bad completion ids are counted and ignored, table unchanged) and 40
// (one completion per id, never two).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { InFlightSet, TransactionTable } from '../../src/index';
import { check } from '../util/fc';
import { expectCode } from './helpers';

describe('transaction table', () => {
  it('ids are small integers from 1, never 0; the high half is the slot generation', () => {
    const t = new TransactionTable<string>(4);
    expect([t.alloc('a'), t.alloc('b'), t.alloc('c'), t.alloc('d')]).toEqual([1, 2, 3, 4]);
    expect(t.alloc('e')).toBe(0); // full
    expect(t.transactionId(2)).toBe(2n);
    expect(t.take(2, 0)).toBe(2);
    expect(t.taken).toBe('b');
    expect(t.alloc('f')).toBe(2);
    expect(t.generation(2)).toBe(1);
    expect(t.transactionId(2)).toBe((1n << 32n) | 2n);
    expect(t.counters).toMatchObject({ issued: 5, completed: 1 });
  });

  it('[H16] a completion with id 0, an id beyond the table, an unknown id, a stale generation: counted, ignored, table unchanged', () => {
    const t = new TransactionTable<number>(8);
    const a = t.alloc(10);
    const b = t.alloc(11);
    const before = JSON.stringify(t.snapshot());
    expect(t.take(0, 0)).toBe(0); // id 0 is for unsolicited packets (spec §2.3)
    expect(t.take(9, 0)).toBe(0); // beyond capacity
    expect(t.take(0xffffffff, 0xffffffff)).toBe(0); // Linux's special ids
    expect(t.take(0, 5)).toBe(0);
    expect(t.take(5, 0)).toBe(0); // a free slot that was never used
    expect(t.take(a, 7)).toBe(0); // right slot, wrong generation
    expect(JSON.stringify(t.snapshot())).toBe(before);
    expect(t.counters).toMatchObject({ zeroId: 1, outOfRange: 3, unknown: 2, completed: 0, duplicate: 0 });
    expect(t.take(b, 0)).toBe(b);
    expect(t.taken).toBe(11);
  });

  it('[H16] [H40] a completion for an id already completed is a counted duplicate: it never completes twice, even after the slot is reused', () => {
    const t = new TransactionTable<string>(2);
    const id = t.alloc('first');
    expect(t.take(id, 0)).toBe(id);
    const snap = JSON.stringify(t.snapshot());
    expect(t.take(id, 0)).toBe(0); // replayed completion
    expect(JSON.stringify(t.snapshot())).toBe(snap);
    expect(t.counters.duplicate).toBe(1);
    const again = t.alloc('second'); // same slot, next generation
    expect(again).toBe(id);
    expect(t.take(id, 0)).toBe(0); // the old completion replayed once more cannot complete the new use
    expect(t.counters.duplicate).toBe(2);
    expect(t.isLive(id)).toBe(true);
    expect(t.take(id, 1)).toBe(id);
    expect(t.taken).toBe('second');
  });

  it('a timed-out or cancelled transaction ends once; its late completion is counted as late', () => {
    const t = new TransactionTable<string>(4);
    const a = t.alloc('a');
    const b = t.alloc('b');
    t.end(a, 'timedOut');
    t.end(b, 'cancelled');
    expectCode(() => t.end(a, 'timedOut'), 'InvalidArgument');
    expect(t.take(a, 0)).toBe(0);
    expect(t.take(b, 0)).toBe(0);
    expect(t.counters).toMatchObject({ timedOut: 1, cancelled: 1, late: 2, completed: 0 });
  });

  it('unalloc undoes an id that never reached the wire: same generation, nothing counted', () => {
    const t = new TransactionTable(2);
    const a = t.alloc(null);
    t.unalloc(a);
    expect(t.generation(a)).toBe(0);
    expect(t.counters.issued).toBe(0);
    expect(t.outstanding).toBe(0);
    expectCode(() => t.unalloc(a), 'InvalidArgument');
  });

  it('ages are lower bounds stamped at the first clock sample after issue', () => {
    const t = new TransactionTable<string>(4);
    const a = t.alloc('a');
    expect(t.ageOf(a, 1000)).toBe(0); // not stamped yet
    t.sample(1000);
    const b = t.alloc('b');
    t.sample(1500);
    expect(t.ageOf(a, 1600)).toBe(600);
    expect(t.ageOf(b, 1600)).toBe(100);
    expect(t.expired(1600, 550)).toEqual([a]);
    expect(t.list(2000).map((x) => [x.id, x.ageMs, x.context])).toEqual([[a, 1000, 'a'], [b, 500, 'b']]);
  });

  it('property: against a model, any sequence of issues and (good or hostile) completions keeps every id completing exactly once', () => {
    type Op = { kind: 'alloc' } | { kind: 'complete'; pick: number; hi: number; lo: number; good: boolean } | { kind: 'expire'; pick: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.constant({ kind: 'alloc' as const }),
      fc.record({ kind: fc.constant('complete' as const), pick: fc.nat(), hi: fc.nat({ max: 3 }), lo: fc.nat({ max: 20 }), good: fc.boolean() }),
      fc.record({ kind: fc.constant('expire' as const), pick: fc.nat() }),
    );
    check(fc.property(fc.integer({ min: 1, max: 8 }), fc.array(op, { maxLength: 200 }), (cap, ops) => {
      const t = new TransactionTable<number>(cap);
      const live = new Map<number, { hi: number; ctx: number }>(); // id -> current use
      const ended = new Set<number>(); // contexts that ended, each exactly once
      let next = 0;
      for (const o of ops) {
        if (o.kind === 'alloc') {
          const id = t.alloc(next);
          if (live.size === cap) expect(id).toBe(0);
          else {
            expect(id).toBeGreaterThanOrEqual(1);
            expect(live.has(id)).toBe(false);
            live.set(id, { hi: t.generation(id), ctx: next });
          }
          next++;
        } else if (o.kind === 'complete') {
          const ids = [...live.keys()];
          const good = o.good && ids.length > 0;
          const id = good ? ids[o.pick % ids.length]! : o.lo;
          const hi = good ? live.get(id)!.hi : o.hi;
          const expectOk = live.has(id) && live.get(id)!.hi === hi;
          const got = t.take(id, hi);
          expect(got).toBe(expectOk ? id : 0);
          if (expectOk) {
            expect(ended.has(t.taken!)).toBe(false);
            expect(t.taken).toBe(live.get(id)!.ctx);
            ended.add(t.taken!);
            live.delete(id);
          }
        } else if (live.size > 0) {
          const id = [...live.keys()][o.pick % live.size]!;
          t.end(id, 'timedOut');
          expect(ended.has(t.taken!)).toBe(false);
          ended.add(t.taken!);
          live.delete(id);
        }
        expect(t.outstanding).toBe(live.size);
      }
    }), 300);
  });
});

describe('in-flight set of peer requests', () => {
  it('[H40] a second request with an id already in flight is refused; completing removes it once', () => {
    const s = new InFlightSet(4);
    expect(s.add(7, 0)).toBe(1);
    expect(s.add(7, 0)).toBe(0);
    expect(s.add(7, 1)).toBe(1);
    expect(s.remove(7, 0)).toBe(true);
    expect(s.remove(7, 0)).toBe(false);
    expect(s.add(1, 1)).toBe(1);
    expect(s.add(2, 2)).toBe(1);
    expect(s.add(3, 3)).toBe(1);
    expect(s.add(4, 4)).toBe(-1); // full: the peer cannot make it grow
    expect(s.size).toBe(4);
  });

  it('property: behaves like a Set of (lo, hi) pairs up to its bound', () => {
    const pair = fc.tuple(fc.nat({ max: 40 }), fc.constantFrom(0, 1, 0xffffffff));
    check(fc.property(fc.integer({ min: 1, max: 64 }), fc.array(fc.tuple(fc.boolean(), pair), { maxLength: 400 }), (max, ops) => {
      const s = new InFlightSet(max);
      const m = new Set<string>();
      for (const [add, [lo, hi]] of ops) {
        const k = `${lo}/${hi}`;
        if (add) {
          const r = s.add(lo, hi);
          expect(r).toBe(m.has(k) ? 0 : m.size >= max ? -1 : 1);
          if (r === 1) m.add(k);
        } else expect(s.remove(lo, hi)).toBe(m.delete(k));
        expect(s.size).toBe(m.size);
      }
      for (const k of m) {
        const [lo, hi] = k.split('/').map(Number);
        expect(s.has(lo!, hi!)).toBe(true);
      }
    }), 300);
  });
});
