// The host end of the VMBus control plane (spec/vmbus.md §3): answers version negotiation,
// sends offers, builds GPADLs, opens channels on the guest's ring GPADL, closes and rescinds
// them. The guest is hostile (side D): every message is decoded from a private copy, dropped
// and counted when malformed (checklist 17), and every field is checked against the host's own
// tables before use — relids, GPADL handles, page counts, ring layout (checklist 18).
//
// Opening maps the ring GPADL through the host's DmaDomain (the device never touches guest RAM
// directly) and attaches the two VmbusRing endpoints at the translated offsets. The rings must
// lie in contiguous guest pages; a scattered ring GPADL fails the open with a status, as does
// any other layout problem (P7: the open fails, the bus goes on).

import * as K from '../generated/constants';
import type { Core } from '../engine/core';
import { SgringError } from '../engine/errors';
import { VmbusRing } from '../core/vmbus-ring';
import type { DmaDomain } from '../memory/dma-domain';
import { encodeMessage, type ChannelMessage, type OpenChannelMessage } from './messages';
import type { MessageEnd, MessageTransport } from './transport';
import { GpadlTable, pfnsContiguous, type Gpadl, type GpadlLimits } from './gpadl';
import { HostChannel, type HostOffer, type HostOfferSpec } from './host-channel';
import { classGuid, instanceGuid, normalizeGuid } from './guid';
import { pollBus, receivedMessage, spinWhile, VMBUS_VERSIONS, type DropCounters } from './bus-common';

export type { HostOffer, HostOfferSpec } from './host-channel';

export interface HostBusOptions extends GpadlLimits {
  /** How the device side reaches guest memory. */
  dma: DmaDomain;
  /** Versions this host accepts (default: all of spec §3.3). */
  versions?: readonly number[];
  /** Messages queued for the guest beyond the transport's slots (default 4096); more are dropped and counted. */
  maxOutbox?: number;
}

const PAGE = 4096;

export class HostBus {
  readonly core: Core;
  readonly end: MessageEnd;
  readonly gpadls: GpadlTable;
  readonly channels = new Map<number, HostChannel<any>>(); // eslint-disable-line @typescript-eslint/no-explicit-any
  readonly offers = new Map<number, HostOffer>();
  /** Negotiated version (0 until the guest made contact). */
  version = 0;
  readonly dropped: DropCounters = { tooShort: 0, tooLong: 0, unknownType: 0, wrongDirection: 0, outOfState: 0, unmatched: 0 };
  /** Guest messages handled, by type; opens refused, by reason; outbox overflow. */
  readonly received: Record<string, number> = {};
  readonly openRefused: Record<string, number> = {};
  outboxDropped = 0;
  private readonly dma: DmaDomain;
  private readonly versions: readonly number[];
  private readonly maxOutbox: number;
  private readonly outbox: Uint8Array[] = [];
  private offersRequested = false;

  constructor(transport: MessageTransport, opts: HostBusOptions) {
    if (!opts?.dma) throw new SgringError('InvalidArgument', 'HostBus needs a DmaDomain (opts.dma)');
    this.core = transport.core;
    this.end = transport.end('host');
    this.dma = opts.dma;
    this.versions = opts.versions ?? VMBUS_VERSIONS;
    this.maxOutbox = opts.maxOutbox ?? 4096;
    this.gpadls = new GpadlTable(opts);
  }

  // ---- offers ----

  /** Offers a channel; sent at once when the guest already asked for offers (hot add). */
  offer(spec: HostOfferSpec): HostOffer {
    let relid = spec.relid;
    if (relid === undefined) for (relid = 1; this.offers.has(relid); relid++);
    if (!Number.isInteger(relid) || relid < 0 || relid >= K.VMBUS_MAX_RELIDS) throw new SgringError('RelidOutOfRange', `relid ${relid}`);
    if (this.offers.has(relid)) throw new SgringError('DuplicateOffer', `relid ${relid} is in use`);
    const o: HostOffer = {
      relid, classId: classGuid(spec.classId), instanceId: spec.instanceId ? normalizeGuid(spec.instanceId) : instanceGuid(relid),
      subChannelIndex: spec.subChannelIndex ?? 0, flags: spec.flags ?? 0, mmioMegabytes: spec.mmioMegabytes ?? 0,
      userDefined: spec.userDefined ?? new Uint8Array(K.OFFER_USER_DEFINED_SIZE), state: 'offered', spec,
    };
    this.offers.set(relid, o);
    if (this.offersRequested) this.sendOffer(o);
    return o;
  }

