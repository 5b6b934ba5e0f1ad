// The control plane end to end in one thread (spec §3.3-3.9): version negotiation, offers and
// binding, GPADLs, open / close / teardown, rescind, sub-channels, unload.
import { describe, expect, it } from 'vitest';
import { bumpPageAllocator, constants as K, DEVICE_CLASSES, GuestBus, instanceGuid, loadCoreSync, MessageTransport, SgringError, type Offer } from '../../src/index';
import { busPair, echoPair, expectReject } from './helpers';
import { RawPeer } from './mock';

describe('connect and offers (spec §3.3-3.4)', () => {
  it('the guest tries versions newest first until the host accepts one, then requests offers', async () => {
    const p = busPair({ host: { versions: [K.VMBUS_VERSION_WIN8] } });
    const v = await p.guest.connect();
    expect(v).toBe(K.VMBUS_VERSION_WIN8);
    expect(p.host.received.initiateContact).toBe(8); // 5.3 5.2 5.1 5.0 4.1 4.0 3.0, then 2.4 is accepted
    expect(p.guest.version).toBe(K.VMBUS_VERSION_WIN8);
    expect(p.guest.offersComplete).toBe(true);
  });

  it('INITIATE_CONTACT carries msg_sint and goes to connection id 4 from 5.0; before 5.0 it goes to connection id 1', async () => {
    const core = loadCoreSync({ guestBytes: 1 << 20 });
    const t = MessageTransport.create(core);
    const guest = new GuestBus(t, { allocPages: bumpPageAllocator(core), versions: [K.VMBUS_VERSION_WIN10_V5_2, K.VMBUS_VERSION_WIN10], timeoutMs: 2000 });
    const host = new RawPeer(t, 'host');
    const pending = guest.connect({ requestOffers: false });
    const first = host.takeRawSlots();
    expect(first.length).toBe(1);
    expect(first[0]!.sender).toBe(4);
    expect(Array.from(first[0]!.payload.subarray(0, 20))).toEqual([14, 0, 0, 0, 0, 0, 0, 0, 2, 0, 5, 0, 0, 0, 0, 0, 2, 0, 0, 0]); // 5.2, vcpu 0, msg_sint 2
    host.post({ type: 'versionResponse', versionSupported: false, connectionState: 0, msgConnId: 0 });
    for (let i = 0; i < 100 && host.peekCount() === 0; i++) await new Promise((r) => setTimeout(r, 1));
    const second = host.takeRawSlots();
    expect(second[0]!.sender).toBe(1);
    expect(new DataView(second[0]!.payload.buffer).getUint32(8, true)).toBe(K.VMBUS_VERSION_WIN10);
    host.post({ type: 'versionResponse', versionSupported: true, connectionState: 0, msgConnId: 0 });
    await expect(pending).resolves.toBe(K.VMBUS_VERSION_WIN10);
  });

  it('[H72] a host that accepts no version: HostRefused; a host that never answers: Timeout (no hang)', async () => {
    const p = busPair({ host: { versions: [] } });
    await expectReject(p.guest.connect(), 'HostRefused');
    const q = busPair({ guest: { pump: () => {}, timeoutMs: 50 } });
    const e = await expectReject(q.guest.connect(), 'Timeout');
    expect(e.message).toMatch(/INITIATE_CONTACT 5\.3/);
  });

  it('offers carry class and instance GUIDs for the six classes; several instances of a class differ by instance GUID; unknown classes are offered but not bound', async () => {
    const p = busPair();
    const names = ['storage', 'network', 'heartbeat', 'shutdown', 'timesync', 'kvp'] as const;
    for (const c of names) p.host.offer({ classId: c });
    p.host.offer({ classId: 'storage', instanceId: instanceGuid(99) });
    p.host.offer({ classId: '11111111-2222-3333-4444-555555555555' });
    const bound: Offer[] = [];
    p.guest.bind('storage', (o) => bound.push(o));
    p.guest.bind('heartbeat', (o) => bound.push(o));
    await p.guest.connect();
    const offers = p.guest.offers.all();
    expect(offers.map((o) => o.className)).toEqual([...names, 'storage', 'unknown']);
    expect(offers[0]!.classId).toBe(DEVICE_CLASSES.storage);
    expect(offers[6]!.instanceId).toBe(instanceGuid(99));
    expect(offers[0]!.instanceId).not.toBe(offers[6]!.instanceId);
    expect(bound.map((o) => o.relid)).toEqual([1, 3, 7]);
    expect(offers.filter((o) => o.bound).map((o) => o.relid)).toEqual([1, 3, 7]);
    expect(offers[7]!.bound).toBe(false);
    // A driver bound later gets the offers already there.
    p.guest.bind('kvp', (o) => bound.push(o));
    expect(bound.at(-1)!.className).toBe('kvp');
  });

  it('an offer made after the guest asked (hot add) arrives at once', async () => {
    const p = busPair();
    await p.guest.connect();
    const seen: number[] = [];
    p.guest.onOffer = (o) => seen.push(o.relid);
    p.host.offer({ classId: 'network', relid: 40 });
    p.guest.poll();
    expect(seen).toEqual([40]);
  });
});

