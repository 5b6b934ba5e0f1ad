// netvsc: the guest end of a VMBus network adapter (spec/vmbus.md §5.2–5.6). attach() opens the
// channel and brings the adapter up as Linux does: NVSP INIT (newest version first), NDIS config
// and version, the receive buffer and the send buffer (each a GPADL), RNDIS INITIALIZE, the MAC
// and link queries, the packet filter. Then frames move: send() copies a small frame into a free
// send-buffer section ("chimney") or describes a large one by page buffer; frames arrive in
// transfer-page packets whose ranges of the receive buffer each hold one RNDIS message, read with
// the hardened checks of wire.ts, handed to onReceive and completed so the host can reuse them.

import { SgringError } from '../../engine/errors';
import { optionNames } from '../../core/args';
import type { GuestBus } from '../../vmbus/guest-bus';
import type { GuestChannel } from '../../vmbus/guest-channel';
import type { Offer } from '../../vmbus/offers';
import type { FreeingPageAllocator } from '../../vmbus/guest-pages';
import type { ReceivedPacket } from '../../vmbus/received-packet';
import * as K from '../../generated/constants';
import { encodeGpaRanges, type Segment } from '../../core/gpa-range';
import type { StagePoint, TapRegistry } from '../../taps/registry';
import { ethernetEncoder } from '../../trace/ethernet';
import {
  decodeInitComplete, decodeRecvBufComplete, decodeRndis, decodeSendBufComplete, encodeNdisConfig, encodeNvsp, encodeNvspInit, encodeRndisInitialize,
  encodeRndisKeepalive, encodeRndisPkt, encodeRndisPktComplete, encodeRndisQuery, encodeRndisSet, encodeSendBuffer, ndisVersionFor, NO_SECTION, NVSP,
  NVSP_STATUS, NVSP_VERSION, OID, PACKET_FILTER, ppiBytes, readU32LE, RECV_BUFFER_ID, RNDIS_CHANNEL, RNDIS_MSG, RNDIS_PACKET_HEADER, RNDIS_STATUS,
  RndisPacketReader, writeRndisPacket, writeRndisPacketFast, writeU32LE, NET_TAP_STATUSES, flowHash, type PacketInfo, type RndisMessage,
} from './wire';

const PAGE = 4096;

export interface NetvscOptions {
  /** Guest pages for the receive and send buffers and the page-buffer staging (given back by detach()). */
  allocPages: FreeingPageAllocator;
  /** NVSP versions to try, newest first (default 6.1, 6, 5, 4, 2, 1: Linux's order). */
  versions?: number[];
  /** Receive buffer bytes (default 1 MiB; Linux uses 16 MiB). */
  recvBufferBytes?: number;
  /** Send buffer bytes (default 1 MiB, as Linux). */
  sendBufferBytes?: number;
  /** Frames up to this many bytes go through a send-buffer section (default: whatever fits a section); larger ones by page buffer. */
  chimneyMax?: number;
  /** Deadline of each initialisation step and control request, in ms (default 5000). */
  timeoutMs?: number;
  /**
   * Channels to spread frames over: asks the host for channels - 1 sub-channels (NVSP 5 and
   * later) and sends each flow on the channel the host's indirection table names (default 1).
   */
  channels?: number;
  /** Tap points netvsc:tx:submit (a frame before it is sent) and netvsc:rx:deliver (before onReceive); traces are the frames. */
  taps?: TapRegistry;
  /** Device instance name for taps and traces (default 'netvsc0'). */
  name?: string;
}

/** What one send holds until its completion: a send-buffer section (>= 0), or staging pages (-1 - their first page frame). */
type SendContext = number;

/** SEND_RNDIS_PKT of a data frame sent by page buffer. */
const PAGE_BUFFER_SEND = encodeRndisPkt(RNDIS_CHANNEL.data, NO_SECTION, 0);
/** RNDIS_PKT_COMPLETE for each NVSP status (completeId copies them out). */
const PKT_COMPLETE = Array.from({ length: 8 }, (_, status) => encodeRndisPktComplete(status));

