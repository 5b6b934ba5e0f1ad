// Memory growth mid-run across threads (DESIGN "Memory model": growth; views are re-created when
// memory.buffer changes). A shared memory grows in place, but each thread's views and each Wasm
// instance must pick the new size up. While a reader worker consumes ring A, the writer worker
// and the main thread both call core.alloc for several MiB (growing the memory); ring A keeps
// working in every thread, and ring B, made after the growth in memory that did not exist when
// the workers started, is attached and streamed through by both workers.
import { describe, expect, it } from 'vitest';
import { Doorbell, loadCoreSync, VmbusRing } from '../../src/index';
import { expectClean, finish, setupRing, sleep, spawn, WAIT_MS } from './harness';

const MB = 1 << 20;
// Mailbox words shared with the workers (see workers/writer.mjs and reader.mjs).
const NEXT = 0;
const GATE = 6;
const PROGRESS = 8;

describe('memory growth mid-run across threads', () => {
  it.each([
    ['wasm', 300_000, 50_000],
    ['reference', 60_000, 20_000],
  ] as const)('core.alloc grows the shared memory while a reader worker consumes; the ring keeps working in all threads and a ring made after the growth works in the workers (%s)', async (engine, count1, count2) => {
    const s = setupRing({ dataSize: 16384, initialBytes: 4 * MB });
    const startBytes = s.core.byteLength;
    const mailbox = new SharedArrayBuffer(64);
    const mb = new Int32Array(mailbox);
    const reader = spawn('reader', {
      ...s.common(engine), mode: 'batch', readBytes: 8192, phases: [s.phase(count1)], mailbox, follow: true, progressIndex: PROGRESS,
    });
    const writer = spawn('writer', {
      ...s.common(engine), mode: 'packet', phases: [s.phase(count1)], mailbox, follow: true,
      grow: { at: count1 >> 1, bytes: 4 * MB, times: 2 }, // the writer grows the memory itself, mid-stream
      gate: { at: Math.floor((count1 * 3) / 4), index: GATE }, // and waits there until the main thread has grown it too
    });
    const done = finish([writer, reader], 40_000);

    // The main thread grows the memory while the reader is consuming ring A.
    for (const stop = performance.now() + WAIT_MS; Atomics.load(mb, PROGRESS) < count1 / 4;) {
      if (performance.now() > stop) throw new Error(`the reader made no progress: ${Atomics.load(mb, PROGRESS)} packets`);
      await sleep(1);
    }
    const progressBefore = Atomics.load(mb, PROGRESS);
    const mainBefore = s.core.byteLength;
    for (let i = 0; i < 3; i++) {
      s.core.alloc(4 * MB, 4096);
      await sleep(1);
    }
    const mainAfter = s.core.byteLength;
    const progressAfter = Atomics.load(mb, PROGRESS);
    Atomics.store(mb, GATE, 1);
    Atomics.notify(mb, GATE);

    // Ring B and its doorbells live in memory that only exists since the growth.
    const ringB = VmbusRing.create(s.core, { dataSize: 8192 });
    const hostB = Doorbell.create(s.core);
    const guestB = Doorbell.create(s.core);
    expect(ringB.ptr).toBeGreaterThanOrEqual(startBytes);
    [ringB.ptr, ringB.totalBytes, hostB.ptr, guestB.ptr, count2].forEach((v, i) => Atomics.store(mb, 1 + i, v));
    Atomics.store(mb, NEXT, 1);
    Atomics.notify(mb, NEXT);

    const [w, r] = await done;
    expectClean(w, r, count1 + count2);
    // The growth really happened mid-stream, in both threads.
    expect(progressBefore).toBeGreaterThan(0);
    expect(progressAfter).toBeLessThan(count1);
    expect(mainAfter).toBeGreaterThan(mainBefore);
    const grew = w.grew as { before: number; after: number };
    expect(grew.after).toBeGreaterThan(grew.before);
    // 12 MiB from the main thread and 8 MiB from the writer, bump-allocated from a 4 MiB start.
    expect(startBytes).toBe(4 * MB);
    expect(s.core.byteLength).toBeGreaterThanOrEqual(20 * MB);
    // Both workers ran phase 2 on ring B, and the reader's view of it covered all of it.
    expect([w.phasesDone, r.phasesDone, r.ringBytesChecked]).toEqual([2, 2, 2]);
    expect(ringB.state()).toMatchObject({ availableToRead: 0, broken: null });
    expect(s.hostBell.value + hostB.value).toBe(w.hostSignals);

    // Endpoints the main thread made before the growth still work, with fresh ones beside them.
    const core = loadCoreSync({ memory: s.core.memory, engine });
    const rxA = VmbusRing.attach(core, s.ring.ptr, s.ring.totalBytes);
    const rxB = VmbusRing.attach(core, ringB.ptr, ringB.totalBytes);
    for (let i = 0; i < 100; i++) {
      const payload = Uint8Array.from({ length: i }, (_, j) => (i + j) & 0xff);
      expect(s.ring.writePacket({ type: 6, transactionId: BigInt(i), payload }).written).toBe(true);
      expect(ringB.writePacket({ type: 6, transactionId: BigInt(i), payload }).written).toBe(true);
      for (const rx of [rxA, rxB]) {
        const p = rx.readPacket()!;
        expect(p.transactionId).toBe(BigInt(i));
        expect(Array.from(p.payload.subarray(0, i))).toEqual(Array.from(payload));
      }
    }
    expect(s.ring.bytes.length).toBe(s.ring.totalBytes);
    expect(ringB.bytes.length).toBe(ringB.totalBytes);
  });
});
