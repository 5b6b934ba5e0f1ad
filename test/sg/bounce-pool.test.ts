// BouncePool: taking and returning bounce pages, and quarantining pages whose shared/private
// transition failed (hardening L19, checklist item 30).
import { describe, expect, it } from 'vitest';
import { BouncePool, checkPageList } from '../../src/index';
import { codeOf } from '../util/errors';

const P = 4096;
const pages = (n: number) => Array.from({ length: n }, (_, k) => 0x80_0000 + k * P);

describe('BouncePool', () => {
  it('plans with its free pages, takes exactly the ones used, and gets them back', () => {
    const shared: number[] = [];
    const pool = new BouncePool(pages(4), { makeShared: (g) => shared.push(g) });
    const segs = [{ addr: 0x10_0200, len: 3584 }, { addr: 0x20_0200, len: 4096 }, { addr: 0x30_0200, len: 3584 }];
    const { plan, pages: taken } = pool.plan(segs, { rule: 'hyperv' });
    expect(taken).toEqual(pages(2));
    expect(shared).toEqual(pages(2));
    expect(plan.bounceEntries.map((j) => plan.pages[j]! * P)).toEqual(taken);
    expect(checkPageList(segs, plan, 'hyperv').ok).toBe(true);
    expect(pool.free).toBe(2);
    pool.release(taken);
    expect(pool.free).toBe(4);
    expect(codeOf(() => pool.release(taken))).toBe('InvalidArgument'); // not taken twice
  });

  it('[H29] a pool that runs out fails the request and keeps every page', () => {
    const pool = new BouncePool(pages(2));
    expect(codeOf(() => pool.take(3))).toBe('BouncePoolTooSmall');
    expect(pool.free).toBe(2);
    expect(codeOf(() => new BouncePool([0x1001]))).toBe('BadBouncePage');
    expect(codeOf(() => new BouncePool([0x1000, 0x1000]))).toBe('BadBouncePage');
  });

  it('[H30] a failed "make shared" quarantines that page, returns the others, and fails the request', () => {
    const privated: number[] = [];
    const pool = new BouncePool(pages(4), {
      makeShared: (g) => {
        if (g === pages(4)[1]) throw new Error('host refused');
      },
      makePrivate: (g) => privated.push(g),
    });
    expect(codeOf(() => pool.take(3))).toBe('BounceTransitionFailed');
    expect(pool.quarantined).toEqual([pages(4)[1]]);
    expect(privated).toEqual([pages(4)[0]]); // the page already shared went back through makePrivate
    expect(pool.free).toBe(3);
    // The quarantined page is never handed out again.
    const again = pool.take(3);
    expect(again).not.toContain(pages(4)[1]);
  });

  it('[H30] a failed "make private" quarantines the page instead of freeing it', () => {
    const pool = new BouncePool(pages(2), {
      makePrivate: (g) => {
        if (g === pages(2)[0]) throw new Error('re-encryption failed');
      },
    });
    const taken = pool.take(2);
    pool.release(taken);
    expect(pool.quarantined).toEqual([pages(2)[0]]);
    expect(pool.free).toBe(1);
    expect(pool.take(1)).toEqual([pages(2)[1]]);
  });
});
