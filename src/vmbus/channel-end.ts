// One end of an open channel's data plane (spec/vmbus.md §1.8-1.9, §2): sends packets into the
// ring this end produces and takes packets from the ring it consumes, raising a channel signal
// exactly when a ring result says so — a write that made the ring non-empty while the reader
// was not masked (§1.9.1), a read that freed the room a blocked writer asked for (§1.9.2) — and
// counting each one. GuestChannel and HostChannel add the lifecycle; the data plane is the same
// in both directions.
//
// Polling drains with the mask / drain / unmask / re-check loop (§1.8) and at most `budget`
// packets per call (P4). Packets are read in batches into a private buffer (P3) and handed to
// handlers as a reused ReceivedPacket. Sends made inside a handler are staged and written with
// one index publication and one signal decision when the batch is done (DPDK's per-burst
// signal, §1.11); a send outside a handler goes straight to the ring. Requests take an id from
// the TransactionTable; the peer's requests are tracked in an InFlightSet so each gets exactly
// one completion. A handler that throws stops the poll; the rest of its batch is delivered by
// the next poll, so no packet already taken from the ring is lost.

import * as K from '../generated/constants';
import type { Core } from '../engine/core';
import { SgringError } from '../engine/errors';
import type { VmbusRing } from '../core/vmbus-ring';
import { ReadBatch } from '../core/ring-batch';
import { decodeGpaRanges } from '../core/gpa-range';
import { joinTid, splitTid, type TransactionId } from '../core/tid';
import type { Doorbell } from '../sync/doorbell';
import { descriptorBytes, parseTransferFields, writePacketHeader, writeTransferFields, type GpaDescriptor, type TransferPages } from './packets';
import { writeRawPacket } from './raw-write';
import { Outbox } from './outbox';
import { ReceivedPacket } from './received-packet';
import { InFlightSet, TransactionTable, type OutstandingTransaction } from './transactions';

export type ChannelState = 'open' | 'closed' | 'rescinded' | 'broken';

export interface ChannelStats {
  packetsSent: number;
  packetsReceived: number;
  /** Signals this end raised for this channel: after writes (§1.9.1) and after reads (§1.9.2). */
  writeSignals: number;
  readSignals: number;
  /** Sends refused because the ring (and the staging area) had no room. */
  outFull: number;
  /** Requests refused because every transaction id was in use. */
  tableFull: number;
  /** Peer requests refused: an id already in flight (checklist 40), or too many in flight. */
  duplicateRequests: number;
  peerRequestsOverflow: number;
  /** Packets that failed a descriptor check (behaviour E, checklist 14-15). */
  badPackets: number;
  /** Packets no handler took. */
  unhandled: number;
}

export type CompletionHandler<C> = (context: C, error: SgringError | null, packet: ReceivedPacket | null) => void;

export interface ChannelEndOptions {
  /** Transaction ids this end may have outstanding (default 256). */
  transactions?: number;
  /** Peer requests this end may owe completions for at once (default 4096). */
  peerRequests?: number;
  /** Packets and payload bytes that sends inside a handler may stage (defaults 1024, 64 KiB). */
  stagingPackets?: number;
  stagingBytes?: number;
  /** Private read buffer (default min(64 KiB, the ring's data size); grows to the data size for a larger packet). */
  readBytes?: number;
}

/** @internal what GuestChannel / HostChannel hand to their end */
export interface ChannelEndInit {
  core: Core;
  out: VmbusRing;
  in: VmbusRing;
  /** Raises this channel's signal to the peer: event bit + the peer's doorbell (§1.10). */
  raise: () => void;
  /** This side's doorbell (the peer rings it); waits sleep on it. */
  bell: Doorbell;
  /** Runs the peer while call() waits, when both ends share one thread. */
  pump?: () => void;
}

const EMPTY = new Uint8Array(0);
const pad8 = (n: number) => (n + 7) & ~7;
const tidTmp = { lo: 0, hi: 0 };

class PendingCall {
  constructor(readonly resolve: (v: Uint8Array) => void, readonly reject: (e: SgringError) => void) {}
}