  /** Offers `count` sub-channels of an offered primary: same GUID pair, indices 1..count (spec §3.7). */
  offerSubChannels(primaryRelid: number, count: number, spec: Partial<HostOfferSpec> = {}): HostOffer[] {
    const p = this.offers.get(primaryRelid);
    if (!p || p.subChannelIndex !== 0) throw new SgringError('InvalidArgument', `relid ${primaryRelid} is not an offered primary channel`);
    let next = 1;
    for (const o of this.offers.values()) if (o.classId === p.classId && o.instanceId === p.instanceId) next = Math.max(next, o.subChannelIndex + 1);
    return Array.from({ length: count }, (_, i) => this.offer({ ...p.spec, ...spec, relid: undefined, instanceId: p.instanceId, subChannelIndex: next + i }));
  }

  /** Rescinds a channel (spec §3.5): the device stops at once; the relid is free after RELID_RELEASED. */
  rescind(relid: number): void {
    const o = this.offers.get(relid);
    if (!o || o.state === 'rescinding') throw new SgringError('InvalidArgument', `relid ${relid} is not offered`);
    this.closeChannel(relid, 'rescinded');
    o.state = 'rescinding';
    if (this.offersRequested) this.post({ type: 'rescind', childRelid: relid });
    else this.release(relid);
  }

  private sendOffer(o: HostOffer): void {
    this.post({
      type: 'offer', classId: o.classId, instanceId: o.instanceId, flags: o.flags, mmioMegabytes: o.mmioMegabytes,
      userDefined: o.userDefined, subChannelIndex: o.subChannelIndex, childRelid: o.relid, monitorId: 0xff,
      monitorAllocated: false, dedicatedInterrupt: false, connectionId: o.relid,
    });
  }

  private release(relid: number): void {
    this.offers.delete(relid);
    this.gpadls.dropRelid(relid);
  }

  // ---- the loop ----

  private post(m: ChannelMessage): void {
    if (this.outbox.length >= this.maxOutbox) {
      this.outboxDropped++;
      return;
    }
    this.outbox.push(encodeMessage(m));
    this.flushOutbox();
  }

  private flushOutbox(): void {
    while (this.outbox.length > 0 && this.end.post(this.outbox[0]!, 0)) this.outbox.shift();
  }

  /**
   * Handles waiting control messages (at most one queue's worth, P4) and polls every open
   * channel that has work. Returns the messages and packets handled.
   */
  poll(): number {
    return pollBus(this.end, () => this.flushOutbox(), (slot) => this.handle(slot), this.channels.values());
  }

  /**
   * Serves until `until()` is true (for a host in its own worker): polls, and sleeps on the host
   * doorbell once `spinPolls` polls in a row found nothing — woken only by the guest's rings.
   * Spinning a little before sleeping saves the futex round trip when the guest answers fast
   * (DPDK and NAPI poll for the same reason); 0 sleeps at the first empty poll. Throws Timeout
   * when nothing arrives for `idleMs`.
   */
  serve(until: () => boolean, idleMs = 5000, spinPolls = 0): void {
    const bell = this.end.ownBell;
    let empty = 0;
    while (!until()) {
      const seen = bell.value;
      if (this.poll() > 0) {
        empty = 0;
        continue;
      }
      if (until() || ++empty <= spinPolls) continue;
      empty = 0;
      if (!bell.waitUntil(() => bell.value !== seen, idleMs)) throw new SgringError('Timeout', `host: no guest activity for ${idleMs} ms`);
    }
  }

