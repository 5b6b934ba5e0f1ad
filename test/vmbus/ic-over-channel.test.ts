// The utility (IC) services over real VMBus channels: the host offers heartbeat, shutdown,
// timesync and KVP; the guest binds each class, opens the channel and answers over it.
import { describe, expect, it } from 'vitest';
import {
  ChannelPipe, HeartbeatGuest, HeartbeatHost, KvpGuest, KvpHost, KvpStore, settleIc, ShutdownGuest, ShutdownHost,
  TimesyncGuest, TimesyncHost, constants as K, type Pollable, type ShutdownEvent, type TimeSampleEvent,
} from '../../src/index';
import { busPair } from './helpers';

describe.each(['wasm', 'reference'] as const)('IC services over VMBus channels (%s)', (engine) => {
  it('binds the four util classes, opens their channels and runs each service end to end', async () => {
    const p = busPair({ engine });
    const hosts: Record<string, HeartbeatHost | ShutdownHost | TimesyncHost | KvpHost> = {};
    p.host.offer({ classId: 'heartbeat', onOpen: (ch) => (hosts.heartbeat = new HeartbeatHost(new ChannelPipe(ch))) });
    p.host.offer({ classId: 'shutdown', onOpen: (ch) => (hosts.shutdown = new ShutdownHost(new ChannelPipe(ch))) });
    p.host.offer({ classId: 'timesync', onOpen: (ch) => (hosts.timesync = new TimesyncHost(new ChannelPipe(ch))) });
    p.host.offer({ classId: 'kvp', onOpen: (ch) => (hosts.kvp = new KvpHost(new ChannelPipe(ch))) });
    p.host.offer({ classId: '6ac83d8f-6e16-4e5c-ab3d-fd8c5a4b7e21' }); // unknown class: offered, never bound

    const shutdowns: ShutdownEvent[] = [];
    const samples: TimeSampleEvent[] = [];
    const store = new KvpStore({ [K.KVP_POOL_AUTO]: { OSName: 'Linux' } });
    const guests: Pollable[] = [];
    const opening: Promise<unknown>[] = [];
    const make = {
      heartbeat: (pipe: ChannelPipe) => new HeartbeatGuest(pipe),
      shutdown: (pipe: ChannelPipe) => new ShutdownGuest(pipe, { onShutdown: (e) => shutdowns.push(e) }),
      timesync: (pipe: ChannelPipe) => new TimesyncGuest(pipe, { onTimeSample: (e) => samples.push(e) }),
      kvp: (pipe: ChannelPipe) => new KvpGuest(pipe, { store }),
    };
    for (const [cls, build] of Object.entries(make)) {
      p.guest.bind(cls as keyof typeof make, (offer) => {
        opening.push(p.guest.open(offer, { txPages: 4, rxPages: 4 }).then((ch) => guests.push(build(new ChannelPipe(ch)))));
      });
    }
    await p.guest.connect();
    await Promise.all(opening);
    expect(guests).toHaveLength(4);
    expect(p.guest.offers.all().filter((o) => o.className === 'unknown')).toHaveLength(1);

    const ends = [...Object.values(hosts), ...guests, { poll: () => p.host.poll() }];
    const run = <T>(promise: Promise<T>) => settleIc(promise, ends);
    for (const h of Object.values(hosts)) await run(h.negotiate());
    await run((hosts.heartbeat as HeartbeatHost).beat());
    await run((hosts.shutdown as ShutdownHost).shutdown({ kind: 'poweroff', force: true }));
    expect(shutdowns).toHaveLength(1);
    expect(shutdowns[0]).toMatchObject({ kind: 'poweroff', force: true });
    await run((hosts.timesync as TimesyncHost).sendTime({ unixNs: 1_700_000_000_000_000_000n, flags: K.IC_TIMESYNC_FLAG_SYNC }));
    expect(samples).toHaveLength(1);
    await run((hosts.kvp as KvpHost).set(K.KVP_POOL_EXTERNAL, 'Role', 'web'));
    expect(store.get(K.KVP_POOL_EXTERNAL, 'Role')).toBe('web');
    expect(await run((hosts.kvp as KvpHost).enumerateAll(K.KVP_POOL_AUTO))).toEqual([{ key: 'OSName', value: { type: 'string', value: 'Linux' } }]);
  });
});
