// spec/vmbus.md §4.7 worked examples A-C through the batch classifier, the NVMe PRP variant,
// the class bits, and the violation explanations, on both engines.
import { describe, expect, it } from 'vitest';
import { classifySegments, constants as K, describeSegmentClass, encodeGpaRange, SgringError } from '../../src/index';
import { core, ENGINES } from '../util/engines';

const A = [{ addr: 0x12345e00, len: 0x200 }, { addr: 0x20000000, len: 0x1000 }, { addr: 0x30000000, len: 0x800 }];
const B = [{ addr: 0x10000000, len: 0x1000 }, { addr: 0x20000100, len: 0x200 }, { addr: 0x30000000, len: 0x1000 }];
const C = [{ addr: 0x1000e00, len: 0x100 }, { addr: 0x1000f00, len: 0x100 }];

const { CLS_FIRST: FIRST, CLS_MIDDLE: MIDDLE, CLS_LAST: LAST, CLS_ONLY: ONLY, CLS_START_ALIGNED: SA, CLS_END_ALIGNED: EA,
  CLS_VIOLATION: V, CLS_EMPTY: EMPTY, CLS_DWORD_MISALIGNED: ODD } = K;

describe.each(ENGINES)('spec §4.7 page-list examples through the classifier (%s)', (engine) => {
  it('A: the compliant 6656-byte read is legal; seg0 ends at the page end, seg1 is a full page, seg2 ends early', () => {
    const r = classifySegments(core(engine), A);
    expect(r.firstViolation).toBe(-1);
    expect(r.violation).toBeUndefined();
    expect(Array.from(r.classes)).toEqual([FIRST | EA, MIDDLE | SA | EA, LAST | SA]);
    expect(describeSegmentClass(r.classes[2]!)).toEqual({
      position: 'last', startAligned: true, endAligned: false, violation: false, empty: false, dwordMisaligned: false, overflow: false,
    });
  });

  it('B: the middle segment starting at 0x100 is the first violation; the host would read from 0x20000000', () => {
    const r = classifySegments(core(engine), B);
    expect(r.firstViolation).toBe(1);
    expect(Array.from(r.classes)).toEqual([FIRST | SA | EA, MIDDLE | V, LAST | SA | EA]);
    expect(r.violation).toContain('segment 1 (0x20000100, 0x200 bytes)');
    expect(r.violation).toContain('offset 0x100');
    expect(r.violation).toContain('from 0x20000000 instead of 0x20000100');
  });

  it('C: two adjacent segments in one page break the rule at segment 0; the explanation says to merge them', () => {
    const r = classifySegments(core(engine), C);
    expect(r.firstViolation).toBe(0);
    expect(Array.from(r.classes)).toEqual([FIRST | V, LAST | EA | V]);
    expect(r.violation).toContain('segment 0 (0x1000E00, 0x100 bytes) ends at offset 0xF00');
    expect(r.violation).toContain('merge them first');
    // The merged list is legal (spec: "a model should merge physically contiguous segments first or reject").
    expect(classifySegments(core(engine), [{ addr: 0x1000e00, len: 0x200 }]).firstViolation).toBe(-1);
  });

  it('the GPA encoder refuses exactly what the classifier flags, naming the same segment', () => {
    const c = core(engine);
    for (const [list, index] of [[B, 1], [C, 0]] as const) {
      let err: unknown;
      try {
        encodeGpaRange(c, list);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SgringError);
      expect((err as SgringError).code).toBe('PageListRule');
      expect((err as SgringError).details?.segment).toBe(index);
      expect((err as SgringError).message).toContain(classifySegments(c, list).violation!);
    }
  });

  it('a short first segment: the host would take the bytes past its end as the next stream bytes', () => {
    const r = classifySegments(core(engine), [{ addr: 0x5000, len: 0x800 }, { addr: 0x9000, len: 0x1000 }]);
    expect(r.firstViolation).toBe(0);
    expect(r.violation).toContain('0x800 bytes at 0x5800..0x5FFF');
    expect(r.violation).toContain("segment 1's data at 0x9000");
  });

  it('empty segments are violations in any position; an empty list has no violation', () => {
    const c = core(engine);
    expect(Array.from(classifySegments(c, [{ addr: 0x1000, len: 0 }]).classes)).toEqual([ONLY | SA | EA | V | EMPTY]);
    const r = classifySegments(c, [{ addr: 0x1000, len: 0x1000 }, { addr: 0x3000, len: 0 }, { addr: 0x4000, len: 8 }]);
    expect(r.firstViolation).toBe(1);
    expect(r.violation).toContain('is empty');
    expect(classifySegments(c, [])).toEqual({ firstViolation: -1, classes: new Uint8Array(0) });
  });

  it('NVMe PRP variant: the first entry must be dword aligned, other rules as Hyper-V, any MPS page size', () => {
    const c = core(engine);
    const odd = [{ addr: 0x10002, len: 0xffe }, { addr: 0x20000, len: 0x100 }];
    expect(classifySegments(c, odd).firstViolation).toBe(-1); // Hyper-V allows any start offset
    const r = classifySegments(c, odd, { rule: 'nvme-prp' });
    expect(r.firstViolation).toBe(0);
    expect(r.classes[0]! & ODD).toBe(ODD);
    expect(r.violation).toContain('not dword aligned');
    expect(classifySegments(c, [{ addr: 0x10004, len: 0xffc }, { addr: 0x20000, len: 0x100 }], { rule: 'nvme-prp' }).firstViolation).toBe(-1);
    // With a 64 KiB MPS a 4 KiB-aligned middle entry is mid-page.
    const big = [{ addr: 0x10000, len: 0x10000 }, { addr: 0x31000, len: 0x1000 }, { addr: 0x40000, len: 0x10 }];
    expect(classifySegments(c, big, { rule: 'nvme-prp', pageSize: 4096 }).firstViolation).toBe(-1);
    expect(classifySegments(c, big, { rule: 'nvme-prp', pageSize: 65536 }).firstViolation).toBe(1);
    expect(classifySegments(c, big, { rule: 'nvme-prp', pageSize: 65536 }).violation).toContain('the device');
  });

  it('refuses page sizes that are not a power of two in 4 KiB..128 MiB, and Hyper-V pages other than 4 KiB', () => {
    const c = core(engine);
    for (const pageSize of [0, 2048, 6144, 0x10000000]) {
      expect(() => classifySegments(c, A, { rule: 'nvme-prp', pageSize })).toThrow(SgringError);
    }
    expect(() => classifySegments(c, A, { pageSize: 8192 })).toThrow(/4096-byte pages/);
    expect(() => classifySegments(c, [{ addr: -1, len: 1 }])).toThrow(SgringError);
    expect(() => classifySegments(c, [{ addr: 0, len: 2 ** 32 }])).toThrow(SgringError);
  });

  it('engine: returns n when legal, refuses bad pointers, rules and misaligned lists with InvalidArgument', () => {
    const c = core(engine);
    const segs = c.alloc(64, 8);
    const cls = c.alloc(4);
    c.u32[segs >> 2] = 0x1000;
    c.u32[(segs >> 2) + 2] = 0x1000;
    expect(c.fn.pageListClassify(segs, 1, 4096, 0, cls)).toBe(1);
    expect(c.fn.pageListClassify(segs, 0, 4096, 0, cls)).toBe(0);
    expect(c.fn.pageListClassify(segs, 1, 4096, 2, cls)).toBe(K.E_InvalidArgument);
    expect(c.fn.pageListClassify(segs + 4, 1, 4096, 0, cls)).toBe(K.E_InvalidArgument);
    expect(c.fn.pageListClassify(segs, 0x10000000, 4096, 0, cls)).toBe(K.E_InvalidArgument);
    expect(c.fn.pageListClassify(segs, 1, 4096, 0, c.byteLength)).toBe(K.E_InvalidArgument);
    expect(c.fn.pageListClassify(segs, 1, 4095, 0, cls)).toBe(K.E_InvalidArgument);
  });
});
