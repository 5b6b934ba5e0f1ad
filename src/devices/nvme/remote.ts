// An NVMe controller in another thread (a worker over the shared memory): the driver's side is
// an NvmeRegisters proxy, the controller's side a serve loop. Register and doorbell writes go
// through a ring of (offset, value) records in core memory, in order; the registers a driver
// reads (CAP, VS, CC, CSTS, AQA, ASQ, ACQ, INTMS) are mirrored there after every batch the
// controller applies; interrupts are bits in a word with a counter the driver side waits on.
// Everything crosses with Atomics, so the two threads need nothing else.

import type { Core } from '../../engine/core';
import { SgringError } from '../../engine/errors';
import type { NvmeRegisters } from './driver';
import { REG } from './registers';
import { afterMicrotasks, sleepWhileEqual } from '../../sync/doorbell';

const MAGIC = 0x4e564d45; // "NVME"
const SLOTS = 1024;
// Layout (u32 words): magic, capacity, head, tail, stop, irqCount, irqBits (x4: 128 vectors),
// serving, regs[16 x 4 bytes = 0x40 bytes], ring.
const W_MAGIC = 0;
const W_CAPACITY = 1;
const W_HEAD = 2;
const W_TAIL = 3;
const W_STOP = 4;
const W_IRQ_COUNT = 5;
const W_IRQ_BITS = 6; // 4 words
const W_SERVING = 10; // 1 once the controller thread has mirrored its registers
const W_REGS = 11; // 16 words mirror BAR0 0x00..0x3f
const W_RING = 27; // SLOTS x 4 words: offset, size, value lo, value hi
const BYTES = (W_RING + SLOTS * 4) * 4;

/** The shared area of one remote controller, laid out in core memory. */
export class NvmeMmioChannel {
  readonly ptr: number;
  private constructor(readonly core: Core, ptr: number) {
    this.ptr = ptr;
  }

  /** Lays out a channel (the side that creates it hands `ptr` to the other thread). */
  static create(core: Core): NvmeMmioChannel {
    if (!core.shared) throw new SgringError('InvalidArgument', 'NvmeMmioChannel needs a shared memory: loadCore({ shared: true })');
    const ptr = core.alloc(BYTES, 64);
    const u32 = core.u32;
    Atomics.store(u32, (ptr >> 2) + W_CAPACITY, SLOTS);
    Atomics.store(u32, (ptr >> 2) + W_MAGIC, MAGIC);
    return new NvmeMmioChannel(core, ptr);
  }

  static attach(core: Core, ptr: number): NvmeMmioChannel {
    core.checkRange(ptr, BYTES);
    if ((ptr & 3) !== 0 || Atomics.load(core.u32, (ptr >> 2) + W_MAGIC) !== MAGIC) throw new SgringError('InvalidArgument', `no NVMe MMIO channel at ${ptr}`);
    return new NvmeMmioChannel(core, ptr);
  }

  /** @internal word index in core.i32 */
  w(i: number): number {
    return (this.ptr >> 2) + i;
  }
}

/**
 * The driver's side: NvmeRegisters for `new NvmeDriver(core, remote, ...)`. Writes are queued
 * for the controller thread in order; reads answer from the mirror (doorbells read as 0, as on
 * real hardware). Interrupts arrive through `onInterrupt`, called from an async wait loop.
 */
export class NvmeRemote implements NvmeRegisters {
  onInterrupt: ((vector: number) => void) | null = null;
  private seen = 0;
  private closed = false;

  /** How long the interrupt loop polls the interrupt counter before it sleeps, in µs. */
  readonly pollMicros: number;

  /**
   * `pollMicros` (default 50): once the driver's thread has run everything an interrupt set off
   * (its completions, the commands they submit), it polls for the next interrupt this long
   * before it sleeps — a sleeping thread takes tens of µs to wake (busy polling, as NAPI and
   * io_uring offer it). 0 sleeps at once.
   */
  constructor(readonly channel: NvmeMmioChannel, opts: { pollMicros?: number } = {}) {
    const p = opts.pollMicros ?? 50;
    if (!Number.isFinite(p) || p < 0 || p > 10_000) throw new SgringError('InvalidArgument', `NvmeRemote: pollMicros ${String(p)} must be in [0, 10000]`);
    this.pollMicros = p;
    void this.irqLoop();
  }

