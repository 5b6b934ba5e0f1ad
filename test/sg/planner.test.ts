// planPageList on both engines: the worked examples of spec/vmbus.md §4.7, the D1964 list,
// NVMe's dword rule and MPS, the optimum against a brute-force oracle, and real bytes moved
// through the plan in guest RAM.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkPageList, copyToBounce, loadCoreSync, planPageList, type PagePlan, type Segment } from '../../src/index';
import { check } from '../util/fc';
import { ENGINES } from '../util/engines';

const P = 4096;
const POOL = Array.from({ length: 64 }, (_, k) => 0x200_0000 + k * P);

/** Bytes an independent oracle says byteOffset o copies: a window stays only if every byte maps in place. */
function oracleCost(segs: Segment[], o: number, p: number): { cost: number; pages: number } {
  const starts: number[] = [];
  let total = 0;
  for (const s of segs) {
    starts.push(total);
    total += s.len;
  }
  const pages = Math.ceil((o + total) / p);
  let cost = 0;
  for (let j = 0; j < pages; j++) {
    const from = Math.max(0, j * p - o);
    const to = Math.min(total, (j + 1) * p - o);
    let frame: number | null = null;
    let own = true;
    segs.forEach((s, i) => {
      const a = Math.max(from, starts[i]!);
      const b = Math.min(to, starts[i]! + s.len);
      if (a >= b || !own) return;
      // Every byte k in [a, b) must be at frame*p + (o + k) % p.
      const phys = s.addr + (a - starts[i]!);
      if ((phys - (o + a)) % p !== 0) own = false;
      const f = Math.floor(phys / p) - Math.floor((o + a) / p) + j;
      if (frame === null) frame = f;
      else if (frame !== f) own = false;
    });
    if (!own) cost += to - from;
  }
  return { cost, pages };
}

/** Reads the transfer the way the host does, from guest RAM through the plan. */
function hostRead(core: ReturnType<typeof loadCoreSync>, plan: PagePlan): Uint8Array {
  const out = new Uint8Array(plan.byteCount);
  const p = plan.pageSize;
  for (let k = 0; k < plan.byteCount; k++) {
    const j = Math.floor((plan.byteOffset + k) / p);
    out[k] = core.u8[core.guestBase + plan.pages[j]! * p + ((plan.byteOffset + k) % p)]!;
  }
  return out;
}

