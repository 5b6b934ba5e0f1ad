// The requester's transaction table (spec/vmbus.md §2.9, hardening L6, P6): a transaction id
// is never a pointer, it names a slot of this table. Like Linux's vmbus_requestor, slot s is
// sent as id s + 1 (0 stays reserved for unsolicited packets, §2.3) in the low 32 bits; the high
// 32 bits carry the slot's generation, bumped every time a slot is freed, so a completion meant
// for an earlier use of a slot can never complete the current one.
//
// A completion is accepted only when its id names a slot in use with the current generation;
// otherwise it is counted (checklist 16) — zeroId, outOfRange, duplicate (the previous use was
// completed), late (the previous use timed out or was cancelled), unknown — and the table is
// left exactly as it was. A slot therefore completes at most once (checklist 40).
//
// Ages are cheap: issuing does not read the clock (a clock read costs ~70 ns, a third of a round
// trip). A transaction is stamped at the first clock sample after it was issued — sample() is
// called by the watchdog, by outstanding() and every 64 polls — so an age is a lower bound, late
// by at most the time between two samples. A deadline is therefore never enforced early.

import { SgringError } from '../engine/errors';
import { joinTid } from '../core/tid';

export type TransactionEnd = 'completed' | 'timedOut' | 'cancelled';
const ENDED = { none: 0, completed: 1, timedOut: 2, cancelled: 3 } as const;

export interface OutstandingTransaction<C> {
  /** The slot id (1..capacity): the low 32 bits of the transaction id. */
  id: number;
  /** The full 64-bit transaction id on the wire. */
  transactionId: bigint;
  /** Lower bound of the time since it was issued, in ms. */
  ageMs: number;
  context: C | undefined;
}

export interface TransactionCounters {
  issued: number;
  completed: number;
  timedOut: number;
  cancelled: number;
  /** Completions refused: id 0, id outside 1..capacity, completing an already completed use, after timeout/cancel, anything else. */
  zeroId: number;
  outOfRange: number;
  duplicate: number;
  late: number;
  unknown: number;
}

export class TransactionTable<C = unknown> {
  readonly capacity: number;
  readonly counters: TransactionCounters = {
    issued: 0, completed: 0, timedOut: 0, cancelled: 0, zeroId: 0, outOfRange: 0, duplicate: 0, late: 0, unknown: 0,
  };
  /** Transactions in use. */
  outstanding = 0;
  /** Context of the transaction the last take()/end() call ended. */
  taken: C | undefined = undefined;
  private readonly gen: Uint32Array;
  private readonly live: Uint8Array;
  private readonly ended: Uint8Array;
  private readonly stamp: Float64Array;
  private readonly free: Int32Array;
  private freeTop: number;
  private readonly unstamped: Int32Array;
  private unstampedTop = 0;
  private readonly ctx: (C | undefined)[];

