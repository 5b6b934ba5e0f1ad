// The library unchanged in a browser page (Chromium): the embedded engine loads, the ring, the
// planner and a channel work on the main thread, a shared memory works when the page is
// cross-origin isolated, and waiting never calls Atomics.wait here (checklist 70).
import { describe, expect, it } from 'vitest';
import {
  bumpPageAllocator, canBlock, checkPageList, Doorbell, GuestBus, HostBus, IommuDomain, loadCore, loadCoreSync,
  MessageTransport, planPageList, ReadBatch, VmbusRing, WriteBatch,
} from '../../src/index';

describe('in Chromium', () => {
  it('loads the embedded engine (sync and async) and round-trips packets, per packet and in batches', async () => {
    for (const core of [loadCoreSync(), await loadCore(), loadCoreSync({ engine: 'reference' })]) {
      const ring = VmbusRing.create(core, { dataSize: 16384 });
      expect(ring.writePacket({ type: 6, transactionId: 9n, payload: Uint8Array.of(1, 2, 3) })).toEqual({ written: true, signal: true });
      const p = ring.readPacket()!;
      expect([p.transactionId, ...p.payload.subarray(0, 3)]).toEqual([9n, 1, 2, 3]);
      const wb = new WriteBatch(core);
      for (let i = 0; i < 100; i++) wb.add(new Uint8Array(64).fill(i));
      expect(ring.writeBatch(wb)).toBe(100);
      const rb = new ReadBatch(core);
      expect(ring.readBatch(rb)).toBe(100);
    }
  });

  it('plans a page list that the checker finds exact', () => {
    const segs = [{ addr: 0x10_0200, len: 3584 }, { addr: 0x20_0200, len: 4096 }, { addr: 0x30_0200, len: 3584 }];
    const plan = planPageList(segs, { rule: 'hyperv', bouncePages: [0x200_0000, 0x200_1000] });
    expect(plan.bouncedBytes).toBe(7680);
    expect(checkPageList(segs, plan, 'hyperv')).toEqual({ ok: true });
  });

  it('is cross-origin isolated, shares a Wasm memory, and waits without blocking the main thread', async () => {
    expect(crossOriginIsolated).toBe(true);
    expect(canBlock()).toBe(false); // Atomics.wait throws on a window's main thread
    const core = loadCoreSync({ shared: true });
    expect(core.shared).toBe(true);
    const ring = VmbusRing.create(core, { dataSize: 8192 });
    const bell = Doorbell.create(core);
    setTimeout(() => {
      ring.writePacket({ type: 6, payload: new Uint8Array(8) });
      bell.ring();
    }, 20);
    expect(await bell.waitUntilAsync(() => ring.availableToRead > 0, 5000)).toBe(true);
    expect(await bell.waitUntilAsync(() => false, 50)).toBe(false);
  });

  it('runs a VMBus guest and host end over a channel', async () => {
    const core = loadCoreSync({ guestBytes: 4 << 20 });
    const transport = MessageTransport.create(core);
    const host = new HostBus(transport, { dma: IommuDomain.create(core, 'dev', { mode: 'identity' }) });
    host.offer({ classId: 'storage', onOpen: (ch) => { ch.onPacket = (p) => ch.complete(p, p.payload()); } });
    const guest = new GuestBus(transport, { allocPages: bumpPageAllocator(core), pump: () => void host.poll() });
    await guest.connect();
    const ch = await guest.open(guest.offers.all()[0]!);
    const reply = ch.call(Uint8Array.of(42));
    host.poll();
    ch.poll();
    expect((await reply)[0]).toBe(42);
    await ch.close();
  });
});