export class NetvscDriver {
  version = 0;
  mac = new Uint8Array(6);
  link = false;
  mtu = 1500;
  /** Called with each frame received: a view valid only during the call (copy it to keep it). */
  onReceive: ((frame: Uint8Array, info: PacketInfo) => void) | null = null;
  /** Called when the host indicates a link change. */
  onLink: ((up: boolean) => void) | null = null;
  /** Called once after a refused send (false) when a completion has freed room: send again then (the queue's wake). */
  onWritable: (() => void) | null = null;
  private stopped = false;
  readonly counters = {
    txFrames: 0, txBytes: 0,
    /** Sends through a send-buffer section, and by page buffer. */
    txChimney: 0, txPageBuffer: 0,
    /** Sends refused: no free section or staging pages, or the ring full (flow control: send again later). */
    txBusy: 0,
    /** Send completions that reported a failure. */
    txFailed: 0,
    rxFrames: 0, rxBytes: 0,
    /** Receive packets and ranges refused: a wrong buffer id or NVSP type, a range outside the buffer or a section, an RNDIS message that fails a check. */
    rxBadPackets: 0, rxBadRanges: 0, rxBadRndis: 0,
    /** Frames longer than the MTU allows, dropped before anything is copied [H49]. */
    rxOversize: 0,
    /** RNDIS completions for no outstanding request, and status indications. */
    strayCompletions: 0, indications: 0,
    /** Sub-channel replies granting more than asked, and indirection tables refused [H47]. */
    badSubChannelReplies: 0, badIndirectionTables: 0,
  };
  private recvGpa = 0;
  private recvBytes = 0;
  private recvSection = 0;
  private recvGpadl = 0;
  private sendGpa = 0;
  private sendBytes = 0;
  private sendSection = 0;
  private sendGpadl = 0;
  /** Free send-buffer sections (a stack). */
  private freeSections: number[] = [];
  private readonly staging = new Map<number, number[]>();
  private nextRid = 1;
  private readonly pendingControl = new Map<number, (m: RndisMessage) => void>();
  private chimneyMax = 0;
  /** What the host's RNDIS INITIALIZE answer allows one send to carry: messages, their alignment, bytes. */
  private packMax = 1;
  private packAlign = 8;
  private packBytes = 0;
  private closed = false;
  /** The primary channel and the sub-channels that opened. */
  readonly channels: GuestChannel<SendContext>[] = [];
  /** The host's send indirection table (16 channel indices), once it sent one. */
  indirection: number[] | null = null;
  /** Page-buffer sends in flight: first page's address -> pages. */
  private readonly pageSends = new Map<number, number>();
  /** The SEND_RNDIS_PKT of a section send, rewritten per frame (the ring copies it). */
  private readonly nvsp = encodeRndisPkt(RNDIS_CHANNEL.data, 0, 0);

  readonly name: string;
  private readonly taps: TapRegistry | null;
  private readonly points: { txSubmit: StagePoint; rxDeliver: StagePoint } | null = null;
  private nextRequest = 1;

  private constructor(readonly bus: GuestBus, readonly channel: GuestChannel<SendContext>, private readonly opts: NetvscOptions) {
    this.name = opts.name ?? 'netvsc0';
    this.taps = opts.taps ?? null;
    if (this.taps) {
      const [txSubmit, rxDeliver] = this.taps.declare(this.name, [
        { name: 'netvsc:tx:submit', description: 'a frame the guest is about to send' },
        { name: 'netvsc:rx:deliver', description: 'a frame the guest received, before it is handed on' },
      ], { encoder: ethernetEncoder });
      this.points = { txSubmit: txSubmit!, rxDeliver: rxDeliver! };
    }
  }

  private adopt(ch: GuestChannel<SendContext>): void {
    ch.onPacket = (p) => this.packet(ch, p);
    ch.onCompletion = (ctx, err, p) => this.sent(ctx, err, p);
    this.channels.push(ch);
  }

  /** Runs a stage's taps on one frame: true to go on (after `wait` when one is returned). */
  private tapFrame(p: StagePoint, frame: Uint8Array): { go: boolean; wait: Promise<void> | null } {
    const o = this.taps!.run(p, {
      device: this.name, queue: 0, io: { kind: 'other', opcode: (frame[12]! << 8) | frame[13]! }, command: null, completion: { status: NVSP_STATUS.success, cdw0: 0 },
      data: [frame], statuses: NET_TAP_STATUSES, request: `f${this.nextRequest++}`, timeNs: BigInt(Math.round(performance.now() * 1e6)),
    });
    return { go: o.error === null && o.action === 'continue', wait: o.wait };
  }

