// The netvsc wire formats byte by byte — NVSP messages at the offsets of Linux's packed structs
// (nvsp_message: a u32 type and a 36-byte union, 40 bytes), RNDIS control and data messages —
// and the hardened readers against hostile lengths and offsets (hardening §3.6).
import { describe, expect, it } from 'vitest';
import {
  decodeInitComplete, decodeRecvBufComplete, decodeRndis, decodeRndisPacket, decodeSendBufComplete, encodeInitComplete, encodeNvspInit, encodeRecvBufComplete,
  encodeRndisIndicateStatus, encodeRndisInitialize, encodeRndisInitializeComplete, encodeRndisPacket, encodeRndisPkt, encodeRndisQuery,
  encodeRndisQueryComplete, encodeRndisSet, encodeSendBufComplete, encodeSendBuffer, NVSP, NVSP_STATUS, NVSP_VERSION, RNDIS_MSG, writeU32LE,
} from '../../src/index';
import { expectCode } from '../util/errors';

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const frame = Uint8Array.from({ length: 60 }, (_, i) => i);

describe('NVSP wire format', () => {
  it('versions and message types are the protocol\'s; every message Linux sends is 40 bytes', () => {
    expect(Object.values(NVSP_VERSION)).toEqual([0x2, 0x30002, 0x40000, 0x50000, 0x60000, 0x60001]);
    expect(NVSP).toMatchObject({ init: 1, initComplete: 2, sendNdisVersion: 100, sendRecvBuf: 101, sendRecvBufComplete: 102, sendSendBuf: 104, sendRndisPkt: 107, sendRndisPktComplete: 108, sendNdisConfig: 125, subchannel: 133 });
    for (const m of [encodeNvspInit(NVSP_VERSION.v61), encodeSendBuffer(NVSP.sendRecvBuf, 7, 0xcafe), encodeRndisPkt(0, 3, 100), encodeInitComplete(1)]) expect(m.length).toBe(40);
  });

  it('INIT (min = max = the version tried), SEND_RECV_BUF (packed: the u16 id right after the GPADL handle), SEND_RNDIS_PKT', () => {
    expect(hex(encodeNvspInit(NVSP_VERSION.v61).subarray(0, 12))).toBe('01000000' + '01000600' + '01000600');
    expect(hex(encodeSendBuffer(NVSP.sendRecvBuf, 0x12345678, 0xcafe).subarray(0, 12))).toBe('65000000' + '78563412' + 'feca' + '0000');
    expect(hex(encodeRndisPkt(1, 0xffffffff, 0).subarray(0, 16))).toBe('6b000000' + '01000000' + 'ffffffff' + '00000000');
  });

  it('INIT_COMPLETE: status at 12; shorter than 4 + 12 bytes is refused (spec §6.6 45)', () => {
    expect(decodeInitComplete(encodeInitComplete(NVSP_STATUS.success)).status).toBe(1);
    expectCode(() => decodeInitComplete(encodeInitComplete(1).subarray(0, 15)), 'MessageTooShort');
  });

  it('[H42] SEND_RECV_BUF_COMPLETE: one section at offset 0 of at least 68 bytes whose total fits the buffer; anything else fails the init', () => {
    const ok = encodeRecvBufComplete(1, [{ offset: 0, subAllocSize: 1728, numSubAllocs: 606, endOffset: 606 * 1728 }]);
    expect(hex(ok.subarray(0, 28))).toBe('66000000' + '01000000' + '01000000' + '00000000' + 'c0060000' + '5e020000' + '80fa0f00');
    expect(decodeRecvBufComplete(ok, 1 << 20)).toEqual({ offset: 0, subAllocSize: 1728, numSubAllocs: 606, endOffset: 606 * 1728 });
    const bad = (sections: { offset: number; subAllocSize: number; numSubAllocs: number; endOffset: number }[], status = 1) => encodeRecvBufComplete(status, sections);
    expectCode(() => decodeRecvBufComplete(bad([{ offset: 0, subAllocSize: 1728, numSubAllocs: 607, endOffset: 0 }]), 1 << 20), 'HostRefused'); // 607 x 1728 > 1 MiB
    expectCode(() => decodeRecvBufComplete(bad([{ offset: 0, subAllocSize: 0x10000, numSubAllocs: 0x10000, endOffset: 0 }]), 1 << 20), 'HostRefused'); // 2^32: no u32 wrap
    expectCode(() => decodeRecvBufComplete(bad([{ offset: 0, subAllocSize: 67, numSubAllocs: 10, endOffset: 0 }]), 1 << 20), 'HostRefused'); // under NETVSC_MTU_MIN
    expectCode(() => decodeRecvBufComplete(bad([{ offset: 64, subAllocSize: 1728, numSubAllocs: 10, endOffset: 0 }]), 1 << 20), 'HostRefused');
    expectCode(() => decodeRecvBufComplete(bad([{ offset: 0, subAllocSize: 1728, numSubAllocs: 1, endOffset: 0 }, { offset: 0, subAllocSize: 1728, numSubAllocs: 1, endOffset: 0 }]), 1 << 20), 'HostRefused');
    expectCode(() => decodeRecvBufComplete(bad([{ offset: 0, subAllocSize: 1728, numSubAllocs: 1, endOffset: 0 }], 2), 1 << 20), 'HostRefused');
    expectCode(() => decodeRecvBufComplete(ok.subarray(0, 27), 1 << 20), 'MessageTooShort');
    expect(decodeSendBufComplete(encodeSendBufComplete(1, 6144), 1 << 20)).toEqual({ sectionSize: 6144 });
    expectCode(() => decodeSendBufComplete(encodeSendBufComplete(1, 67), 1 << 20), 'HostRefused');
  });
});

