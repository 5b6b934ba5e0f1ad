// Memory that is given back: channels that open and close, channels the host rescinds, rings and
// batches that are created and disposed. Core memory (the heap) and guest RAM (the page
// allocator) must stop growing after the first thousand cycles.
import { describe, expect, it } from 'vitest';
import { loadCoreSync, ReadBatch, VmbusRing, WriteBatch } from '../../src/index';
import { expectCode } from '../util/errors';
import { echoPair } from './helpers';

async function openPair() {
  const p = await echoPair({ guestBytes: 16 << 20, reusePages: true }); // 128 cycles of bump allocation would exhaust it
  return { p, pages: p.pages! };
}

describe('memory that is given back', () => {
  it('10^4 open/close cycles of one channel: heap and guest pages flat after the first thousand, and the channel still works', async () => {
    const { p, pages } = await openPair();
    let heapAt1000 = 0;
    for (let i = 0; i < 10_000; i++) {
      const ch = await p.guest.open(1);
      if (i % 1000 === 0) {
        const reply = await ch.call(new Uint8Array([i & 255, 1, 2, 3]));
        expect(reply[0]).toBe(i & 255);
      }
      await ch.close();
      if (i === 999) heapAt1000 = p.core.heapStats().heapBytes;
    }
    expect(p.core.heapStats().heapBytes).toBe(heapAt1000);
    expect(pages.stats()).toMatchObject({ usedPages: 0, peakPages: 32, freeRuns: 1 });
    expect(p.guest.leakedPages).toBe(0);
  });

  it('a rescinded channel gives its ring pages and core memory back; so does UNLOAD', async () => {
    const { p, pages } = await openPair();
    let liveAfterFirst = 0;
    for (let i = 0; i < 200; i++) {
      const ch = await p.guest.open(1);
      p.host.rescind(1);
      p.guest.poll();
      p.host.poll();
      expect(ch.state).toBe('rescinded');
      p.host.offer({ classId: 'storage', relid: 1, onOpen: (c) => { c.onPacket = (pkt) => void c.complete(pkt, pkt.payload()); } });
      p.guest.poll();
      if (i === 0) liveAfterFirst = p.core.heapStats().liveBlocks; // lazily made per-core scratch is in from here
    }
    expect(pages.stats().usedPages).toBe(0);
    expect(p.core.heapStats().liveBlocks).toBe(liveAfterFirst);
    await p.guest.open(1);
    expect(pages.stats().usedPages).toBe(32);
    await p.guest.unload();
    expect(pages.stats().usedPages).toBe(0);
  });

  it('a GPADL teardown that times out keeps its ring pages out of reuse (spec §3.5) and counts them', async () => {
    const { p, pages } = await openPair();
    const ch = await p.guest.open(1);
    p.hostPaused = true;
    await expect(ch.close(20)).rejects.toMatchObject({ code: 'Timeout' });
    expect(p.guest.leakedPages).toBe(32);
    expect(pages.stats().usedPages).toBe(32);
  });

  it.each(['wasm', 'reference'] as const)('10^5 rings and batches created and disposed: the heap is flat after the first thousand (%s)', (engine) => {
    const core = loadCoreSync({ engine });
    let at1000 = 0;
    for (let i = 0; i < 100_000; i++) {
      const ring = VmbusRing.create(core, { dataSize: 4096 * (1 + (i % 4)) });
      const peer = VmbusRing.attach(core, ring.ptr, ring.totalBytes);
      if (i % 100 === 0) {
        expect(ring.writePacket({ type: 6, payload: new Uint8Array(300 + (i % 1000)) }).written).toBe(true);
        expect(peer.readPacket()!.payload.length).toBeGreaterThanOrEqual(300);
        const wb = new WriteBatch(core, { capacity: 4, arenaBytes: 1024 });
        const rb = new ReadBatch(core, { bytes: 1024 });
        wb.add(new Uint8Array(10));
        ring.writeBatch(wb);
        expect(peer.readBatch(rb)).toBe(1);
        wb.dispose();
        rb.dispose();
      }
      peer.dispose();
      ring.dispose();
      if (i === 999) at1000 = core.heapStats().heapBytes;
    }
    expect(core.heapStats().heapBytes).toBe(at1000);
    expect(core.heapStats().liveBlocks).toBe(1); // the shared Disposed control block
  });

  it('a disposed ring or batch refuses every later use with Disposed instead of touching reused memory', () => {
    const core = loadCoreSync();
    const ring = VmbusRing.create(core, { dataSize: 4096 });
    const wb = new WriteBatch(core);
    const rb = new ReadBatch(core);
    ring.dispose();
    ring.dispose(); // twice is harmless
    expect(ring.disposed).toBe(true);
    expectCode(() => ring.writePacket({ type: 6, payload: new Uint8Array(8) }), 'Disposed');
    expectCode(() => ring.write(new Uint8Array(1000)), 'Disposed');
    expectCode(() => ring.readPacket(), 'Disposed');
    expectCode(() => ring.reset(), 'Disposed');
    const other = VmbusRing.create(core, { dataSize: 4096 });
    wb.dispose();
    rb.dispose();
    expectCode(() => wb.add(new Uint8Array(4)), 'Disposed');
    expectCode(() => other.writeBatch(wb), 'Disposed');
    expectCode(() => other.readBatch(rb), 'Disposed');
  });
});