describe('GPADLs and open / close (spec §3.5-3.6)', () => {
  it('createGpadl sends exactly one header and ceil((N - 26) / 28) bodies and the host rebuilds the PFNs', async () => {
    const p = await echoPair();
    const spy = new RawPeer(p.transport, 'host');
    const pfns = Array.from({ length: 100 }, (_, i) => 0x200 + 2 * i); // need not be contiguous for a plain buffer
    const pending = p.guest.createGpadl(1, { pfns, byteCount: 100 * 4096 - 17 });
    // Intercept before the pump runs: the raw messages the guest put in the queue.
    const raw = spy.takeRaw();
    expect(raw.map((b) => [b[0], b.length])).toEqual([[8, 28 + 26 * 8], [9, 240], [9, 240], [9, 16 + 18 * 8]]);
    const replay = new RawPeer(p.transport, 'guest');
    for (const b of raw) replay.postRaw(b);
    const handle = await pending;
    expect(p.host.gpadl(handle)).toMatchObject({ pfns, byteCount: 100 * 4096 - 17, byteOffset: 0, state: 'created', relid: 1 });
    await p.guest.teardownGpadl(1, handle);
    expect(p.host.gpadl(handle)).toBeUndefined();
  });

  it('open lays out TX then RX pages in one GPADL with the downstream offset; the host attaches its rings there; close tears it down', async () => {
    const p = await echoPair();
    const ch = await p.guest.open(1, { txPages: 4, rxPages: 8 });
    const hch = p.host.channels.get(1)!;
    expect(ch.rings).toMatchObject({ txPages: 4, rxPages: 8 });
    const g = p.host.gpadl(ch.rings.gpadl)!;
    expect(g.pfns.length).toBe(12);
    expect(g.pfns[0]).toBe(ch.rings.gpa / 4096);
    expect(g.inUse).toBe(true);
    expect(hch.ringGpadl).toBe(ch.rings.gpadl);
    // Feature bits on both rings, as Linux initialises them (spec §1.9.3).
    const base = p.core.guestBase + ch.rings.gpa;
    expect(p.core.u32[(base + 64) >> 2]).toBe(1);
    expect(p.core.u32[(base + 4 * 4096 + 64) >> 2]).toBe(1);
    expect(await ch.call(Uint8Array.from([5, 6]))).toEqual(Uint8Array.from([5, 6, 0, 0, 0, 0, 0, 0]));
    expect(p.guest.offers.get(1)!.state).toBe('opened');
    await ch.close();
    expect(p.host.channels.size).toBe(0);
    expect(p.host.gpadl(ch.rings.gpadl)).toBeUndefined();
    expect(p.guest.offers.get(1)!.state).toBe('offered');
    expect(p.host.offers.get(1)!.state).toBe('offered');
    expect(() => ch.request(new Uint8Array(8))).toThrow(SgringError);
    // ...and the channel can be opened again.
    const again = await p.guest.open(1);
    expect((await again.call(Uint8Array.from([9])))[0]).toBe(9);
  });

  it('in-flight requests fail with ChannelClosed exactly once when the channel closes', async () => {
    const p = busPair();
    p.host.offer({ classId: 'storage' }); // a device that never answers
    await p.guest.connect();
    const ch = await p.guest.open<number>(1);
    const calls: [number, string | undefined][] = [];
    ch.onCompletion = (ctx, err) => calls.push([ctx, err?.code]);
    for (let i = 0; i < 5; i++) ch.request(new Uint8Array(8), i);
    p.host.poll();
    await ch.close();
    expect(calls).toEqual([0, 1, 2, 3, 4].map((i) => [i, 'ChannelClosed']));
    expect(ch.transactions.counters).toMatchObject({ cancelled: 5, completed: 0 });
  });

  it('the host refuses an open whose ring GPADL is scattered in guest RAM, unknown, another channel\'s, or mislaid, with a status', async () => {
    const p = await echoPair();
    p.host.offer({ classId: 'network', relid: 2 });
    await p.guest.requestOffers();
    const scattered = await p.guest.createGpadl(1, { pfns: [10, 11, 13, 14], byteCount: 4 * 4096 });
    expect(await p.guest.requestOpen(1, scattered, 2)).toBe(K.VMBUS_STATUS_INVALID_PARAMETER);
    expect(p.host.openRefused.notContiguous).toBe(1);
    const good = await p.guest.createGpadl(1, { pfns: [20, 21, 22, 23], byteCount: 4 * 4096 });
    expect(await p.guest.requestOpen(1, 0x7777, 2)).toBe(K.VMBUS_STATUS_INVALID_PARAMETER);
    expect(await p.guest.requestOpen(2, good, 2)).toBe(K.VMBUS_STATUS_INVALID_PARAMETER); // relid 1's GPADL
    expect(await p.guest.requestOpen(1, good, 1)).toBe(K.VMBUS_STATUS_INVALID_PARAMETER); // TX ring of one page
    expect(await p.guest.requestOpen(1, good, 3)).toBe(K.VMBUS_STATUS_INVALID_PARAMETER); // RX ring of one page
    const outside = await p.guest.createGpadl(1, { pfns: [0xfffff, 0x100000, 0x100001, 0x100002], byteCount: 4 * 4096 });
    expect(await p.guest.requestOpen(1, outside, 2)).toBe(K.VMBUS_STATUS_UNSUCCESSFUL); // the DMA domain says no
    expect(p.host.openRefused).toMatchObject({ notContiguous: 1, unknownGpadl: 2, ringLayout: 2, OutsideGuestRam: 1 });
    expect(p.host.channels.size).toBe(0);
    // A mislaid open leaves the channel openable.
    expect(await p.guest.requestOpen(1, good, 2)).toBe(0);
    expect(p.host.channels.get(1)!.ringGpadl).toBe(good);
    expect(await p.guest.requestOpen(1, good, 2)).toBe(K.VMBUS_STATUS_INVALID_DEVICE_STATE); // already open
  });

  it('open fails with HostRefused when the host says no, and the channel stays offered', async () => {
    const p = await echoPair({ host: { maxPages: 8 } }); // too few pages for two 16-page rings
    const e = await expectReject(p.guest.open(1), 'HostRefused');
    expect(e.details).toMatchObject({ status: K.VMBUS_STATUS_INSUFFICIENT_RESOURCES });
    expect(p.guest.offers.get(1)!.state).toBe('offered');
    await expect(p.guest.open(1, { txPages: 2, rxPages: 6 })).resolves.toBeDefined();
  });

  it('GPADL teardown that gets no answer times out and its pages are never reused (spec §3.5)', async () => {
    const p = await echoPair();
    const h = await p.guest.createGpadl(1, { gpa: 0x10000, bytes: 3 * 4096 });
    p.hostPaused = true;
    await expectReject(p.guest.teardownGpadl(1, h, 30), 'Timeout');
    expect(p.guest.leakedPages).toBe(3);
  });
});