  /** Opens the offer's channel and brings the adapter up. */
  static async attach(bus: GuestBus, offer: Offer, opts: NetvscOptions): Promise<NetvscDriver> {
    optionNames(opts, ['allocPages', 'versions', 'recvBufferBytes', 'sendBufferBytes', 'chimneyMax', 'timeoutMs', 'taps', 'name', 'channels'], 'NetvscDriver.attach');
    if (typeof opts?.allocPages?.free !== 'function') throw new SgringError('InvalidArgument', 'NetvscDriver.attach needs allocPages (a pageAllocator, which can free)');
    const ch = (await bus.open(offer)) as GuestChannel<SendContext>;
    const nic = new NetvscDriver(bus, ch, opts);
    nic.adopt(ch);
    try {
      await nic.init();
    } catch (e) {
      await nic.detach().catch(() => undefined);
      throw e;
    }
    return nic;
  }

  private get timeout(): number {
    return this.opts.timeoutMs ?? 5000;
  }

  private async init(): Promise<void> {
    for (const v of this.opts.versions ?? [NVSP_VERSION.v61, NVSP_VERSION.v6, NVSP_VERSION.v5, NVSP_VERSION.v4, NVSP_VERSION.v2, NVSP_VERSION.v1]) {
      if (decodeInitComplete(await this.channel.call(encodeNvspInit(v), this.timeout)).status === NVSP_STATUS.success) {
        this.version = v;
        break;
      }
    }
    if (this.version === 0) throw new SgringError('HostRefused', 'netvsp accepted none of the NVSP versions offered');
    if (this.version >= NVSP_VERSION.v2) this.channel.send(encodeNdisConfig(this.mtu, 1 << 3)); // 802.1Q
    const ndis = ndisVersionFor(this.version);
    this.channel.send(encodeNvsp(NVSP.sendNdisVersion, ndis.major, ndis.minor));

    this.recvBytes = this.opts.recvBufferBytes ?? 1 << 20;
    this.recvGpa = this.opts.allocPages(Math.ceil(this.recvBytes / PAGE));
    this.recvGpadl = await this.bus.createGpadl(this.channel.relid, { gpa: this.recvGpa, bytes: this.recvBytes });
    const rb = decodeRecvBufComplete(await this.channel.call(encodeSendBuffer(NVSP.sendRecvBuf, this.recvGpadl, RECV_BUFFER_ID), this.timeout), this.recvBytes);
    this.recvSection = rb.subAllocSize;

    this.sendBytes = this.opts.sendBufferBytes ?? 1 << 20;
    this.sendGpa = this.opts.allocPages(Math.ceil(this.sendBytes / PAGE));
    this.sendGpadl = await this.bus.createGpadl(this.channel.relid, { gpa: this.sendGpa, bytes: this.sendBytes });
    this.sendSection = decodeSendBufComplete(await this.channel.call(encodeSendBuffer(NVSP.sendSendBuf, this.sendGpadl, 0), this.timeout), this.sendBytes).sectionSize;
    const sections = Math.floor(this.sendBytes / this.sendSection);
    this.freeSections = Array.from({ length: sections }, (_, i) => sections - 1 - i);
    this.chimneyMax = Math.min(this.opts.chimneyMax ?? Infinity, this.sendSection - RNDIS_PACKET_HEADER - 64);

    const ini = await this.control(encodeRndisInitialize(this.rid()));
    if (ini.type !== RNDIS_MSG.initializeComplete || ini.status !== RNDIS_STATUS.success) throw new SgringError('HostRefused', 'RNDIS INITIALIZE failed');
    // How many RNDIS messages one send may carry, and their alignment (sendBurst packs frames so).
    this.packMax = Math.max(1, Math.min(ini.maxPacketsPerMessage, 64));
    this.packAlign = 2 ** Math.min(ini.alignmentFactor, 12);
    this.packBytes = Math.min(ini.maxTransferSize, this.sendSection);
    const mac = await this.query(OID.permanentAddress);
    if (mac.length < 6) throw new SgringError('HostRefused', `the permanent address is ${mac.length} bytes`);
    this.mac = mac.slice(0, 6);
    const link = await this.query(OID.genMediaConnectStatus);
    this.link = link.length >= 4 && readU32LE(link, 0) === 0;
    const mtu = await this.query(OID.genMaximumFrameSize).catch(() => null);
    if (mtu && mtu.length >= 4) this.mtu = readU32LE(mtu, 0);
    await this.set(OID.genCurrentPacketFilter, PACKET_FILTER.directed | PACKET_FILTER.multicast | PACKET_FILTER.broadcast);
    const want = (this.opts.channels ?? 1) - 1;
    if (want > 0 && this.version >= NVSP_VERSION.v5) await this.openSubChannels(want);
  }

