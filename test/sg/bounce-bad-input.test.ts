// Bad input to the planner and the bounce copies: spec/hardening.md §3.4 items 28-33, plus the
// planner's own refusals. Every case is a typed SgringError with nothing written.
import { describe, expect, it } from 'vitest';
import {
  copyFromBounce, copyToBounce, loadCoreSync, planPageList, SgringError, zeroBounce, type PagePlan, type Segment,
} from '../../src/index';
import { ENGINES } from '../util/engines';
import { codeOf } from '../util/errors';

const P = 4096;
const POOL = Array.from({ length: 16 }, (_, k) => 0x80_0000 + k * P);

describe.each(ENGINES)('planner and bounce copies, bad input (%s)', (engine) => {
  const core = loadCoreSync({ engine, guestBytes: 16 << 20 });
  const opts = { rule: 'hyperv' as const, core, bouncePages: POOL };
  const g = (gpa: number) => core.guestBase + gpa;

  it('refuses empty lists, zero-length segments, bad numbers and unknown rules or page sizes', () => {
    expect(codeOf(() => planPageList([], opts))).toBe('EmptySegmentList');
    const e = (() => {
      try {
        planPageList([{ addr: 0x1000, len: 8 }, { addr: 0x3000, len: 0 }], opts);
      } catch (x) {
        return x as SgringError;
      }
      return null;
    })();
    expect(e?.code).toBe('ZeroLengthSegment');
    expect(e?.details).toMatchObject({ index: 1 });
    expect(codeOf(() => planPageList([{ addr: -1, len: 8 }], opts))).toBe('InvalidArgument');
    expect(codeOf(() => planPageList([{ addr: 0.5, len: 8 }], opts))).toBe('InvalidArgument');
    expect(codeOf(() => planPageList([{ addr: 0, len: 8 }], { ...opts, rule: 'scsi' as never }))).toBe('InvalidArgument');
    expect(codeOf(() => planPageList([{ addr: 0, len: 8 }], { ...opts, pageSize: 8192 }))).toBe('InvalidPageSize');
    expect(codeOf(() => planPageList([{ addr: 0, len: 8 }], { ...opts, rule: 'nvme-prp', pageSize: 6000 }))).toBe('InvalidPageSize');
    expect(codeOf(() => planPageList([{ addr: 0, len: 0xffff_ffff }, { addr: 0x1_0000_0000, len: 2 }], { ...opts, guestBytes: 2 ** 40 }))).toBe('TransferTooLarge');
  });

  it('[H28] a segment or bounce page partly outside guest RAM is refused before anything is copied', () => {
    expect(codeOf(() => planPageList([{ addr: (16 << 20) - 8, len: 16 }], opts))).toBe('OutsideGuestRam');
    expect(codeOf(() => planPageList([{ addr: 0x1200, len: 16 }], { ...opts, bouncePages: [(16 << 20) - P + P] }))).toBe('OutsideGuestRam');
    // A hand-made plan whose copy lands outside guest RAM: the copier checks every copy first,
    // so the earlier, valid copy has not happened either.
    const segs: Segment[] = [{ addr: 0x1_0100, len: 64 }, { addr: 0x2_0100, len: 64 }];
    core.u8.fill(7, g(0x1_0100), g(0x1_0100) + 64);
    core.u8.fill(0, g(POOL[0]!), g(POOL[0]!) + P);
    const plan: PagePlan = {
      byteOffset: 0, byteCount: 128, pages: [POOL[0]! / P], bounceEntries: [0], bouncedBytes: 128, pageSize: P,
      copies: [
        { segment: 0, segmentOffset: 0, dest: POOL[0]!, length: 64, streamOffset: 0 },
        { segment: 1, segmentOffset: 0, dest: 16 << 20, length: 64, streamOffset: 64 },
      ],
    };
    expect(codeOf(() => copyToBounce(core, segs, plan))).toBe('OutsideGuestRam');
    expect(core.u8[g(POOL[0]!)]).toBe(0);
    // A copy that claims more bytes than its segment has is refused the same way.
    const long = { ...plan, copies: [{ segment: 0, segmentOffset: 32, dest: POOL[0]!, length: 64, streamOffset: 0 }] };
    expect(codeOf(() => copyToBounce(core, segs, long))).toBe('InvalidPlan');
    expect(codeOf(() => copyToBounce(core, segs, { ...plan, copies: [{ ...plan.copies[0]!, segment: 5 }] }))).toBe('InvalidPlan');
  });

  it('[H29] a bounce pool that runs short, or a page limit, is a typed error and nothing is planned', () => {
    const segs = [{ addr: 0x1_0100, len: P }, { addr: 0x3_0100, len: P }, { addr: 0x5_0100, len: P }];
    expect(codeOf(() => planPageList(segs, { ...opts, bouncePages: POOL.slice(0, 1) }))).toBe('BouncePoolTooSmall');
    expect(planPageList(segs, { ...opts, bouncePages: POOL.slice(0, 3) }).bouncedBytes).toBe(2 * P);
    // Keeping pages needs 4 entries; under a 3-entry limit the planner bounces everything instead.
    expect(planPageList(segs, { ...opts, maxPages: 4 })).toMatchObject({ byteOffset: 0x100, bouncedBytes: 2 * P });
    expect(planPageList(segs, { ...opts, maxPages: 3 })).toMatchObject({ byteOffset: 0, bouncedBytes: 3 * P });
    expect(codeOf(() => planPageList(segs, { ...opts, maxPages: 2 }))).toBe('TooManyPages');
  });

  it('[H29] bounce pages that are unaligned, listed twice or inside the transfer are refused', () => {
    const segs = [{ addr: 0x1_0100, len: 64 }, { addr: 0x3_0000, len: 64 }];
    expect(codeOf(() => planPageList(segs, { ...opts, bouncePages: [POOL[0]! + 8] }))).toBe('BadBouncePage');
    const twice = [{ addr: 0x1_0100, len: P }, { addr: 0x3_0100, len: P }, { addr: 0x5_0100, len: P }];
    expect(codeOf(() => planPageList(twice, { ...opts, bouncePages: [POOL[0]!, POOL[0]!, POOL[1]!] }))).toBe('BadBouncePage');
    expect(codeOf(() => planPageList(segs, { ...opts, bouncePages: [0x3_0000] }))).toBe('BadBouncePage');
  });

  it('[H31] copying back after a short read stops at the bytes the device produced', () => {
    const segs = [{ addr: 0x1_0100, len: 3840 }, { addr: 0x2_0100, len: 1000 }];
    const plan = planPageList(segs, opts);
    expect(plan.bouncedBytes).toBe(1000);
    core.u8.fill(0x11, g(0x2_0100), g(0x2_0100) + 1000);
    zeroBounce(core, segs, plan);
    const b = plan.copies[0]!.dest;
    core.u8.fill(0x99, g(b), g(b) + 1000); // what the device wrote into the bounce page
    expect(copyFromBounce(core, segs, plan, 3840 + 300)).toBe(300);
    expect(core.u8[g(0x2_0100) + 299]).toBe(0x99);
    expect(core.u8[g(0x2_0100) + 300]).toBe(0x11);
    expect(copyFromBounce(core, segs, plan, 100)).toBe(0);
    expect(copyFromBounce(core, segs, plan, 1 << 30)).toBe(1000);
  });

  it('[H32] a reused bounce page is zeroed before a read and fully overwritten or zeroed before a write', () => {
    const segs = [{ addr: 0x1_0100, len: 3840 }, { addr: 0x2_0100, len: 1000 }];
    const plan = planPageList(segs, opts);
    const page = plan.pages[plan.bounceEntries[0]!]! * P;
    core.u8.fill(0xee, g(page), g(page) + P); // left over from an earlier request
    zeroBounce(core, segs, plan);
    expect(core.u8.subarray(g(page), g(page) + P).every((x) => x === 0)).toBe(true);
    core.u8.fill(0xee, g(page), g(page) + P);
    core.u8.fill(0x22, g(0x2_0100), g(0x2_0100) + 1000);
    copyToBounce(core, segs, plan);
    const bytes = core.u8.subarray(g(page), g(page) + P);
    expect(bytes.subarray(0, 1000).every((x) => x === 0x22)).toBe(true);
    expect(bytes.subarray(1000).every((x) => x === 0)).toBe(true);
  });

  it('[H33] an unaligned head and tail around whole pages is a legal split: nothing copied, no error', () => {
    const segs = [{ addr: 0x1_0ff0, len: 0x10 }, { addr: 0x5_0000, len: P }, { addr: 0x9_0000, len: 7 }];
    expect(planPageList(segs, opts)).toMatchObject({ byteOffset: 0xff0, bouncedBytes: 0, pages: [0x10, 0x50, 0x90] });
    // A header split across two pages of one physically contiguous buffer is legal too.
    expect(planPageList([{ addr: 0x1_0ff8, len: 0x18 }], opts)).toMatchObject({ byteOffset: 0xff8, pages: [0x10, 0x11], bouncedBytes: 0 });
  });
});