describe('rescind (spec §3.5, hardening L4)', () => {
  it('[H18] a rescind while I/O is in flight completes each request with ChannelRescinded exactly once; RELID_RELEASED frees the relid', async () => {
    const p = busPair();
    p.host.offer({ classId: 'storage' }); // never answers
    await p.guest.connect();
    const ch = await p.guest.open<number>(1);
    const calls: [number, string | undefined][] = [];
    ch.onCompletion = (ctx, err) => calls.push([ctx, err?.code]);
    const rescinded: number[] = [];
    p.guest.onRescind = (o) => rescinded.push(o.relid);
    for (let i = 0; i < 4; i++) ch.request(new Uint8Array(16), i);
    p.host.poll();
    p.host.rescind(1);
    expect(p.host.offers.get(1)!.state).toBe('rescinding');
    p.guest.poll(); // RESCIND arrives: fail the I/O, send RELID_RELEASED
    p.host.poll();
    p.guest.poll();
    expect(calls).toEqual([0, 1, 2, 3].map((i) => [i, 'ChannelRescinded']));
    expect(ch.state).toBe('rescinded');
    expect(rescinded).toEqual([1]);
    expect(p.host.received.relidReleased).toBe(1);
    expect(p.host.offers.has(1)).toBe(false);
    expect(p.guest.offers.get(1)).toBeUndefined();
    expect(p.guest.leakedPages).toBe(0); // the host revoked the ring GPADL with the channel: its pages may be reused
    expect(() => ch.request(new Uint8Array(8))).toThrow(expect.objectContaining({ code: 'ChannelRescinded' }));
    // The relid can be offered again.
    p.host.offer({ classId: 'network', relid: 1 });
    p.guest.poll();
    expect(p.guest.offers.get(1)!.className).toBe('network');
  });

  it('[H18] a rescind for an unknown relid and a rescind delivered twice are counted and ignored', async () => {
    const p = await echoPair();
    const host = new RawPeer(p.transport, 'host');
    host.post({ type: 'rescind', childRelid: 77 });
    host.post({ type: 'rescind', childRelid: 1 });
    host.post({ type: 'rescind', childRelid: 1 });
    const g = p.guest;
    g.poll();
    expect(g.dropped.unmatched).toBe(2);
    expect(g.received.rescind).toBe(3);
    expect(host.take()).toEqual([{ type: 'relidReleased', childRelid: 1 }]);
  });

  it('a rescind racing an open fails the open with ChannelRescinded (the host never answers a revoked open)', async () => {
    const p = await echoPair();
    const opening = p.guest.open(1);
    p.host.rescind(1); // before the host has seen the GPADL or the open
    await expectReject(opening, 'ChannelRescinded');
    expect(p.guest.offers.get(1)).toBeUndefined();
  });
});

