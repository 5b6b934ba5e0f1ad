// Channel messages (spec/vmbus.md §3.2-3.6): byte-exact golden images written from the spec
// tables, round-trip properties, and the length rules of checklist 17.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { constants as K, decodeMessage, encodeMessage, MESSAGE_TYPES, messageTypeInfo, SgringError, type ChannelMessage } from '../../src/index';
import { check } from '../util/fc';
import { expectCode, hex, unhex } from './helpers';

const z = (n: number) => '00'.repeat(n);
const userDefined = new Uint8Array(120);
userDefined[0] = 0xaa;
userDefined[119] = 0xbb;

/** Each message type with an image written field by field from the spec tables (offsets in comments). */
const GOLDEN: { msg: ChannelMessage; image: string }[] = [
  {
    msg: {
      type: 'offer', classId: 'ba6163d9-04a1-4d29-b605-72e2ffb1dc7f', instanceId: '12345678-9abc-def0-1122-334455667788',
      flags: 0x0004, mmioMegabytes: 0x10, userDefined, subChannelIndex: 2, childRelid: 14, monitorId: 5,
      monitorAllocated: true, dedicatedInterrupt: true, connectionId: 0x1234,
    },
    image: '01000000 00000000' + // @0 header, type 1
      'd96361baa104294db60572e2ffb1dc7f' + // @8 class GUID (spec §3.4 SCSI example)
      '78563412bc9af0de1122334455667788' + // @24 instance GUID
      z(16) + // @40 two reserved u64
      '0400 1000' + // @56 flags, @58 MMIO MiB
      'aa' + z(118) + 'bb' + // @60 user-defined[120]
      '0200 0000' + // @180 sub_channel_index, @182 reserved
      '0e000000' + // @184 child_relid
      '05 01 0100' + // @188 monitorid, @189 monitor_allocated, @190 is_dedicated_interrupt
      '34120000', // @192 connection_id; 196 bytes
  },
  { msg: { type: 'rescind', childRelid: 14 }, image: '02000000 00000000 0e000000' },
  { msg: { type: 'requestOffers' }, image: '03000000 00000000' },
  { msg: { type: 'allOffersDelivered' }, image: '04000000 00000000' },
  {
    msg: { type: 'openChannel', childRelid: 14, openId: 14, ringGpadl: 0x100, targetVp: 1, downstreamPageOffset: 16, userData: new Uint8Array(0) },
    // @8 relid, @12 openid, @16 ring GPADL, @20 target_vp, @24 downstream page offset, @28 user data[120]
    image: '05000000 00000000 0e000000 0e000000 00010000 01000000 10000000' + z(120),
  },
  { msg: { type: 'openResult', childRelid: 14, openId: 14, status: 0xc0000001 }, image: '06000000 00000000 0e000000 0e000000 010000c0' },
  { msg: { type: 'closeChannel', childRelid: 14 }, image: '07000000 00000000 0e000000' },
  {
    msg: { type: 'gpadlHeader', childRelid: 14, gpadl: 0x100, rangeBufLen: 24, rangeCount: 1, byteCount: 0x2000, byteOffset: 0, pfns: [0x12345, 0x1_0000_0001], trailingBytes: 0 },
    // @8 relid, @12 gpadl, @16 range_buflen = 8 + 8*2, @18 range_count, @20 byte_count, @24 byte_offset, @28 pfn[]
    image: '08000000 00000000 0e000000 00010000 1800 0100 00200000 00000000 4523010000000000 0100000001000000',
  },
  {
    msg: { type: 'gpadlBody', msgNumber: 3, gpadl: 0x100, pfns: [0x12347], trailingBytes: 0 },
    image: '09000000 00000000 03000000 00010000 4723010000000000', // @8 msgnumber, @12 gpadl, @16 pfn[]
  },
  { msg: { type: 'gpadlCreated', childRelid: 14, gpadl: 0x100, status: 0 }, image: '0a000000 00000000 0e000000 00010000 00000000' },
  { msg: { type: 'gpadlTeardown', childRelid: 14, gpadl: 0x100 }, image: '0b000000 00000000 0e000000 00010000' },
  { msg: { type: 'gpadlTorndown', gpadl: 0x100 }, image: '0c000000 00000000 00010000' },
  { msg: { type: 'relidReleased', childRelid: 14 }, image: '0d000000 00000000 0e000000' },
  {
    msg: { type: 'initiateContact', version: 0x50003, targetVcpu: 0, interruptPage: 2n, monitorPage1: 0x1000n, monitorPage2: 0x2000n },
    // @8 version 5.3, @12 target_vcpu, @16 msg_sint = 2 / msg_vtl = 0, @24 monitor page 1, @32 monitor page 2
    image: '0e000000 00000000 03000500 00000000 0200000000000000 0010000000000000 0020000000000000',
  },
  {
    msg: { type: 'versionResponse', versionSupported: true, connectionState: 0, msgConnId: 4 },
    image: '0f000000 00000000 01 00 0000 04000000', // @8 version_supported, @9 connection_state, @12 msg_conn_id
  },
  { msg: { type: 'unload' }, image: '10000000 00000000' },
  { msg: { type: 'unloadResponse' }, image: '11000000 00000000' },
  { msg: { type: 'modifyChannel', childRelid: 14, targetVp: 3 }, image: '16000000 00000000 0e000000 03000000' },
  { msg: { type: 'modifyChannelResponse', childRelid: 14, status: 0 }, image: '18000000 00000000 0e000000 00000000' },
];

