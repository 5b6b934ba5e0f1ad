// Plans are caller input once they leave planPageList: a malformed one is an InvalidPlan naming
// its field, never a raw TypeError. And a list the planner refuses does not grow core memory.
import { describe, expect, it } from 'vitest';
import { checkPageList, copyFromBounce, copyToBounce, loadCoreSync, planPageList, zeroBounce } from '../../src/index';
import { codeOf, expectCode } from '../util/errors';
import { ENGINES } from '../util/engines';

describe.each(ENGINES)('plan objects and refused lists (%s)', (engine) => {
  const core = loadCoreSync({ engine, guestBytes: 1 << 20 });
  const segments = [{ addr: 0x1010, len: 100 }, { addr: 0x3000, len: 4096 }];
  const plan = planPageList(segments, { rule: 'hyperv', core, bouncePages: [0x80000] });

  it('a malformed plan passed to the copy functions or checkPageList is InvalidPlan, naming the field', () => {
    const broken: [unknown, RegExp][] = [
      [null, /plan\. is null/],
      ['plan', /not a plan object/],
      [{ ...plan, copies: undefined }, /plan\.copies is undefined, not an array/],
      [{ ...plan, copies: { forEach: 1 } }, /plan\.copies .*not an array/],
      [{ ...plan, pages: undefined }, /plan\.pages/],
      [{ ...plan, pages: [NaN] }, /plan\.pages\[0\]/],
      [{ ...plan, byteCount: -1 }, /plan\.byteCount/],
      [{ ...plan, bounceEntries: [99] }, /plan\.bounceEntries\[0\]/],
      [{ ...plan, copies: [{ ...plan.copies[0], dest: 'x' }] }, /plan\.copies\[0\]\.dest/],
      [{ ...plan, copies: [null] }, /plan\.copies\[0\]/],
    ];
    for (const [p, msg] of broken) {
      for (const fn of [() => copyToBounce(core, segments, p as never), () => zeroBounce(core, segments, p as never),
        () => copyFromBounce(core, segments, p as never, 10), () => checkPageList(segments, p as never, 'hyperv')]) {
        expect(expectCode(fn, 'InvalidPlan').message).toMatch(msg);
      }
    }
    expect(codeOf(() => checkPageList('segments' as never, plan, 'hyperv'))).toBe('InvalidArgument');
    expect(checkPageList(segments, plan, 'hyperv').ok).toBe(true);
    expect(copyToBounce(core, segments, plan)).toBe(plan.bouncedBytes);
  });

  it('a bounce copy outside guest RAM names the segment and says guestBytes sets the window', () => {
    const far = [{ addr: (1 << 20) - 50, len: 100 }, ...segments.slice(1)];
    const e = expectCode(() => copyToBounce(core, far, plan), 'OutsideGuestRam');
    expect(e.message).toMatch(/segment 0 \[1048526, \+100\).*guestBytes/);
  });

  it('[H28] a list outside guest RAM or of 4 GiB and more is refused before any scratch is sized from it: core memory does not grow', () => {
    planPageList([{ addr: 0, len: 4096 }], { rule: 'hyperv', core }); // the planner's scratch exists from here
    const before = core.byteLength;
    const huge = Array.from({ length: 40 }, (_, i) => ({ addr: i * 4096, len: 0xffff_f000 }));
    expect(codeOf(() => planPageList(huge, { rule: 'hyperv', core }))).toMatch(/OutsideGuestRam|TransferTooLarge/);
    expect(codeOf(() => planPageList(huge, { rule: 'nvme-prp', core, guestBytes: 2 ** 52 }))).toBe('TransferTooLarge');
    expect(codeOf(() => planPageList([{ addr: 0, len: 0xffff_ffff }], { rule: 'hyperv', core }))).toBe('OutsideGuestRam');
    expect(core.byteLength).toBe(before);
  });

  it('a large legal list still plans (the output grows once to its exact size)', () => {
    const big = loadCoreSync({ engine, guestBytes: 64 << 20 });
    const list = Array.from({ length: 1024 }, (_, i) => ({ addr: i * 8192 + 512, len: 4096 }));
    const p = planPageList(list, { rule: 'nvme-prp', core: big, bouncePages: Array.from({ length: 1100 }, (_, i) => (32 << 20) + i * 4096) });
    expect(checkPageList(list, p, 'nvme-prp').ok).toBe(true);
  });
});
