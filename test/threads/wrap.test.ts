// Checklist 69 (spec/hardening.md §3.9, J5) for the VMBus ring across threads. VMBus indices are
// byte offsets kept modulo the data size (spec/vmbus.md §1.3), not free-running counters, so
// "running past 2^31 / 2^32" means: every index the reader and writer ever see stays in
// [0, dataSize) and 8-aligned while the stream wraps around hundreds of times, starting right at
// the edge (dataSize - 8, dataSize - 16), with data sizes that are not powers of two. The doorbell
// counters, which are free-running i32s compared only for equality, start at 2^31 - 1 and at
// 2^32 - 1 (-1), so their first ring wraps them. Packet sizes come from a fixed seed, so the
// wrap counts asserted below are the same on every run.
import { describe, expect, it } from 'vitest';
import { expectClean, runPair, setupRing } from './harness';
import { H_READ, H_WRITE } from './workers/common.mjs';

describe('[H69] index wrap across threads', () => {
  it.each([
    { engine: 'wasm', dataSize: 12288, start: 12288 - 8, bell: 0x7fff_ffff, wm: 'packet', rm: 'packet' },
    { engine: 'wasm', dataSize: 12288, start: 12288 - 16, bell: -1, wm: 'batch', rm: 'batch' },
    { engine: 'wasm', dataSize: 20480, start: 20480 - 8, bell: -1, wm: 'batch', rm: 'drain' },
    { engine: 'reference', dataSize: 12288, start: 12288 - 16, bell: 0x7fff_ffff, wm: 'packet', rm: 'batch' },
    { engine: 'reference', dataSize: 20480, start: 20480 - 8, bell: 0x7fff_ffff, wm: 'batch', rm: 'packet' },
  ] as const)('[H69] indices start at $start of a $dataSize-byte data area and wrap hundreds of times; doorbells start at $bell ($engine, $wm -> $rm)', async (c) => {
    const s = setupRing({ dataSize: c.dataSize });
    const h = s.ring.ptr >> 2;
    Atomics.store(s.core.u32, h + H_WRITE, c.start);
    Atomics.store(s.core.u32, h + H_READ, c.start);
    Atomics.store(s.core.i32, s.hostBell.ptr >> 2, c.bell);
    Atomics.store(s.core.i32, s.guestBell.ptr >> 2, c.bell);
    expect(s.ring.state()).toMatchObject({ writeIndex: c.start, readIndex: c.start, availableToRead: 0, availableToWrite: c.dataSize });

    const count = c.engine === 'wasm' ? 60_000 : 25_000;
    const [w, r] = await runPair(s, { engine: c.engine, count, writerMode: c.wm, readerMode: c.rm, batchSize: 16, readBytes: 4096 });
    // expectClean includes: badIndices === 0 (the write index the reader saw was always in range
    // and aligned) and readIndexViolations === 0 (the read index was always the one it computed).
    expectClean(w, r, count);
    expect(r.wraps as number).toBeGreaterThan(200); // went round the data area this many times
    expect(r.spans as number).toBeGreaterThan(100); // records split in two by the end of the area
    expect(r.exactWraps as number).toBeGreaterThan(0); // records ending exactly at the end
    // Both doorbells were rung past their starting value, through the i32 wrap.
    const st = s.ring.state();
    expect(st.availableToRead).toBe(0);
    expect(st.writeIndex).toBe(st.readIndex);
    expect(st.writeIndex % 8).toBe(0);
    expect(s.hostBell.value).toBe((c.bell + (w.hostSignals as number)) | 0);
    expect(s.guestBell.value).toBe((c.bell + (r.guestSignals as number)) | 0);
    expect(w.hostSignals as number).toBeGreaterThan(0);
    expect(r.guestSignals as number).toBeGreaterThan(0);
  });
});