export class ChannelEnd<C = unknown> {
  readonly core: Core;
  readonly stats: ChannelStats = {
    packetsSent: 0, packetsReceived: 0, writeSignals: 0, readSignals: 0, outFull: 0, tableFull: 0,
    duplicateRequests: 0, peerRequestsOverflow: 0, badPackets: 0, unhandled: 0,
  };
  /** Ids of our requests: completions are matched here (checklist 16). */
  readonly transactions: TransactionTable<C | PendingCall>;
  /** Ids of the peer's requests we still owe a completion (checklist 40). */
  readonly peerInFlight: InFlightSet;
  /** Incoming packets that are not completions of our requests. */
  onPacket: ((p: ReceivedPacket) => void) | null = null;
  /** Completions of our requests, and their failures (timeout, close, rescind, broken channel). */
  onCompletion: CompletionHandler<C> | null = null;
  /** Packets that failed a descriptor check (E); without it they are counted and dropped. */
  onBadPacket: ((p: ReceivedPacket, error: SgringError) => void) | null = null;
  protected readonly out: VmbusRing;
  protected readonly in: VmbusRing;
  protected readonly bell: Doorbell;
  private readonly raiseSignal: () => void;
  private readonly pump: (() => void) | undefined;
  private _state: ChannelState = 'open';
  private brokenError: SgringError | null = null;
  private rb: ReadBatch;
  private readonly view: ReceivedPacket;
  private pendAt = 0;
  private pendLeft = 0;
  private inDispatch = false;
  private polls = 0;
  private readonly outbox: Outbox;
  /** poll() reads no new packets while this many sends wait (back-pressure, P4). */
  private readonly outboxLimit: number;
  private scratch = 0;
  private scratchCap = 0;
  /** Most packets one poll() takes by default: one ring's worth (P4). */
  readonly budget: number;

  constructor(init: ChannelEndInit, opts: ChannelEndOptions = {}) {
    this.core = init.core;
    this.out = init.out;
    this.in = init.in;
    this.raiseSignal = init.raise;
    this.pump = init.pump;
    this.bell = init.bell;
    this.transactions = new TransactionTable(opts.transactions ?? 256);
    this.peerInFlight = new InFlightSet(opts.peerRequests ?? 4096);
    this.rb = new ReadBatch(this.core, { bytes: opts.readBytes ?? Math.min(64 * 1024, this.in.dataSize) });
    this.view = new ReceivedPacket(this.core);
    this.outbox = new Outbox(this.core, { packets: opts.stagingPackets ?? 1024, bytes: opts.stagingBytes ?? 64 * 1024 });
    this.outboxLimit = this.peerInFlight.max;
    this.budget = Math.max(1, Math.floor(this.in.dataSize / 24));
  }

  get state(): ChannelState {
    return this._state;
  }

  /** The error that broke this channel, or null. */
  get broken(): SgringError | null {
    return this.brokenError;
  }

  /** Packets accepted (staged by handlers, or completions that found the ring full) that the ring has not taken yet. */
  get backlog(): number {
    return this.outbox.size;
  }

  // ---- sending ----

  /** Sends an in-band request with completion requested; returns its id (>= 1), or 0 when the ring or the table is full. */
  request(payload: Uint8Array, context?: C): number {
    // The hot path: issue() inlined, so no closure is made per request.
    if (this._state !== 'open') this.usable();
    const t = this.transactions;
    const id = t.alloc(context as C);
    if (id === 0) {
      this.stats.tableFull++;
      return 0;
    }
    let ok: boolean;
    try {
      ok = this.sendInline(payload, K.PKT_TYPE_INBAND, K.PKT_FLAG_COMPLETION_REQUESTED, id, t.generation(id));
    } catch (e) {
      t.unalloc(id);
      this.fault(e);
    }
    if (ok) return id;
    t.unalloc(id);
    return 0;
  }

  /** Sends a GPA-direct request (spec §2.5) whose message follows the ranges; returns its id or 0. */
  requestGpa(gpa: GpaDescriptor, message: Uint8Array, context?: C): number {
    const hb = descriptorBytes({ gpa });
    return this.issue(context as C, (lo, hi) => this.sendRaw(K.PKT_TYPE_GPA, hb, message, K.PKT_FLAG_COMPLETION_REQUESTED, lo, hi, (dv, at) => {
      dv.setUint32(at + K.GPA_DIRECT_OFF_RANGE_COUNT, gpa.rangeCount, true);
      new Uint8Array(dv.buffer, at + K.GPA_DIRECT_PREFIX_SIZE, gpa.rangeBytes.length).set(gpa.rangeBytes);
    }));
  }