  /**
   * SUBCHANNEL allocate, then open each sub-channel offered. A reply that fails, is short, or
   * grants more than asked [H47] leaves the adapter on its primary channel alone.
   */
  private async openSubChannels(want: number): Promise<void> {
    const r = await this.channel.call(encodeNvsp(NVSP.subchannel, 1, want), this.timeout);
    if (r.length < 12 || readU32LE(r, 0) !== NVSP.subchannel || readU32LE(r, 4) !== NVSP_STATUS.success) return;
    const n = readU32LE(r, 8);
    if (n > want) {
      this.counters.badSubChannelReplies++;
      return;
    }
    const deadline = performance.now() + this.timeout;
    const offers = () => this.bus.offers.subChannels(this.channel.offer);
    while (offers().length < n && performance.now() < deadline) {
      this.bus.poll();
      await this.bus.waitForHost(10);
    }
    for (const o of offers().slice(0, n)) this.adopt((await this.bus.open(o)) as GuestChannel<SendContext>);
  }

  /** The channel a frame goes out on: its flow's entry of the indirection table (the primary before there is one). */
  private laneFor(frame: Uint8Array): GuestChannel<SendContext> {
    const chs = this.channels;
    if (chs.length === 1) return this.channel;
    const h = flowHash(frame);
    const ch = chs[(this.indirection ? this.indirection[h & 15]! : h) % chs.length]!;
    return ch.state === 'open' ? ch : this.channel;
  }

  private rid(): number {
    const r = this.nextRid;
    this.nextRid = (this.nextRid + 1) >>> 0 || 1;
    return r;
  }

  /** Sends an RNDIS control message and waits for the completion with its request id. */
  private async control(message: Uint8Array): Promise<RndisMessage & { rid?: number }> {
    const rid = readU32LE(message, 8);
    let reply: RndisMessage | null = null;
    this.pendingControl.set(rid, (m) => (reply = m));
    try {
      const section = this.freeSections.pop();
      if (section === undefined) throw new SgringError('BufferTooSmall', 'no free send section for a control message');
      const core = this.bus.core;
      core.u8.set(message, core.guestBase + this.sendGpa + section * this.sendSection);
      if (this.channel.request(encodeRndisPkt(RNDIS_CHANNEL.control, section, message.length), section) === 0) {
        this.freeSections.push(section);
        throw new SgringError('BufferTooSmall', 'the ring is full');
      }
      const deadline = performance.now() + this.timeout;
      while (reply === null) {
        this.bus.poll();
        if (reply !== null) break;
        if (performance.now() > deadline) throw new SgringError('Timeout', `RNDIS request ${rid} got no completion within ${this.timeout} ms`);
        await this.bus.waitForHost(Math.min(100, this.timeout));
      }
      return reply;
    } finally {
      this.pendingControl.delete(rid);
    }
  }

  /** QUERY an OID: its value, or HostRefused with the RNDIS status. */
  async query(oid: number): Promise<Uint8Array> {
    const r = await this.control(encodeRndisQuery(this.rid(), oid));
    if (r.type !== RNDIS_MSG.queryComplete || r.status !== RNDIS_STATUS.success) {
      throw new SgringError('HostRefused', `QUERY of OID 0x${oid.toString(16)} failed (status 0x${('status' in r ? r.status : 0).toString(16)})`, { status: 'status' in r ? r.status : undefined });
    }
    return r.info.slice();
  }

