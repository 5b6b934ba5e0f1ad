// Channel packets (spec/vmbus.md §2): golden images from the spec tables, round trips, and the
// packet-parser checks of spec/hardening.md §3.2 items 10-15 with the choice the module table
// documents: B (typed error with broken = true) for 10-13, E (typed error, broken = false) for 14-15.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  checkPacketHeader, encodeCompletionPacket, encodeGpaDirectPacket, encodeGpaPageList, encodeGpaRange, encodeInbandPacket,
  encodeTransferPagePacket, parsePacket, SgringError, type Core,
} from '../../src/index';
import { core, ENGINES } from '../util/engines';
import { check } from '../util/fc';
import { expectCode, hex, unhex } from './helpers';

const B = (c: Core, img: Uint8Array, code: string) => expect(expectCode(() => parsePacket(c, img), code).broken).toBe(true);
const E = (c: Core, img: Uint8Array, code: string) => expect(expectCode(() => parsePacket(c, img), code).broken).toBe(false);

/** A raw packet image from header fields and body bytes, zero-extended to len8*8 (no validation: hostile input). */
function raw(type: number, hlen8: number, tlen8: number, flags: number, body: number[] | Uint8Array, tid = 0n): Uint8Array {
  const out = new Uint8Array(Math.max(16 + body.length, tlen8 * 8));
  const dv = new DataView(out.buffer);
  dv.setUint16(0, type, true);
  dv.setUint16(2, hlen8, true);
  dv.setUint16(4, tlen8, true);
  dv.setUint16(6, flags, true);
  dv.setBigUint64(8, tid, true);
  out.set(body, 16);
  return out;
}
const le32 = (...xs: number[]) => xs.flatMap((x) => [x & 0xff, (x >>> 8) & 0xff, (x >>> 16) & 0xff, (x >>> 24) & 0xff]);
const le64 = (x: number) => [...le32(x % 2 ** 32), ...le32(Math.floor(x / 2 ** 32))];