  /** Sends a transfer-page packet (spec §2.6) that the peer must complete; returns its id or 0. */
  requestTransferPages(xfer: TransferPages, message: Uint8Array, context?: C): number {
    const hb = descriptorBytes({ transferPages: xfer });
    return this.issue(context as C, (lo, hi) => this.sendRaw(K.PKT_TYPE_RXBUF, hb, message, K.PKT_FLAG_COMPLETION_REQUESTED, lo, hi,
      (dv, at) => writeTransferFields(dv, at, xfer)));
  }

  /**
   * Sends an in-band request and resolves with a copy of its completion's payload. It polls this
   * channel itself (and runs the bus's pump, when both ends share a thread) until the completion
   * arrives or `timeoutMs` passes: then the request fails with Timeout, once, and a completion
   * arriving later is counted as late.
   */
  async call(payload: Uint8Array, timeoutMs = 5000): Promise<Uint8Array> {
    const box: { done: boolean; value?: Uint8Array; error?: SgringError } = { done: false };
    const pending = new PendingCall((v) => Object.assign(box, { done: true, value: v }), (e) => Object.assign(box, { done: true, error: e }));
    const id = this.issue(pending, (lo, hi) => this.sendInline(payload, K.PKT_TYPE_INBAND, K.PKT_FLAG_COMPLETION_REQUESTED, lo, hi));
    if (id === 0) throw new SgringError('BufferTooSmall', 'the ring or the transaction table is full; poll and retry');
    const gen = this.transactions.generation(id);
    const deadline = performance.now() + timeoutMs;
    for (let spins = 0; !box.done; spins++) {
      if (this._state === 'open') this.poll();
      if (box.done) break;
      const left = deadline - performance.now();
      if (left <= 0) {
        this.transactions.end(id, 'timedOut'); // still ours: box.done is false, so it never completed
        throw new SgringError('Timeout', `call ${id} (transaction id ${joinTid(id, gen)}) got no completion within ${timeoutMs} ms`, { id });
      }
      if (this.pump) {
        this.pump();
        if ((spins & 15) === 15) await new Promise<void>((r) => setTimeout(r, 0));
      } else await this.waitForWorkAsync(Math.min(left, 100));
    }
    if (box.error) throw box.error;
    return box.value!;
  }

  /** Sends an in-band packet that wants no completion (transaction id 0 unless given). False when full. */
  send(payload: Uint8Array, transactionId?: TransactionId): boolean {
    this.usable();
    splitTid(transactionId, tidTmp);
    return this.guard(() => this.sendInline(payload, K.PKT_TYPE_INBAND, 0, tidTmp.lo, tidTmp.hi));
  }

  /**
   * Completes the peer's request (lo, hi) with `payload` (spec §2.7). Throws InvalidArgument when
   * no such request is in flight (never two completions for one id). Never refused for lack of
   * room: a completion that does not fit now waits in order and goes out on a later poll/flush.
   */
  completeId(lo: number, hi: number, payload: Uint8Array = EMPTY): boolean {
    this.usable();
    if ((lo | hi) === 0 || !this.peerInFlight.remove(lo, hi)) {
      throw new SgringError('InvalidArgument', `no peer request with id ${joinTid(lo, hi)} awaits a completion`);
    }
    try {
      this.sendInline(payload, K.PKT_TYPE_COMPLETION, 0, lo, hi, true);
    } catch (e) {
      this.peerInFlight.add(lo, hi); // still owed
      this.fault(e);
    }
    return true;
  }

  /** Completes the request `p` (a packet this end received). */
  complete(p: ReceivedPacket, payload: Uint8Array = EMPTY): boolean {
    return this.completeId(p.transactionIdLo, p.transactionIdHi, payload);
  }

  /** Writes waiting packets; true when none is left. */
  flush(): boolean {
    if (this.outbox.size === 0) return true;
    this.usable();
    let n: number;
    try {
      n = this.outbox.flush(this.out);
    } catch (e) {
      this.fault(e);
    }
    this.stats.packetsSent += n;
    if (this.outbox.signal) this.raise(false);
    if (this.outbox.size === 0) return true;
    this.stats.outFull++;
    return false;
  }

