// netvsc across two threads: both netvsps and their switch on a HostBus in a worker, the two guest
// drivers here, one shared memory; both sides sleep only on their doorbells.
import { Worker } from 'node:worker_threads';
import { expect, it } from 'vitest';
import { GuestBus, instanceGuid, loadCoreSync, MessageTransport, NetvscDriver, pageAllocator } from '../../src/index';

it('2 x 10^4 frames of mixed sizes both ways with the hosts and the switch in their own thread: none lost, none corrupt', async () => {
  const core = loadCoreSync({ shared: true, guestBytes: 16 << 20, initialBytes: 64 << 20 });
  const transport = MessageTransport.create(core);
  const control = new SharedArrayBuffer(4);
  const worker = new Worker(new URL('./workers/netvsp.mjs', import.meta.url), { workerData: { memory: core.memory, transport: transport.ptr, control } });
  const done = new Promise<{ ok: boolean; error?: string; devs: Record<string, number>[] }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const result = { a: { got: 0, corrupt: 0 }, b: { got: 0, corrupt: 0 } };
  try {
    const pages = pageAllocator(core);
    const guest = new GuestBus(transport, { allocPages: pages });
    await guest.connect();
    const offer = (n: number) => guest.offers.all().find((o) => o.instanceId === instanceGuid(n))!;
    const a = await NetvscDriver.attach(guest, offer(0xa), { allocPages: pages, chimneyMax: 600 });
    const b = await NetvscDriver.attach(guest, offer(0xb), { allocPages: pages, chimneyMax: 600 });
    const sizes = [60, 200, 599, 601, 1514];
    const frame = (to: NetvscDriver, from: NetvscDriver, i: number) => {
      const f = new Uint8Array(sizes[i % sizes.length]!);
      f.set(to.mac, 0);
      f.set(from.mac, 6);
      f.set([0x88, 0xb5], 12);
      for (let k = 14; k < f.length; k++) f[k] = (k + i * 7) & 0xff;
      return f;
    };
    const check = (r: { got: number; corrupt: number }, to: NetvscDriver, from: NetvscDriver) => (f: Uint8Array) => {
      const want = frame(to, from, r.got++);
      if (f.length !== want.length || f.some((x, k) => x !== want[k])) r.corrupt++;
    };
    a.onReceive = check(result.a, a, b);
    b.onReceive = check(result.b, b, a);
    const total = 10_000;
    let sentA = 0;
    let sentB = 0;
    const deadline = performance.now() + 45_000;
    while ((result.a.got < total || result.b.got < total) && performance.now() < deadline) {
      for (let k = 0; k < 64 && sentA < total && a.send(frame(b, a, sentA)); k++) sentA++;
      for (let k = 0; k < 64 && sentB < total && b.send(frame(a, b, sentB)); k++) sentB++;
      if (guest.poll() === 0) await guest.waitForHost(5); // completions taken free sections: send first
    }
    await a.detach();
    await b.detach();
    expect(pages.stats().usedPages).toBe(0);
  } finally {
    Atomics.store(new Int32Array(control), 0, 1);
    transport.hostBell.ring();
  }
  const r = await done;
  await worker.terminate();
  expect(r.error).toBeUndefined();
  expect(result).toEqual({ a: { got: 10_000, corrupt: 0 }, b: { got: 10_000, corrupt: 0 } });
  for (const d of r.devs) expect(d).toMatchObject({ txFrames: 10_000, rxFrames: 10_000, rxNoSection: 0, badRndis: 0, badRequests: 0 });
}, 60_000);