describe.each(ENGINES)('packets: golden images (%s)', (engine) => {
  it('in-band (spec §2.4): hlen 2, payload zero-padded to 8', () => {
    const img = encodeInbandPacket({ payload: Uint8Array.from([1, 2, 3]), flags: 1, transactionId: 0x0102030405060708n });
    expect(hex(img)).toBe(hex(unhex('0600 0200 0300 0100 0807060504030201 0102030000000000')));
    const p = parsePacket(core(engine), img);
    expect(p).toMatchObject({ kind: 'inband', type: 6, flags: 1, completionRequested: true, transactionId: 0x0102030405060708n, headerBytes: 16, totalBytes: 24 });
    expect(Array.from(p.message)).toEqual([1, 2, 3, 0, 0, 0, 0, 0]);
  });

  it('completion (spec §2.7): flags 0, the completed id, an empty payload allowed', () => {
    expect(hex(encodeCompletionPacket({ transactionId: 5, payload: Uint8Array.from([0xaa, 0xbb, 0xcc, 0xdd]) })))
      .toBe(hex(unhex('0b00 0200 0300 0000 0500000000000000 aabbccdd00000000')));
    const p = parsePacket(core(engine), encodeCompletionPacket({ transactionId: 7n }));
    expect(p).toMatchObject({ kind: 'completion', transactionId: 7n, completionRequested: false, totalBytes: 16 });
    expect(p.message.length).toBe(0);
  });

  it('GPA direct: the spec §2.5 storvsc example is hlen 7, tlen 15, 128 ring bytes', () => {
    const c = core(engine);
    const rangeBytes = encodeGpaRange(c, { byteCount: 6656, byteOffset: 0xe00, pfns: [0x12345, 0x20000, 0x30000] });
    const vstor = new Uint8Array(64).fill(0x5a);
    const img = encodeGpaDirectPacket({ gpa: { rangeBytes, rangeCount: 1 }, message: vstor, transactionId: 9 });
    const want = unhex('0900 0700 0f00 0100 0900000000000000' + // type 9, hlen 7, tlen 15, completion requested, tid 9
      '00000000 01000000' + // reserved, range_count 1
      '001a0000 000e0000 4523010000000000 0000020000000000 0000030000000000' + // {6656, 0xe00, pfn[3]}
      '5a'.repeat(64));
    expect(hex(img)).toBe(hex(want));
    const p = parsePacket(c, img);
    if (p.kind !== 'gpa') throw new Error('not gpa');
    expect(p.headerBytes).toBe(56);
    expect(p.totalBytes + 8).toBe(128); // with the ring trailer
    expect(p.gpa.ranges).toEqual([{ byteCount: 6656, byteOffset: 0xe00, pfns: [0x12345, 0x20000, 0x30000] }]);
    expect(p.gpa.segments).toEqual([
      { addr: 0x12345e00, len: 0x200, range: 0 }, { addr: 0x20000000, len: 4096, range: 0 }, { addr: 0x30000000, len: 0x1a00 - 0x1200, range: 0 },
    ]);
    expect(p.message).toEqual(vstor);
  });

  it('GPA direct single-page list (spec §2.5, netvsc): one 16-byte range per page', () => {
    const c = core(engine);
    const { bytes, rangeCount } = encodeGpaPageList(c, [{ addr: 0x5000 + 100, len: 200 }, { addr: 0x9000, len: 5000 }]);
    expect(rangeCount).toBe(3);
    const p = parsePacket(c, encodeGpaDirectPacket({ gpa: { rangeBytes: bytes, rangeCount }, message: new Uint8Array(40), flags: 0 }));
    if (p.kind !== 'gpa') throw new Error('not gpa');
    expect(p.headerBytes).toBe(24 + 48);
    expect(p.gpa.ranges.map((r) => r.pfns.length)).toEqual([1, 1, 1]);
    expect(p.gpa.segments.map((s) => s.len)).toEqual([200, 4096, 904]);
  });

  it('transfer pages (spec §2.6): page set, sender_owns, ranges before offset8', () => {
    const img = encodeTransferPagePacket({
      transferPages: { pageSetId: 0xcafe, senderOwns: false, ranges: [{ byteCount: 100, byteOffset: 0 }, { byteCount: 200, byteOffset: 4096 }] },
      message: Uint8Array.from([107, 0, 0, 0, 0, 0, 0, 0]), transactionId: 0x44,
    });
    expect(hex(img)).toBe(hex(unhex('0700 0500 0600 0100 4400000000000000 feca 00 00 02000000 64000000 00000000 c8000000 00100000 6b00000000000000')));
    const p = parsePacket(core(engine), img);
    expect(p).toMatchObject({ kind: 'transferPages', headerBytes: 40, transferPages: { pageSetId: 0xcafe, senderOwns: false, ranges: [{ byteCount: 100, byteOffset: 0 }, { byteCount: 200, byteOffset: 4096 }] } });
  });

  it('reserved bytes and padding of every encoded packet are zero (P10)', () => {
    const img = encodeTransferPagePacket({ transferPages: { pageSetId: 1, senderOwns: true, ranges: [] }, message: Uint8Array.from([1]) });
    expect(img[19]).toBe(0);
    expect(Array.from(img.subarray(25))).toEqual([0, 0, 0, 0, 0, 0, 0]);
  });

  it('encoders refuse flags other than 0/1, non-range descriptors and oversized packets', () => {
    expectCode(() => encodeInbandPacket({ payload: new Uint8Array(1), flags: 2 }), 'InvalidArgument');
    expectCode(() => encodeGpaDirectPacket({ gpa: { rangeBytes: new Uint8Array(12), rangeCount: 1 }, message: new Uint8Array(0) }), 'InvalidArgument');
    expectCode(() => encodeGpaDirectPacket({ gpa: { rangeBytes: new Uint8Array(16), rangeCount: 0 }, message: new Uint8Array(0) }), 'InvalidArgument');
    expectCode(() => encodeInbandPacket({ payload: new Uint8Array(0xffff * 8) }), 'InvalidMessageLength');
    expectCode(() => encodeTransferPagePacket({ transferPages: { pageSetId: 0x10000, senderOwns: false, ranges: [] }, message: new Uint8Array(0) }), 'InvalidArgument');
  });
});

