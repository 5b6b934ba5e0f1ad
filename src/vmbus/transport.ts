// The channel-message transport between a guest end and a host end (spec/vmbus.md §3.1, §1.10),
// in core memory so that both ends may sit in one thread or in two threads over one shared memory.
//
// Hyper-V delivers host->guest messages through one 256-byte SynIC message slot (the hypervisor
// queues the rest) and guest->host messages through the HvPostMessage hypercall. We model each
// direction as a queue of N slots in exactly the SynIC slot format (type u32, payload_size u8,
// flags u8, reserved u16, sender u64, payload[240]); consuming a slot (publishing the head
// counter) stands for "clear the message type and signal end-of-message". Channel signals are
// an event bit per relid plus a doorbell per side (the SynIC event flags and the HvSignalEvent
// hypercall): one wait covers every channel and every message of that side.
//
// Hostile peer (P1): each side trusts only its own counters (kept privately and published with
// Atomics); the peer's counter is read once per call and a gap larger than the slot count marks
// the end broken (TransportBroken, behaviour B). A message is copied out of its slot before any
// field is examined (L2, P3) and every slot is zeroed before it is written (P10).

import * as K from '../generated/constants';
import type { Core } from '../engine/core';
import { SgringError } from '../engine/errors';
import { Doorbell } from '../sync/doorbell';

export type Side = 'guest' | 'host';

interface Layout { tail: number; head: number; slots: number }

/** Where one side's queues, bells and event bitmaps are. */
function sideLayout(ptr: number, slots: number, side: Side) {
  const g2h: Layout = { tail: ptr + K.XPORT_OFF_G2H_TAIL, head: ptr + K.XPORT_OFF_G2H_HEAD, slots: ptr + K.XPORT_HEADER_SIZE };
  const h2g: Layout = { tail: ptr + K.XPORT_OFF_H2G_TAIL, head: ptr + K.XPORT_OFF_H2G_HEAD, slots: ptr + K.XPORT_HEADER_SIZE + slots * K.SYNIC_MSG_SIZE };
  const g2h2 = { events: ptr + K.XPORT_OFF_G2H_EVENTS, summary: ptr + K.XPORT_OFF_G2H_SUMMARY };
  const h2g2 = { events: ptr + K.XPORT_OFF_H2G_EVENTS, summary: ptr + K.XPORT_OFF_H2G_SUMMARY };
  return side === 'guest'
    ? { out: g2h, in: h2g, ownBell: ptr + K.XPORT_OFF_GUEST_BELL, peerBell: ptr + K.XPORT_OFF_HOST_BELL, outEvents: g2h2, inEvents: h2g2 }
    : { out: h2g, in: g2h, ownBell: ptr + K.XPORT_OFF_HOST_BELL, peerBell: ptr + K.XPORT_OFF_GUEST_BELL, outEvents: h2g2, inEvents: g2h2 };
}

/** The shared region: create it once, then attach from any thread and take one end per side. */
export class MessageTransport {
  readonly core: Core;
  readonly ptr: number;
  /** Slots per direction. */
  readonly slots: number;
  private ends: Partial<Record<Side, MessageEnd>> = {};

  private constructor(core: Core, ptr: number, slots: number) {
    this.core = core;
    this.ptr = ptr;
    this.slots = slots;
  }

  /** Bytes a transport with `slots` slots per direction occupies. */
  static bytesFor(slots: number): number {
    return K.XPORT_HEADER_SIZE + 2 * slots * K.SYNIC_MSG_SIZE;
  }

  /** Lays out a zeroed transport with `slots` (1..256, default 16) message slots per direction. */
  static create(core: Core, opts: { slots?: number } = {}): MessageTransport {
    const slots = opts.slots ?? 16;
    if (!Number.isInteger(slots) || slots < 1 || slots > K.XPORT_MAX_SLOTS) {
      throw new SgringError('InvalidArgument', `slots must be an integer in 1..${K.XPORT_MAX_SLOTS} (got ${slots})`);
    }
    const ptr = core.alloc(MessageTransport.bytesFor(slots), 4096);
    Atomics.store(core.u32, (ptr + K.XPORT_OFF_SLOTS) >> 2, slots);
    Atomics.store(core.u32, (ptr + K.XPORT_OFF_MAGIC) >> 2, K.XPORT_MAGIC);
    return new MessageTransport(core, ptr, slots);
  }

