// The documented order of DMA errors (DmaDomain): arguments, then bounds, then permissions. A
// request with several faults reports the first class, on both engines.
import { describe, expect, it } from 'vitest';
import { Iommu, loadCoreSync } from '../../src/index';
import { codeOf } from '../util/errors';
import { ENGINES } from '../util/engines';

describe.each(ENGINES)('DMA error precedence (%s)', (engine) => {
  const core = loadCoreSync({ engine, guestBytes: 1 << 20 });
  const dom = new Iommu(core).domain('dev'); // strict: nothing mapped yet
  const outside = 2 << 20;

  it('[H28] an invalid argument is named before a bounds or permission fault', () => {
    for (const gpa of [NaN, -4096, 0.5]) {
      expect(codeOf(() => dom.translate(gpa, 4, 'read'))).toBe('InvalidArgument');
      expect(codeOf(() => dom.read(gpa, 4))).toBe('InvalidArgument');
    }
    expect(codeOf(() => dom.translate(0, 2 ** 32, 'read'))).toBe('InvalidArgument'); // not a length the engine carries
    expect(codeOf(() => dom.translate(outside, NaN, 'write'))).toBe('InvalidArgument');
    expect(codeOf(() => dom.translate(0, 4, 'exec' as never))).toBe('InvalidArgument');
    // The caller's destination is too small: an argument error, even for an unmapped or outside range.
    expect(codeOf(() => dom.read(0, 100, new Uint8Array(10)))).toBe('BufferTooSmall');
    expect(codeOf(() => dom.read(outside, 100, new Uint8Array(10)))).toBe('BufferTooSmall');
  });

  it('[H28] a range outside guest RAM is a bounds fault before the unmapped pages are a permission fault', () => {
    expect(codeOf(() => dom.translate(outside, 4, 'read'))).toBe('OutsideGuestRam');
    expect(codeOf(() => dom.translate(0, (1 << 20) + 4096, 'read'))).toBe('OutsideGuestRam');
    expect(codeOf(() => dom.read((1 << 20) - 8, 16))).toBe('OutsideGuestRam');
    expect(codeOf(() => dom.write(outside, new Uint8Array(8)))).toBe('OutsideGuestRam');
  });

  it('[H28] only a valid, in-bounds request meets the permission check', () => {
    expect(codeOf(() => dom.translate(0, 4, 'read'))).toBe('IommuFault');
    dom.map(0, 4096, { read: true });
    expect(codeOf(() => dom.translate(0, 4, 'read'))).toBe('no error');
    expect(codeOf(() => dom.write(0, new Uint8Array(4)))).toBe('IommuFault');
    expect(codeOf(() => dom.read(4000, 200))).toBe('IommuFault'); // the second page is not mapped
  });
});