describe.each(ENGINES)('planPageList (%s)', (engine) => {
  const core = loadCoreSync({ engine, guestBytes: 0x400_0000 }); // 64 MiB of guest RAM
  const opts = { rule: 'hyperv' as const, core, bouncePages: POOL };

  it('keeps the first of three segments at page offset 512 (3584, 4096, 3584 bytes) and bounces the other two: 7680 bytes (D1964)', () => {
    const segs = [{ addr: 0x10_0200, len: 3584 }, { addr: 0x20_0200, len: 4096 }, { addr: 0x30_0200, len: 3584 }];
    const plan = planPageList(segs, opts);
    expect(plan).toMatchObject({ byteOffset: 512, byteCount: 11264, bouncedBytes: 7680, pages: [0x100, POOL[0]! / P, POOL[1]! / P], bounceEntries: [1, 2] });
    expect(plan.copies).toEqual([
      { segment: 1, segmentOffset: 0, dest: POOL[0], length: 4096, streamOffset: 3584 },
      { segment: 2, segmentOffset: 0, dest: POOL[1], length: 3584, streamOffset: 7680 },
    ]);
    expect(checkPageList(segs, plan, 'hyperv')).toEqual({ ok: true });
  });

  it('spec §4.7 example A: a compliant list is described as it is, nothing copied', () => {
    const segs = [{ addr: 0x1234_5e00, len: 0x200 }, { addr: 0x2000_0000, len: 0x1000 }, { addr: 0x3000_0000, len: 0x800 }];
    const plan = planPageList(segs, { ...opts, guestBytes: 2 ** 40 });
    expect(plan).toMatchObject({ byteOffset: 0xe00, byteCount: 0x1a00, pages: [0x12345, 0x20000, 0x30000], copies: [], bouncedBytes: 0 });
  });

  it('spec §4.7 example B: a middle segment starting mid-page bounces 4608 bytes, not the whole 8704', () => {
    const segs = [{ addr: 0x1000_0000, len: 0x1000 }, { addr: 0x2000_0100, len: 0x200 }, { addr: 0x3000_0000, len: 0x1000 }];
    const plan = planPageList(segs, { ...opts, guestBytes: 2 ** 40 });
    expect(plan).toMatchObject({ byteOffset: 0, bouncedBytes: 4608, pages: [0x10000, POOL[0]! / P, POOL[1]! / P] });
    expect(plan.copies).toEqual([
      { segment: 1, segmentOffset: 0, dest: POOL[0], length: 0x200, streamOffset: 0x1000 },
      { segment: 2, segmentOffset: 0, dest: POOL[0]! + 0x200, length: 0xe00, streamOffset: 0x1200 },
      { segment: 2, segmentOffset: 0xe00, dest: POOL[1], length: 0x200, streamOffset: 0x2000 },
    ]);
    expect(checkPageList(segs, plan, 'hyperv').ok).toBe(true);
  });

  it('spec §4.7 example C: two physically contiguous pieces of one page share one entry', () => {
    const segs = [{ addr: 0x100_0e00, len: 0x100 }, { addr: 0x100_0f00, len: 0x100 }];
    expect(planPageList(segs, opts)).toMatchObject({ byteOffset: 0xe00, pages: [0x1000], copies: [], bouncedBytes: 0 });
  });

  it('NVMe PRP: byteOffset stays dword aligned (an odd first segment is bounced) and pages are MPS-sized', () => {
    // Segment 1 can stay only with byteOffset 0x204; segment 0 (at an odd address) cannot stay with it.
    const segs = [{ addr: 0x10_0201, len: 0x1dfc }, { addr: 0x40_0000, len: 0x2000 }];
    const plan = planPageList(segs, { ...opts, rule: 'nvme-prp', pageSize: 8192, bouncePages: POOL.filter((a) => a % 8192 === 0) });
    expect(plan).toMatchObject({ byteOffset: 0x204, pageSize: 8192, bouncedBytes: 0x1dfc });
    expect(plan.pages[1]).toBe(0x40_0000 / 8192);
    expect(checkPageList(segs, plan, 'nvme-prp').ok).toBe(true);
    // The same list under the Hyper-V rule keeps the odd offset: nothing is copied.
    expect(planPageList([{ addr: 0x10_0201, len: 0xdff }, { addr: 0x11_0000, len: 0x1000 }], opts)).toMatchObject({ byteOffset: 0x201, bouncedBytes: 0 });
    // An odd stream position after the first segment leaves no legal offset for the second: all bounce.
    const odd = [{ addr: 0x10_0201, len: 0x1dff }, { addr: 0x40_0000, len: 0x2000 }];
    expect(planPageList(odd, { ...opts, rule: 'nvme-prp', pageSize: 8192, bouncePages: POOL.filter((a) => a % 8192 === 0) })).toMatchObject({ byteOffset: 0, bouncedBytes: 0x3dff });
  });

  it('copies the fewest bytes any byteOffset allows (brute-force oracle), then uses the fewest pages', () => {
    const seg = fc.record({
      contiguous: fc.boolean(),
      page: fc.nat(30),
      offset: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: P - 1 })),
      len: fc.oneof(fc.integer({ min: 1, max: P }), fc.integer({ min: 1, max: 3 * P })),
    });
    check(
      fc.property(fc.array(seg, { minLength: 1, maxLength: 5 }), (shapes) => {
        const segs: Segment[] = [];
        shapes.forEach((s, i) => {
          const prev = segs[i - 1];
          segs.push({ addr: s.contiguous && prev ? prev.addr + prev.len : (16 + 64 * i + s.page) * P + s.offset, len: s.len });
        });
        const plan = planPageList(segs, opts);
        expect(checkPageList(segs, plan, 'hyperv')).toEqual({ ok: true });
        let best = Infinity;
        let bestPages = Infinity;
        for (let o = 0; o < P; o++) {
          const r = oracleCost(segs, o, P);
          if (r.cost < best || (r.cost === best && r.pages < bestPages)) {
            best = r.cost;
            bestPages = r.pages;
          }
        }
        expect(plan.bouncedBytes).toBe(best);
        expect(plan.pages.length).toBe(bestPages);
      }),
      40,
    );
  });

  it('moves real bytes: after copyToBounce the host reads exactly the caller\'s bytes through the page list', () => {
    const segs = [{ addr: 0x10_0200, len: 3584 }, { addr: 0x20_0200, len: 4096 }, { addr: 0x30_0100, len: 1000 }, { addr: 0x30_04e8, len: 24 }];
    const expected: number[] = [];
    segs.forEach((s, i) => {
      for (let k = 0; k < s.len; k++) {
        const v = (i * 37 + k * 11) & 0xff;
        core.u8[core.guestBase + s.addr + k] = v;
        expected.push(v);
      }
    });
    // Dirty the bounce pages first: a reused page must be fully overwritten or zeroed.
    for (const b of POOL.slice(0, 4)) core.u8.fill(0xee, core.guestBase + b, core.guestBase + b + P);
    const plan = planPageList(segs, opts);
    expect(copyToBounce(core, segs, plan)).toBe(plan.bouncedBytes);
    expect(Array.from(hostRead(core, plan))).toEqual(expected);
    // Bytes of the last bounce page past the transfer are zero, not 0xee.
    const last = plan.pages[plan.pages.length - 1]! * P;
    const endOff = (plan.byteOffset + plan.byteCount) % P;
    expect(core.u8.subarray(core.guestBase + last + endOff, core.guestBase + last + P).every((b) => b === 0)).toBe(true);
  });
});
