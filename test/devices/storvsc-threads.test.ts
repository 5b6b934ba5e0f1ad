// storvsc across two threads: the storvsp host in a worker (HostBus.serveAsync), the guest driver
// here, over one shared memory. Both sleep only on their doorbells; every command's data checked.
import { Worker } from 'node:worker_threads';
import { expect, it } from 'vitest';
import { GuestBus, loadCoreSync, MessageTransport, pageAllocator, StorvscDriver } from '../../src/index';

it('32 commands in flight on 4 channels with the host in its own thread: every block written reads back, the load spreads over the channels', async () => {
  const core = loadCoreSync({ shared: true, guestBytes: 16 << 20, initialBytes: 64 << 20 });
  const transport = MessageTransport.create(core);
  const control = new SharedArrayBuffer(4);
  const worker = new Worker(new URL('./workers/storvsp.mjs', import.meta.url), { workerData: { memory: core.memory, transport: transport.ptr, control, blocks: 8192, subChannels: 3 } });
  const done = new Promise<{ ok: boolean; error?: string; counters: Record<string, number>; perChannel: number[] }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  try {
    const pages = pageAllocator(core);
    const guest = new GuestBus(transport, { allocPages: pages });
    await guest.connect();
    const hba = await StorvscDriver.attach(guest, guest.offers.all()[0]!, { allocPages: pages, scanTargets: [0], cpus: 4 });
    expect(hba.channels.length).toBe(4);
    expect(hba.disks.map((x) => [x.lun, x.blockSize, x.blockCount])).toEqual([[0, 512, 8192], [1, 512, 8192]]);
    const block = (lun: number, i: number) => new Uint8Array(4096).fill((i * 5 + lun * 101 + 1) & 0xff);
    for (let round = 0; round < 4; round++) {
      await Promise.all(Array.from({ length: 32 }, (_, i) => hba.write(0, i & 1, (round * 32 + i) * 8, block(i & 1, round * 32 + i))));
    }
    for (let round = 0; round < 4; round++) {
      const got = await Promise.all(Array.from({ length: 32 }, (_, i) => hba.read(0, i & 1, (round * 32 + i) * 8, 8)));
      got.forEach((b, i) => expect(b).toEqual(block(i & 1, round * 32 + i)));
    }
    await hba.detach();
  } finally {
    Atomics.store(new Int32Array(control), 0, 1);
    transport.hostBell.ring();
  }
  const r = await done;
  await worker.terminate();
  expect(r.error).toBeUndefined();
  expect(r.counters).toMatchObject({ failed: 2, invalidRequests: 0, dmaFaults: 0, pageListRefused: 0 }); // the two power-on unit attentions, met by discovery
  expect(r.perChannel.length).toBe(4);
  for (const n of r.perChannel) expect(n).toBeGreaterThanOrEqual(64); // 256 I/Os round-robin over four channels
}, 60_000);