describe('RNDIS wire format', () => {
  it('INITIALIZE (24 bytes, 1.0, max transfer 0x4000) and INITIALIZE_CMPLT (52 bytes)', () => {
    expect(hex(encodeRndisInitialize(5))).toBe('02000000' + '18000000' + '05000000' + '01000000' + '00000000' + '00400000');
    const c = encodeRndisInitializeComplete({ rid: 5, status: 0, maxPacketsPerMessage: 8, maxTransferSize: 0x40000, alignmentFactor: 3 });
    expect(c.length).toBe(52);
    expect(decodeRndis(c)).toMatchObject({ type: RNDIS_MSG.initializeComplete, rid: 5, status: 0, maxPacketsPerMessage: 8, maxTransferSize: 0x40000, alignmentFactor: 3 });
  });

  it('QUERY: info_buf_offset 20 (relative to the request id) even with no data; SET: the value right after the 28-byte header', () => {
    expect(hex(encodeRndisQuery(9, 0x01010101))).toBe('04000000' + '1c000000' + '09000000' + '01010101' + '00000000' + '14000000' + '00000000');
    const set = encodeRndisSet(10, 0x0001010e, Uint8Array.of(0x0b, 0, 0, 0));
    expect(decodeRndis(set)).toEqual({ type: RNDIS_MSG.set, rid: 10, oid: 0x0001010e, info: Uint8Array.of(0x0b, 0, 0, 0) });
  });

  it('PACKET: 44-byte header, PPI right after it (offset 36 from byte 8), data after the PPI; PPIs read back', () => {
    const p = encodeRndisPacket(frame, { vlan: 0x0123, hashValue: 0xdeadbeef });
    expect(p.length).toBe(44 + 32 + 60);
    expect(hex(p.subarray(0, 44))).toBe('01000000' + '88000000' + '44000000' + '3c000000' + '00000000'.repeat(3) + '24000000' + '20000000' + '00000000'.repeat(2));
    expect(hex(p.subarray(44, 60))).toBe('10000000' + '06000000' + '0c000000' + '23010000'); // size 16, type 802.1Q, offset 12, value
    expect(decodeRndisPacket(p)).toEqual({ type: RNDIS_MSG.packet, frame, ppi: { vlan: 0x0123, hashValue: 0xdeadbeef } });
  });

  it('[H44] lengths and offsets that do not fit: length under 8 or past the bytes, data offset past the message (7777 with length 0), a frame under 14 bytes', () => {
    const p = encodeRndisPacket(frame);
    const mut = (at: number, v: number) => {
      const b = p.slice();
      writeU32LE(b, at, v);
      return b;
    };
    expectCode(() => decodeRndis(p.subarray(0, 7)), 'MessageTooShort');
    expectCode(() => decodeRndis(mut(4, 4)), 'InvalidMessageLength');
    expectCode(() => decodeRndis(mut(4, p.length + 1)), 'InvalidMessageLength');
    expectCode(() => decodeRndis(mut(4, 40)), 'MessageTooShort'); // under the 44-byte PACKET header
    expectCode(() => decodeRndis(mut(8, 7777)), 'InvalidMessageLength');
    const zero = mut(8, 7777);
    writeU32LE(zero, 12, 0);
    expectCode(() => decodeRndis(zero), 'InvalidMessageLength');
    expectCode(() => decodeRndis(mut(12, 61)), 'InvalidMessageLength'); // one byte more frame than the message holds
    expectCode(() => decodeRndis(mut(12, 13)), 'InvalidMessageLength');
    expectCode(() => decodeRndis(mut(8, 35)), 'InvalidMessageLength'); // inside the header
    expectCode(() => decodeRndis(mut(0, 0x99)), 'UnknownMessageType');
  });

  it('[H45] PPIs that do not fit are skipped, the frame still good: offset under 36 or past the packet, length past what remains, an element larger than the PPI area, ppi_offset >= size', () => {
    const p = encodeRndisPacket(frame, { vlan: 5 });
    const mut = (at: number, v: number) => {
      const b = p.slice();
      writeU32LE(b, at, v);
      return decodeRndisPacket(b);
    };
    expect(decodeRndisPacket(p).ppi).toEqual({ vlan: 5 });
    for (const [at, v] of [[28, 20], [28, 0x7fffffff], [32, 0x1000], [44, 0x100], [44, 8], [52, 16], [52, 0xffffffff]] as const) {
      const r = mut(at, v);
      expect([r.frame, r.ppi]).toEqual([frame, {}]);
    }
  });

  it('[H46] INDICATE_STATUS with a status buffer outside the message is refused; QUERY_CMPLT the same', () => {
    const s = encodeRndisIndicateStatus(0x40010013, Uint8Array.of(1, 0, 0, 0));
    expect(decodeRndis(s)).toEqual({ type: RNDIS_MSG.indicateStatus, status: 0x40010013, buffer: Uint8Array.of(1, 0, 0, 0) });
    for (const [at, v] of [[12, 5], [16, 11], [16, 13], [16, 0xfffffff0]] as const) {
      const b = s.slice();
      writeU32LE(b, at, v);
      expectCode(() => decodeRndis(b), 'InvalidMessageLength');
    }
    const q = encodeRndisQueryComplete(3, 0, Uint8Array.of(1, 2, 3, 4, 5, 6));
    const b = q.slice();
    writeU32LE(b, 16, 7); // one byte more info than the message holds
    expectCode(() => decodeRndis(b), 'InvalidMessageLength');
    expectCode(() => decodeRndis(q.subarray(0, 20)), 'InvalidMessageLength'); // the length field says more than is there
  });
});