describe.each(ENGINES)('packet parser bad input (%s)', (engine) => {
  const c = core(engine);

  it('[H10] offset8 < 2, len8 < offset8 or len8*8 beyond the bytes present: InvalidDescriptorLengths, B', () => {
    B(c, raw(6, 0, 2, 0, []), 'InvalidDescriptorLengths');
    B(c, raw(6, 1, 2, 0, []), 'InvalidDescriptorLengths');
    B(c, raw(6, 4, 3, 0, new Array(16).fill(0)), 'InvalidDescriptorLengths');
    B(c, raw(6, 2, 5, 0, new Array(16).fill(0)).subarray(0, 32), 'InvalidDescriptorLengths'); // 40 bytes claimed, 32 present
    B(c, raw(6, 2, 0xffff, 0, []).subarray(0, 64), 'InvalidDescriptorLengths');
    B(c, new Uint8Array(15), 'InvalidDescriptorLengths');
    // The boundary that is fine: len8*8 exactly the bytes present, offset8 = len8 (empty message).
    expect(parsePacket(c, raw(6, 4, 4, 0, new Array(16).fill(0))).message.length).toBe(0);
  });

  it('[H11] a type other than 6, 7, 9, 11: InvalidDescriptorType, B (never dispatched)', () => {
    for (const t of [0, 1, 2, 3, 4, 5, 8, 10, 12, 13, 0xffff]) B(c, raw(t, 2, 2, 0, []), 'InvalidDescriptorType');
  });

  it('[H12] a flag other than completion-requested: InvalidDescriptorFlags, B', () => {
    for (const f of [2, 3, 0x100, 0x8000, 0xffff]) B(c, raw(6, 2, 2, f, []), 'InvalidDescriptorFlags');
  });

  it('[H13] GPA-direct or transfer-page with offset8*8 below its 24-byte header: PacketHeaderTooShort, B', () => {
    B(c, raw(9, 2, 4, 1, le32(0, 1, 4096, 0)), 'PacketHeaderTooShort');
    B(c, raw(7, 2, 3, 1, le32(0xcafe, 0)), 'PacketHeaderTooShort');
    // offset8*8 = 24 exactly: the header fits, the range does not (that is item 14, E).
    E(c, raw(9, 3, 5, 1, [...le32(0, 1), ...le32(4096, 0), ...le64(1)]), 'GpaRangeTooSmall');
    expect(parsePacket(c, raw(7, 3, 3, 1, le32(0xcafe, 0)))).toMatchObject({ kind: 'transferPages', transferPages: { ranges: [] } });
  });

  it('[H14] GPA range_count 0 (GpaRangeCountZero), or more ranges / PFNs than offset8 holds (GpaRangeTooSmall): E', () => {
    E(c, raw(9, 3, 3, 1, le32(0, 0)), 'GpaRangeCountZero');
    E(c, raw(9, 5, 5, 1, [...le32(0, 2), ...le32(4096, 0), ...le64(7)]), 'GpaRangeTooSmall'); // 2 ranges claimed, 1 present
    E(c, raw(9, 5, 5, 1, [...le32(0, 1), ...le32(8192, 0), ...le64(7)]), 'GpaRangeTooSmall'); // 2 PFNs needed, 1 present
    E(c, raw(9, 5, 5, 1, [...le32(0, 0xffffffff), ...le32(4096, 0), ...le64(7)]), 'GpaRangeTooSmall'); // huge count, bounded by bytes
    E(c, raw(7, 4, 4, 1, [...le32(0xcafe, 2), ...le32(1, 0)]), 'GpaRangeTooSmall'); // transfer pages: 2 ranges, room for 1
    E(c, raw(7, 4, 4, 1, [...le32(0xcafe, 0xffffffff), ...le32(1, 0)]), 'GpaRangeTooSmall');
    // The PFNs live before offset8: a range whose PFNs spill into the message is short too.
    E(c, raw(9, 4, 5, 1, [...le32(0, 1), ...le32(4096, 0), ...le64(7)]), 'GpaRangeTooSmall');
  });

  it('[H15] a GPA range with byte_count 0, byte_offset > 0xFFF, offset + count overflowing, or a PFN >= 2^40: E', () => {
    const one = (count: number, offset: number, pfn: number) => raw(9, 5, 5, 1, [...le32(0, 1), ...le32(count, offset), ...le64(pfn)]);
    E(c, one(0, 0, 7), 'GpaEmptyByteCount');
    E(c, one(1, 0x1000, 7), 'GpaOffsetTooLarge');
    E(c, one(0xffffffff, 0xfff, 7), 'GpaOverflow');
    E(c, one(4096, 0, 2 ** 40), 'GpaPfnTooLarge');
    expect(parsePacket(c, one(1, 0xfff, 2 ** 40 - 1)).kind).toBe('gpa'); // the boundaries that are fine
  });

  it('checkPacketHeader agrees with parsePacket on the header rules', () => {
    expect(checkPacketHeader(6, 16, 16, 1, 16)).toBe(16);
    expectCode(() => checkPacketHeader(9, 16, 32, 0, 32), 'PacketHeaderTooShort');
    expectCode(() => checkPacketHeader(6, 16, 24, 0, 16), 'InvalidDescriptorLengths');
  });
});