  constructor(capacity = 256) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 20) throw new SgringError('InvalidArgument', `transaction table capacity ${capacity} must be 1..2^20`);
    this.capacity = capacity;
    this.gen = new Uint32Array(capacity);
    this.live = new Uint8Array(capacity);
    this.ended = new Uint8Array(capacity);
    this.stamp = new Float64Array(capacity);
    this.free = new Int32Array(capacity);
    this.unstamped = new Int32Array(capacity);
    this.ctx = new Array(capacity).fill(undefined);
    // Lowest slots first, so ids start at 1, 2, 3 like Linux's.
    for (let i = 0; i < capacity; i++) this.free[i] = capacity - 1 - i;
    this.freeTop = capacity;
  }

  /** Takes a free slot for a new transaction; returns its id (>= 1) or 0 when the table is full. */
  alloc(context: C): number {
    if (this.freeTop === 0) return 0;
    const s = this.free[--this.freeTop]!;
    this.live[s] = 1;
    this.ctx[s] = context;
    this.stamp[s] = -1;
    if (this.unstampedTop === this.capacity) this.sample(performance.now());
    this.unstamped[this.unstampedTop++] = s;
    this.outstanding++;
    this.counters.issued++;
    return s + 1;
  }

  /** The generation of slot `id`: the high 32 bits of its transaction id. */
  generation(id: number): number {
    return this.gen[id - 1]!;
  }

  /** The 64-bit transaction id of slot `id` as it goes on the wire. */
  transactionId(id: number): bigint {
    return joinTid(id, this.gen[id - 1]!);
  }

  /** Undoes alloc() for a packet that never reached the ring: nothing counted, generation kept. */
  unalloc(id: number): void {
    const s = id - 1;
    if (!(s >= 0 && s < this.capacity) || this.live[s] !== 1) throw new SgringError('InvalidArgument', `transaction ${id} is not in use`);
    this.live[s] = 0;
    this.ctx[s] = undefined;
    this.free[this.freeTop++] = s;
    this.outstanding--;
    this.counters.issued--;
  }

  /**
   * Accepts a completion for the 64-bit id (lo, hi). Returns the slot id and ends the transaction
   * (its context is then in `taken`), or returns 0 after counting why it was refused; a refused
   * id changes nothing else.
   */
  take(lo: number, hi: number): number {
    const s = lo - 1;
    if (s >= 0 && s < this.capacity && this.live[s] === 1 && this.gen[s] === hi) {
      this.finish(s, ENDED.completed);
      this.counters.completed++;
      return lo;
    }
    this.refuse(lo, hi);
    return 0;
  }

  private refuse(lo: number, hi: number): void {
    const c = this.counters;
    if (lo === 0 && hi === 0) c.zeroId++;
    else if (lo === 0 || lo > this.capacity) c.outOfRange++;
    else {
      const s = lo - 1;
      const how = hi === ((this.gen[s]! - 1) >>> 0) ? this.ended[s] : ENDED.none;
      if (how === ENDED.completed) c.duplicate++;
      else if (how === ENDED.timedOut || how === ENDED.cancelled) c.late++;
      else c.unknown++;
    }
  }

  /** Ends transaction `id` without a completion (timed out or cancelled); its context goes to `taken`. */
  end(id: number, how: 'timedOut' | 'cancelled'): void {
    const s = id - 1;
    if (!(s >= 0 && s < this.capacity) || this.live[s] !== 1) throw new SgringError('InvalidArgument', `transaction ${id} is not in use`);
    this.finish(s, ENDED[how]);
    this.counters[how]++;
  }

  private finish(s: number, how: number): void {
    this.taken = this.ctx[s];
    this.ctx[s] = undefined;
    this.live[s] = 0;
    this.ended[s] = how;
    this.gen[s] = (this.gen[s]! + 1) >>> 0;
    this.free[this.freeTop++] = s;
    this.outstanding--;
  }

  /** True when slot `id` holds a transaction. */
  isLive(id: number): boolean {
    return id >= 1 && id <= this.capacity && this.live[id - 1] === 1;
  }

  /** Stamps every transaction issued since the last sample with `now` (ms). */
  sample(now: number): void {
    for (let i = 0; i < this.unstampedTop; i++) {
      const s = this.unstamped[i]!;
      if (this.live[s] === 1 && this.stamp[s]! < 0) this.stamp[s] = now;
    }
    this.unstampedTop = 0;
  }

  /** Transactions issued since the last sample. */
  get unstampedCount(): number {
    return this.unstampedTop;
  }

  /** Lower bound of transaction `id`'s age at `now` (0 until it was stamped; stamps are -1 until then). */
  ageOf(id: number, now: number): number {
    const t = this.stamp[id - 1]!;
    return t < 0 ? 0 : Math.max(0, now - t);
  }

  /** Every outstanding transaction with its age, oldest first (samples the clock). */
  list(now = performance.now()): OutstandingTransaction<C>[] {
    this.sample(now);
    const out: OutstandingTransaction<C>[] = [];
    for (let s = 0; s < this.capacity; s++) {
      if (this.live[s] === 1) out.push({ id: s + 1, transactionId: joinTid(s + 1, this.gen[s]!), ageMs: this.ageOf(s + 1, now), context: this.ctx[s] });
    }
    return out.sort((a, b) => b.ageMs - a.ageMs || a.id - b.id);
  }

  /** Ids of outstanding transactions older than `deadlineMs` at `now` (samples the clock). */
  expired(now: number, deadlineMs: number): number[] {
    this.sample(now);
    const out: number[] = [];
    for (let s = 0; s < this.capacity; s++) {
      if (this.live[s] === 1 && this.stamp[s]! >= 0 && now - this.stamp[s]! > deadlineMs) out.push(s + 1);
    }
    return out;
  }

  /** Ids of every outstanding transaction. */
  liveIds(): number[] {
    const out: number[] = [];
    for (let s = 0; s < this.capacity; s++) if (this.live[s] === 1) out.push(s + 1);
    return out;
  }

  /** A snapshot of the per-slot state (tests compare it before and after a refused completion). */
  snapshot(): { live: number[]; gen: number[]; outstanding: number; free: number } {
    return { live: Array.from(this.live), gen: Array.from(this.gen), outstanding: this.outstanding, free: this.freeTop };
  }
}

