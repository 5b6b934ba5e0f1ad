// One end of an open channel's data plane (spec/vmbus.md §1.8-1.9, §2): ChannelSender's sending
// plus the receiving half. GuestChannel and HostChannel add the lifecycle; the data plane is the
// same in both directions.
//
// Polling drains with the mask / drain / unmask / re-check loop (§1.8) and at most `budget`
// packets per call (P4). Packets are read in batches into a private buffer (P3), checked
// (packets.ts lists each check and its choice) and handed to handlers as a reused
// ReceivedPacket; a read that freed the room a blocked writer asked for raises the flow-control
// signal (§1.9.2). A handler that throws stops the poll; the rest of its batch is delivered by
// the next poll, so no packet already taken from the ring is lost. Hung requests are listed
// with their ages and failed once by expire() (hardening P8).

import * as K from '../generated/constants';
import { SgringError } from '../engine/errors';
import { ReadBatch } from '../core/ring-batch';
import type { VmbusRing } from '../core/vmbus-ring';
import { decodeGpaRanges, type GpaDecodeResult } from '../core/gpa-range';
import { joinTid } from '../core/tid';
import { descriptorBytes, parseTransferFields, type GpaDescriptor, type TransferPages } from './packets';
import { ReceivedPacket } from './received-packet';
import type { OutstandingTransaction } from './transactions';
import { ChannelSender, PendingCall, type ChannelEndInit, type ChannelEndOptions, type ChannelState } from './channel-send';

export class ChannelEnd<C = unknown> extends ChannelSender<C> {
  /** Incoming packets that are not completions of our requests. */
  onPacket: ((p: ReceivedPacket) => void) | null = null;
  /** Called once a poll() has handed over every packet it took (a device flushes what it batched across them). */
  onPollEnd: (() => void) | null = null;
  /** Packets that failed a descriptor check (E); without it they are counted and dropped. */
  onBadPacket: ((p: ReceivedPacket, error: SgringError) => void) | null = null;
  /** Most packets one poll() takes by default: one ring's worth (P4). */
  readonly budget: number;
  private rb: ReadBatch;
  private readonly view: ReceivedPacket;
  /** The view's GPA ranges, refilled per packet (decodeGpaRanges' options naming them). */
  // The read buffer is the end's private copy of the packet (P3): its ranges are decoded where they lie.
  private readonly gpaDecode: { into: GpaDecodeResult; private: true } = { into: { ranges: [], segments: [], bytes: 0 }, private: true };
  /** Where the GPA ranges of the packet being delivered lie (read buffer offsets), refilled per packet. */
  private readonly gpaRegion = { ptr: 0, len: 0 };
  /** The transfer-page fields of the packet being delivered, refilled per packet. */
  private readonly transferDecode: TransferPages = { pageSetId: 0, senderOwns: false, ranges: [] };
  private pendAt = 0;
  private pendLeft = 0;
  private polls = 0;

  constructor(init: ChannelEndInit, opts: ChannelEndOptions = {}) {
    super(init, opts);
    this.rb = new ReadBatch(this.core, { bytes: opts.readBytes ?? Math.min(64 * 1024, this.in.dataSize) });
    this.view = new ReceivedPacket(this.core);
    this.budget = Math.max(1, Math.floor(this.in.dataSize / 24));
  }

  /**
   * Sends an in-band request and resolves with a copy of its completion's payload. It polls this
   * channel itself (and runs the bus's pump, when both ends share a thread) until the completion
   * arrives or `timeoutMs` passes: then the request fails with Timeout, once, and a completion
   * arriving later is counted as late.
   */
  async call(payload: Uint8Array, timeoutMs = 5000): Promise<Uint8Array> {
    return this.callWith((lo, hi) => this.sendInline(payload, K.PKT_TYPE_INBAND, K.PKT_FLAG_COMPLETION_REQUESTED, lo, hi), timeoutMs);
  }

  /** `call` for a GPA-direct request (spec §2.5): the ranges describe the data, `message` follows them. */
  async callGpa(gpa: GpaDescriptor, message: Uint8Array, timeoutMs = 5000): Promise<Uint8Array> {
    const hb = descriptorBytes({ gpa });
    return this.callWith((lo, hi) => this.sendRaw(K.PKT_TYPE_GPA, hb, message, K.PKT_FLAG_COMPLETION_REQUESTED, lo, hi, (dv, at) => {
      dv.setUint32(at + K.GPA_DIRECT_OFF_RANGE_COUNT, gpa.rangeCount, true);
      new Uint8Array(dv.buffer, at + K.GPA_DIRECT_PREFIX_SIZE, gpa.rangeBytes.length).set(gpa.rangeBytes);
    }), timeoutMs);
  }

  private async callWith(sendIt: (lo: number, hi: number) => boolean, timeoutMs: number): Promise<Uint8Array> {
    const box: { done: boolean; value?: Uint8Array; error?: SgringError } = { done: false };
    const pending = new PendingCall((v) => Object.assign(box, { done: true, value: v }), (e) => Object.assign(box, { done: true, error: e }));
    const id = this.issue(pending, sendIt);
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
        // One thread: run the peer, then let its pending async work (a disk behind the host) go
        // on: a microtask turn each spin, a timer turn now and then so I/O callbacks run too.
        this.pump();
        if ((spins & 255) === 255) await new Promise<void>((r) => setTimeout(r, 0));
        else await Promise.resolve();
      } else await this.waitForWorkAsync(Math.min(left, 100));
    }
    if (box.error) throw box.error;
    return box.value!;
  }

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
    if (n > 0 && this.onPollEnd && err === null) {
      try {
        this.onPollEnd();
      } catch (e) {
        err = e;
      }
    }
    if (this.releaseDue) this.release();
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
        if (type === K.PKT_TYPE_GPA) {
          const region = this.gpaRegion;
          region.ptr = at + K.GPA_DIRECT_PREFIX_SIZE;
          region.len = hb - K.GPA_DIRECT_PREFIX_SIZE;
          v.gpa = decodeGpaRanges(this.core, region, this.core.u32[(at + K.GPA_DIRECT_OFF_RANGE_COUNT) >> 2]!, this.gpaDecode);
        }
        else v.transferPages = parseTransferFields(this.core.dv, at, hb, this.transferDecode);
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

  protected override release(): void {
    super.release();
    this.rb.dispose();
  }

  protected override shutdown(state: ChannelState, error: SgringError): unknown {
    if (this._state === 'open') this.pendLeft = 0;
    return super.shutdown(state, error);
  }
}

export type { ChannelState, ChannelStats, ChannelEndOptions, ChannelEndInit, CompletionHandler } from './channel-send';
export type { OutstandingTransaction };
