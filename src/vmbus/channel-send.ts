// The sending half of a channel end (spec/vmbus.md §1.7, §1.9.1, §2): writes packets into the
// ring this end produces, raising the channel's signal exactly when a write result says so — the
// ring went from empty to non-empty while its reader was not masked — and counting each one.
// Requests take an id from the TransactionTable (checklist 16); the peer's requests are tracked
// in an InFlightSet, so each gets exactly one completion (checklist 40).
//
// A send outside a handler goes straight to the ring (the per-packet fast path). Sends made
// inside a handler, and completions that found the ring full, wait in the Outbox and are
// written together, with one index publication and one signal decision (DPDK's per-burst
// signal, §1.11). Packets whose header is longer than 16 bytes (GPA direct, transfer pages) are
// built in private zeroed scratch (P10) and written by VmbusRing.writeRawFrom.

import { emptyRegion, fit, release } from '../engine/region';
import * as K from '../generated/constants';
import type { Core } from '../engine/core';
import { SgringError } from '../engine/errors';
import type { VmbusRing } from '../core/vmbus-ring';
import { joinTid, splitTid, type TransactionId } from '../core/tid';
import type { Doorbell } from '../sync/doorbell';
import { descriptorBytes, transferDescriptorBytes, writePacketHeader, writeTransferFields, type GpaDescriptor, type TransferPages } from './packets';
import { Outbox } from './outbox';
import type { ReceivedPacket } from './received-packet';
import { InFlightSet, TransactionTable } from './transactions';

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

export const EMPTY = new Uint8Array(0);
const pad8 = (n: number) => (n + 7) & ~7;
const tidTmp = { lo: 0, hi: 0 };

/** @internal the context of a call(): resolved by the completion, not by onCompletion. */
export class PendingCall {
  constructor(readonly resolve: (v: Uint8Array) => void, readonly reject: (e: SgringError) => void) {}
}

export class ChannelSender<C = unknown> {
  readonly core: Core;
  readonly stats: ChannelStats = {
    packetsSent: 0, packetsReceived: 0, writeSignals: 0, readSignals: 0, outFull: 0, tableFull: 0,
    duplicateRequests: 0, peerRequestsOverflow: 0, badPackets: 0, unhandled: 0,
  };
  /** Ids of our requests: completions are matched here (checklist 16). */
  readonly transactions: TransactionTable<C | PendingCall>;
  /** Ids of the peer's requests we still owe a completion (checklist 40). */
  readonly peerInFlight: InFlightSet;
  /** Completions of our requests, and their failures (timeout, close, rescind, broken channel). */
  onCompletion: CompletionHandler<C> | null = null;
  protected readonly out: VmbusRing;
  protected readonly in: VmbusRing;
  protected readonly bell: Doorbell;
  protected readonly pump: (() => void) | undefined;
  protected _state: ChannelState = 'open';
  protected brokenError: SgringError | null = null;
  /** True while handlers run: sends are staged and written when the batch is done. */
  protected inDispatch = false;
  protected readonly outbox: Outbox;
  /** poll() reads no new packets while this many sends wait (back-pressure, P4). */
  protected readonly outboxLimit: number;
  private readonly raiseSignal: () => void;
  private readonly scratch = emptyRegion();
  /** Set when shutdown ran inside a poll: the core memory is given back when the poll ends. */
  protected releaseDue = false;