  /** SET an OID to a u32 (or bytes). */
  async set(oid: number, value: number | Uint8Array): Promise<void> {
    const v = typeof value === 'number' ? new Uint8Array(4) : value;
    if (typeof value === 'number') writeU32LE(v, 0, value);
    const r = await this.control(encodeRndisSet(this.rid(), oid, v));
    if (r.type !== RNDIS_MSG.setComplete || r.status !== RNDIS_STATUS.success) {
      throw new SgringError('HostRefused', `SET of OID 0x${oid.toString(16)} failed (status 0x${('status' in r ? r.status : 0).toString(16)})`, { status: 'status' in r ? r.status : undefined });
    }
  }

  /** KEEPALIVE: resolves when the host answers. */
  async keepalive(): Promise<void> {
    const r = await this.control(encodeRndisKeepalive(this.rid()));
    if (r.type !== RNDIS_MSG.keepaliveComplete || r.status !== RNDIS_STATUS.success) throw new SgringError('HostRefused', 'KEEPALIVE failed');
  }

  /**
   * Sends one Ethernet frame: through a free send-buffer section when it is small enough, else by
   * page buffer (the RNDIS header and the frame in staging pages). False when it cannot go now (no
   * free section or staging, or the ring full: poll, then send again).
   */
  send(frame: Uint8Array | readonly Segment[], info?: PacketInfo): boolean {
    if (this.closed) throw new SgringError('ChannelClosed', 'the adapter is detached');
    if (Array.isArray(frame)) return this.sendSegments(frame as readonly Segment[], info);
    if (!(frame instanceof Uint8Array) || frame.length < 14 || frame.length > this.mtu + 18) {
      throw new SgringError('InvalidArgument', `a frame is 14..${this.mtu + 18} bytes (got ${(frame as Uint8Array)?.length})`);
    }
    const p = this.points?.txSubmit;
    if (p && p.taps !== null) {
      const own = (frame as Uint8Array).slice(); // the taps may corrupt it: never the caller's bytes
      const t = this.tapFrame(p, own);
      if (!t.go) return true; // dropped or ended by a tap: as if it had gone
      if (t.wait) {
        void t.wait.then(() => this.closed || this.sendFrame(own, info));
        return true;
      }
      return this.sendFrame(own, info);
    }
    return this.sendFrame(frame as Uint8Array, info);
  }

  /**
   * Sends frames in order, several RNDIS messages per send-buffer section as the host's RNDIS
   * INITIALIZE answer allows (max packets per message, their alignment, max transfer size): one
   * packet on the ring and one completion for a section of small frames instead of one each, as
   * Linux's netvsc aggregates a burst. A frame too large for a section goes alone by page buffer.
   * Returns how many frames went (fewer than given when a section, staging or ring room ran out:
   * poll, then send the rest); with a tx tap attached each frame goes as send() sends it.
   */
  sendBurst(frames: readonly Uint8Array[], info?: PacketInfo): number {
    if (this.closed) throw new SgringError('ChannelClosed', 'the adapter is detached');
    if (!Array.isArray(frames)) throw new SgringError('InvalidArgument', 'sendBurst takes an array of frames');
    const header = RNDIS_PACKET_HEADER + ppiBytes(info);
    const tapped = this.points !== null && this.points.txSubmit.taps !== null;
    let sent = 0;
    let section = -1; // the section being filled, its channel, the bytes and frames in it
    let lane: GuestChannel<SendContext> = this.channel;
    let used = 0;
    let packed = 0;
    let packedBytes = 0;
    const core = this.bus.core;
    for (let i = 0; i < frames.length; i++) {
      const frame = frames[i]!;
      if (!(frame instanceof Uint8Array) || frame.length < 14 || frame.length > this.mtu + 18) {
        throw new SgringError('InvalidArgument', `frames[${i}]: a frame is 14..${this.mtu + 18} bytes (got ${(frame as Uint8Array)?.length})`);
      }
      const bytes = header + frame.length;
      const to = this.laneFor(frame);
      const fits = section >= 0 && to === lane && packed < this.packMax && ((used + this.packAlign - 1) & -this.packAlign) + bytes <= this.packBytes;
      if (!fits && section >= 0) {
        if (!this.sendSectionOf(lane, section, used, packed, packedBytes)) return sent;
        sent += packed;
        section = -1;
      }
      if (tapped || frame.length > this.chimneyMax || bytes > this.packBytes) {
        if (!(tapped ? this.send(frame, info) : this.sendFrame(frame, info))) return sent;
        sent++;
        continue;
      }
      if (section < 0) {
        const s = this.freeSections.pop();
        if (s === undefined) {
          this.busy();
          return sent;
        }
        section = s;
        lane = to;
        used = packed = packedBytes = 0;
      }
      const at = (used + this.packAlign - 1) & -this.packAlign;
      writeRndisPacketFast(core.u8, core.u32, core.guestBase + this.sendGpa + section * this.sendSection + at, frame.length, info, frame);
      used = at + bytes;
      packed++;
      packedBytes += frame.length;
    }
    if (section >= 0) {
      if (!this.sendSectionOf(lane, section, used, packed, packedBytes)) return sent;
      sent += packed;
    }
    return sent;
  }

