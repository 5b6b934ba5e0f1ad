// The guest end of the VMBus control plane (spec/vmbus.md §3): version negotiation, offers,
// GPADLs, open / close / rescind, over a MessageTransport. Every host message is copied out of
// its slot and decoded from the copy (L2); one that is too short, too long, of an unknown type,
// of the guest->host direction, or unexpected in the current state is counted and dropped
// (checklist 17, §6.3 items 15-19: behaviour I). Offers are checked by OfferTable (checklist 18).
//
// Operations are async and every one has a deadline: a host that never answers yields a typed
// Timeout, never a hang (P8). While waiting, the guest polls its messages and either calls
// `pump` (both ends in one thread: run the host there) or sleeps on its doorbell.

import * as K from '../generated/constants';
import type { Core } from '../engine/core';
import { SgringError } from '../engine/errors';
import { VmbusRing } from '../core/vmbus-ring';
import { encodeMessage, type ChannelMessage } from './messages';
import type { MessageEnd, MessageTransport } from './transport';
import { OfferTable, type Offer } from './offers';
import { gpadlMessages, pfnsOf } from './gpadl';
import { GuestChannel, initRingPages } from './guest-channel';
import type { ChannelEndOptions } from './channel-end';
import type { DeviceClassName } from './guid';
import type { PageAllocator } from './guest-pages';
import { pollBus, receivedMessage, spinWhile, VMBUS_VERSIONS, Waiters, type DropCounters, type Waiter } from './bus-common';

export interface GuestBusOptions {
  /** Contiguous guest pages for rings (see bumpPageAllocator). */
  allocPages: PageAllocator;
  versions?: readonly number[];
  /** Deadline of each control-plane wait, in ms (default 5000). */
  timeoutMs?: number;
  /** Runs the host end while the guest waits, when both ends share one thread. */
  pump?: () => void;
}

export interface OpenOptions {
  /** Pages of each ring, header page included (default 16 each: 60 KiB of data). */
  txPages?: number;
  rxPages?: number;
  targetVp?: number;
  /** The 120 user-data bytes of OPENCHANNEL. */
  userData?: Uint8Array;
  timeoutMs?: number;
  channel?: ChannelEndOptions;
}

const now = () => performance.now();
const yieldNow = () => new Promise<void>((r) => (typeof setImmediate === 'function' ? setImmediate(r) : setTimeout(r, 0)));
const fmtVersion = (v: number) => `${v >>> 16}.${v & 0xffff}`;

export class GuestBus {
  readonly core: Core;
  readonly end: MessageEnd;
  readonly offers = new OfferTable();
  readonly channels = new Map<number, GuestChannel<any>>(); // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Negotiated protocol version (0 before connect). */
  version = 0;
  /** All offers arrived (ALLOFFERS_DELIVERED seen). */
  offersComplete = false;
  readonly dropped: DropCounters = { tooShort: 0, tooLong: 0, unknownType: 0, wrongDirection: 0, outOfState: 0, unmatched: 0 };
  /** Host messages handled, by type. */
  readonly received: Record<string, number> = {};
  /** Pages never reused because a GPADL's creation or teardown got no answer (spec §3.5: the host may still write them). */
  leakedPages = 0;
  onOffer: ((offer: Offer) => void) | null = null;
  onOfferRefused: ((error: SgringError) => void) | null = null;
  onRescind: ((offer: Offer) => void) | null = null;
  private readonly opts: Required<Omit<GuestBusOptions, 'pump'>> & { pump?: () => void };
  private readonly waiters = new Waiters();
  private readonly outbox: { bytes: Uint8Array; sender: number }[] = [];
  private readonly drivers = new Map<string, (offer: Offer) => void>();
  private connId: number = K.VMBUS_MESSAGE_CONNECTION_ID;
  private nextGpadl = 1;
  /** Live GPADLs; `ownedGpa` marks ring pages open() took from allocPages, given back when the GPADL ends. */
  private readonly gpadls = new Map<number, { relid: number; pages: number; ownedGpa?: number }>();

  constructor(transport: MessageTransport, opts: GuestBusOptions) {
    if (typeof opts?.allocPages !== 'function') throw new SgringError('InvalidArgument', 'GuestBus needs allocPages');
    this.core = transport.core;
    this.end = transport.end('guest');
    this.opts = { versions: VMBUS_VERSIONS, timeoutMs: 5000, ...opts };
  }

  get connected(): boolean {
    return this.version !== 0;
  }

