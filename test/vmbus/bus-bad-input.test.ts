// Hostile channel messages against both bus ends, written raw into the SynIC slots:
// checklist 17 (length / type: dropped and counted, no handler runs), checklist 18 (relid
// bounds and duplicates: refused with a typed error, nothing overwritten) and spec §6.3 items 15-22.
import { describe, expect, it } from 'vitest';
import { constants as K, encodeMessage, instanceGuid, type ChannelMessage, type SgringError } from '../../src/index';
import { busPair, echoPair } from './helpers';
import { RawPeer } from './mock';

const offer = (relid: number, over: Partial<ChannelMessage & { type: 'offer' }> = {}): ChannelMessage => ({
  type: 'offer', classId: 'ba6163d9-04a1-4d29-b605-72e2ffb1dc7f', instanceId: instanceGuid(relid), flags: 0, mmioMegabytes: 0,
  userDefined: new Uint8Array(120), subChannelIndex: 0, childRelid: relid, monitorId: 0xff, monitorAllocated: false,
  dedicatedInterrupt: false, connectionId: relid, ...over,
});

/** A guest that has made contact, with a raw host peer answering nothing on its own. */
async function guestWithRawHost() {
  const p = busPair();
  await p.guest.connect({ requestOffers: false });
  const host = new RawPeer(p.transport, 'host');
  host.takeRaw();
  const refused: SgringError[] = [];
  p.guest.onOfferRefused = (e) => refused.push(e);
  return { ...p, raw: host, refused };
}

describe('[H17] guest end: malformed host messages are dropped and counted; no handler runs', () => {
  it('[H17] each message type at its minimum length - 1 is dropped as too short', async () => {
    const g = await guestWithRawHost();
    const h2g = ['offer', 'rescind', 'openResult', 'gpadlCreated', 'gpadlTorndown', 'versionResponse', 'modifyChannelResponse'];
    const sizes: Record<string, [number, number]> = {
      offer: [K.CHMSG_OFFER, K.CHMSG_OFFER_SIZE], rescind: [K.CHMSG_RESCIND, K.CHMSG_RESCIND_SIZE], openResult: [K.CHMSG_OPEN_RESULT, K.CHMSG_OPEN_RESULT_SIZE],
      gpadlCreated: [K.CHMSG_GPADL_CREATED, K.CHMSG_GPADL_CREATED_SIZE], gpadlTorndown: [K.CHMSG_GPADL_TORNDOWN, K.CHMSG_GPADL_TORNDOWN_SIZE],
      versionResponse: [K.CHMSG_VERSION_RESPONSE, K.CHMSG_VERSION_RESPONSE_SIZE], modifyChannelResponse: [K.CHMSG_MODIFY_CHANNEL_RESPONSE, K.CHMSG_MODIFY_CHANNEL_RESPONSE_SIZE],
    };
    for (const name of h2g) {
      const [id, size] = sizes[name]!;
      const img = new Uint8Array(size);
      new DataView(img.buffer).setUint32(0, id, true);
      if (name === 'offer') new DataView(img.buffer).setUint32(K.OFFER_OFF_CHILD_RELID, 5, true);
      g.raw.postRaw(img.subarray(0, size - 1));
    }
    g.guest.poll();
    expect(g.guest.dropped.tooShort).toBe(h2g.length);
    expect(g.guest.offers.size).toBe(0);
    expect(Object.keys(g.guest.received)).toEqual(['versionResponse']); // only the one from connect
  });

  it('[H17] a SynIC payload_size above 240, a SynIC type other than 1, a type >= 25, and 0 are dropped', async () => {
    const g = await guestWithRawHost();
    g.raw.postRaw(encodeMessage(offer(5)), { payloadSize: 241 });
    g.raw.postRaw(encodeMessage(offer(5)), { payloadSize: 255 });
    g.raw.postRaw(encodeMessage(offer(5)), { synicType: 2 });
    for (const t of [0, 18, 25, 0x80000001]) {
      const img = new Uint8Array(200);
      new DataView(img.buffer).setUint32(0, t >>> 0, true);
      g.raw.postRaw(img);
    }
    g.guest.poll();
    expect(g.guest.dropped).toMatchObject({ tooLong: 2, unknownType: 5 });
    expect(g.guest.offers.size).toBe(0);
  });

  it('[H17] messages of the guest -> host direction are dropped as wrong direction', async () => {
    const g = await guestWithRawHost();
    g.raw.post({ type: 'openChannel', childRelid: 1, openId: 1, ringGpadl: 1, targetVp: 0, downstreamPageOffset: 2, userData: new Uint8Array(120) });
    g.raw.post({ type: 'requestOffers' });
    g.guest.poll();
    expect(g.guest.dropped.wrongDirection).toBe(2);
  });

  it('hardening L2: the slot is copied before parsing; rewriting it after the guest took it changes nothing', async () => {
    const g = await guestWithRawHost();
    g.raw.post(offer(9));
    const end = g.guest.end;
    const copy = end.receive()!;
    g.core.u8.fill(0xff, g.transport.ptr + K.XPORT_HEADER_SIZE + g.transport.slots * 256, g.transport.ptr + K.XPORT_HEADER_SIZE + 2 * g.transport.slots * 256);
    (g.guest as unknown as { handle(s: Uint8Array): void }).handle(copy);
    expect(g.guest.offers.get(9)!.instanceId).toBe(instanceGuid(9));
  });

  it('an offer before contact is out of state (dropped)', async () => {
    const p = busPair();
    new RawPeer(p.transport, 'host').post(offer(3));
    p.guest.poll();
    expect(p.guest.dropped.outOfState).toBe(1);
    expect(p.guest.offers.size).toBe(0);
  });
});