  /** Hands a filled section (`bytes` of RNDIS messages, `frames` frames of `frameBytes`) to the host; false (the section free again) when the ring is full. */
  private sendSectionOf(lane: GuestChannel<SendContext>, section: number, bytes: number, frames: number, frameBytes: number): boolean {
    const m = this.nvsp;
    writeU32LE(m, 8, section);
    writeU32LE(m, 12, bytes);
    if (lane.request(m, section) === 0) {
      this.freeSections.push(section);
      this.busy();
      return false;
    }
    this.counters.txChimney++;
    this.counters.txFrames += frames;
    this.counters.txBytes += frameBytes;
    return true;
  }

  private sendFrame(frame: Uint8Array, info?: PacketInfo): boolean {
    const core = this.bus.core;
    const bytes = RNDIS_PACKET_HEADER + ppiBytes(info) + frame.length;
    if (frame.length <= this.chimneyMax && bytes <= this.sendSection) {
      const section = this.freeSections.pop();
      if (section === undefined) return this.busy();
      writeRndisPacketFast(core.u8, core.u32, core.guestBase + this.sendGpa + section * this.sendSection, frame.length, info, frame);
      return this.sendSectionOf(this.laneFor(frame), section, bytes, 1, frame.length);
    }
    const pages = Math.ceil(bytes / PAGE);
    const gpa = this.staging.get(pages)?.pop() ?? this.opts.allocPages(pages);
    writeRndisPacket(core.u8, core.guestBase + gpa, frame.length, info, frame);
    const range = new Uint8Array(8 + 8 * pages);
    writeU32LE(range, 0, bytes);
    for (let i = 0; i < pages; i++) writeU32LE(range, 8 + 8 * i, gpa / PAGE + i);
    this.pageSends.set(gpa, pages);
    if (this.laneFor(frame).requestGpa({ rangeBytes: range, rangeCount: 1 }, PAGE_BUFFER_SEND, -1 - gpa / PAGE) === 0) {
      this.pageSends.delete(gpa);
      this.release(pages, gpa);
      return this.busy();
    }
    this.counters.txPageBuffer++;
    this.counters.txFrames++;
    this.counters.txBytes += frame.length;
    return true;
  }

  /**
   * A frame already in guest memory (its segments, guest-physical): the RNDIS header goes in a
   * staging page, and the packet's page buffer names the header, then each segment as it is.
   */
  private sendSegments(segments: readonly Segment[], info?: PacketInfo): boolean {
    let len = 0;
    for (const g of segments) len += g?.len;
    if (!(len >= 14 && len <= this.mtu + 18)) throw new SgringError('InvalidArgument', `the segments hold ${len} bytes; a frame is 14..${this.mtu + 18}`);
    const core = this.bus.core;
    const header = RNDIS_PACKET_HEADER + ppiBytes(info);
    const gpa = this.staging.get(1)?.pop() ?? this.opts.allocPages(1);
    writeRndisPacket(core.u8, core.guestBase + gpa, len, info); // its length covers the frame the other ranges carry
    let ranges: { bytes: Uint8Array; rangeCount: number };
    try {
      ranges = encodeGpaRanges(core, [{ addr: gpa, len: header }, ...segments], { perSegment: true });
    } catch (e) {
      this.release(1, gpa);
      throw e;
    }
    this.pageSends.set(gpa, 1);
    if (this.channel.requestGpa({ rangeBytes: ranges.bytes, rangeCount: ranges.rangeCount }, PAGE_BUFFER_SEND, -1 - gpa / PAGE) === 0) {
      this.pageSends.delete(gpa);
      this.release(1, gpa);
      return this.busy();
    }
    this.counters.txPageBuffer++;
    this.counters.txFrames++;
    this.counters.txBytes += len;
    return true;
  }