  /** Registers the driver of a device class: it gets every offer of that class (spec §3.4). */
  bind(cls: DeviceClassName, onOffer: (offer: Offer) => void): void {
    this.drivers.set(cls, onOffer);
    for (const o of this.offers.all()) this.bindOffer(o);
  }

  private bindOffer(o: Offer): void {
    const drv = o.bound ? undefined : this.drivers.get(o.className);
    if (drv) {
      o.bound = true;
      drv(o);
    }
  }

  // ---- sending and waiting ----

  private post(m: ChannelMessage, sender = this.connId): void {
    this.outbox.push({ bytes: encodeMessage(m), sender });
    this.flushOutbox();
  }

  private flushOutbox(): void {
    while (this.outbox.length > 0 && this.end.post(this.outbox[0]!.bytes, this.outbox[0]!.sender)) this.outbox.shift();
  }

  /** Polls until `w.done` or the deadline; throws Timeout naming `what`. */
  private async wait<T>(w: Waiter, timeoutMs: number, what: string): Promise<T> {
    const deadline = now() + timeoutMs;
    for (let spins = 0; ; spins++) {
      this.poll();
      if (w.done) break;
      const left = deadline - now();
      if (left <= 0) {
        this.waiters.cancel(w);
        throw new SgringError('Timeout', `${what}: the host did not answer within ${timeoutMs} ms`);
      }
      if (this.opts.pump) {
        this.opts.pump();
        if ((spins & 15) === 15) await yieldNow();
      } else {
        await this.end.ownBell.waitUntilAsync(() => w.done || this.end.readable > 0 || (this.outbox.length > 0 && this.end.writable > 0), Math.min(left, 100));
      }
    }
    if (w.error) throw w.error;
    return w.value as T;
  }

  private hostWaits = 0;

  /**
   * Lets the host make progress, for a driver with many requests in flight that reaps them in one
   * loop: with a pump (both ends in one thread) runs the host, delivers what it answered (a poll)
   * and yields to pending async work (a microtask turn, a timer turn every 256 calls so I/O
   * callbacks run too); otherwise watches for
   * work `spinMicros` µs (a non-blocking wait's wake-up costs a trip through the event loop), then
   * sleeps on the guest's doorbell until the control queue or a channel has something, at most
   * `timeoutMs`.
   */
  async waitForHost(timeoutMs = 100, spinMicros = 50): Promise<void> {
    if (this.opts.pump) {
      this.opts.pump();
      // What the host just answered is delivered now, before the yield: the callers' next
      // requests then go out together, and the host serves them in one batch.
      this.poll();
      if ((++this.hostWaits & 255) === 0) await yieldNow();
      else await Promise.resolve();
      return;
    }
    const work = () => {
      if (this.end.readable > 0 || (this.outbox.length > 0 && this.end.writable > 0)) return true;
      for (const ch of this.channels.values()) if (ch.state === 'open' && ch.hasWork()) return true;
      return false;
    };
    if (!spinWhile(() => !work(), spinMicros)) await this.end.ownBell.waitUntilAsync(work, timeoutMs);
  }

  // ---- receiving ----

  /**
   * Handles waiting control messages (at most one queue's worth, P4) and polls every open
   * channel that has work. Returns the messages and packets handled.
   */
  poll(): number {
    return pollBus(this.end, () => this.flushOutbox(), (slot) => this.handle(slot), this.channels.values());
  }

  private handle(slot: Uint8Array): void {
    const m = receivedMessage(slot, 'h2g', this.dropped);
    if (m === null) return;
    if (!this.connected && m.type !== 'versionResponse') {
      this.dropped.outOfState++;
      return;
    }
    this.received[m.type] = (this.received[m.type] ?? 0) + 1;
    const w = this.waiters;
    let matched = true;
    switch (m.type) {
      case 'versionResponse': matched = w.settle('version', 0, m); break;
      case 'allOffersDelivered':
        this.offersComplete = true;
        w.settle('offers', 0, m);
        break;
      case 'offer': this.onOfferMessage(m); break;
      case 'rescind': matched = this.rescinded(m.childRelid); break;
      case 'openResult': matched = w.settle('open', m.childRelid, m, (x) => (x as { openId: number }).openId === m.openId); break;
      case 'gpadlCreated': matched = w.settle('gpadl', m.gpadl, m, () => this.gpadls.get(m.gpadl)?.relid === m.childRelid); break;
      case 'gpadlTorndown': matched = w.settle('teardown', m.gpadl, m); break;
      case 'unloadResponse': matched = w.settle('unload', 0, m); break;
      case 'modifyChannelResponse': matched = false; break;
    }
    if (!matched) this.dropped.unmatched++;
  }