describe('channel messages: golden images (spec §3.2-3.6)', () => {
  it('covers every message type the bus ends handle', () => {
    expect(new Set(GOLDEN.map((g) => g.msg.type))).toEqual(new Set(Object.keys(MESSAGE_TYPES)));
  });

  it.each(GOLDEN.map((g) => [g.msg.type, g] as const))('%s encodes to the spec image and decodes back', (_, g) => {
    const want = unhex(g.image);
    const bytes = encodeMessage(g.msg);
    expect(hex(bytes)).toBe(hex(want));
    expect(bytes.length).toBe(MESSAGE_TYPES[g.msg.type].size + ('pfns' in g.msg ? 8 * g.msg.pfns.length : 0));
    const back = decodeMessage(want);
    const expected = { ...g.msg } as Record<string, unknown>;
    if (g.msg.type === 'openChannel') expected.userData = new Uint8Array(120); // decoded at full size
    expect(back).toEqual(expected);
  });

  it('the fixed sizes are those of the spec: offer 196, open 148, initiate contact 40', () => {
    expect(messageTypeInfo(1)).toMatchObject({ name: 'offer', size: 196, dir: 'h2g' });
    expect(messageTypeInfo(5)).toMatchObject({ name: 'openChannel', size: 148, dir: 'g2h' });
    expect(messageTypeInfo(14)).toMatchObject({ name: 'initiateContact', size: 40 });
    for (const id of [0, 18, 19, 20, 21, 23, 25, 0xffffffff]) expect(messageTypeInfo(id)).toBeUndefined();
  });

  it('a GPADL header carries at most 26 PFNs (236 bytes) and a body at most 28 (240 bytes)', () => {
    const h = (n: number) => encodeMessage({ type: 'gpadlHeader', childRelid: 1, gpadl: 1, rangeBufLen: 8 + 8 * n, rangeCount: 1, byteCount: n * 4096, byteOffset: 0, pfns: Array(n).fill(1), trailingBytes: 0 });
    expect(h(26).length).toBe(236);
    expectCode(() => h(27), 'MessageTooLong');
    const b = (n: number) => encodeMessage({ type: 'gpadlBody', msgNumber: 0, gpadl: 1, pfns: Array(n).fill(1), trailingBytes: 0 });
    expect(b(28).length).toBe(240);
    expectCode(() => b(29), 'MessageTooLong');
  });

  it('encoding refuses fields outside their wire width', () => {
    expectCode(() => encodeMessage({ type: 'rescind', childRelid: 2 ** 32 }), 'InvalidArgument');
    expectCode(() => encodeMessage({ type: 'rescind', childRelid: -1 }), 'InvalidArgument');
    expectCode(() => encodeMessage({ type: 'openChannel', childRelid: 1, openId: 1, ringGpadl: 1, targetVp: 0, downstreamPageOffset: 2, userData: new Uint8Array(121) }), 'InvalidArgument');
    expectCode(() => encodeMessage({ type: 'initiateContact', version: 1, targetVcpu: 0, interruptPage: -1n, monitorPage1: 0n, monitorPage2: 0n }), 'InvalidArgument');
    expectCode(() => encodeMessage({ type: 'nope' } as unknown as ChannelMessage), 'InvalidArgument');
  });
});

const u32 = fc.nat({ max: 0xffffffff });
const u16 = fc.nat({ max: 0xffff });
const guid = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => {
  const h = hex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
});
const pfns = (max: number) => fc.array(fc.nat({ max: 2 ** 40 - 1 }), { maxLength: max });
const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });

/** Any message of the codec, with every field in its wire domain. */
export const arbMessage: fc.Arbitrary<ChannelMessage> = fc.oneof(
  fc.record({ type: fc.constant('offer' as const), classId: guid, instanceId: guid, flags: u16, mmioMegabytes: u16,
    userDefined: fc.uint8Array({ minLength: 120, maxLength: 120 }), subChannelIndex: u16, childRelid: u32, monitorId: fc.nat({ max: 255 }),
    monitorAllocated: fc.boolean(), dedicatedInterrupt: fc.boolean(), connectionId: u32 }),
  ...(['rescind', 'closeChannel', 'relidReleased'] as const).map((t) => fc.record({ type: fc.constant(t), childRelid: u32 })),
  ...(['requestOffers', 'allOffersDelivered', 'unload', 'unloadResponse'] as const).map((t) => fc.constant({ type: t })),
  fc.record({ type: fc.constant('openChannel' as const), childRelid: u32, openId: u32, ringGpadl: u32, targetVp: u32, downstreamPageOffset: u32,
    userData: fc.uint8Array({ minLength: 120, maxLength: 120 }) }),
  fc.record({ type: fc.constant('openResult' as const), childRelid: u32, openId: u32, status: u32 }),
  fc.record({ type: fc.constant('gpadlHeader' as const), childRelid: u32, gpadl: u32, rangeBufLen: u16, rangeCount: u16, byteCount: u32, byteOffset: u32,
    pfns: pfns(26), trailingBytes: fc.constant(0) }),
  fc.record({ type: fc.constant('gpadlBody' as const), msgNumber: u32, gpadl: u32, pfns: pfns(28), trailingBytes: fc.constant(0) }),
  fc.record({ type: fc.constant('gpadlCreated' as const), childRelid: u32, gpadl: u32, status: u32 }),
  fc.record({ type: fc.constant('gpadlTeardown' as const), childRelid: u32, gpadl: u32 }),
  fc.record({ type: fc.constant('gpadlTorndown' as const), gpadl: u32 }),
  fc.record({ type: fc.constant('initiateContact' as const), version: u32, targetVcpu: u32, interruptPage: u64, monitorPage1: u64, monitorPage2: u64 }),
  fc.record({ type: fc.constant('versionResponse' as const), versionSupported: fc.boolean(), connectionState: fc.nat({ max: 255 }), msgConnId: u32 }),
  fc.record({ type: fc.constant('modifyChannel' as const), childRelid: u32, targetVp: u32 }),
  fc.record({ type: fc.constant('modifyChannelResponse' as const), childRelid: u32, status: u32 }),
) as fc.Arbitrary<ChannelMessage>;

describe('channel messages: properties', () => {
  it('decode(encode(m)) = m for every message type', () => {
    check(fc.property(arbMessage, (m) => {
      expect(decodeMessage(encodeMessage(m))).toEqual(m);
    }), 1000);
  });

  it('hostile bytes: decode returns a message or throws one of the three typed errors, and reads nothing past the bytes', () => {
    check(fc.property(fc.uint8Array({ maxLength: 260 }), fc.nat({ max: 30 }), (b, type) => {
      if (b.length >= 4) new DataView(b.buffer).setUint32(0, type, true); // mostly known types
      // Poison the bytes just past the view: a decoder that reads them would see 0xee.
      const buf = new Uint8Array(b.length + 16).fill(0xee);
      buf.set(b);
      const view = buf.subarray(0, b.length);
      try {
        const m = decodeMessage(view);
        expect(b.length).toBeGreaterThanOrEqual(MESSAGE_TYPES[m.type].size);
        expect(b.length).toBeLessThanOrEqual(240);
        expect(JSON.stringify(m, (_, v) => (typeof v === 'bigint' ? String(v) : v))).not.toContain('238,238');
      } catch (e) {
        expect(e).toBeInstanceOf(SgringError);
        expect(['MessageTooShort', 'MessageTooLong', 'UnknownMessageType']).toContain((e as SgringError).code);
      }
    }), 2000);
  });
});

describe('[H17] channel message lengths (hardening L1)', () => {
  it.each(Object.entries(MESSAGE_TYPES))('[H17] %s: minimum - 1 bytes is MessageTooShort, the minimum decodes, 241 bytes is MessageTooLong', (_, t) => {
    const img = new Uint8Array(241);
    new DataView(img.buffer).setUint32(0, t.id, true);
    const e = expectCode(() => decodeMessage(img.subarray(0, t.size - 1)), 'MessageTooShort');
    expect(e.broken).toBe(false);
    expect(e.details).toMatchObject(t.size > 8 ? { msgtype: t.id, minimum: t.size } : { minimum: 8 });
    expect(() => decodeMessage(img.subarray(0, t.size))).not.toThrow();
    expect(() => decodeMessage(img.subarray(0, 240))).not.toThrow(); // newer hosts may append fields
    expectCode(() => decodeMessage(img), 'MessageTooLong');
  });

  it('[H17] fewer than 8 bytes (no header) is MessageTooShort; unknown types (0, 18-21, 23, >= 25) are UnknownMessageType', () => {
    for (let n = 0; n < 8; n++) expectCode(() => decodeMessage(new Uint8Array(n)), 'MessageTooShort');
    for (const id of [0, 18, 19, 20, 21, 23, K.CHMSG_COUNT, 1000, 0xffffffff]) {
      const img = new Uint8Array(240);
      new DataView(img.buffer).setUint32(0, id >>> 0, true);
      expectCode(() => decodeMessage(img), 'UnknownMessageType');
    }
  });
});