  private busy(): boolean {
    this.counters.txBusy++;
    this.stopped = true;
    return false;
  }

  private release(pages: number, gpa: number): void {
    const l = this.staging.get(pages);
    if (l) l.push(gpa);
    else this.staging.set(pages, [gpa]);
  }

  /** A send's completion (or its failure when the channel ended): its section or pages come back. */
  private sent(ctx: SendContext, err: SgringError | null, p: ReceivedPacket | null): void {
    if (ctx >= 0) this.freeSections.push(ctx);
    else {
      const gpa = (-1 - ctx) * PAGE;
      this.release(this.pageSends.get(gpa)!, gpa);
      this.pageSends.delete(gpa);
    }
    if (err === null && p !== null) {
      const u8 = p.core.u8; // read in place: no view per completion
      if (p.length < 8 || readU32LE(u8, p.offset) !== NVSP.sendRndisPktComplete || readU32LE(u8, p.offset + 4) !== NVSP_STATUS.success) this.counters.txFailed++;
    }
    if (this.stopped) {
      this.stopped = false;
      this.onWritable?.();
    }
  }

  /** Takes what the host sent: receive packets (frames, control completions, indications). */
  private packet(ch: GuestChannel<SendContext>, p: ReceivedPacket): void {
    if (p.type === K.PKT_TYPE_INBAND) return this.inband(p.payload());
    if (p.type !== K.PKT_TYPE_RXBUF || p.transferPages === null) return;
    const x = p.transferPages;
    const msg = p.payload();
    let status: number = NVSP_STATUS.success;
    if (x.pageSetId !== RECV_BUFFER_ID || msg.length < 4 || readU32LE(msg, 0) !== NVSP.sendRndisPkt) {
      this.counters.rxBadPackets++;
      status = NVSP_STATUS.fail;
    } else {
      const core = this.bus.core;
      const base = core.guestBase + this.recvGpa;
      const ranges = x.ranges;
      for (let i = 0; i < ranges.length; i++) {
        const r = ranges[i]!;
        // [H43] a range outside the buffer (checked without overflow) or larger than a section is skipped.
        if (r.byteOffset > this.recvBytes || r.byteCount > this.recvBytes - r.byteOffset || r.byteCount > this.recvSection || r.byteCount === 0) {
          this.counters.rxBadRanges++;
          status = NVSP_STATUS.fail;
          continue;
        }
        if (!this.range(core.u8, base + r.byteOffset, r.byteCount, Math.floor(r.byteOffset / this.recvSection))) status = NVSP_STATUS.fail;
      }
    }
    if (p.completionRequested && (p.transactionIdLo | p.transactionIdHi) !== 0) ch.completeId(p.transactionIdLo, p.transactionIdHi, PKT_COMPLETE[status]!);
  }

  /**
   * A host message on its own: the send indirection table is taken when it is whole [H47] — 16
   * entries, inside the message (the offset the host wrote, else right after the count and
   * offset fields, as Linux does for NVSP 6 hosts that get it wrong); VF association and the
   * rest are nothing to a synthetic-only adapter.
   */
  private inband(m: Uint8Array): void {
    if (m.length < 12 || readU32LE(m, 0) !== NVSP.sendIndirectionTable) return;
    const count = readU32LE(m, 4);
    let offset = readU32LE(m, 8);
    if (count !== 16) {
      this.counters.badIndirectionTables++;
      return;
    }
    if (offset > m.length - 64 || offset < 12) offset = 12;
    if (m.length < offset + 64) {
      this.counters.badIndirectionTables++;
      return;
    }
    this.indirection = Array.from({ length: 16 }, (_, i) => readU32LE(m, offset + 4 * i));
  }

