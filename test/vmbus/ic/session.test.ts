// Full host <-> guest sessions over two real VmbusRings per channel (host->guest, guest->host),
// on both engines: negotiate, then every service, with the embedder-facing callbacks and store.
import { describe, expect, it } from 'vitest';
import {
  HeartbeatGuest, HeartbeatHost, IcHost, KvpGuest, KvpHost, KvpStore, pumpIc, settleIc, ShutdownGuest, ShutdownHost,
  TimesyncGuest, TimesyncHost, RingPipe, VmbusRing, encodeKvpRequest, constants as K, type ShutdownEvent,
  type TimeSampleEvent,
} from '../../../src/index';
import { core, ENGINES } from '../../util/engines';
import { expectReject, pipes, rawIc } from './wire';

const v = (major: number, minor = 0) => ({ major, minor });

describe.each(ENGINES)('IC sessions over real rings (%s)', (engine) => {
  it('heartbeat: negotiates 3.0/3.0 with Linux\'s lists, then each beat comes back incremented', async () => {
    const { hp, gp } = pipes(engine);
    const host = new HeartbeatHost(hp);
    const guest = new HeartbeatGuest(gp);
    const both = [host, guest];
    expect(await settleIc(host.negotiate(), both)).toEqual({ framework: v(3), message: v(3) });
    expect(guest.negotiated).toEqual(host.negotiated);
    expect(await settleIc(host.beat(), both)).toBe(1n);
    expect(await settleIc(host.beat(), both)).toBe(2n);
    expect(await settleIc(host.beat(0xffff_ffff_ffff_ffffn), both)).toBe(0n); // wraps like a u64
    expect(guest.lastSequence).toBe(0xffff_ffff_ffff_ffffn);
    expect(guest.stats).toMatchObject({ received: 4, answered: 4, dropped: 0, failed: 0 });
    expect(host.stats).toMatchObject({ sent: 4, received: 4, ignored: 0, failed: 0 });
    expect(hp.stats.skippedNonInband + gp.stats.skippedNonInband).toBe(0);
  });

  it('requests queued behind the negotiation are sent with the negotiated versions', async () => {
    const { hp, gp } = pipes(engine);
    const host = new HeartbeatHost(hp);
    const guest = new HeartbeatGuest(gp);
    const nego = host.negotiate();
    const beats = [host.beat(), host.beat(), host.beat()];
    expect(host.pending).toBe(4);
    pumpIc([host, guest]);
    await nego;
    expect(await Promise.all(beats)).toEqual([1n, 2n, 3n]);
    expect(host.pending).toBe(0);
  });

  it('shutdown: the guest reports kind, force, reason and timeout to the embedder after answering OK', async () => {
    const { hp, gp } = pipes(engine);
    const events: ShutdownEvent[] = [];
    const host = new ShutdownHost(hp);
    const guest = new ShutdownGuest(gp, { onShutdown: (e) => events.push(e) });
    const both = [host, guest];
    expect(await settleIc(host.negotiate(), both)).toEqual({ framework: v(3), message: v(3, 2) });
    await settleIc(host.shutdown(), both);
    await settleIc(host.shutdown({ kind: 'reboot', force: true, reasonCode: 7, timeoutSeconds: 60 }), both);
    expect(events.map((e) => [e.kind, e.force, e.reasonCode, e.timeoutSeconds, e.flags])).toEqual([
      ['poweroff', false, 0x80000000, 0, 0],
      ['reboot', true, 7, 60, 3],
    ]);
    // Hibernation is refused unless the guest supports it (Linux hv_is_hibernation_supported).
    const e = await expectReject(settleIc(host.shutdown({ kind: 'hibernate' }), both), 'IcPeerStatus');
    expect(e.details?.status).toBe(K.IC_STATUS_FAIL);
    expect(events).toHaveLength(2);
    const { hp: hp2, gp: gp2 } = pipes(engine);
    const h2 = new ShutdownHost(hp2);
    const g2 = new ShutdownGuest(gp2, { hibernationSupported: true, onShutdown: (ev) => events.push(ev) });
    await settleIc(h2.negotiate(), [h2, g2]);
    await settleIc(h2.shutdown({ kind: 'hibernate', force: true }), [h2, g2]);
    expect(events[2]).toMatchObject({ kind: 'hibernate', force: true, flags: 5 });
  });

  it('timesync 4.0: the guest exposes the host sample with Unix time and the reference time', async () => {
    const { hp, gp } = pipes(engine);
    const seen: TimeSampleEvent[] = [];
    const host = new TimesyncHost(hp);
    const guest = new TimesyncGuest(gp, { onTimeSample: (s) => seen.push(s) });
    const both = [host, guest];
    expect(await settleIc(host.negotiate(), both)).toEqual({ framework: v(3), message: v(4) });
    await settleIc(host.sendTime({ unixNs: 1_700_000_000_123_456_700n, flags: K.IC_TIMESYNC_FLAG_SYNC, referenceTime: 42n, stratum: 3 }), both);
    await settleIc(host.sendTime({ parentTime: 116444736000000000n }), both);
    expect(seen[0]).toMatchObject({ unixNs: 1_700_000_000_123_456_700n, parentTime: 133444736001234567n, referenceTime: 42n, sync: true, sample: false, probe: false, stratum: 3 });
    expect(seen[1]).toMatchObject({ unixNs: 0n, flags: K.IC_TIMESYNC_FLAG_SAMPLE, sample: true, sync: false });
    expect(guest.lastSample).toBe(seen[1]);
  });

  it('timesync 3.0 (a host offering only pre-4.0 versions): child and round-trip times, probe flag', async () => {
    const { hp, gp } = pipes(engine);
    const host = new TimesyncHost(hp, { messageVersions: [v(1), v(3)] });
    const guest = new TimesyncGuest(gp);
    const both = [host, guest];
    expect((await settleIc(host.negotiate(), both)).message).toEqual(v(3));
    await settleIc(host.sendTime({ parentTime: 130000000000000000n, flags: K.IC_TIMESYNC_FLAG_PROBE }), both);
    expect(guest.lastSample).toMatchObject({ parentTime: 130000000000000000n, childTime: 0n, roundTripTime: 0n, probe: true });
    expect(guest.lastSample).not.toHaveProperty('referenceTime');
  });

  it('KVP: set, get, enumerate and delete against the guest\'s in-memory pools, as the Linux daemon answers', async () => {
    const { hp, gp } = pipes(engine);
    const store = new KvpStore({ [K.KVP_POOL_AUTO]: { FullyQualifiedDomainName: 'guest.example', OSName: 'Linux' } });
    const host = new KvpHost(hp);
    const guest = new KvpGuest(gp, { store });
    const run = <T>(p: Promise<T>) => settleIc(p, [host, guest]);
    expect(await run(host.negotiate())).toEqual({ framework: v(3), message: v(4) });
    expect(await run(host.enumerateAll(K.KVP_POOL_AUTO))).toEqual([
      { key: 'FullyQualifiedDomainName', value: { type: 'string', value: 'guest.example' } },
      { key: 'OSName', value: { type: 'string', value: 'Linux' } },
    ]);
    await run(host.set(K.KVP_POOL_EXTERNAL, 'Grüße ✓ 🎉', 'wert'));
    await run(host.set(K.KVP_POOL_EXTERNAL, 'dword', { type: 'u32', value: 0xfffffffe }));
    await run(host.set(K.KVP_POOL_EXTERNAL, 'qword', { type: 'u64', value: 2n ** 63n }));
    expect(store.entries(K.KVP_POOL_EXTERNAL)).toEqual([['Grüße ✓ 🎉', 'wert'], ['dword', '-2'], ['qword', '9223372036854775808']]);
    expect(await run(host.get(K.KVP_POOL_EXTERNAL, 'Grüße ✓ 🎉'))).toEqual({ type: 'string', value: 'wert' });
    expect(await run(host.get(K.KVP_POOL_EXTERNAL, 'absent'))).toBeNull();
    expect(await run(host.get(K.KVP_POOL_GUEST, 'dword'))).toBeNull(); // pools are separate
    expect(await run(host.enumerate(K.KVP_POOL_EXTERNAL, 2))).toEqual({ key: 'qword', value: { type: 'string', value: '9223372036854775808' } });
    expect(await run(host.enumerate(K.KVP_POOL_EXTERNAL, 3))).toBeNull();
    await run(host.delete(K.KVP_POOL_EXTERNAL, 'dword'));
    const e = await expectReject(run(host.delete(K.KVP_POOL_EXTERNAL, 'dword')), 'IcPeerStatus');
    expect(e.details?.status).toBe(K.IC_STATUS_NO_MORE_ITEMS);
    // The embedder seeds and reads the same store the channel changes.
    store.set(K.KVP_POOL_GUEST, 'fromGuest', 'hello');
    expect(await run(host.enumerateAll(K.KVP_POOL_GUEST))).toEqual([{ key: 'fromGuest', value: { type: 'string', value: 'hello' } }]);
    expect(host.stats.failed).toBe(1);
    expect(guest.stats.dropped).toBe(0);
  });

  it('KVP: a full pool refuses SET with HV_S_CONT; the longest key and value that fit go through', async () => {
    const { hp, gp } = pipes(engine);
    const host = new KvpHost(hp);
    const guest = new KvpGuest(gp, { store: new KvpStore({}, { maxEntriesPerPool: 1 }) });
    const run = <T>(p: Promise<T>) => settleIc(p, [host, guest]);
    await run(host.negotiate());
    const key = 'k'.repeat(255);
    const value = 'v'.repeat(1023);
    await run(host.set(0, key, value));
    expect(await run(host.get(0, key))).toEqual({ type: 'string', value });
    await expectReject(run(host.set(0, 'second', 'x')), 'IcPeerStatus');
    // A key one unit too long cannot be sent: the promise rejects and nothing is queued.
    await expectReject(host.set(0, 'k'.repeat(256), 'x'), 'InvalidArgument');
    expect(host.pending).toBe(0);
  });

  it('four channels side by side on one memory, each with its own ring pair', async () => {
    const hb = pipes(engine);
    const kv = pipes(engine);
    const hosts: IcHost[] = [new HeartbeatHost(hb.hp), new KvpHost(kv.hp)];
    const guests = [new HeartbeatGuest(hb.gp), new KvpGuest(kv.gp)];
    const all = [...hosts, ...guests];
    const versions = await settleIc(Promise.all(hosts.map((h) => h.negotiate())), all);
    expect(versions.map((x) => x.message)).toEqual([v(3), v(4)]);
    expect(await settleIc((hosts[0] as HeartbeatHost).beat(), all)).toBe(1n);
  });

  it('a guest with no common version fails the negotiation; later requests reject with IcNotNegotiated', async () => {
    const { hp, gp } = pipes(engine);
    const host = new HeartbeatHost(hp, { messageVersions: [v(9)] });
    const guest = new HeartbeatGuest(gp);
    const nego = host.negotiate();
    const beat = host.beat();
    pumpIc([host, guest]);
    const e = await expectReject(nego, 'IcNegotiationFailed');
    expect(e.details?.status).toBe(K.IC_STATUS_FAIL);
    await expectReject(beat, 'IcNotNegotiated');
    expect(guest.negotiated).toBeNull();
    expect(guest.stats.reasons.IcNegotiationFailed).toBe(1);
  });

  it('back-pressure: answers that do not fit the guest->host ring stay queued, in order, and reading pauses', () => {
    const c = core(engine);
    const h2g = VmbusRing.create(c, { dataSize: 8192 }); // room for three 2.6 KB KVP requests
    const g2h = VmbusRing.create(c, { dataSize: 4096 }); // room for one answer
    const hp = new RingPipe(h2g, VmbusRing.attach(c, g2h.ptr, g2h.totalBytes));
    const gp = new RingPipe(g2h, VmbusRing.attach(c, h2g.ptr, h2g.totalBytes));
    const guest = new KvpGuest(gp, { maxPendingReplies: 1 });
    for (const [i, k] of ['a', 'b', 'c'].entries()) {
      expect(hp.send(rawIc({ type: 2, msg: [4, 0], body: encodeKvpRequest({ operation: 'set', pool: 0, key: k, value: { type: 'string', value: k } }) }), BigInt(i + 1))).toBe(true);
    }
    expect(guest.poll()).toBe(3); // read a (answered), read b (queued): reading pauses with c unread
    expect(guest.pendingReplies).toBe(1);
    expect(gp.stats.full).toBeGreaterThan(0);
    expect(guest.store.entries(0).map(([k]) => k)).toEqual(['a', 'b']);
    const tids: bigint[] = [];
    for (let i = 0; i < 6; i++) {
      for (let m = hp.receive(); m; m = hp.receive()) tids.push(m.transactionId);
      guest.poll();
    }
    expect(tids).toEqual([1n, 2n, 3n]);
    expect(guest.pendingReplies).toBe(0);
    expect(guest.store.entries(0).map(([k]) => k)).toEqual(['a', 'b', 'c']);
  });
});