  private issue(context: C | PendingCall, send: (lo: number, hi: number) => boolean): number {
    this.usable();
    const t = this.transactions;
    const id = t.alloc(context);
    if (id === 0) {
      this.stats.tableFull++;
      return 0;
    }
    let ok: boolean;
    try {
      ok = send(id, t.generation(id));
    } catch (e) {
      t.unalloc(id); // the packet never reached the ring: the id was never used
      this.fault(e);
    }
    if (!ok) t.unalloc(id);
    return ok ? id : 0;
  }

  /** Sends (or stages) one packet with a 16-byte header. `mustKeep`: never refuse it (completions). */
  private sendInline(payload: Uint8Array, type: number, flags: number, lo: number, hi: number, mustKeep = false): boolean {
    if (!this.inDispatch && this.outbox.size === 0) {
      const r = this.out.write(payload, type, flags, lo, hi);
      if (r !== 0) {
        this.stats.packetsSent++;
        if ((r & K.WRITE_SIGNAL) !== 0) this.raise(false);
        return true;
      }
      this.stats.outFull++;
      if (!mustKeep) return false;
      return this.outbox.add(payload, type, flags, lo, hi, true); // pending_send_sz is set: the reader will wake us
    }
    // Behind waiting packets (order is kept), or inside a handler (one publication per batch).
    if (payload.length > this.out.maxPayload) throw new SgringError('InvalidMessageLength', `a ${payload.length}-byte payload never fits this ring`, { needed: payload.length });
    if (!this.outbox.add(payload, type, flags, lo, hi, mustKeep)) {
      if (this.inDispatch || !this.flush() || !this.outbox.add(payload, type, flags, lo, hi, false)) {
        this.stats.outFull++;
        return false;
      }
    }
    if (!this.inDispatch) this.flush();
    return true;
  }

  /** Builds a packet with a descriptor header in private scratch and writes it as one record. */
  private sendRaw(type: number, headerBytes: number, message: Uint8Array, flags: number, lo: number, hi: number,
    fill: (dv: DataView, at: number) => void): boolean {
    if (!(message instanceof Uint8Array)) throw new SgringError('InvalidArgument', 'message must be a Uint8Array');
    if (this.outbox.size > 0 && !this.flush()) {
      this.stats.outFull++;
      return false; // waiting packets go first
    }
    const total = pad8(headerBytes + message.length);
    if (total > K.PKT_MAX_BYTES) throw new SgringError('InvalidMessageLength', `a ${total}-byte packet exceeds len8's u16`);
    if (total > this.scratchCap) {
      this.scratchCap = Math.max(total, 2 * this.scratchCap, 4096);
      this.scratch = this.core.alloc(this.scratchCap, 8);
    }
    const at = this.scratch;
    const u8 = this.core.u8;
    u8.fill(0, at, at + total); // reserved fields and padding go out as zeros (P10)
    const dv = this.core.dv;
    writePacketHeader(dv, at, type, headerBytes, total, flags, lo, hi);
    fill(dv, at);
    u8.set(message, at + headerBytes);
    const r = writeRawPacket(this.out, at, total);
    if (r === 0) {
      this.stats.outFull++;
      return false;
    }
    this.stats.packetsSent++;
    if ((r & K.WRITE_SIGNAL) !== 0) this.raise(false);
    return true;
  }

  private raise(afterRead: boolean): void {
    if (afterRead) this.stats.readSignals++;
    else this.stats.writeSignals++;
    this.raiseSignal();
  }

  // ---- receiving ----

  /**
   * Takes up to `budget` packets (default: one ring's worth) with the mask / drain / unmask /
   * re-check loop and hands each to its handler; then writes what the handlers staged. Returns
   * how many packets it took (== budget means more may be waiting: poll again before sleeping).
   */
  poll(budget = this.budget): number {
    if (this._state !== 'open') {
      if (this.brokenError) throw this.brokenError;
      return 0;
    }
    let n = 0;
    let masked = false;
    let err: unknown = null;
    this.inDispatch = true;
    try {
      n += this.dispatchRest();
      if ((++this.polls & 63) === 0 && this.transactions.unstampedCount > 0) this.transactions.sample(performance.now());
      do {
        this.in.beginRead();
        masked = true;
        while (n < budget && this._state === 'open' && this.outbox.size < this.outboxLimit) {
          if (this.readBatch(budget - n) === 0) break;
          n += this.dispatchRest();
        }
        masked = false;
      } while (this.in.endRead() && n < budget && this._state === 'open');
    } catch (e) {
      err = e;
    }
    if (masked) this.in.endRead();
    this.inDispatch = false;
    if (this._state === 'open') {
      try {
        this.flush();
      } catch (e) {
        err ??= e;
      }
    }
    if (err !== null) this.fault(err);
    return n;
  }