describe('packet properties', () => {
  const c = core('wasm');
  const tid = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
  const bytes = fc.uint8Array({ maxLength: 300 });
  const padded = (b: Uint8Array) => {
    const out = new Uint8Array((b.length + 7) & ~7);
    out.set(b);
    return out;
  };

  it('decode(encode(x)) = x: in-band, completion, transfer pages', () => {
    check(fc.property(bytes, tid, fc.boolean(), (payload, t, req) => {
      const p = parsePacket(c, encodeInbandPacket({ payload, transactionId: t, flags: req ? 1 : 0 }));
      expect(p).toMatchObject({ kind: 'inband', transactionId: t, completionRequested: req });
      expect(p.message).toEqual(padded(payload));
      const q = parsePacket(c, encodeCompletionPacket({ transactionId: t, payload }));
      expect(q.kind === 'completion' && q.transactionId === t).toBe(true);
      expect(q.message).toEqual(padded(payload));
    }));
    check(fc.property(fc.nat({ max: 0xffff }), fc.boolean(), fc.array(fc.record({ byteCount: fc.nat({ max: 0xffffffff }), byteOffset: fc.nat({ max: 0xffffffff }) }), { maxLength: 40 }), bytes,
      (pageSetId, senderOwns, ranges, message) => {
        const p = parsePacket(c, encodeTransferPagePacket({ transferPages: { pageSetId, senderOwns, ranges }, message }));
        expect(p.kind === 'transferPages' && p.transferPages).toEqual({ pageSetId, senderOwns, ranges });
        expect(p.message).toEqual(padded(message));
      }));
  });

  it('decode(encode(x)) = x: GPA direct from any segment list (single-page list form)', () => {
    const seg = fc.record({ addr: fc.nat({ max: 2 ** 40 }), len: fc.integer({ min: 1, max: 20000 }) });
    check(fc.property(fc.array(seg, { minLength: 1, maxLength: 8 }), bytes, (segments, message) => {
      const { bytes: rangeBytes, rangeCount } = encodeGpaPageList(c, segments);
      const p = parsePacket(c, encodeGpaDirectPacket({ gpa: { rangeBytes, rangeCount }, message }));
      if (p.kind !== 'gpa') throw new Error('not gpa');
      expect(p.gpa.segments.reduce((n, s) => n + s.len, 0)).toBe(segments.reduce((n, s) => n + s.len, 0));
      expect(p.message).toEqual(padded(message));
      expect(p.headerBytes).toBe(24 + rangeBytes.length);
    }));
  });

  it('hostile bytes: parsePacket returns a packet or throws an SgringError, never anything else, and B only for items 10-13', () => {
    const B_CODES = ['InvalidDescriptorLengths', 'InvalidDescriptorType', 'InvalidDescriptorFlags', 'PacketHeaderTooShort'];
    const E_CODES = ['GpaRangeCountZero', 'GpaRangeTooSmall', 'GpaEmptyByteCount', 'GpaOffsetTooLarge', 'GpaOverflow', 'GpaPfnTooLarge'];
    const header = fc.tuple(fc.constantFrom(6, 7, 9, 11, 0, 8), fc.nat({ max: 12 }), fc.nat({ max: 40 }), fc.constantFrom(0, 1, 2));
    check(fc.property(header, fc.uint8Array({ maxLength: 320 }), ([type, hlen, tlen, flags], body) => {
      const img = raw(type, hlen, tlen, flags, body);
      try {
        const p = parsePacket(c, img);
        expect(p.totalBytes).toBeLessThanOrEqual(img.length);
        expect(p.message.byteOffset + p.message.length).toBeLessThanOrEqual(img.byteOffset + img.length);
      } catch (e) {
        expect(e).toBeInstanceOf(SgringError);
        const err = e as SgringError;
        expect([...B_CODES, ...E_CODES]).toContain(err.code);
        expect(err.broken).toBe(B_CODES.includes(err.code));
      }
    }), 3000);
  });
});
