// Doorbell: the optional wait/notify layer outside the core (ecosystem §3 item 3). The ring
// itself stays wait-free and pollable; a signal decided by the ring rules is delivered by
// ringing the peer's doorbell, and a side with nothing to do sleeps on its own doorbell.
//
// A doorbell is one 32-bit counter in core memory. ring() increments it and wakes waiters;
// waitUntil() samples it *before* testing its condition and only sleeps while it is unchanged,
// so a ring between the test and the sleep is never lost (J6).

import type { Core } from '../engine/core';
import { SgringError } from '../engine/errors';
import { isSharedBuffer } from '../engine/wasm-types';

export type WaitMode = 'block' | 'poll';

/** True when Atomics.wait may block here (false on a browser main thread, J4). */
export function canBlock(): boolean {
  if (typeof SharedArrayBuffer === 'undefined') return false;
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

export class Doorbell {
  readonly core: Core;
  /** Offset of the counter in core memory: hand it to the other thread with Doorbell.attach. */
  readonly ptr: number;
  /** Times this doorbell was rung through this object. */
  rings = 0;

  private constructor(core: Core, ptr: number) {
    this.core = core;
    this.ptr = ptr;
  }

  static create(core: Core): Doorbell {
    return new Doorbell(core, core.alloc(4, 4));
  }

  static attach(core: Core, ptr: number): Doorbell {
    core.checkRange(ptr, 4);
    if ((ptr & 3) !== 0) throw new SgringError('InvalidArgument', `doorbell at ${ptr} is not 4-byte aligned`);
    return new Doorbell(core, ptr);
  }

  /** Current counter value. */
  get value(): number {
    return Atomics.load(this.core.i32, this.ptr >> 2);
  }

  /** Rings: increments the counter and wakes every waiter. */
  ring(): void {
    const i32 = this.core.i32;
    Atomics.add(i32, this.ptr >> 2, 1);
    Atomics.notify(i32, this.ptr >> 2);
    this.rings++;
  }

  /**
   * Blocks until `ready()` is true, sleeping on the doorbell between tests. Returns false on
   * timeout. Needs a thread that may block (a worker, or Node's main thread) and a shared memory.
   */
  waitUntil(ready: () => boolean, timeoutMs = Infinity): boolean {
    if (!this.core.shared) throw new SgringError('InvalidArgument', 'a blocking wait needs a shared memory (loadCore({ shared: true }))');
    const deadline = now() + timeoutMs;
    const i32 = this.core.i32;
    for (;;) {
      const seen = Atomics.load(i32, this.ptr >> 2);
      if (ready()) return true;
      const left = deadline - now();
      if (left <= 0) return false;
      try {
        Atomics.wait(this.core.i32, this.ptr >> 2, seen, left === Infinity ? undefined : left);
      } catch (e) {
        throw new SgringError('InvalidArgument', `this thread cannot block (${(e as Error).message}); use waitUntilAsync`);
      }
    }
  }

  /**
   * Like waitUntil, but never blocks the calling thread: usable on a browser main thread.
   * Uses Atomics.waitAsync where the runtime has it, else polls with timers.
   */
  async waitUntilAsync(ready: () => boolean, timeoutMs = Infinity): Promise<boolean> {
    const deadline = now() + timeoutMs;
    for (;;) {
      const i32 = this.core.i32;
      const seen = Atomics.load(i32, this.ptr >> 2);
      if (ready()) return true;
      const left = deadline - now();
      if (left <= 0) return false;
      await sleepWhileEqual(i32, this.ptr >> 2, seen, left);
    }
  }
}

let macrotaskPort: MessagePort | null = null;
const macrotaskWaiters: (() => void)[] = [];

/**
 * Resolves in a macrotask: after every microtask queued before it and by them (promise
 * continuations, and what they submit) has run. setImmediate where the runtime has it, else one
 * shared MessageChannel.
 */
export function afterMicrotasks(): Promise<void> {
  const immediate = (globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate;
  if (immediate) return new Promise((r) => void immediate(r));
  if (macrotaskPort === null) {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => macrotaskWaiters.shift()?.();
    macrotaskPort = ch.port2;
  }
  const port = macrotaskPort;
  return new Promise((r) => {
    macrotaskWaiters.push(r);
    port.postMessage(0);
  });
}

/**
 * Sleeps without blocking the thread while i32[index] holds `value`, for at most timeoutMs:
 * Atomics.waitAsync where the runtime has it and the memory is shared, else one timer of at
 * most `pollMs`. A pending waitAsync does not keep Node's event loop alive (a worker would end,
 * or never see it settle): an interval does, until the wait is over.
 */
export async function sleepWhileEqual(i32: Int32Array, index: number, value: number, timeoutMs: number, pollMs = 4): Promise<void> {
  const waitAsync = (Atomics as unknown as { waitAsync?: (a: Int32Array, i: number, v: number, t?: number) => { async: boolean; value: Promise<string> | string } }).waitAsync;
  if (!waitAsync || !isSharedBuffer(i32.buffer)) {
    await new Promise((res) => setTimeout(res, Math.min(pollMs, timeoutMs)));
    return;
  }
  const r = waitAsync(i32, index, value, timeoutMs === Infinity ? undefined : timeoutMs);
  if (!r.async) return;
  const keepAlive = setInterval(() => {}, 1000);
  try {
    await r.value;
  } finally {
    clearInterval(keepAlive);
  }
}

/** Throws a typed Timeout unless `ok`; for callers of waitUntil that treat a timeout as an error. */
export function expectWoken(ok: boolean, what: string, timeoutMs: number): void {
  if (!ok) throw new SgringError('Timeout', `${what}: nothing happened within ${timeoutMs} ms`);
}