  private readBatch(max: number): number {
    let k: number;
    try {
      k = this.in.readBatch(this.rb, max);
    } catch (e) {
      // The first packet is larger than the buffer: grow it once, to the most a ring can hold.
      if (!(e instanceof SgringError && e.code === 'BufferTooSmall' && this.rb.bytes < this.in.dataSize)) throw e;
      this.rb = new ReadBatch(this.core, { bytes: this.in.dataSize });
      k = this.in.readBatch(this.rb, max);
    }
    if (k > 0) {
      this.pendAt = this.rb.buf;
      this.pendLeft = k;
      if (this.rb.signal) this.raise(true);
    }
    return k;
  }

  /** Hands out the packets of the current batch not yet delivered. */
  private dispatchRest(): number {
    let n = 0;
    while (this.pendLeft > 0 && this._state === 'open') {
      const at = this.pendAt;
      const u32 = this.core.u32; // fetched per packet: a handler may grow the memory
      const w = at >> 2;
      const w0 = u32[w]!;
      const w1 = u32[w + 1]!;
      const bytes = (w1 & 0xffff) * 8;
      this.pendAt = at + bytes;
      this.pendLeft--;
      n++;
      this.stats.packetsReceived++;
      this.dispatch(at, w0 & 0xffff, (w0 >>> 16) * 8, bytes, w1 >>> 16, u32[w + 2]!, u32[w + 3]!);
    }
    return n;
  }

  private dispatch(at: number, type: number, hb: number, bytes: number, flags: number, lo: number, hi: number): void {
    const v = this.view;
    v.set(at, type, flags, lo, hi, hb, bytes);
    if (type === K.PKT_TYPE_COMPLETION) {
      if (this.transactions.take(lo, hi) === 0) return; // refused and counted (checklist 16)
      this.deliverCompletion(this.transactions.taken as C | PendingCall, null, v);
      return;
    }
    const descriptor = type === K.PKT_TYPE_GPA || type === K.PKT_TYPE_RXBUF;
    if (descriptor && hb < K.GPA_DIRECT_PREFIX_SIZE) {
      throw new SgringError('PacketHeaderTooShort', `type ${type} packet with offset8*8 = ${hb}`); // checklist 13: B
    }
    // Hyper-V answers no completion-requested packet whose id is 0 (spec §2.3); neither do we.
    const owed = (flags & K.PKT_FLAG_COMPLETION_REQUESTED) !== 0 && (lo | hi) !== 0;
    if (owed) {
      const r = this.peerInFlight.add(lo, hi);
      if (r <= 0) {
        if (r === 0) this.stats.duplicateRequests++;
        else this.stats.peerRequestsOverflow++;
        return;
      }
    }
    if (descriptor) {
      try {
        if (type === K.PKT_TYPE_GPA) v.gpa = decodeGpaRanges(this.core, { ptr: at + K.GPA_DIRECT_PREFIX_SIZE, len: hb - K.GPA_DIRECT_PREFIX_SIZE }, this.core.u32[(at + K.GPA_DIRECT_OFF_RANGE_COUNT) >> 2]!);
        else v.transferPages = parseTransferFields(this.core.dv, at, hb);
      } catch (e) {
        if (!(e instanceof SgringError)) throw e;
        this.stats.badPackets++;
        if (this.onBadPacket) this.onBadPacket(v, e);
        else if (owed) this.peerInFlight.remove(lo, hi);
        return;
      }
    }
    if (this.onPacket) this.onPacket(v);
    else {
      this.stats.unhandled++;
      if (owed) this.peerInFlight.remove(lo, hi);
    }
  }