  private onOfferMessage(m: ChannelMessage & { type: 'offer' }): void {
    let offer: Offer;
    try {
      offer = this.offers.add(m);
    } catch (e) {
      if (e instanceof SgringError) this.onOfferRefused?.(e);
      return;
    }
    this.onOffer?.(offer);
    this.bindOffer(offer);
  }

  /** RESCIND (spec §3.5): stop, fail what waits on the channel once, release the relid. */
  private rescinded(relid: number): boolean {
    const offer = this.offers.get(relid);
    if (!offer || offer.state === 'rescinded') return false;
    offer.state = 'rescinded';
    const error = new SgringError('ChannelRescinded', `the host rescinded channel ${relid}`, { relid });
    this.waiters.failRelid(relid, error);
    for (const [handle, g] of this.gpadls) {
      if (g.relid !== relid) continue;
      this.waiters.fail('gpadl', handle, error);
      this.waiters.fail('teardown', handle, error);
      this.endGpadl(handle, false); // the host revoked the channel and its GPADLs before RESCIND
    }
    const ch = this.channels.get(relid);
    this.channels.delete(relid);
    const handlerError = ch?.terminate('rescinded', error) ?? null;
    this.post({ type: 'relidReleased', childRelid: relid });
    this.offers.remove(relid);
    this.onRescind?.(offer);
    if (handlerError !== null) throw handlerError;
    return true;
  }

  // ---- operations ----

  /**
   * INITIATE_CONTACT with each version, newest first, until the host accepts one (spec §3.3);
   * then REQUESTOFFERS and the wait for ALLOFFERS_DELIVERED (unless requestOffers is false).
   * Resolves with the version. Throws HostRefused when no version is accepted.
   */
  async connect(o: { requestOffers?: boolean; timeoutMs?: number } = {}): Promise<number> {
    const timeoutMs = o.timeoutMs ?? this.opts.timeoutMs;
    for (const v of this.opts.versions) {
      const w = this.waiters.add('version', 0);
      const v5 = v >= K.VMBUS_VERSION_WIN10_V5;
      // From 5.0, bytes 16-17 carry msg_sint (2, the VMBus SINT) and msg_vtl (0).
      this.post({ type: 'initiateContact', version: v, targetVcpu: 0, interruptPage: v5 ? 2n : 0n, monitorPage1: 0n, monitorPage2: 0n },
        v5 ? K.VMBUS_MESSAGE_CONNECTION_ID_4 : K.VMBUS_MESSAGE_CONNECTION_ID);
      const r = await this.wait<ChannelMessage & { type: 'versionResponse' }>(w, timeoutMs, `INITIATE_CONTACT ${fmtVersion(v)}`);
      if (!r.versionSupported) continue;
      this.version = v;
      this.connId = v5 && r.msgConnId !== 0 ? r.msgConnId : K.VMBUS_MESSAGE_CONNECTION_ID;
      if (o.requestOffers !== false) await this.requestOffers(timeoutMs);
      return v;
    }
    throw new SgringError('HostRefused', `the host accepted none of versions ${this.opts.versions.map(fmtVersion).join(', ')}`, { versions: this.opts.versions });
  }

  /** REQUESTOFFERS; resolves with every offer once ALLOFFERS_DELIVERED arrives. */
  async requestOffers(timeoutMs = this.opts.timeoutMs): Promise<Offer[]> {
    this.mustBeConnected();
    const w = this.waiters.add('offers', 0);
    this.post({ type: 'requestOffers' });
    await this.wait(w, timeoutMs, 'REQUESTOFFERS');
    return this.offers.all();
  }

  private mustBeConnected(): void {
    if (!this.connected) throw new SgringError('InvalidArgument', 'not connected: call connect() first');
  }

  private liveOffer(relid: number): Offer {
    const o = this.offers.get(relid);
    if (!o || o.state === 'rescinded') throw new SgringError(o ? 'ChannelRescinded' : 'InvalidArgument', `no live offer with relid ${relid}`);
    return o;
  }