  /**
   * The RNDIS message of the receive range [at, at + bytes) of `u8` (in receive section
   * `section`): a PACKET is checked in place, its frame handed on as a view kept per section
   * while its place and length repeat (onReceive's frame is valid during the call only); anything
   * else is decoded whole. False when it failed a check [H44]-[H46].
   */
  private range(u8: Uint8Array, at: number, bytes: number, section: number): boolean {
    const r = this.reader;
    try {
      if (!r.read(u8, at, bytes)) return this.message(u8.subarray(at, at + bytes));
    } catch (e) {
      if (!(e instanceof SgringError)) throw e;
      this.counters.rxBadRndis++;
      return false;
    }
    if (r.frameLen > this.mtu + 18) {
      this.counters.rxOversize++; // [H49]
      return true;
    }
    if (u8 !== this.rxViewsOf) {
      // Another view of core memory (it grew): the kept views see the old buffer. Comparing the
      // view objects costs less than comparing buffers per frame (`.buffer` is a slow getter).
      this.rxViews.length = 0;
      this.rxViewsOf = u8;
    }
    let frame = this.rxViews[section];
    if (frame === undefined || frame.byteOffset !== r.frameAt || frame.length !== r.frameLen) {
      frame = this.rxViews[section] = u8.subarray(r.frameAt, r.frameAt + r.frameLen);
    }
    this.deliver(frame, r.ppi);
    return true;
  }
  private readonly reader = new RndisPacketReader();
  /** The frame view last handed on from each receive section, and the view of core memory they were taken from. */
  private readonly rxViews: Uint8Array[] = [];
  private rxViewsOf: Uint8Array | null = null;

  /** A frame received (its size checked): counted, through the rx taps, to onReceive. */
  private deliver(frame: Uint8Array, ppi: PacketInfo): void {
    this.counters.rxFrames++;
    this.counters.rxBytes += frame.length;
    if (this.points !== null && this.points.rxDeliver.taps !== null) {
      const t = this.tapFrame(this.points.rxDeliver, frame);
      if (!t.go) return; // dropped by a tap
      if (t.wait) {
        const own = frame.slice(); // the receive section goes back to the host now
        void t.wait.then(() => this.onReceive?.(own, ppi));
        return;
      }
    }
    this.onReceive?.(frame, ppi);
  }

  /** One RNDIS message of a receive range that is not a PACKET; false when it failed a check [H44]-[H46]. */
  private message(b: Uint8Array): boolean {
    let m: RndisMessage;
    try {
      m = decodeRndis(b);
    } catch (e) {
      if (!(e instanceof SgringError)) throw e;
      this.counters.rxBadRndis++;
      return false;
    }
    switch (m.type) {
      case RNDIS_MSG.indicateStatus:
        this.counters.indications++;
        if (m.status === RNDIS_STATUS.mediaConnect || m.status === RNDIS_STATUS.mediaDisconnect) {
          this.link = m.status === RNDIS_STATUS.mediaConnect;
          this.onLink?.(this.link);
        }
        return true;
      case RNDIS_MSG.initializeComplete:
      case RNDIS_MSG.queryComplete:
      case RNDIS_MSG.setComplete:
      case RNDIS_MSG.keepaliveComplete: {
        const done = this.pendingControl.get(m.rid);
        if (!done) {
          this.counters.strayCompletions++;
          return true;
        }
        done(m.type === RNDIS_MSG.queryComplete ? { ...m, info: m.info.slice() } : m);
        return true;
      }
      default:
        this.counters.rxBadRndis++;
        return false;
    }
  }

  /** Polls the bus (this adapter's channel among the others): frames go to onReceive, completions free their buffers. */
  poll(): number {
    return this.bus.poll();
  }

  /** Revokes the buffers, closes the channel and gives every page back. */
  async detach(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const open = this.channel.state === 'open';
    if (open && this.recvGpadl) this.channel.send(encodeNvsp(NVSP.revokeRecvBuf, RECV_BUFFER_ID));
    if (open && this.sendGpadl) this.channel.send(encodeNvsp(NVSP.revokeSendBuf, 0));
    // Linux's order: revoke, tear the buffers' GPADLs down, then close the channel.
    for (const [gpadl, gpa] of [[this.recvGpadl, this.recvGpa], [this.sendGpadl, this.sendGpa]] as const) {
      if (gpadl && open) await this.bus.teardownGpadl(this.channel.relid, gpadl).catch(() => undefined);
      if (gpa) this.opts.allocPages.free(gpa);
    }
    if (this.channel.state === 'open') await this.channel.close();
    for (const l of this.staging.values()) for (const gpa of l) this.opts.allocPages.free(gpa);
    this.staging.clear();
    this.taps?.undeclare(this.name);
  }
}