  /**
   * serve() for devices that answer asynchronously (a file-backed disk, a tap that delays): it
   * sleeps with a non-blocking wait, so their promises settle and their answers go out meanwhile.
   * Like serve(), it first watches the doorbell for `spinMicros` before sleeping (the wake-up of a
   * non-blocking wait costs a trip through the event loop). Throws Timeout when nothing arrives
   * for `idleMs`.
   */
  async serveAsync(until: () => boolean, idleMs = 5000, spinMicros = 50): Promise<void> {
    const bell = this.end.ownBell;
    while (!until()) {
      const seen = bell.value;
      if (this.poll() > 0) {
        await Promise.resolve(); // a turn for the answers of this batch that are promises
        continue;
      }
      if (until()) break;
      if (spinWhile(() => bell.value === seen, spinMicros)) continue;
      if (!(await bell.waitUntilAsync(() => bell.value !== seen, idleMs))) throw new SgringError('Timeout', `host: no guest activity for ${idleMs} ms`);
    }
  }

  private handle(slot: Uint8Array): void {
    const m = receivedMessage(slot, 'g2h', this.dropped);
    if (m === null) return;
    if (this.version === 0 && m.type !== 'initiateContact') {
      this.dropped.outOfState++;
      return;
    }
    this.received[m.type] = (this.received[m.type] ?? 0) + 1;
    switch (m.type) {
      case 'initiateContact': {
        const ok = this.versions.includes(m.version);
        if (ok) this.version = m.version;
        this.post({ type: 'versionResponse', versionSupported: ok, connectionState: 0, msgConnId: ok && m.version >= K.VMBUS_VERSION_WIN10_V5 ? K.VMBUS_MESSAGE_CONNECTION_ID_4 : 0 });
        break;
      }
      case 'requestOffers':
        this.offersRequested = true;
        for (const o of [...this.offers.values()].sort((a, b) => a.relid - b.relid)) if (o.state !== 'rescinding') this.sendOffer(o);
        this.post({ type: 'allOffersDelivered' });
        break;
      case 'gpadlHeader': this.answerGpadl(this.gpadls.header(m, this.offers.get(m.childRelid)?.state === 'offered' || this.offers.get(m.childRelid)?.state === 'opened')); break;
      case 'gpadlBody': this.answerGpadl(this.gpadls.body(m)); break;
      case 'gpadlTeardown': {
        const r = this.gpadls.teardown(m.childRelid, m.gpadl);
        if (r.ok) this.post({ type: 'gpadlTorndown', gpadl: m.gpadl });
        else this.dropped.unmatched++;
        break;
      }
      case 'openChannel': this.open(m); break;
      case 'closeChannel':
        if (!this.closeChannel(m.childRelid, 'closed')) this.dropped.unmatched++;
        break;
      case 'relidReleased':
        if (this.offers.get(m.childRelid)?.state === 'rescinding') this.release(m.childRelid);
        else this.dropped.unmatched++;
        break;
      case 'unload':
        for (const relid of [...this.channels.keys()]) this.closeChannel(relid, 'closed');
        for (const o of [...this.offers.values()]) if (o.state === 'rescinding') this.release(o.relid);
        for (const o of this.offers.values()) this.gpadls.dropRelid(o.relid);
        this.offersRequested = false;
        this.version = 0;
        this.post({ type: 'unloadResponse' });
        break;
      case 'modifyChannel':
        // Acknowledged only from VMBus 5.3 (spec §3.8); the target VP has no meaning here.
        if (this.version >= K.VMBUS_VERSION_WIN10_V5_3) {
          this.post({ type: 'modifyChannelResponse', childRelid: m.childRelid, status: this.channels.has(m.childRelid) ? 0 : K.VMBUS_STATUS_INVALID_PARAMETER });
        }
        break;
    }
  }

  private answerGpadl(v: ReturnType<GpadlTable['header']>): void {
    if (v.reply === 'created') this.post({ type: 'gpadlCreated', childRelid: v.relid, gpadl: v.handle, status: v.status });
    else if (v.reply === 'ignore') this.dropped.unmatched++;
  }