  /**
   * Registers a guest buffer with the host for channel `relid` (spec §3.6): the header with up to
   * 26 PFNs, then bodies of 28. `buffer` is page-aligned memory ({ gpa, bytes }) or explicit PFNs.
   * Resolves with the handle; HostRefused with the host's status when it says no.
   */
  createGpadl(relid: number, buffer: { gpa: number; bytes: number } | { pfns: number[]; byteCount: number; byteOffset?: number }, timeoutMs = this.opts.timeoutMs): Promise<number> {
    return this.registerGpadl(relid, buffer, timeoutMs);
  }

  /** Forgets a GPADL: its pages count as leaked when the host may still hold them, else ring pages go back to allocPages. */
  private endGpadl(handle: number, leaked: boolean): void {
    const g = this.gpadls.get(handle);
    if (!g) return;
    this.gpadls.delete(handle);
    if (leaked) this.leakedPages += g.pages;
    else if (g.ownedGpa !== undefined) this.opts.allocPages.free?.(g.ownedGpa);
  }

  private async registerGpadl(relid: number, buffer: { gpa: number; bytes: number } | { pfns: number[]; byteCount: number; byteOffset?: number },
    timeoutMs: number, ownedGpa?: number): Promise<number> {
    this.mustBeConnected();
    this.liveOffer(relid);
    const desc = 'pfns' in buffer ? buffer : { pfns: pfnsOf(buffer.gpa, Math.ceil(buffer.bytes / 4096)), byteCount: buffer.bytes };
    let handle = this.nextGpadl;
    while (this.gpadls.has(handle)) handle = handle >= 0xffffffff ? 1 : handle + 1;
    this.nextGpadl = handle >= 0xffffffff ? 1 : handle + 1;
    const msgs = gpadlMessages(relid, handle, desc);
    this.gpadls.set(handle, { relid, pages: desc.pfns.length, ownedGpa });
    const w = this.waiters.add('gpadl', handle, relid);
    for (const m of msgs) this.post(m);
    let r: ChannelMessage & { type: 'gpadlCreated' };
    try {
      r = await this.wait<ChannelMessage & { type: 'gpadlCreated' }>(w, timeoutMs, `GPADL ${handle}`);
    } catch (e) {
      this.endGpadl(handle, e instanceof SgringError && e.code === 'Timeout'); // unanswered: the host may have it
      throw e;
    }
    if (r.status !== 0) {
      this.endGpadl(handle, false);
      throw new SgringError('HostRefused', `GPADL ${handle}: host status 0x${r.status.toString(16)}`, { status: r.status, gpadl: handle });
    }
    return handle;
  }

  /** GPADL_TEARDOWN and the wait for GPADL_TORNDOWN. On timeout the pages count as leaked. */
  async teardownGpadl(relid: number, handle: number, timeoutMs = this.opts.timeoutMs): Promise<void> {
    const g = this.gpadls.get(handle);
    if (!g || g.relid !== relid) throw new SgringError('InvalidArgument', `no GPADL ${handle} on channel ${relid}`);
    const w = this.waiters.add('teardown', handle, relid);
    this.post({ type: 'gpadlTeardown', childRelid: relid, gpadl: handle });
    try {
      await this.wait(w, timeoutMs, `GPADL_TEARDOWN ${handle}`);
    } catch (e) {
      this.endGpadl(handle, e instanceof SgringError && e.code === 'Timeout');
      throw e;
    }
    this.endGpadl(handle, false);
  }

  /**
   * OPENCHANNEL with an existing ring GPADL; resolves with the host's status (0 = opened). The
   * low-level step of open(), for callers that lay out rings themselves.
   */
  async requestOpen(relid: number, gpadl: number, downstreamPageOffset: number, o: OpenOptions = {}): Promise<number> {
    this.mustBeConnected();
    this.liveOffer(relid);
    const w = this.waiters.add('open', relid, relid);
    this.post({
      type: 'openChannel', childRelid: relid, openId: relid, ringGpadl: gpadl, targetVp: o.targetVp ?? 0,
      downstreamPageOffset, userData: o.userData ?? new Uint8Array(K.OPEN_USER_DATA_SIZE),
    });
    const r = await this.wait<ChannelMessage & { type: 'openResult' }>(w, o.timeoutMs ?? this.opts.timeoutMs, `OPENCHANNEL ${relid}`);
    return r.status;
  }