describe('sub-channels (spec §3.7)', () => {
  it('offers with the same GUID pair and sub_channel_index != 0 link to their primary, open independently, answer on their own channel; closing the primary closes them first', async () => {
    const p = await echoPair();
    const primary = await p.guest.open(1);
    const subs = p.host.offerSubChannels(1, 2);
    expect(subs.map((s) => [s.relid, s.subChannelIndex])).toEqual([[2, 1], [3, 2]]);
    p.guest.poll();
    const offers = p.guest.offers.subChannels(primary.offer);
    expect(offers.map((o) => [o.relid, o.subChannelIndex, o.primary?.relid, o.instanceId === primary.offer.instanceId])).toEqual([[2, 1, 1, true], [3, 2, 1, true]]);
    const chans = [primary, await p.guest.open(2), await p.guest.open(3)];
    for (const [i, ch] of chans.entries()) expect((await ch.call(Uint8Array.from([i + 1])))[0]).toBe(i + 1);
    expect(new Set(chans.map((c) => c.rings.gpadl)).size).toBe(3);
    const order: number[] = [];
    for (const c of chans) p.host.channels.get(c.relid)!.onClose = () => order.push(c.relid);
    await primary.close();
    expect(order).toEqual([2, 3, 1]);
    expect(chans.map((c) => c.state)).toEqual(['closed', 'closed', 'closed']);
  });
});

describe('unload', () => {
  it('UNLOAD closes every channel on both ends and answers UNLOAD_RESPONSE', async () => {
    const p = await echoPair();
    const ch = await p.guest.open(1);
    await p.guest.unload();
    expect(ch.state).toBe('closed');
    expect(p.host.channels.size).toBe(0);
    expect(p.guest.connected).toBe(false);
    expect(p.host.version).toBe(0);
    await p.guest.connect();
    expect(p.guest.offers.size).toBe(1);
  });
});
