// Hostile SGLs: spec/hardening.md §3.3 item 26 (the controller table of spec/nvme.md §4) and
// the SGL side of items 23-25 and 27, on both engines. Every case completes with the NVMe
// status the table names, never an exception, hang or stray access.
import { describe, expect, it } from 'vitest';
import { buildSgl, Core, encodeSglDescriptor, walkSgl, type SglDescriptorInput } from '../../src/index';
import { ENGINES, guestCore, MiB, putDesc, segmentsOf, statusOf } from './prp-helpers';

const DATA = 0x00;
const SEGMENT = 0x20;
const LAST = 0x30;

describe.each(ENGINES)('SGL bad input (%s)', (engine) => {
  const c = guestCore(engine, 4 * MiB);
  const walk = (sgl1: SglDescriptorInput | Uint8Array, length: number, extra = {}) => walkSgl(c, { sgl1, length, ...extra });
  const seg = (addr: number | bigint, n: number, type: 'segment' | 'lastSegment' = 'lastSegment') => ({ addr, length: 16 * n, type });
  const expectStatus = (r: ReturnType<typeof walk>, sc: number, reason: string, dnr = true) =>
    expect(statusOf(r)).toMatchObject({ sct: 0, sc, reason, dnr });

  it('[H26] SGL1 that is neither a Data Block nor a (Last) Segment: Invalid SGL Segment Descriptor (0x0D) + DNR', () => {
    for (const id of [0x10, 0x40, 0x50, 0x5a, 0x01, 0x21, 0xf0]) {
      expectStatus(walk({ addr: 0x10000, length: 512, id }, 512), 0x0d, 'Sgl1TypeInvalid');
    }
  });

  it('[H26] a (Last) Segment of length 0 or not a multiple of 16: 0x0D + DNR, in SGL1 or chained', () => {
    for (const length of [0, 8, 17, 4095]) expectStatus(walk({ addr: 0x10000, length, type: 'lastSegment' }, 512), 0x0d, 'SegmentLengthInvalid');
    putDesc(c, 0x10000, 0x100000, 512, DATA);
    putDesc(c, 0x10010, 0x11000, 24, LAST);
    expectStatus(walk(seg(0x10000, 2, 'segment'), 1024), 0x0d, 'SegmentLengthInvalid');
  });

  it('[H26] address + length overflowing 64 bits: Data SGL Length Invalid (0x0F) + DNR', () => {
    expectStatus(walk(seg(0xffff_ffff_ffff_fff0n, 2), 100), 0x0f, 'AddressOverflow');
    putDesc(c, 0x10000, 0xffff_ffff_ffff_ff00n, 0x100, DATA);
    expectStatus(walk(seg(0x10000, 1), 16), 0x0f, 'AddressOverflow');
    expectStatus(walk({ addr: 0xffff_ffff_ffff_f000n, length: 0x2000 }, 16), 0x0f, 'AddressOverflow');
  });

  it('[H26] a Segment or Last Segment anywhere but the last slot: Invalid Number of SGL Descriptors (0x0E) + DNR', () => {
    putDesc(c, 0x10000, 0x100000, 512, DATA);
    putDesc(c, 0x10010, 0x11000, 32, LAST);
    putDesc(c, 0x10020, 0x100200, 512, DATA);
    expectStatus(walk(seg(0x10000, 3), 1024), 0x0e, 'SegmentDescriptorNotLast');
  });

  it('[H26] any other descriptor type in a segment (bit bucket, keyed, transport, vendor): 0x11 + DNR', () => {
    for (const id of [0x10, 0x40, 0x50, 0xf0, 0x01]) {
      putDesc(c, 0x10000, 0x100000, 512, DATA);
      putDesc(c, 0x10010, 0x100200, 512, id);
      putDesc(c, 0x10020, 0x100400, 512, DATA);
      expectStatus(walk(seg(0x10000, 3), 1536), 0x11, 'DescriptorTypeInvalid');
    }
  });

  it('[H26] a Last Segment whose last descriptor is not a Data Block: 0x0D + DNR', () => {
    putDesc(c, 0x10000, 0x100000, 512, DATA);
    putDesc(c, 0x10010, 0x11000, 16, LAST);
    expectStatus(walk(seg(0x10000, 2, 'lastSegment'), 1024), 0x0d, 'LastSegmentEndsInPointer');
  });

  it('[H26] residual length left when the descriptors run out: 0x0F + DNR; zero-length data descriptors are skipped', () => {
    putDesc(c, 0x10000, 0x100000, 512, DATA);
    putDesc(c, 0x10010, 0x999999, 0, DATA);
    putDesc(c, 0x10020, 0x100400, 512, DATA);
    expect(segmentsOf(walk(seg(0x10000, 3), 1024))).toEqual([{ addr: 0x100000, len: 512 }, { addr: 0x100400, len: 512 }]);
    expectStatus(walk(seg(0x10000, 3), 1025), 0x0f, 'DescriptorsTooShort');
    expectStatus(walk({ addr: 0x100000, length: 0 }, 1), 0x0f, 'DescriptorsTooShort');
  });

  it('[H26] more data descriptors than the transfer needs: 0x0F + DNR unless the controller advertises excess length', () => {
    putDesc(c, 0x10000, 0x100000, 512, DATA);
    putDesc(c, 0x10010, 0x100400, 512, DATA);
    expectStatus(walk(seg(0x10000, 2), 512), 0x0f, 'ExcessDescriptors');
    expect(segmentsOf(walk(seg(0x10000, 2), 512, { excessLength: true }))).toEqual([{ addr: 0x100000, len: 512 }]);
    // A descriptor longer than what is left is mapped only up to the transfer's end.
    expect(segmentsOf(walk(seg(0x10000, 2), 600))).toEqual([{ addr: 0x100000, len: 512 }, { addr: 0x100400, len: 88 }]);
  });

  it('[H26] more than the mapping cap (1024) of descriptors: Internal Error (0x06) + DNR', () => {
    const segs = Array.from({ length: 1025 }, (_, i) => ({ addr: 0x200000 + 8 * i, len: 4 }));
    const b = buildSgl(c, { segments: segs, listPages: [0x20000, 0x21000, 0x22000, 0x23000, 0x24000] });
    expectStatus(walk(b.sgl1Bytes, b.length), 0x06, 'TooManyMappings');
    expect(segmentsOf(walk(b.sgl1Bytes, b.length, { maxMappings: 1025, merge: false }))).toHaveLength(1025);
  });

  it('[H26] segment chains that loop end in an error: no progress (0x0D), mapping cap or descriptor budget (0x06)', () => {
    // A segment pointing to itself with no data in it.
    putDesc(c, 0x10000, 0x100000, 0, DATA);
    putDesc(c, 0x10010, 0x10000, 32, SEGMENT);
    expectStatus(walk(seg(0x10000, 2, 'segment'), 4096), 0x0d, 'SegmentWithoutData');
    // A segment pointing to itself that maps data each time: bounded by the caps.
    putDesc(c, 0x10000, 0x100000, 1, DATA);
    expectStatus(walk(seg(0x10000, 2, 'segment'), 0xffff_ffff), 0x06, 'TooManyMappings');
    expectStatus(walk(seg(0x10000, 2, 'segment'), 0xffff_ffff, { maxDescriptors: 100 }), 0x06, 'TooManyDescriptors');
    // The last slot of a Segment pointing at a non-segment descriptor.
    putDesc(c, 0x10010, 0x10000, 32, 0x10);
    expectStatus(walk(seg(0x10000, 2, 'segment'), 4096), 0x0d, 'SegmentPointerTypeInvalid');
  });

  it('[H23] a data descriptor at address 0 is an address; the first segment never merges with a phantom predecessor', () => {
    expect(segmentsOf(walk({ addr: 0, length: 64 }, 64))).toEqual([{ addr: 0, len: 64 }]);
    putDesc(c, 0x10000, 0, 16, DATA);
    putDesc(c, 0x10010, 16, 16, DATA);
    putDesc(c, 0x10020, 0, 16, DATA);
    expect(segmentsOf(walk(seg(0x10000, 3), 48))).toEqual([{ addr: 0, len: 32 }, { addr: 0, len: 16 }]);
  });

  it('[H24] (guest-window variant) data or segments outside guest RAM: Data Transfer Error without DNR', () => {
    const g = c.guestBytes;
    expectStatus(walk({ addr: g - 10, length: 20 }, 20), 0x04, 'DataOutsideGuest', false);
    expectStatus(walk({ addr: 2n ** 40n, length: 20 }, 20), 0x04, 'DataOutsideGuest', false);
    expectStatus(walk(seg(g - 16, 2), 20), 0x04, 'ListOutsideGuest', false);
    expectStatus(walk(seg(2n ** 33n, 2), 20), 0x04, 'ListOutsideGuest', false);
    // A long segment is read in 256-descriptor chunks: the second chunk runs out of RAM.
    const at = g - 4096;
    for (let i = 0; i < 256; i++) putDesc(c, at + 16 * i, 0x100000, 1, DATA);
    expectStatus(walk(seg(at, 300), 300), 0x04, 'ListOutsideGuest', false);
    // ...but only the part of a data descriptor the transfer uses must be in RAM (QEMU maps trans_len).
    expect(segmentsOf(walk({ addr: g - 10, length: 100 }, 10))).toEqual([{ addr: g - 10, len: 10 }]);
  });

  it('[H25] length 0 succeeds without reading; length > MDTS fails with Invalid Field before any read', () => {
    expect(segmentsOf(walk({ addr: 0, length: 0, id: 0xff }, 0))).toEqual([]);
    expect(statusOf(walk(seg(2n ** 60n, 1), 4097, { mdts: 0, maxTransferBytes: 4096 }))).toMatchObject({ sc: 0x02, reason: 'TransferExceedsMdts', dnr: true });
  });
});