  constructor(init: ChannelEndInit, opts: ChannelEndOptions = {}) {
    this.core = init.core;
    this.out = init.out;
    this.in = init.in;
    this.raiseSignal = init.raise;
    this.pump = init.pump;
    this.bell = init.bell;
    this.transactions = new TransactionTable(opts.transactions ?? 256);
    this.peerInFlight = new InFlightSet(opts.peerRequests ?? 4096);
    this.outbox = new Outbox(this.core, { packets: opts.stagingPackets ?? 1024, bytes: opts.stagingBytes ?? 64 * 1024 });
    this.outboxLimit = this.peerInFlight.max;
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

  /** Sends an in-band request with completion requested; returns its id (>= 1), or 0 when the ring or the table is full. */
  request(payload: Uint8Array, context?: C): number {
    return this.requestPacket(context, payload, null, 0);
  }

  /** Sends a GPA-direct request (spec §2.5) whose message follows the ranges; returns its id or 0. */
  requestGpa(gpa: GpaDescriptor, message: Uint8Array, context?: C): number {
    return this.requestPacket(context, message, gpa, descriptorBytes({ gpa }));
  }

  /**
   * issue() for the requests of every device's data path, in-band, GPA-direct (`gpa`) or transfer
   * pages (`xfer`), the descriptor `hb` bytes: inlined, with one fill function per kind, so no
   * closure is made per request.
   */
  private requestPacket(context: C | undefined, message: Uint8Array, gpa: GpaDescriptor | null, hb: number, xfer: TransferPages | null = null): number {
    if (this._state !== 'open') this.usable();
    const t = this.transactions;
    const id = t.alloc(context as C);
    if (id === 0) {
      this.stats.tableFull++;
      return 0;
    }
    let ok: boolean;
    this.gpaToSend = gpa;
    this.xferToSend = xfer;
    try {
      if (gpa !== null) ok = this.sendRaw(K.PKT_TYPE_GPA, hb, message, K.PKT_FLAG_COMPLETION_REQUESTED, id, t.generation(id), this.fillGpa);
      else if (xfer !== null) ok = this.sendRaw(K.PKT_TYPE_RXBUF, hb, message, K.PKT_FLAG_COMPLETION_REQUESTED, id, t.generation(id), this.fillXfer);
      else ok = this.sendInline(message, K.PKT_TYPE_INBAND, K.PKT_FLAG_COMPLETION_REQUESTED, id, t.generation(id));
    } catch (e) {
      t.unalloc(id);
      this.fault(e);
    } finally {
      this.gpaToSend = null;
      this.xferToSend = null;
    }
    if (ok) return id;
    t.unalloc(id);
    return 0;
  }

  /** The GPA descriptor requestPacket is sending, for fillGpa. */
  private gpaToSend: GpaDescriptor | null = null;
  private readonly fillGpa = (dv: DataView, at: number): void => {
    const gpa = this.gpaToSend!;
    dv.setUint32(at + K.GPA_DIRECT_OFF_RANGE_COUNT, gpa.rangeCount, true);
    this.core.u8.set(gpa.rangeBytes, at + K.GPA_DIRECT_PREFIX_SIZE); // dv is core memory's
  };

  /** The transfer pages requestPacket is sending, for fillXfer. */
  private xferToSend: TransferPages | null = null;
  private readonly fillXfer = (dv: DataView, at: number): void => writeTransferFields(dv, at, this.xferToSend!);

  /** Sends a transfer-page packet (spec §2.6) that the peer must complete; returns its id or 0. */
  requestTransferPages(xfer: TransferPages, message: Uint8Array, context?: C): number {
    return this.requestPacket(context, message, null, transferDescriptorBytes(xfer), xfer);
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
    if (this._state !== 'open') this.usable();
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

  /**
   * Runs `fn` with sends staged, then writes them with one index publication and one signal
   * decision (what a handler's sends get automatically). Across threads this saves the peer a
   * cache miss per packet. Returns fn's result; sends refused inside fn return 0 / false as usual.
   */
  batch<T>(fn: () => T): T {
    if (this.inDispatch) return fn();
    this.inDispatch = true;
    try {
      return fn();
    } finally {
      this.inDispatch = false;
      if (this.releaseDue) this.release();
      if (this._state === 'open') this.flush();
    }
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

  protected issue(context: C | PendingCall, send: (lo: number, hi: number) => boolean): number {
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
  protected sendInline(payload: Uint8Array, type: number, flags: number, lo: number, hi: number, mustKeep = false): boolean {
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
  protected sendRaw(type: number, headerBytes: number, message: Uint8Array, flags: number, lo: number, hi: number,
    fill: (dv: DataView, at: number) => void): boolean {
    if (!(message instanceof Uint8Array)) throw new SgringError('InvalidArgument', 'message must be a Uint8Array');
    if (this.outbox.size > 0 && !this.flush()) {
      this.stats.outFull++;
      return false; // waiting packets go first
    }
    const total = pad8(headerBytes + message.length);
    if (total > K.PKT_MAX_BYTES) throw new SgringError('InvalidMessageLength', `a ${total}-byte packet exceeds len8's u16`);
    const at = fit(this.core, this.scratch, total, 4096);
    const u8 = this.core.u8;
    // Reserved fields and padding go out as zeros (P10): the header and the descriptor's fill
    // write every other byte before the message, the message the rest but the tail padding.
    const u32 = this.core.u32;
    u32[(at + 16) >>> 2] = 0; // GPA-direct: reserved; transfer pages: the reserved byte at 19
    u32[(at + 20) >>> 2] = 0;
    for (let i = at + headerBytes + message.length; i < at + total; i++) u8[i] = 0;
    const dv = this.core.dv;
    writePacketHeader(dv, at, type, headerBytes, total, flags, lo, hi);
    fill(dv, at);
    u8.set(message, at + headerBytes);
    const r = this.out.writeRawFrom(at, total);
    if (r === 0) {
      this.stats.outFull++;
      return false;
    }
    this.stats.packetsSent++;
    if ((r & K.WRITE_SIGNAL) !== 0) this.raise(false);
    return true;
  }

  protected raise(afterRead: boolean): void {
    if (afterRead) this.stats.readSignals++;
    else this.stats.writeSignals++;
    this.raiseSignal();
  }

  /**
   * Ends the data plane: every outstanding request fails with `error`, exactly once. Returns the
   * first error a completion handler threw (every request still got its failure), or null.
   */
  protected shutdown(state: ChannelState, error: SgringError): unknown {
    if (this._state !== 'open') return null;
    this._state = state;
    if (state === 'broken') this.brokenError = error;
    this.outbox.clear();
    this.peerInFlight.clear();
    if (this.inDispatch) this.releaseDue = true;
    else this.release();
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

  /**
   * Gives the channel's core memory back (staging, scratch, the ring endpoints' control blocks);
   * the ring bytes stay, they are the guest's pages. Runs once, when the channel ends.
   */
  protected release(): void {
    this.releaseDue = false;
    this.outbox.dispose();
    release(this.core, this.scratch);
    this.out.dispose();
    this.in.dispose();
  }

  protected usable(): void {
    if (this._state === 'open') return;
    if (this.brokenError) throw this.brokenError;
    throw new SgringError(this._state === 'rescinded' ? 'ChannelRescinded' : 'ChannelClosed', `the channel is ${this._state}`);
  }

  /** Rethrows `e`; an error that marks the ring broken breaks the channel first (behaviour B). */
  protected fault(e: unknown): never {
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

  protected deliverCompletion(ctx: C | PendingCall, error: SgringError | null, p: ReceivedPacket | null): void {
    if (ctx instanceof PendingCall) {
      if (error) ctx.reject(error);
      else ctx.resolve(p!.copy());
    } else if (this.onCompletion) this.onCompletion(ctx as C, error, p);
  }
}
