// Bad input to the DMA path, named after spec/hardening.md §3 items: [H24] DMA into the device's
// own windows (and into the IOMMU's own table), [H27] a list rewritten after the check, [H28]
// hostile lengths, [H61] a callback that re-enters the domain during DMA. Both engines.
import { describe, expect, it } from 'vitest';
import { constants as K, decodeGpaRanges, encodeGpaRange, Iommu, loadCoreSync } from '../../src/index';
import { ENGINES } from '../util/engines';
import { expectCode } from '../util/errors';

const GUEST = 1 << 20;
const P = 4096;
const REGS = 0xf_0000; // the device's register and doorbell window, modelled inside the GPA space
const CMB = 0xe_0000;
const fill = (n: number, v: number) => new Uint8Array(n).fill(v);

describe.each(ENGINES)('DMA bad input (%s)', (engine) => {
  const core = loadCoreSync({ engine, guestBytes: GUEST });
  const iommu = new Iommu(core);
  const guest = iommu.guest;
  const windows = [{ gpa: REGS, len: 0x2000 }, { gpa: CMB, len: P }];

  it('[H24] a DMA that touches the device window fails with DmaDeviceWindow and no side effects, in either mode', () => {
    for (const mode of ['strict', 'identity'] as const) {
      const d = iommu.domain(`nvme-${mode}`, { mode, windows });
      if (mode === 'strict') {
        d.map(REGS - 2 * P, 2 * P);
        expect(d.windows).toEqual(windows);
      }
      guest.write(REGS - 16, fill(16, 0));
      guest.write(REGS, fill(16, 0xcc));
      // PRP1 below the window, PRP2 inside it: nothing at all is written.
      const e = expectCode(() => d.scatter([{ addr: REGS - 16, len: 16 }, { addr: REGS + 0x1000, len: 8 }], fill(24, 1)), 'DmaDeviceWindow');
      expect(e.details).toMatchObject({ segment: 1, address: REGS + 0x1000, detail: 0 });
      expect(guest.read(REGS - 16, 16).every((b) => b === 0)).toBe(true);
      // A segment that ends one byte into the window, and a read of the CMB (window 1).
      expect(expectCode(() => d.read(REGS - 4, 5), 'DmaDeviceWindow').details).toMatchObject({ address: REGS });
      expect(expectCode(() => d.read(CMB + 100, 4), 'DmaDeviceWindow').details).toMatchObject({ detail: 1 });
      expect(guest.read(REGS, 16).every((b) => b === 0xcc)).toBe(true);
      expect(d.permissions(REGS + 1)).toEqual({ read: false, write: false });
      expect(Array.from(d.read(REGS - 4, 4))).toEqual([0, 0, 0, 0]);
    }
    const strict = iommu.domain('nvme-strict');
    expectCode(() => strict.map(REGS - P, 2 * P), 'DmaDeviceWindow');
    expect(strict.permissions(REGS - P)).toEqual({ read: true, write: true });
    expectCode(() => iommu.domain('many', { windows: [...windows, ...windows, ...windows] }), 'InvalidArgument');
    expectCode(() => iommu.domain('empty-window', { windows: [{ gpa: 0, len: 0 }] }), 'InvalidArgument');
  });

  it('[H24] a buffer, segment list or result block over the domain image or guest RAM is refused before any byte moves', () => {
    const d = iommu.domain('self', { mode: 'strict' });
    d.map(0, 4 * P);
    const segs = core.alloc(16, 8);
    const res = core.alloc(16, 8);
    const buf = core.alloc(P, 8);
    core.u32[segs >> 2] = 0;
    core.u32[(segs >> 2) + 2] = 64;
    const table = core.u8.slice(d.ptr, d.ptr + K.DOM_HEADER_SIZE + 64);
    const run = (b: number, s = segs, r = res) => core.fn.dmaGather(d.ptr, d.generation, core.guestBase, core.guestBytes, s, 1, b, 64, r);
    expect(run(buf)).toBe(64);
    expect(run(d.ptr)).toBe(K.E_InvalidDomain); // the DMA would land on the IOMMU's own table (P5)
    expect(run(d.ptr + K.DOM_HEADER_SIZE - 8)).toBe(K.E_InvalidDomain);
    expect(run(core.guestBase + 0x100)).toBe(K.E_InvalidArgument); // an unchecked write into guest RAM
    expect(run(segs - 32)).toBe(K.E_InvalidArgument); // over the segment list it is reading
    expect(run(buf, core.guestBase + 0x200)).toBe(K.E_InvalidArgument); // a list the guest could rewrite (P3)
    expect(run(buf, segs, core.guestBase)).toBe(K.E_InvalidArgument);
    expect(run(buf, segs + 4)).toBe(K.E_InvalidArgument);
    expect(run(buf, segs, res + 2)).toBe(K.E_InvalidArgument);
    expect(Array.from(core.u8.subarray(d.ptr, d.ptr + table.length))).toEqual(Array.from(table));
    // A corrupt image is not a domain.
    const dv = core.dv;
    dv.setUint32(d.ptr + K.DOM_MODE, 7, true);
    expect(run(buf)).toBe(K.E_InvalidDomain);
    dv.setUint32(d.ptr + K.DOM_MODE, K.DOM_MODE_STRICT, true);
    dv.setUint32(d.ptr + K.DOM_WINDOW_COUNT, K.DOM_MAX_WINDOWS + 1, true);
    expect(run(buf)).toBe(K.E_InvalidDomain);
    dv.setUint32(d.ptr + K.DOM_WINDOW_COUNT, 0, true);
    expect(run(buf)).toBe(64);
  });

  it('[H28] a hostile length fails with its DMA error and never makes core memory grow', () => {
    const d = iommu.domain('huge', { mode: 'identity' });
    // A well-formed GPA range of 64 MiB whose pages lie past guest RAM: decoding it takes the
    // decoder's own scratch once; the DMA must fail before it stages a 64 MiB buffer.
    const ranges = encodeGpaRange(core, { byteCount: 64 << 20, byteOffset: 0, pfns: Array.from({ length: 16384 }, (_, i) => 0x100 + i) });
    expect(decodeGpaRanges(core, ranges, 1).segments).toEqual([{ addr: 0x10_0000, len: 64 << 20, range: 0 }]);
    const before = core.byteLength;
    expect(expectCode(() => d.gather({ gpaRanges: ranges, rangeCount: 1 }), 'OutsideGuestRam').details).toMatchObject({ segment: 0, address: GUEST });
    expectCode(() => d.gather([{ addr: 0, len: 0xffffffff }, { addr: 0, len: 0xffffffff }]), 'InvalidArgument');
    expect(expectCode(() => d.gather([{ addr: 0x100, len: 0x7fff_0000 }]), 'OutsideGuestRam').details).toMatchObject({ address: GUEST });
    expect(expectCode(() => guest.gather([{ addr: 0, len: GUEST }, { addr: GUEST - 1, len: 0x7000_0000 }]), 'OutsideGuestRam').details).toMatchObject({ segment: 1 });
    expect(core.byteLength).toBe(before);
  });

  it('[H27] visit() works on a private snapshot of the list: a callback that rewrites it cannot redirect the DMA', () => {
    const d = iommu.domain('snap');
    d.map(0x1_0000, 2 * P);
    const segs = [{ addr: 0x1_0000, len: 16 }, { addr: 0x1_1000, len: 16 }];
    const seen: number[] = [];
    d.visit(segs, 'write', (bytes, i) => {
      segs[1]!.addr = 0x9_0000; // unmapped: must not become the second view
      bytes.fill(0xab);
      seen.push(bytes.byteOffset - core.guestBase, i);
    });
    expect(seen).toEqual([0x1_0000, 0, 0x1_1000, 1]);
    expect(guest.read(0x9_0000, 16).every((b) => b === 0)).toBe(true);
  });

  it('[H61] a callback that re-enters the domain (reset, map, unmap, nested visit) during DMA is refused', () => {
    const d = iommu.domain('reenter');
    d.map(0x2_0000, 2 * P);
    const codes: string[] = [];
    const attempt = (f: () => void) => {
      try {
        f();
        codes.push('ok');
      } catch (e) {
        codes.push((e as { code: string }).code);
      }
    };
    const n = d.visit([{ addr: 0x2_0000, len: P }, { addr: 0x2_1000, len: P }], 'read', (bytes, i) => {
      expect(d.busy).toBe(true);
      if (i === 0) {
        attempt(() => d.reset());
        attempt(() => d.unmap(0x2_1000, P));
        attempt(() => d.map(0x3_0000, P));
        attempt(() => d.visit([{ addr: 0x2_0000, len: 1 }], 'read', () => {}));
        // A plain copy checks and finishes within its own call: allowed.
        attempt(() => d.read(0x2_1000, 4));
      }
      // The second segment is still mapped when its view is handed out.
      expect(bytes.length).toBe(P);
    });
    expect(n).toBe(2 * P);
    expect(codes).toEqual(['DmaReentrant', 'DmaReentrant', 'DmaReentrant', 'DmaReentrant', 'ok']);
    expect(d.busy).toBe(false);
    expect(d.permissions(0x2_1000)).toEqual({ read: true, write: true });
    expect(d.permissions(0x3_0000)).toEqual({ read: false, write: false });
  });

  it('[H61] work deferred with whenIdle runs right after the DMA, and a throwing callback leaves the guard clear', () => {
    const d = iommu.domain('defer');
    d.map(0x4_0000, P);
    const g = d.generation;
    const order: string[] = [];
    d.visit([{ addr: 0x4_0000, len: 8 }, { addr: 0x4_0008, len: 8 }], 'write', (bytes, i) => {
      bytes.fill(i + 1);
      order.push(`segment ${i}`);
      if (i === 0) d.whenIdle(() => {
        order.push('reset');
        d.reset();
      });
    });
    expect(order).toEqual(['segment 0', 'segment 1', 'reset']);
    expect(d.generation).toBe(g + 2);
    expect(Array.from(guest.read(0x4_0000, 16))).toEqual([...fill(8, 1), ...fill(8, 2)]);
    d.map(0x4_0000, P);
    expect(() => d.visit([{ addr: 0x4_0000, len: 8 }], 'read', () => {
      throw new Error('device model bug');
    })).toThrow('device model bug');
    expect(d.busy).toBe(false);
    // Every deferred action runs even when one fails; the first failure surfaces afterwards.
    const ran: number[] = [];
    expect(() => d.visit([{ addr: 0x4_0000, len: 8 }], 'read', () => {
      d.whenIdle(() => {
        throw new Error('first');
      });
      d.whenIdle(() => ran.push(2));
    })).toThrow('first');
    expect(ran).toEqual([2]);
    d.unmap(0x4_0000, P);
    // A visit that faults its check never calls the callback.
    let called = false;
    expectCode(() => d.visit([{ addr: 0x4_0000, len: 8 }], 'read', () => {
      called = true;
    }), 'IommuFault');
    expect(called).toBe(false);
  });
});