  /**
   * Opens a channel (spec §3.5): ring pages from allocPages (contiguous, zeroed, feature bits
   * set on both rings as Linux does), the ring GPADL, OPENCHANNEL, and the wait for a zero
   * status. Resolves with the GuestChannel.
   */
  async open<C = unknown>(offerOrRelid: Offer | number, o: OpenOptions = {}): Promise<GuestChannel<C>> {
    this.mustBeConnected();
    const offer = this.liveOffer(typeof offerOrRelid === 'number' ? offerOrRelid : offerOrRelid.relid);
    if (offer.state !== 'offered') throw new SgringError('InvalidArgument', `channel ${offer.relid} is ${offer.state}, not offered`);
    const txPages = o.txPages ?? 16;
    const rxPages = o.rxPages ?? 16;
    for (const p of [txPages, rxPages]) if (!Number.isInteger(p) || p < 2 || p > 0x7ffe) throw new SgringError('InvalidArgument', `ring of ${p} pages (header + at least one data page)`);
    offer.state = 'opening';
    try {
      const gpa = this.opts.allocPages(txPages + rxPages);
      let base: number;
      try {
        base = initRingPages(this.core, gpa, txPages, rxPages);
      } catch (e) {
        this.opts.allocPages.free?.(gpa);
        throw e;
      }
      // From here the ring GPADL owns the pages: whatever ends it gives them back (or leaks them).
      const gpadl = await this.registerGpadl(offer.relid, { gpa, bytes: (txPages + rxPages) * 4096 }, o.timeoutMs ?? this.opts.timeoutMs, gpa);
      const status = await this.requestOpen(offer.relid, gpadl, txPages, o);
      if (status !== 0) {
        await this.teardownGpadl(offer.relid, gpadl, o.timeoutMs).catch(() => {});
        throw new SgringError('HostRefused', `OPENCHANNEL ${offer.relid}: host status 0x${status.toString(16)}`, { status, relid: offer.relid });
      }
      const end = this.end;
      const ch = new GuestChannel<C>({
        core: this.core,
        out: VmbusRing.attach(this.core, base, txPages * 4096),
        in: VmbusRing.attach(this.core, base + txPages * 4096, rxPages * 4096),
        raise: () => end.signalChannel(offer.relid),
        bell: end.ownBell,
        pump: this.opts.pump,
      }, o.channel ?? {}, offer, { gpa, txPages, rxPages, gpadl }, (c, t) => this.close(c, t));
      offer.state = 'opened';
      this.channels.set(offer.relid, ch);
      return ch;
    } catch (e) {
      if (offer.state === 'opening') offer.state = 'offered';
      throw e;
    }
  }

  /** Closes `ch`: sub-channels first, CLOSECHANNEL, then the ring GPADL's teardown (spec §3.5). */
  async close(ch: GuestChannel<any>, timeoutMs = this.opts.timeoutMs): Promise<void> { // eslint-disable-line @typescript-eslint/no-explicit-any
    if (this.channels.get(ch.relid) !== ch) return;
    if (ch.offer.subChannelIndex === 0) {
      for (const sub of this.offers.subChannels(ch.offer)) {
        const s = this.channels.get(sub.relid);
        if (s) await this.close(s, timeoutMs);
      }
    }
    this.channels.delete(ch.relid);
    ch.offer.state = 'closing';
    const handlerError = ch.terminate('closed', new SgringError('ChannelClosed', `channel ${ch.relid} closed`, { relid: ch.relid }));
    this.post({ type: 'closeChannel', childRelid: ch.relid });
    try {
      await this.teardownGpadl(ch.relid, ch.rings.gpadl, timeoutMs);
    } finally {
      if (ch.offer.state === 'closing') ch.offer.state = 'offered';
    }
    if (handlerError !== null) throw handlerError;
  }

  /** UNLOAD (spec §3.2): closes every channel locally and waits for UNLOAD_RESPONSE. */
  async unload(timeoutMs = this.opts.timeoutMs): Promise<void> {
    this.mustBeConnected();
    for (const ch of [...this.channels.values()]) {
      this.channels.delete(ch.relid);
      ch.terminate('closed', new SgringError('ChannelClosed', 'VMBus unloaded'));
    }
    const w = this.waiters.add('unload', 0);
    this.post({ type: 'unload' });
    await this.wait(w, timeoutMs, 'UNLOAD');
    for (const handle of [...this.gpadls.keys()]) this.endGpadl(handle, false); // the host released every GPADL with the connection
    for (const o of this.offers.all()) this.offers.remove(o.relid);
    this.version = 0;
    this.offersComplete = false;
  }
}