  /** Attaches to a transport laid out by create() (e.g. in another thread). */
  static attach(core: Core, ptr: number): MessageTransport {
    core.checkRange(ptr, K.XPORT_HEADER_SIZE);
    if ((ptr & 4095) !== 0 || Atomics.load(core.u32, (ptr + K.XPORT_OFF_MAGIC) >> 2) !== K.XPORT_MAGIC) {
      throw new SgringError('InvalidArgument', `no message transport at ${ptr}`);
    }
    const slots = Atomics.load(core.u32, (ptr + K.XPORT_OFF_SLOTS) >> 2);
    if (slots < 1 || slots > K.XPORT_MAX_SLOTS) throw new SgringError('InvalidArgument', `transport at ${ptr} claims ${slots} slots`);
    core.checkRange(ptr, MessageTransport.bytesFor(slots));
    return new MessageTransport(core, ptr, slots);
  }

  /** This thread's end for `side` (one object per side per thread). */
  end(side: Side): MessageEnd {
    return (this.ends[side] ??= new MessageEnd(this, side));
  }

  /** Rung by the guest (messages and channel signals); the host sleeps on it. */
  get hostBell(): Doorbell {
    return Doorbell.attach(this.core, this.ptr + K.XPORT_OFF_HOST_BELL);
  }
  /** Rung by the host; the guest sleeps on it. */
  get guestBell(): Doorbell {
    return Doorbell.attach(this.core, this.ptr + K.XPORT_OFF_GUEST_BELL);
  }
}

/** One side: sends on its outgoing queue, receives from the other, signals channels by relid. */
export class MessageEnd {
  readonly core: Core;
  readonly side: Side;
  readonly slots: number;
  /** Rung by the peer: sleep on it. */
  readonly ownBell: Doorbell;
  /** Ring it to wake the peer. */
  readonly peerBell: Doorbell;
  /** Messages posted / received, posts refused on a full queue, channel signals raised, and every ring of the peer's doorbell. */
  readonly stats = { posted: 0, received: 0, fullPosts: 0, signals: 0, bellRings: 0 };
  private readonly L: ReturnType<typeof sideLayout>;
  private tail: number;
  private head: number;
  private brokenError: SgringError | null = null;

  /** @internal use MessageTransport.end */
  constructor(t: MessageTransport, side: Side) {
    this.core = t.core;
    this.side = side;
    this.slots = t.slots;
    this.L = sideLayout(t.ptr, t.slots, side);
    this.ownBell = Doorbell.attach(t.core, this.L.ownBell);
    this.peerBell = Doorbell.attach(t.core, this.L.peerBell);
    // Our own counters, as we last published them.
    this.tail = Atomics.load(t.core.u32, this.L.out.tail >> 2);
    this.head = Atomics.load(t.core.u32, this.L.in.head >> 2);
  }

  /** The error that broke this end, or null. */
  get broken(): SgringError | null {
    return this.brokenError;
  }

  private fail(what: string, used: number): never {
    this.brokenError ??= new SgringError('TransportBroken', `${this.side} end: ${what} queue claims ${used} messages in ${this.slots} slots`, { used });
    throw this.brokenError;
  }

  /** Free slots in the outgoing queue right now. */
  get writable(): number {
    if (this.brokenError) throw this.brokenError;
    const used = (this.tail - Atomics.load(this.core.u32, this.L.out.head >> 2)) >>> 0;
    if (used > this.slots) this.fail('outgoing', used);
    return this.slots - used;
  }

  /** Messages waiting in the incoming queue right now. */
  get readable(): number {
    if (this.brokenError) throw this.brokenError;
    const used = (Atomics.load(this.core.u32, this.L.in.tail >> 2) - this.head) >>> 0;
    if (used > this.slots) this.fail('incoming', used);
    return used;
  }

  /**
   * Posts one channel message (at most 240 bytes) with the given sender / connection id. Returns
   * false when the outgoing queue is full (nothing written); rings the peer otherwise.
   */
  post(payload: Uint8Array, sender = 0): boolean {
    if (payload.length > K.SYNIC_MAX_PAYLOAD) throw new SgringError('MessageTooLong', `message of ${payload.length} bytes`);
    if (this.writable === 0) {
      this.stats.fullPosts++;
      return false;
    }
    const slot = this.L.out.slots + (this.tail % this.slots) * K.SYNIC_MSG_SIZE;
    const u8 = this.core.u8;
    u8.fill(0, slot, slot + K.SYNIC_MSG_SIZE);
    const dv = this.core.dv;
    dv.setUint32(slot + K.SYNIC_OFF_TYPE, K.SYNIC_MSG_TYPE_CHANNEL, true);
    dv.setUint8(slot + K.SYNIC_OFF_PAYLOAD_SIZE, payload.length);
    dv.setUint32(slot + K.SYNIC_OFF_SENDER, sender >>> 0, true);
    u8.set(payload, slot + K.SYNIC_OFF_PAYLOAD);
    this.tail = (this.tail + 1) >>> 0;
    Atomics.store(this.core.u32, this.L.out.tail >> 2, this.tail);
    this.stats.posted++;
    this.ring();
    return true;
  }