  /** Resolves once the controller thread serves (its registers are mirrored); rejects after `timeoutMs`. */
  async whenReady(timeoutMs = 10_000): Promise<void> {
    const c = this.channel;
    const until = Date.now() + timeoutMs;
    while (Atomics.load(c.core.i32, c.w(W_SERVING)) !== 1) {
      if (Date.now() > until) throw new SgringError('NvmeControllerFailed', `the controller thread did not start serving within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  mmioRead(offset: number, size: 4 | 8): number | bigint {
    const c = this.channel;
    const u32 = c.core.u32;
    if (!Number.isInteger(offset) || offset < 0 || offset % 4 !== 0 || offset + size > 0x40) return size === 8 ? 0n : 0;
    const lo = Atomics.load(u32, c.w(W_REGS + offset / 4));
    if (size === 4) return lo;
    return BigInt(lo) | (BigInt(Atomics.load(u32, c.w(W_REGS + offset / 4 + 1))) << 32n);
  }

  mmioWrite(offset: number, size: 4 | 8, value: number | bigint): void {
    const c = this.channel;
    const i32 = c.core.i32;
    const head = Atomics.load(i32, c.w(W_HEAD));
    const tail = Atomics.load(i32, c.w(W_TAIL));
    if (tail - head >= SLOTS) throw new SgringError('BufferTooSmall', 'the controller thread is not taking register writes (1024 queued)');
    const slot = c.w(W_RING) + (tail % SLOTS) * 4;
    i32[slot] = offset | 0;
    i32[slot + 1] = size;
    if (typeof value === 'number' && value >= 0 && value <= 0xffff_ffff) {
      i32[slot + 2] = value | 0; // a doorbell: no 64-bit arithmetic
      i32[slot + 3] = 0;
    } else {
      const v = BigInt.asUintN(64, BigInt(value));
      i32[slot + 2] = Number(v & 0xffff_ffffn) | 0;
      i32[slot + 3] = Number(v >> 32n) | 0;
    }
    Atomics.store(i32, c.w(W_TAIL), tail + 1); // publishes the record
    Atomics.notify(i32, c.w(W_TAIL));
    // A register the driver reads back at once (CC) is mirrored when the controller applies it;
    // the driver polls CSTS for the outcome as it would on hardware.
  }

  /** Stops the interrupt loop and tells the controller thread to return from serveNvme. */
  close(): void {
    this.closed = true;
    const c = this.channel;
    Atomics.store(c.core.i32, c.w(W_STOP), 1);
    Atomics.notify(c.core.i32, c.w(W_TAIL));
    Atomics.add(c.core.i32, c.w(W_IRQ_COUNT), 1);
    Atomics.notify(c.core.i32, c.w(W_IRQ_COUNT));
  }

  private async irqLoop(): Promise<void> {
    const c = this.channel;
    const i32 = c.core.i32;
    while (!this.closed) {
      let n = Atomics.load(i32, c.w(W_IRQ_COUNT));
      if (n === this.seen && this.pollMicros > 0) {
        // Poll only after the thread's own work: the completions' continuations ring the next doorbell.
        await afterMicrotasks();
        const until = performance.now() + this.pollMicros / 1000;
        while ((n = Atomics.load(i32, c.w(W_IRQ_COUNT))) === this.seen && !this.closed && performance.now() < until);
      }
      if (n === this.seen) {
        await sleepWhileEqual(i32, c.w(W_IRQ_COUNT), n, 50, 1);
        continue;
      }
      this.seen = n;
      for (let w = 0; w < 4; w++) {
        const bits = Atomics.exchange(i32, c.w(W_IRQ_BITS + w), 0) >>> 0;
        for (let b = 0; bits >>> b; b++) if ((bits >>> b) & 1) this.onInterrupt?.(w * 32 + b);
      }
    }
  }
}

/** What serveNvme needs of the controller (an NvmeController). */
export interface ServedController {
  mmioRead(offset: number, size: 4 | 8): number | bigint;
  mmioWrite(offset: number, size: 4 | 8, value: number | bigint): void;
  onInterrupt: ((vector: number) => void) | null;
}

/** The registers the driver side reads from the mirror. */
const MIRRORED = [REG.CAP, REG.CAP + 4, REG.VS, REG.INTMS, REG.CC, REG.CSTS, REG.AQA, REG.ASQ, REG.ASQ + 4, REG.ACQ, REG.ACQ + 4];
const CSTS_ONLY = [REG.CSTS];

/** The controller side of the channel: hooks its interrupts up, and applies the queued writes. */
function controllerSide(ctrl: ServedController, c: NvmeMmioChannel) {
  const i32 = c.core.i32;
  const mirror = (all: boolean) => {
    // Doorbells change no register but CSTS (CFS on a fetch fault): a batch of them mirrors CSTS alone.
    for (const off of all ? MIRRORED : CSTS_ONLY) Atomics.store(i32, c.w(W_REGS + off / 4), Number(ctrl.mmioRead(off, 4)) | 0);
  };
  ctrl.onInterrupt = (vector) => {
    if (vector >= 128) return;
    Atomics.or(i32, c.w(W_IRQ_BITS + (vector >> 5)), 1 << (vector & 31));
    Atomics.add(i32, c.w(W_IRQ_COUNT), 1);
    Atomics.notify(i32, c.w(W_IRQ_COUNT));
  };
  mirror(true);
  Atomics.store(i32, c.w(W_SERVING), 1);
  return {
    stopped: () => Atomics.load(i32, c.w(W_STOP)) !== 0,
    /** Applies every queued write in order and mirrors the registers; returns the write counter seen when there were none. */
    drain(): number | null {
      const head = Atomics.load(i32, c.w(W_HEAD));
      const tail = Atomics.load(i32, c.w(W_TAIL));
      if (head === tail) return tail;
      let registers = false;
      for (let h = head; h !== tail; h++) {
        const slot = c.w(W_RING) + (h % SLOTS) * 4;
        const hi = i32[slot + 3]! >>> 0;
        const value = hi === 0 ? i32[slot + 2]! >>> 0 : (BigInt(hi) << 32n) | BigInt(i32[slot + 2]! >>> 0);
        const offset = i32[slot]!;
        registers ||= offset < REG.DOORBELLS;
        ctrl.mmioWrite(offset, i32[slot + 1] as 4 | 8, value);
        Atomics.store(i32, c.w(W_HEAD), h + 1);
      }
      mirror(registers);
      return null;
    },
    tailIndex: c.w(W_TAIL),
  };
}

/**
 * The controller thread's loop: applies queued register and doorbell writes in order (the
 * controller runs its commands on the doorbells), mirrors the registers, signals interrupts,
 * and sleeps on the write counter when idle (Atomics.wait: the thread runs nothing else, so a
 * controller whose commands finish in promises, one with taps or an async backend, needs
 * serveNvmeAsync). Returns when the driver side calls close().
 */
export function serveNvme(ctrl: ServedController, channel: NvmeMmioChannel, opts: { idleWaitMs?: number } = {}): void {
  const side = controllerSide(ctrl, channel);
  const i32 = channel.core.i32;
  while (!side.stopped()) {
    const idle = side.drain();
    if (idle !== null) Atomics.wait(i32, side.tailIndex, idle, opts.idleWaitMs ?? 100);
  }
}

/**
 * serveNvme for a thread that must keep its event loop: it sleeps with Atomics.waitAsync and
 * yields after every batch, so commands that finish in promises (taps, async backends) and the
 * thread's own messages get their turn. Resolves when the driver side calls close().
 */
export async function serveNvmeAsync(ctrl: ServedController, channel: NvmeMmioChannel, opts: { idleWaitMs?: number } = {}): Promise<void> {
  const side = controllerSide(ctrl, channel);
  const i32 = channel.core.i32;
  while (!side.stopped()) {
    const idle = side.drain();
    if (idle === null) await Promise.resolve(); // the batch's promise continuations
    else await sleepWhileEqual(i32, side.tailIndex, idle, opts.idleWaitMs ?? 100);
  }
}