/**
 * The ids of the peer's requests we still owe a completion (checklist 40: a second request with
 * an id in flight is refused, and complete() refuses an id not in flight, so one id never gets
 * two completions). An open-addressing set of (lo, hi) pairs with room for `max` entries: the
 * peer cannot make it grow.
 */
export class InFlightSet {
  readonly max: number;
  size = 0;
  private readonly mask: number;
  private readonly lo: Int32Array;
  private readonly hi: Int32Array;
  private readonly used: Uint8Array;

  constructor(max = 1024) {
    if (!Number.isInteger(max) || max < 1 || max > 1 << 20) throw new SgringError('InvalidArgument', `in-flight set size ${max} must be 1..2^20`);
    this.max = max;
    let cap = 2;
    while (cap < 2 * max) cap *= 2;
    this.mask = cap - 1;
    this.lo = new Int32Array(cap);
    this.hi = new Int32Array(cap);
    this.used = new Uint8Array(cap);
  }

  private slot(lo: number, hi: number): number {
    return (Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b) >>> 7) & this.mask;
  }

  private find(lo: number, hi: number): number {
    for (let i = this.slot(lo, hi), n = 0; n <= this.mask; i = (i + 1) & this.mask, n++) {
      if (this.used[i] === 0) return -1 - i;
      if (this.lo[i] === (lo | 0) && this.hi[i] === (hi | 0)) return i;
    }
    return -1 - this.mask - 1; // unreachable: the table is never more than half full
  }

  /** Adds (lo, hi): 1 when added, 0 when already present, -1 when the set is full. */
  add(lo: number, hi: number): number {
    const at = this.find(lo, hi);
    if (at >= 0) return 0;
    if (this.size >= this.max) return -1;
    const i = -1 - at;
    this.used[i] = 1;
    this.lo[i] = lo;
    this.hi[i] = hi;
    this.size++;
    return 1;
  }

  has(lo: number, hi: number): boolean {
    return this.find(lo, hi) >= 0;
  }

  /** Removes (lo, hi); false when absent. Backward-shift deletion keeps probes short. */
  remove(lo: number, hi: number): boolean {
    let i = this.find(lo, hi);
    if (i < 0) return false;
    this.size--;
    for (let j = (i + 1) & this.mask; this.used[j] === 1; j = (j + 1) & this.mask) {
      const home = this.slot(this.lo[j]!, this.hi[j]!);
      // Move j back to i when i lies cyclically in [home, j).
      if (((j - home) & this.mask) >= ((j - i) & this.mask)) {
        this.lo[i] = this.lo[j]!;
        this.hi[i] = this.hi[j]!;
        i = j;
      }
    }
    this.used[i] = 0;
    return true;
  }

  clear(): void {
    this.used.fill(0);
    this.size = 0;
  }
}