describe('[H18] guest end: offers with bad relids, duplicates and orphans (hardening L3)', () => {
  it('[H18] relid >= 2048 is refused (RelidOutOfRange); 2047 is fine', async () => {
    const g = await guestWithRawHost();
    for (const r of [2048, 4096, 0xffffffff]) g.raw.post(offer(r));
    g.raw.post(offer(2047));
    g.guest.poll();
    expect(g.refused.map((e) => [e.code, e.details?.relid])).toEqual([['RelidOutOfRange', 2048], ['RelidOutOfRange', 4096], ['RelidOutOfRange', 0xffffffff]]);
    expect(g.guest.offers.all().map((o) => o.relid)).toEqual([2047]);
    expect(g.guest.offers.refused).toEqual({ RelidOutOfRange: 3 });
  });

  it('[H18] a second offer for a relid in use is refused; the first record is untouched (no overwrite, no leak)', async () => {
    const g = await guestWithRawHost();
    g.raw.post(offer(4));
    g.raw.post(offer(4, { classId: 'f8615163-df3e-46c5-913f-f2d2f965ed0e', instanceId: instanceGuid(100) }));
    g.guest.poll();
    expect(g.refused.map((e) => e.code)).toEqual(['DuplicateOffer']);
    expect(g.guest.offers.size).toBe(1);
    expect(g.guest.offers.get(4)!.className).toBe('storage');
    expect(g.guest.offers.get(4)!.instanceId).toBe(instanceGuid(4));
  });

  it('[H18] a second primary for one GUID pair, a repeated sub-channel index, and a sub-channel with no primary are refused', async () => {
    const g = await guestWithRawHost();
    const pair = { instanceId: instanceGuid(50) };
    g.raw.post(offer(10, pair));
    g.raw.post(offer(11, pair)); // another primary
    g.raw.post(offer(12, { ...pair, subChannelIndex: 1 }));
    g.raw.post(offer(13, { ...pair, subChannelIndex: 1 })); // index 1 again
    g.raw.post(offer(14, { instanceId: instanceGuid(51), subChannelIndex: 3 })); // orphan
    g.guest.poll();
    expect(g.refused.map((e) => [e.code, e.details?.relid])).toEqual([['DuplicateOffer', 11], ['DuplicateOffer', 13], ['DuplicateOffer', 14]]);
    expect(g.guest.offers.all().map((o) => [o.relid, o.subChannelIndex, o.primary?.relid ?? null])).toEqual([[10, 0, null], [12, 1, 10]]);
  });

  it('[H18] answers for unknown relids / handles (OPENCHANNEL_RESULT, GPADL_CREATED, GPADL_TORNDOWN) are counted and change nothing', async () => {
    const g = await guestWithRawHost();
    g.raw.post({ type: 'openResult', childRelid: 3, openId: 3, status: 0 });
    g.raw.post({ type: 'gpadlCreated', childRelid: 3, gpadl: 1, status: 0 });
    g.raw.post({ type: 'gpadlTorndown', gpadl: 1 });
    g.raw.post({ type: 'versionResponse', versionSupported: true, connectionState: 0, msgConnId: 4 });
    g.guest.poll();
    expect(g.guest.dropped.unmatched).toBe(4);
    expect(g.guest.channels.size).toBe(0);
  });
});