  /**
   * Takes the next message as a private copy of its whole 256-byte slot, or null when none is
   * waiting. The slot is free again once this returns. Read fields with synicPayload().
   */
  receive(): Uint8Array | null {
    const n = this.readable;
    if (n === 0) return null;
    const slot = this.L.in.slots + (this.head % this.slots) * K.SYNIC_MSG_SIZE;
    const copy = this.core.u8.slice(slot, slot + K.SYNIC_MSG_SIZE);
    this.head = (this.head + 1) >>> 0;
    Atomics.store(this.core.u32, this.L.in.head >> 2, this.head);
    this.stats.received++;
    // A producer that found the queue full may be asleep waiting for this slot.
    if (n === this.slots) this.ring();
    return copy;
  }

  /** Marks channel `relid` as signalled for the peer and rings the peer (spec §1.10). */
  signalChannel(relid: number): void {
    if (!(relid >= 0 && relid < K.VMBUS_MAX_RELIDS)) throw new SgringError('RelidOutOfRange', `relid ${relid}`);
    const i32 = this.core.i32;
    const w = relid >>> 5;
    // Word bit first, then its summary bit: a consumer that clears the summary before we set
    // it finds the word bit on its next pass at the latest.
    const ew = (this.L.outEvents.events >> 2) + w;
    const sw = (this.L.outEvents.summary >> 2) + (w >>> 5);
    // A bit the peer has not taken yet needs no second read-modify-write.
    if ((Atomics.load(i32, ew) & (1 << (relid & 31))) === 0) Atomics.or(i32, ew, 1 << (relid & 31));
    if ((Atomics.load(i32, sw) & (1 << (w & 31))) === 0) Atomics.or(i32, sw, 1 << (w & 31));
    this.stats.signals++;
    this.ring();
  }

  /**
   * Clears and reports every channel event the peer raised for us: calls `fn(relid)` for each set
   * bit (at most 2048, in relid order). The peer's bits are only hints (hostile, P1): the caller
   * checks the channel's rings before acting.
   */
  takeEvents(fn: (relid: number) => void): number {
    const i32 = this.core.i32;
    const base = this.L.inEvents.events >> 2;
    let n = 0;
    for (let s = 0; s < K.XPORT_EVENT_BYTES / 128; s++) {
      const si = (this.L.inEvents.summary >> 2) + s;
      if (Atomics.load(i32, si) === 0) continue;
      let words = Atomics.exchange(i32, si, 0);
      while (words !== 0) {
        const w = s * 32 + (31 - Math.clz32(words & -words));
        words &= words - 1;
        let bits = Atomics.exchange(i32, base + w, 0);
        while (bits !== 0) {
          const b = 31 - Math.clz32(bits & -bits);
          bits &= bits - 1;
          n++;
          fn(w * 32 + b);
        }
      }
    }
    return n;
  }

  private ring(): void {
    this.peerBell.ring();
    this.stats.bellRings++;
  }
}

/**
 * The channel message inside a received slot copy: the first payload_size bytes of its payload.
 * Throws UnknownMessageType when the SynIC type is not 1 (a VMBus channel message) and
 * MessageTooLong when payload_size exceeds 240 (spec §6.3 item 17).
 */
export function synicPayload(slot: Uint8Array): Uint8Array {
  const dv = new DataView(slot.buffer, slot.byteOffset, slot.length);
  const type = dv.getUint32(K.SYNIC_OFF_TYPE, true);
  if (type !== K.SYNIC_MSG_TYPE_CHANNEL) throw new SgringError('UnknownMessageType', `SynIC message type ${type} is not a channel message`, { synicType: type });
  const size = dv.getUint8(K.SYNIC_OFF_PAYLOAD_SIZE);
  if (size > K.SYNIC_MAX_PAYLOAD) throw new SgringError('MessageTooLong', `SynIC payload_size ${size} (at most ${K.SYNIC_MAX_PAYLOAD})`, { size });
  return slot.subarray(K.SYNIC_OFF_PAYLOAD, K.SYNIC_OFF_PAYLOAD + size);
}

/** The sender / connection id field of a received slot copy. */
export function synicSender(slot: Uint8Array): number {
  return new DataView(slot.buffer, slot.byteOffset, slot.length).getUint32(K.SYNIC_OFF_SENDER, true);
}