describe('[H27] TOCTOU: an SGL segment rewritten after the walker read it', () => {
  it('[H27] the reference walker parses its private snapshot of each chunk', () => {
    const c = guestCore('reference', 4 * MiB);
    putDesc(c, 0x10000, 0x100000, 512, DATA);
    putDesc(c, 0x10010, 0x100400, 512, DATA);
    const view = Object.getOwnPropertyDescriptor(Core.prototype, 'u8')!.get!;
    let hooked = 0;
    Object.defineProperty(c, 'u8', {
      configurable: true,
      get() {
        const v = view.call(c) as Uint8Array;
        const copyWithin = Uint8Array.prototype.copyWithin;
        Object.defineProperty(v, 'copyWithin', {
          configurable: true,
          value(this: Uint8Array, t: number, s: number, e: number) {
            copyWithin.call(this, t, s, e);
            if (s === c.guestBase + 0x10000) {
              hooked++;
              // The guest turns the descriptors hostile right after the controller's read.
              this[c.guestBase + 0x10000 + 15] = 0x20;
              new DataView(this.buffer, c.guestBase).setBigUint64(0x10010, 0xffff_ffff_ffff_fff0n, true);
            }
            return this;
          },
        });
        return v;
      },
    });
    const r = walkSgl(c, { sgl1: encodeSglDescriptor({ addr: 0x10000, length: 32, type: 'lastSegment' }), length: 1024, merge: false });
    expect(hooked).toBe(1);
    expect(segmentsOf(r)).toEqual([{ addr: 0x100000, len: 512 }, { addr: 0x100400, len: 512 }]);
  });
});