describe('[H17] [H18] host end: malformed or impossible guest messages', () => {
  async function hostWithRawGuest() {
    const p = busPair();
    p.host.offer({ classId: 'storage', relid: 1 });
    const guest = new RawPeer(p.transport, 'guest');
    guest.post({ type: 'initiateContact', version: K.VMBUS_VERSION_WIN10_V5_3, targetVcpu: 0, interruptPage: 2n, monitorPage1: 0n, monitorPage2: 0n }, 4);
    p.host.poll();
    expect(guest.take()).toEqual([{ type: 'versionResponse', versionSupported: true, connectionState: 0, msgConnId: 4 }]);
    return { ...p, raw: guest };
  }

  it('[H17] every guest -> host type at minimum - 1, payload_size 241, an unknown type and a host -> guest type are dropped; nothing is answered', async () => {
    const h = await hostWithRawGuest();
    const g2h: [number, number][] = [[K.CHMSG_OPEN_CHANNEL, K.CHMSG_OPEN_CHANNEL_SIZE], [K.CHMSG_CLOSE_CHANNEL, K.CHMSG_CLOSE_CHANNEL_SIZE],
      [K.CHMSG_GPADL_HEADER, K.CHMSG_GPADL_HEADER_SIZE], [K.CHMSG_GPADL_BODY, K.CHMSG_GPADL_BODY_SIZE], [K.CHMSG_GPADL_TEARDOWN, K.CHMSG_GPADL_TEARDOWN_SIZE],
      [K.CHMSG_RELID_RELEASED, K.CHMSG_RELID_RELEASED_SIZE], [K.CHMSG_INITIATE_CONTACT, K.CHMSG_INITIATE_CONTACT_SIZE], [K.CHMSG_MODIFY_CHANNEL, K.CHMSG_MODIFY_CHANNEL_SIZE]];
    for (const [id, size] of g2h) {
      const img = new Uint8Array(size - 1);
      if (img.length >= 4) new DataView(img.buffer).setUint32(0, id, true);
      h.raw.postRaw(img);
    }
    h.host.poll();
    h.raw.postRaw(encodeMessage({ type: 'requestOffers' }), { payloadSize: 241 });
    h.raw.postRaw(Uint8Array.from([99, 0, 0, 0, 0, 0, 0, 0]));
    h.raw.post(offer(5));
    h.host.poll();
    expect(h.host.dropped).toMatchObject({ tooShort: g2h.length, tooLong: 1, unknownType: 1, wrongDirection: 1 });
    expect(h.raw.take()).toEqual([]);
  });

  it('requests before contact are out of state and get no answer', async () => {
    const p = busPair();
    const raw = new RawPeer(p.transport, 'guest');
    raw.post({ type: 'requestOffers' });
    raw.post({ type: 'openChannel', childRelid: 1, openId: 1, ringGpadl: 1, targetVp: 0, downstreamPageOffset: 2, userData: new Uint8Array(120) });
    p.host.poll();
    expect(p.host.dropped.outOfState).toBe(2);
    expect(raw.take()).toEqual([]);
  });

  it('[H18] GPADLs and opens naming relids the host never offered (including >= 2048) fail with a status; close / release of unknown relids are counted', async () => {
    const h = await hostWithRawGuest();
    for (const relid of [2, 2048, 0xffffffff]) {
      h.raw.post({ type: 'gpadlHeader', childRelid: relid, gpadl: 7, rangeBufLen: 16, rangeCount: 1, byteCount: 4096, byteOffset: 0, pfns: [1], trailingBytes: 0 });
      h.raw.post({ type: 'openChannel', childRelid: relid, openId: relid, ringGpadl: 7, targetVp: 0, downstreamPageOffset: 2, userData: new Uint8Array(120) });
    }
    h.raw.post({ type: 'closeChannel', childRelid: 2048 });
    h.raw.post({ type: 'relidReleased', childRelid: 1 }); // offered, not rescinded
    h.raw.post({ type: 'gpadlTeardown', childRelid: 1, gpadl: 7 });
    h.host.poll();
    const answers = h.raw.take();
    expect(answers.map((m) => [m.type, 'status' in m ? m.status : null])).toEqual([
      ['gpadlCreated', K.VMBUS_STATUS_INVALID_DEVICE_STATE], ['openResult', K.VMBUS_STATUS_INVALID_PARAMETER],
      ['gpadlCreated', K.VMBUS_STATUS_INVALID_DEVICE_STATE], ['openResult', K.VMBUS_STATUS_INVALID_PARAMETER],
      ['gpadlCreated', K.VMBUS_STATUS_INVALID_DEVICE_STATE], ['openResult', K.VMBUS_STATUS_INVALID_PARAMETER],
    ]);
    expect(h.host.dropped.unmatched).toBe(3);
    expect(h.host.offers.get(1)!.state).toBe('offered');
    expect(h.host.gpadls.size).toBe(0);
  });

  it('the host refuses to offer relids >= 2048 or twice', async () => {
    const { host } = await echoPair();
    expect(() => host.offer({ classId: 'kvp', relid: 2048 })).toThrow(expect.objectContaining({ code: 'RelidOutOfRange' }));
    expect(() => host.offer({ classId: 'kvp', relid: 1 })).toThrow(expect.objectContaining({ code: 'DuplicateOffer' }));
  });

  it('a guest flooding REQUESTOFFERS cannot grow the host outbox without bound (P4)', async () => {
    const p = busPair({ host: { maxOutbox: 50 } });
    for (let i = 0; i < 20; i++) p.host.offer({ classId: 'kvp' });
    const raw = new RawPeer(p.transport, 'guest');
    raw.post({ type: 'initiateContact', version: K.VMBUS_VERSION_WIN10, targetVcpu: 0, interruptPage: 0n, monitorPage1: 0n, monitorPage2: 0n }, 1);
    for (let i = 0; i < 10; i++) {
      raw.post({ type: 'requestOffers' });
      p.host.poll(); // the raw guest never reads its queue
    }
    expect(p.host.outboxDropped).toBeGreaterThan(0);
    expect((p.host as unknown as { outbox: unknown[] }).outbox.length).toBeLessThanOrEqual(50);
  });
});
