// GuestMemory: gpa -> guestBase + gpa, range-checked read/write/view, and gather/scatter in one
// engine call through a segment list, a PagePlan from planPageList, or GPA range bytes.
import { describe, expect, it } from 'vitest';
import {
  encodeGpaRange, GuestMemory, loadCoreSync, planPageList, planSegments, type Segment,
} from '../../src/index';
import { ENGINES } from '../util/engines';
import { expectCode } from '../util/errors';

const GUEST = 1 << 20;
const P = 4096;

const pattern = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed * 13) & 0xff);

describe.each(ENGINES)('GuestMemory (%s)', (engine) => {
  const core = loadCoreSync({ engine, guestBytes: GUEST });
  const mem = new GuestMemory(core);

  it('maps gpa g to core offset guestBase + g', () => {
    expect(mem.size).toBe(GUEST);
    expect(mem.base).toBe(core.guestBase);
    mem.write(0x1234, Uint8Array.of(1, 2, 3));
    expect(Array.from(core.u8.subarray(core.guestBase + 0x1234, core.guestBase + 0x1237))).toEqual([1, 2, 3]);
    expect(Array.from(mem.view(0x1234, 3))).toEqual([1, 2, 3]);
    expect(Array.from(mem.read(0x1233, 5))).toEqual([0, 1, 2, 3, 0]);
    const dest = new Uint8Array(8).fill(9);
    expect(Array.from(mem.read(0x1234, 3, dest))).toEqual([1, 2, 3]);
    expect(dest[3]).toBe(9);
    expect(mem.translate(0x1234, 3, 'write')).toBe(core.guestBase + 0x1234);
    // The last byte, and an empty range at the very end, are inside.
    mem.write(GUEST - 1, Uint8Array.of(0xee));
    expect(mem.read(GUEST - 1, 1)[0]).toBe(0xee);
    expect(mem.read(GUEST, 0).length).toBe(0);
  });

  it('[H28] reads, writes and views partly outside guest RAM are refused and write nothing', () => {
    mem.write(GUEST - 4, Uint8Array.of(1, 1, 1, 1));
    expect(expectCode(() => mem.write(GUEST - 4, new Uint8Array(5)), 'OutsideGuestRam').details).toMatchObject({ address: GUEST - 4, length: 5 });
    expect(Array.from(mem.read(GUEST - 4, 4))).toEqual([1, 1, 1, 1]);
    expectCode(() => mem.read(GUEST, 1), 'OutsideGuestRam');
    expectCode(() => mem.view(2 ** 52, 1), 'OutsideGuestRam');
    expectCode(() => mem.read(GUEST - 1, 0xffffffff), 'OutsideGuestRam');
    expectCode(() => mem.read(-1, 1), 'InvalidArgument');
    expectCode(() => mem.read(1.5, 1), 'InvalidArgument');
    expectCode(() => mem.read(0, 8, new Uint8Array(4)), 'BufferTooSmall');
    expectCode(() => new GuestMemory(loadCoreSync({ engine })), 'InvalidArgument');
  });

  it('gathers and scatters a segment list as one stream', () => {
    const segs: Segment[] = [{ addr: 0x1_0ff0, len: 0x10 }, { addr: 0x3_0000, len: P }, { addr: 0x8_0000, len: 0 }, { addr: 0x5_0000, len: 7 }];
    const data = pattern(0x10 + P + 7);
    expect(mem.scatter(segs, data)).toBe(data.length);
    expect(Array.from(mem.read(0x1_0ff0, 0x10))).toEqual(Array.from(data.subarray(0, 0x10)));
    expect(Array.from(mem.read(0x5_0000, 7))).toEqual(Array.from(data.subarray(0x10 + P)));
    expect(Array.from(mem.gather(segs))).toEqual(Array.from(data));
    // A prefix of the stream, into a caller's buffer, and a short scatter (the device produced less).
    const into = new Uint8Array(64);
    expect(Array.from(mem.gather(segs, { into, length: 20 }))).toEqual(Array.from(data.subarray(0, 20)));
    expect(mem.scatter(segs, Uint8Array.of(0xaa, 0xbb))).toBe(2);
    expect(Array.from(mem.read(0x1_0ff0, 3))).toEqual([0xaa, 0xbb, data[2]]);
    expectCode(() => mem.gather(segs, { into: new Uint8Array(8) }), 'BufferTooSmall');
  });

  it('a buffer in core memory (a region or a view) is used in place, with no staging copy', () => {
    const at = core.alloc(3 * P, 8);
    const segs = [{ addr: 0x2_0000, len: P }, { addr: 0x6_0800, len: 2 * P }];
    core.u8.set(pattern(3 * P, 5), at);
    expect(mem.scatter(segs, { ptr: at, len: 3 * P })).toBe(3 * P);
    expect(Array.from(mem.read(0x6_0800, 2 * P))).toEqual(Array.from(pattern(3 * P, 5).subarray(P)));
    core.u8.fill(0, at, at + 3 * P);
    const out = mem.gather(segs, { into: core.view(at, 3 * P) });
    expect(out.byteOffset).toBe(at);
    expect(Array.from(core.u8.subarray(at, at + 3 * P))).toEqual(Array.from(pattern(3 * P, 5)));
    // Guest to guest through the window itself (no IOMMU: allowed, memmove per segment).
    mem.gather([{ addr: 0x2_0000, len: 16 }], { into: mem.view(0x2_0008, 16) });
    expect(Array.from(mem.read(0x2_0008, 16))).toEqual(Array.from(pattern(3 * P, 5).subarray(0, 16)));
  });

  it('gathers through a PagePlan exactly the bytes the host reads through its page list', () => {
    const segs = [{ addr: 0x1_0100, len: 3840 }, { addr: 0x2_0000, len: P }, { addr: 0x4_0000, len: 100 }];
    const src = pattern(3840 + P + 100, 3);
    mem.scatter(segs, src);
    const plan = planPageList(segs, { rule: 'hyperv', core });
    expect(plan.bouncedBytes).toBe(0);
    expect(planSegments(plan)).toEqual(segs);
    expect(Array.from(mem.gather(plan))).toEqual(Array.from(src));
    // Contiguous frames merge; a plan whose pages cannot hold byteCount is refused.
    expect(planSegments({ ...plan, pages: [0x10, 0x11, 0x12] })).toEqual([{ addr: 0x1_0100, len: 3840 + P + 100 }]);
    expectCode(() => mem.gather({ ...plan, pages: plan.pages.slice(0, 2) }), 'InvalidPlan');
  });

  it('scatters through GPA range bytes as a host receives them in a GPA-direct packet', () => {
    const segs = [{ addr: 0x3_0e00, len: 0x200 }, { addr: 0x7_0000, len: 0x1000 }, { addr: 0x9_0000, len: 0x10 }];
    const ranges = encodeGpaRange(core, segs);
    const data = pattern(0x1210, 9);
    expect(mem.scatter({ gpaRanges: ranges, rangeCount: 1 }, data)).toBe(0x1210);
    expect(Array.from(mem.gather(segs))).toEqual(Array.from(data));
    expect(Array.from(mem.gather({ gpaRanges: ranges, rangeCount: 1 }))).toEqual(Array.from(data));
    // Hostile range bytes are a typed decode error, not a DMA.
    expectCode(() => mem.gather({ gpaRanges: ranges, rangeCount: 0 }), 'GpaRangeCountZero');
  });

  it('[H28] a list that runs partly outside guest RAM fails as a whole: no segment is written', () => {
    mem.write(0x1000, new Uint8Array(16));
    const segs = [{ addr: 0x1000, len: 16 }, { addr: GUEST - 8, len: 16 }];
    const e = expectCode(() => mem.scatter(segs, new Uint8Array(32).fill(0x77)), 'OutsideGuestRam');
    expect(e.details).toMatchObject({ segment: 1, address: GUEST });
    expect(mem.read(0x1000, 16).every((b) => b === 0)).toBe(true);
    expect(expectCode(() => mem.gather([{ addr: 2 ** 52 - 1, len: 2 }]), 'OutsideGuestRam').details).toMatchObject({ segment: 0 });
  });

  it('[H25] a zero-length transfer succeeds and touches nothing; more data than the list holds is DmaOverrun', () => {
    expect(mem.gather([]).length).toBe(0);
    expect(mem.scatter([{ addr: 2 ** 52, len: 0 }], new Uint8Array(0))).toBe(0);
    mem.write(0x4000, Uint8Array.of(5, 5, 5, 5));
    const e = expectCode(() => mem.scatter([{ addr: 0x4000, len: 2 }], Uint8Array.of(1, 2, 3)), 'DmaOverrun');
    expect(e.details).toMatchObject({ detail: 2 });
    expect(Array.from(mem.read(0x4000, 4))).toEqual([5, 5, 5, 5]);
    expectCode(() => mem.gather([{ addr: -4, len: 2 }]), 'InvalidArgument');
    expectCode(() => mem.gather([{ addr: 0, len: 2 ** 32 }]), 'InvalidArgument');
  });
});