  /** A ring GPADL handle that names a created GPADL of this channel, or null. */
  gpadl(handle: number): Gpadl | undefined {
    return this.gpadls.get(handle);
  }

  private refuse(m: OpenChannelMessage, why: string, status: number): void {
    this.openRefused[why] = (this.openRefused[why] ?? 0) + 1;
    this.post({ type: 'openResult', childRelid: m.childRelid, openId: m.openId, status });
  }

  /** OPENCHANNEL (spec §3.5): check everything the guest claims, map the rings, answer. */
  private open(m: OpenChannelMessage): void {
    const o = this.offers.get(m.childRelid);
    if (o?.state === 'rescinding') {
      this.openRefused.rescinded = (this.openRefused.rescinded ?? 0) + 1; // a revoked channel's open is never answered (spec §3.5)
      return;
    }
    if (!o) return this.refuse(m, 'unknownRelid', K.VMBUS_STATUS_INVALID_PARAMETER);
    if (o.state !== 'offered') return this.refuse(m, 'alreadyOpen', K.VMBUS_STATUS_INVALID_DEVICE_STATE);
    const g = this.gpadls.get(m.ringGpadl);
    if (!g || g.state !== 'created' || g.relid !== m.childRelid) return this.refuse(m, 'unknownGpadl', K.VMBUS_STATUS_INVALID_PARAMETER);
    if (g.inUse) return this.refuse(m, 'gpadlInUse', K.VMBUS_STATUS_INVALID_PARAMETER);
    const pages = g.pfns.length;
    const d = m.downstreamPageOffset;
    if (g.byteOffset !== 0 || g.byteCount !== pages * PAGE || d < 2 || d > pages - 2) return this.refuse(m, 'ringLayout', K.VMBUS_STATUS_INVALID_PARAMETER);
    if (!pfnsContiguous(g.pfns)) return this.refuse(m, 'notContiguous', K.VMBUS_STATUS_INVALID_PARAMETER);
    let tx: VmbusRing | undefined;
    let rx: VmbusRing;
    try {
      const gpa = g.pfns[0]! * PAGE;
      const off = this.dma.translate(gpa, pages * PAGE, 'read');
      if (this.dma.translate(gpa, pages * PAGE, 'write') !== off) throw new SgringError('OutsideGuestRam', 'read and write mappings differ');
      tx = VmbusRing.attach(this.core, off, d * PAGE);
      rx = VmbusRing.attach(this.core, off + d * PAGE, (pages - d) * PAGE);
    } catch (e) {
      tx?.dispose();
      if (!(e instanceof SgringError)) throw e;
      return this.refuse(m, e.code, K.VMBUS_STATUS_UNSUCCESSFUL);
    }
    const end = this.end;
    const relid = o.relid;
    const ch = new HostChannel({ core: this.core, out: rx, in: tx, raise: () => end.signalChannel(relid), bell: end.ownBell }, o.spec.channel ?? {}, o, g.handle, this.gpadls);
    g.inUse = true;
    o.state = 'opened';
    this.channels.set(relid, ch);
    try {
      o.spec.onOpen?.(ch);
    } finally {
      this.post({ type: 'openResult', childRelid: m.childRelid, openId: m.openId, status: K.VMBUS_STATUS_SUCCESS });
    }
  }

  /** Ends an open channel; false when it was not open. */
  private closeChannel(relid: number, reason: 'closed' | 'rescinded'): boolean {
    const ch = this.channels.get(relid);
    if (!ch) return false;
    this.channels.delete(relid);
    const g = this.gpadls.get(ch.ringGpadl);
    if (g) g.inUse = false;
    const o = this.offers.get(relid);
    if (o && o.state === 'opened') o.state = 'offered';
    const err = ch.terminate(reason, new SgringError(reason === 'closed' ? 'ChannelClosed' : 'ChannelRescinded', `channel ${relid} ${reason}`, { relid }));
    if (err !== null) throw err;
    return true;
  }
}