  private deliverCompletion(ctx: C | PendingCall, error: SgringError | null, p: ReceivedPacket | null): void {
    if (ctx instanceof PendingCall) {
      if (error) ctx.reject(error);
      else ctx.resolve(p!.copy());
    } else if (this.onCompletion) this.onCompletion(ctx as C, error, p);
  }

  // ---- hung requests (spec/hardening.md P8) ----

  /** Our outstanding requests with their ages (lower bounds), oldest first. */
  outstanding(now = performance.now()): OutstandingTransaction<C>[] {
    return this.transactions.list(now).filter((t) => !(t.context instanceof PendingCall)) as OutstandingTransaction<C>[];
  }

  /**
   * Fails every request older than `deadlineMs` with SgringError 'Timeout', exactly once each;
   * a completion arriving later is counted as late and ignored. Returns how many failed.
   */
  expire(deadlineMs: number, now = performance.now()): number {
    const ids = this.transactions.expired(now, deadlineMs);
    for (const id of ids) {
      const tid = this.transactions.transactionId(id);
      this.transactions.end(id, 'timedOut');
      this.deliverCompletion(this.transactions.taken as C | PendingCall, new SgringError('Timeout', `request ${id} (transaction id ${tid}) got no completion within ${deadlineMs} ms`, { id, transactionId: tid }), null);
    }
    return ids.length;
  }

  // ---- waiting (worker threads) ----

  /** True when poll() or flush() has something to do now (corrupt ring indices count: poll reports them). */
  hasWork(): boolean {
    if (this._state !== 'open' || this.pendLeft > 0) return true;
    if (this.outbox.size > 0 && this.out.availableToWrite > this.outbox.needed) return true;
    return this.outbox.size < this.outboxLimit && this.readable(this.in) !== 0;
  }

  /** Bytes waiting in `ring`, or -1 when its indices are corrupt (VmbusRing reports those as 0). */
  private readable(ring: VmbusRing): number {
    const u32 = this.core.u32;
    const h = ring.ptr >> 2;
    const w = Atomics.load(u32, h + (K.RING_OFF_WRITE_INDEX >> 2));
    const r = Atomics.load(u32, h + (K.RING_OFF_READ_INDEX >> 2));
    const size = ring.dataSize;
    if (w >= size || r >= size || ((w | r) & 7) !== 0) return -1;
    return w >= r ? w - r : size - r + w;
  }

  /** Sleeps on this side's doorbell until hasWork() (blocking; workers and Node's main thread). False on timeout. */
  waitForWork(timeoutMs: number): boolean {
    return this.hasWork() || this.bell.waitUntil(() => this.hasWork(), timeoutMs);
  }

  /** Like waitForWork without blocking the thread. */
  waitForWorkAsync(timeoutMs: number): Promise<boolean> {
    return this.hasWork() ? Promise.resolve(true) : this.bell.waitUntilAsync(() => this.hasWork(), timeoutMs);
  }

  // ---- lifecycle (used by GuestChannel / HostChannel) ----

  /**
   * Ends the data plane: every outstanding request fails with `error`, exactly once. Returns the
   * first error a completion handler threw (every request still got its failure), or null.
   */
  protected shutdown(state: ChannelState, error: SgringError): unknown {
    if (this._state !== 'open') return null;
    this._state = state;
    if (state === 'broken') this.brokenError = error;
    this.pendLeft = 0;
    this.outbox.clear();
    this.peerInFlight.clear();
    let first: unknown = null;
    for (const id of this.transactions.liveIds()) {
      this.transactions.end(id, 'cancelled');
      try {
        this.deliverCompletion(this.transactions.taken as C | PendingCall, error, null);
      } catch (e) {
        first ??= e;
      }
    }
    return first;
  }

  private usable(): void {
    if (this._state === 'open') return;
    if (this.brokenError) throw this.brokenError;
    throw new SgringError(this._state === 'rescinded' ? 'ChannelRescinded' : 'ChannelClosed', `the channel is ${this._state}`);
  }

  /** Rethrows `e`; an error that marks the ring broken breaks the channel first (behaviour B). */
  private fault(e: unknown): never {
    if (e instanceof SgringError && e.broken && this._state === 'open') this.shutdown('broken', e);
    throw e;
  }

  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      this.fault(e);
    }
  }
}

export type { OutstandingTransaction };
