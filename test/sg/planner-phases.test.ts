// The planner's phase deduplication: a bitmap of phases already tried when the output area has
// room for it (linear), a scan of the earlier segments when not (quadratic). Both give the same
// status and plan image, on both engines. And a pool that is too small says how many pages it needs.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadCoreSync, planPageList } from '../../src/index';
import { COPY_ENTRY_SIZE, PAGE_ENTRY_SIZE, PLAN_COPY_COUNT, PLAN_HEADER_SIZE, PLAN_PAGE_COUNT, RULE_HYPERV, RULE_NVME_PRP, SEG_SIZE } from '../../src/generated/constants';
import { expectCode } from '../util/errors';
import { check } from '../util/fc';
import { ENGINES } from '../util/engines';

const segmentsArb = fc.array(fc.record({ addr: fc.integer({ min: 0, max: 0x3f_0000 }), len: fc.integer({ min: 1, max: 600 }) }), { minLength: 1, maxLength: 3 });

describe.each(ENGINES)('planner phases (%s)', (engine) => {
  it('the bitmap path and the scan path give the same status and the same plan image', () => {
    const core = loadCoreSync({ engine, guestBytes: 4 << 20 });
    const segs = core.alloc(3 * SEG_SIZE);
    const pool = core.alloc(8 * 8);
    const big = core.alloc(64 * 1024);
    const small = core.alloc(1024);
    for (let k = 0; k < 8; k++) core.dv.setBigUint64(pool + 8 * k, BigInt(0x30_0000 + k * 4096), true);
    check(fc.property(segmentsArb, fc.constantFrom(RULE_HYPERV, RULE_NVME_PRP), fc.integer({ min: 0, max: 8 }), (list, rule, poolCount) => {
      list.forEach((s, i) => {
        core.dv.setBigUint64(segs + i * SEG_SIZE, BigInt(s.addr), true);
        core.dv.setBigUint64(segs + i * SEG_SIZE + 8, BigInt(s.len), true);
      });
      // Under the bitmap's 40 + 512 bytes, but enough for any plan of these lists.
      const scanCap = PLAN_HEADER_SIZE + 511;
      expect(scanCap).toBeGreaterThanOrEqual(PLAN_HEADER_SIZE + 4 * PAGE_ENTRY_SIZE + 11 * COPY_ENTRY_SIZE);
      const run = (out: number, cap: number) => {
        const st = core.fn.planPages(segs, list.length, 4096, rule, 0xffffffff, pool, poolCount, 4 << 20, 0, out, cap);
        const bytes = st !== 0 ? PLAN_HEADER_SIZE
          : PLAN_HEADER_SIZE + core.u32[(out + PLAN_PAGE_COUNT) >> 2]! * PAGE_ENTRY_SIZE + core.u32[(out + PLAN_COPY_COUNT) >> 2]! * COPY_ENTRY_SIZE;
        return { st, image: core.u8.slice(out, out + bytes).join() };
      };
      const a = run(big, 64 * 1024);
      const b = run(small, scanCap);
      return a.st === b.st && a.image === b.image;
    }), 300);
  });

  it('"the pool is too small" says how many bounce pages the plan needs and how many the pool holds', () => {
    const core = loadCoreSync({ engine, guestBytes: 4 << 20 });
    const list = [{ addr: 0x1_0010, len: 3000 }, { addr: 0x2_0020, len: 3000 }, { addr: 0x3_0030, len: 3000 }];
    const e = expectCode(() => planPageList(list, { rule: 'hyperv', core, bouncePages: [0x10_0000] }), 'BouncePoolTooSmall');
    const need = Number(/needs (\d+) bounce pages, bouncePages holds 1/.exec(e.message)?.[1]);
    expect(need).toBeGreaterThan(1);
    const pool = Array.from({ length: need }, (_, k) => 0x10_0000 + k * 4096);
    expect(planPageList(list, { rule: 'hyperv', core, bouncePages: pool }).bounceEntries.length).toBe(need);
    expectCode(() => planPageList(list, { rule: 'hyperv', core, bouncePages: pool.slice(1) }), 'BouncePoolTooSmall');
  });

  it('plans a 1024-segment misaligned list (the case the scan made quadratic)', () => {
    const core = loadCoreSync({ engine, guestBytes: 64 << 20 });
    // 1024 pieces of one run that starts 0x200 into a page: every segment offers the same phase.
    const list = Array.from({ length: 1024 }, (_, i) => ({ addr: 0x1_0200 + i * 4096, len: i === 1023 ? 100 : 4096 }));
    const plan = planPageList(list, { rule: 'hyperv', core });
    expect(plan.byteOffset).toBe(0x200);
    expect(plan.bouncedBytes).toBe(0);
  });
});
