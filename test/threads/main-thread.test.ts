// Checklist 70 (spec/hardening.md §3.9, J4): Atomics.wait throws on a browser main thread, so the
// library needs a mode that never blocks. These tests make this thread main-thread-like by
// replacing Atomics.wait with one that throws the browser's TypeError (restored afterwards), and
// then use Doorbell.waitUntilAsync against a worker that does block normally.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canBlock, Doorbell, loadCoreSync, SgringError, VmbusRing } from '../../src/index';
import { assertOk, finish, setupRing, spawn, WAIT_MS } from './harness';

type AtomicsWithAsync = typeof Atomics & { waitAsync?: unknown };
const realWait = Atomics.wait;
const realWaitAsync = (Atomics as AtomicsWithAsync).waitAsync;
let waitCalls = 0;

beforeEach(() => {
  waitCalls = 0;
  (Atomics as { wait: unknown }).wait = () => {
    waitCalls++;
    throw new TypeError('Atomics.wait cannot be called in this context');
  };
});
afterEach(() => {
  Atomics.wait = realWait;
  (Atomics as AtomicsWithAsync).waitAsync = realWaitAsync;
});

/** Two rings (main -> worker, worker -> main), two doorbells, and an echo worker that may block. */
function echoSetup(engine: 'wasm' | 'reference', count: number, delayMs: number) {
  const s = setupRing({ dataSize: 16384 });
  const back = VmbusRing.create(s.core, { dataSize: 16384 });
  const mainBell = Doorbell.create(s.core);
  const workerBell = Doorbell.create(s.core);
  const worker = spawn('echo', {
    memory: s.core.memory, engine, inPtr: s.ring.ptr, inBytes: s.ring.totalBytes, outPtr: back.ptr, outBytes: back.totalBytes,
    myBell: workerBell.ptr, peerBell: mainBell.ptr, count, delayMs, waitMs: WAIT_MS,
  });
  const core = loadCoreSync({ memory: s.core.memory, engine });
  return {
    worker,
    tx: VmbusRing.attach(core, s.ring.ptr, s.ring.totalBytes),
    rx: VmbusRing.attach(core, back.ptr, back.totalBytes),
    mainBell: Doorbell.attach(core, mainBell.ptr),
    workerBell: Doorbell.attach(core, workerBell.ptr),
  };
}

const modes = [
  ['Atomics.waitAsync', false],
  ['timer polling (no Atomics.waitAsync)', true],
] as const;

