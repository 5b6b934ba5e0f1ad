// A driver-side mock against the host end: a "guest" made of raw bytes — SynIC slots with
// channel-message images, ring headers and packet records written into guest RAM — and checks
// of the exact bytes the host end writes back.
import { describe, expect, it } from 'vitest';
import { constants as K, encodeGpaRange, type ReceivedPacket } from '../../src/index';
import { busPair, hex, unhex } from './helpers';
import { RawPeer, RawRing } from './mock';

describe('host end driven by a raw guest (driver-side mock)', () => {
  it('contact, offers, GPADL, open, in-band and GPA-direct packets, completions, close and teardown, byte for byte', () => {
    const p = busPair();
    const seen: { type: number; tid: bigint; payload: string; segments?: unknown }[] = [];
    let closed = 0;
    p.host.offer({
      classId: 'storage', relid: 14, instanceId: '12345678-9abc-def0-1122-334455667788',
      onOpen: (ch) => {
        ch.onClose = () => closed++;
        ch.onPacket = (pkt: ReceivedPacket) => {
          seen.push({ type: pkt.type, tid: pkt.transactionId, payload: hex(pkt.payload()), segments: pkt.gpa?.segments });
          if (pkt.completionRequested) ch.complete(pkt, Uint8Array.from([0xc0, 0xde]));
        };
      },
    });
    const g = new RawPeer(p.transport, 'guest');

    // INITIATE_CONTACT for 5.3 (msg_sint 2), connection id 4.
    g.postRaw(unhex('0e000000 00000000 03000500 00000000 0200000000000000' + '00'.repeat(16)), { sender: 4 });
    p.host.poll();
    expect(g.takeRaw().map(hex)).toEqual(['0f000000000000000100000004000000']);

    // REQUESTOFFERS -> OFFERCHANNEL (196 bytes) + ALLOFFERS_DELIVERED.
    g.postRaw(unhex('03000000 00000000'));
    p.host.poll();
    const [offer, done] = g.takeRaw();
    expect(offer!.length).toBe(196);
    expect(hex(offer!.subarray(0, 40))).toBe('0100000000000000' + 'd96361baa104294db60572e2ffb1dc7f' + '78563412bc9af0de1122334455667788');
    expect(hex(offer!.subarray(180, 196))).toBe('0000' + '0000' + '0e000000' + 'ff' + '00' + '0000' + '0e000000');
    expect(hex(done!)).toBe('0400000000000000');

    // Ring memory: 4 TX pages then 4 RX pages at guest 0x20000, headers zeroed, feature bits 1.
    const gpa = 0x20000;
    const base = p.core.guestBase + gpa;
    p.core.u8.fill(0, base, base + 8 * 4096);
    p.core.u32[(base + 64) >> 2] = 1;
    p.core.u32[(base + 4 * 4096 + 64) >> 2] = 1;
    // GPADL_HEADER: relid 14, handle 0xe1e1, range_buflen 8 + 64, 1 range of 8 pages.
    const pfns = Array.from({ length: 8 }, (_, i) => (gpa >> 12) + i);
    const pfnHex = pfns.map((x) => hex(Uint8Array.from([x & 0xff, (x >> 8) & 0xff, 0, 0, 0, 0, 0, 0]))).join('');
    g.postRaw(unhex('08000000 00000000 0e000000 e1e10000 4800 0100 00800000 00000000' + pfnHex));
    p.host.poll();
    expect(g.takeRaw().map(hex)).toEqual(['0a00000000000000' + '0e000000' + 'e1e10000' + '00000000']);
    // OPENCHANNEL: relid 14, openid 14, GPADL 0xe1e1, VP 0, downstream offset 4 pages.
    g.postRaw(unhex('05000000 00000000 0e000000 0e000000 e1e10000 00000000 04000000' + '00'.repeat(120)));
    p.host.poll();
    expect(g.takeRaw().map(hex)).toEqual(['0600000000000000' + '0e000000' + '0e000000' + '00000000']);
    expect(p.host.channels.get(14)!.ringGpadl).toBe(0xe1e1);

    // An in-band request, written into the TX ring by hand: the device sees it, its completion
    // lands in the RX ring as the exact record of spec §2.7 + trailer.
    const tx = new RawRing(p.core, base, 4 * 4096);
    const rx = new RawRing(p.core, base + 4 * 4096, 4 * 4096);
    tx.writeRecord(unhex('0600 0200 0300 0100 2a00000000000000 0102030405000000'));
    p.host.poll();
    expect(seen).toEqual([{ type: 6, tid: 42n, payload: '0102030405000000', segments: undefined }]);
    expect(rx.field(K.RING_OFF_WRITE_INDEX)).toBe(24 + 8);
    expect(hex(p.core.u8.subarray(rx.ptr + 4096, rx.ptr + 4096 + 32))).toBe('0b00020003000000' + '2a00000000000000' + 'c0de000000000000' + '00000000' + '00000000');
    expect(rx.readRecords().map(hex)).toEqual(['0b000200030000002a00000000000000c0de000000000000']);
    expect(tx.field(K.RING_OFF_READ_INDEX)).toBe(32); // the host consumed the record and its trailer

    // The GPA-direct storvsc read of spec §2.5 (hlen 7), written raw.
    const ranges = hex(encodeGpaRange(p.core, { byteCount: 6656, byteOffset: 0xe00, pfns: [0x12345, 0x20000, 0x30000] }));
    tx.writeRecord(unhex('0900 0700 0f00 0100 2b00000000000000 00000000 01000000' + ranges + 'ab'.repeat(64)));
    p.host.poll();
    expect(seen[1]).toMatchObject({ type: 9, tid: 43n, payload: 'ab'.repeat(64) });
    expect(seen[1]!.segments).toEqual([{ addr: 0x12345e00, len: 0x200, range: 0 }, { addr: 0x20000000, len: 4096, range: 0 }, { addr: 0x30000000, len: 0x800, range: 0 }]);
    expect(rx.readRecords().map(hex)).toEqual(['0b000200030000002b00000000000000c0de000000000000']);

    // A 60-page receive buffer: GPADL_HEADER with 26 PFNs, then GPADL_BODY messages of 28 and 6,
    // written raw; GPADL_CREATED comes only after the last body.
    const le64 = (x: number) => hex(Uint8Array.from([x & 0xff, (x >> 8) & 0xff, (x >> 16) & 0xff, 0, 0, 0, 0, 0]));
    const buf = Array.from({ length: 60 }, (_, i) => 0x100 + i);
    g.postRaw(unhex('08000000 00000000 0e000000 02000000 e801 0100 00c00300 00000000' + buf.slice(0, 26).map(le64).join('')));
    p.host.poll();
    expect(g.takeRaw()).toEqual([]);
    g.postRaw(unhex('09000000 00000000 00000000 02000000' + buf.slice(26, 54).map(le64).join('')));
    p.host.poll();
    expect(g.takeRaw()).toEqual([]);
    g.postRaw(unhex('09000000 00000000 01000000 02000000' + buf.slice(54).map(le64).join('')));
    p.host.poll();
    expect(g.takeRaw().map(hex)).toEqual(['0a00000000000000' + '0e000000' + '02000000' + '00000000']);
    expect(p.host.gpadl(2)).toMatchObject({ pfns: buf, byteCount: 60 * 4096, state: 'created', inUse: false });

    // CLOSECHANNEL (no reply), then GPADL_TEARDOWN -> GPADL_TORNDOWN.
    g.postRaw(unhex('07000000 00000000 0e000000'));
    g.postRaw(unhex('0b000000 00000000 0e000000 e1e10000'));
    p.host.poll();
    expect(closed).toBe(1);
    expect(g.takeRaw().map(hex)).toEqual(['0c00000000000000e1e10000']);
    expect(p.host.gpadls.size).toBe(1); // the receive buffer's GPADL stays until its own teardown
  });
});