describe('[H70] a main-thread mode that never calls Atomics.wait', () => {
  it('[H70] in this main-thread-like context canBlock() says so, and a blocking wait would throw', () => {
    expect(canBlock()).toBe(false);
    const core = loadCoreSync({ shared: true });
    const bell = Doorbell.create(core);
    // Nothing to wait for: no Atomics.wait call, no error.
    expect(bell.waitUntil(() => true, 10)).toBe(true);
    expect(() => bell.waitUntil(() => false, 10)).toThrow(); // Atomics.wait is not available here
  });

  it.each(modes)('[H70] waitUntilAsync (%s) resolves true when a worker rings, without blocking the event loop', async (_name, noWaitAsync) => {
    if (noWaitAsync) (Atomics as AtomicsWithAsync).waitAsync = undefined;
    const e = echoSetup('wasm', 1, 150);
    const r = e.tx.writePacket({ type: 6, transactionId: 42n, payload: new Uint8Array([1, 2, 3]) });
    expect(r).toEqual({ written: true, signal: true });
    e.workerBell.ring();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const t0 = performance.now();
    const woken = await e.mainBell.waitUntilAsync(() => e.rx.availableToRead > 0, WAIT_MS);
    const ms = performance.now() - t0;
    clearInterval(timer);
    expect(woken).toBe(true);
    expect(ms).toBeGreaterThanOrEqual(100); // the worker held its reply back 150 ms ...
    expect(ticks).toBeGreaterThan(3); // ... and this thread's event loop kept running meanwhile
    const p = e.rx.readPacket()!;
    expect(p.transactionId).toBe(42n);
    expect(Array.from(p.payload.subarray(0, 3))).toEqual([1, 2, 3]);
    assertOk(...(await finish([e.worker], WAIT_MS)));
    expect(waitCalls).toBe(0);
  });

  it.each(modes)('[H70] waitUntilAsync (%s) returns false on timeout and does not throw', async (_name, noWaitAsync) => {
    if (noWaitAsync) (Atomics as AtomicsWithAsync).waitAsync = undefined;
    const core = loadCoreSync({ shared: true });
    const bell = Doorbell.create(core);
    const keepAlive = setInterval(() => {}, 50); // see bugs.test.ts: the wait alone does not hold a Node process open
    try {
      const t0 = performance.now();
      const woken = await bell.waitUntilAsync(() => false, 120);
      const ms = performance.now() - t0;
      expect(woken).toBe(false);
      expect(ms).toBeGreaterThanOrEqual(110);
      expect(ms).toBeLessThan(3000);
      // A doorbell rung for someone else (condition still false) does not end the wait early.
      const woken2 = bell.waitUntilAsync(() => false, 100);
      bell.ring();
      expect(await woken2).toBe(false);
    } finally {
      clearInterval(keepAlive);
    }
    expect(waitCalls).toBe(0);
  });

  it('[H70] on a non-shared memory (no SharedArrayBuffer at all) waitUntilAsync polls: true when the condition comes true, false on timeout', async () => {
    const core = loadCoreSync({});
    expect(core.shared).toBe(false);
    const bell = Doorbell.create(core);
    let ready = false;
    setTimeout(() => {
      ready = true;
      bell.ring();
    }, 30);
    await expect(bell.waitUntilAsync(() => ready, WAIT_MS)).resolves.toBe(true);
    await expect(bell.waitUntilAsync(() => false, 50)).resolves.toBe(false);
    // The blocking form refuses a non-shared memory with a typed error.
    expect(() => bell.waitUntil(() => false, 10)).toThrow(SgringError);
    expect(waitCalls).toBe(0);
  });

  it.each([
    ['wasm', 'Atomics.waitAsync', false],
    ['wasm', 'timer polling', true],
    ['reference', 'Atomics.waitAsync', false],
  ] as const)('[H70] 1000 ping-pong round trips with a blocking worker: the main side only ever awaits, no wakeup is lost (%s, %s)', async (engine, _name, noWaitAsync) => {
    if (noWaitAsync) (Atomics as AtomicsWithAsync).waitAsync = undefined;
    const count = noWaitAsync ? 200 : 1000;
    const e = echoSetup(engine, count, 0);
    const payload = new Uint8Array(40);
    let signals = 0;
    for (let i = 0; i < count; i++) {
      payload.fill(i & 0xff);
      const r = e.tx.writePacket({ type: 6, transactionId: BigInt(i), payload });
      expect(r.written).toBe(true);
      if (r.signal) {
        e.workerBell.ring();
        signals++;
      }
      const woken = await e.mainBell.waitUntilAsync(() => e.rx.availableToRead > 0, WAIT_MS);
      if (!woken) throw new Error(`lost wakeup: no echo of packet ${i} within ${WAIT_MS} ms`);
      const p = e.rx.readPacket()!;
      expect(p.transactionId).toBe(BigInt(i));
      expect(p.payload[39]).toBe(i & 0xff);
    }
    const [w] = await finish([e.worker], WAIT_MS);
    assertOk(w);
    expect(w.echoed).toBe(count);
    // One message in flight at a time, so nearly every write signals; the few that do not found
    // the worker still inside its drain loop (interrupt_mask = 1), whose re-check after unmasking
    // picked the packet up (spec §1.8), as the echo count above shows.
    expect(signals).toBeGreaterThan(0);
    expect(signals).toBeLessThanOrEqual(count);
    expect(waitCalls).toBe(0);
  });
});
