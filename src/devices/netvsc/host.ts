// netvsp: the host end of a VMBus network adapter (spec/vmbus.md §5). It answers NVSP INIT with
// the version it shares with the guest, takes the guest's receive buffer (carved into sections
// it fills with RNDIS messages and hands over in transfer-page packets) and send buffer (the
// sections the guest writes small frames into), runs the RNDIS control protocol (INITIALIZE, the
// OIDs a Hyper-V host answers, KEEPALIVE, RESET) and moves frames: what the guest sends goes to
// its switch port, what the switch forwards goes into the guest's receive buffer. All guest
// memory is reached through the device's DMA domain; every field the guest wrote is checked
// before it is used, and a request that fails a check is answered with a failure and counted.

import { SgringError } from '../../engine/errors';
import { optionNames } from '../../core/args';
import { translateQuick, type DmaDomain } from '../../memory/dma-domain';
import type { HostChannel, HostOfferSpec } from '../../vmbus/host-channel';
import type { HostBus } from '../../vmbus/host-bus';
import type { ReceivedPacket } from '../../vmbus/received-packet';
import type { TransferPages } from '../../vmbus/packets';
import type { Guid } from '../../vmbus/guid';
import type { SwitchPort, VirtualSwitch } from './switch';
import type { StagePoint, TapRegistry } from '../../taps/registry';
import { ethernetEncoder } from '../../trace/ethernet';
import {
  decodeNvspInit, decodeRndis, decodeSendBuffer, encodeInitComplete, encodeNvsp, encodeRecvBufComplete, encodeRndisIndicateStatus,
  encodeRndisInitializeComplete, encodeRndisKeepaliveComplete, encodeRndisPktComplete, encodeRndisQueryComplete, encodeRndisResetComplete,
  encodeRndisSetComplete, encodeSendBufComplete, NO_SECTION, NVSP, NVSP_STATUS, NVSP_VERSION, OID, readU32LE, RECV_BUFFER_ID, RNDIS_CHANNEL, RNDIS_MSG,
  RNDIS_PACKET_HEADER, RNDIS_STATUS, RndisPacketReader, writeRndisPacketFast, writeU32LE, encodeRndisPacket, flowHash, NET_TAP_STATUSES, type RndisMessage,
} from './wire';

const PAGE = 4096;
const EMPTY = new Uint8Array(0);
/** RNDIS_PKT_COMPLETE for each NVSP status (completeId copies them out). */
const PKT_COMPLETE = Array.from({ length: 8 }, (_, status) => encodeRndisPktComplete(status));

/** A buffer the guest registered with a GPADL, read and written through the DMA domain. */
class GuestBuffer {
  /** Physically contiguous runs: [buffer offset, guest-physical address, bytes]. */
  private readonly runs: [number, number, number][] = [];

  constructor(private readonly dma: DmaDomain, pfns: readonly number[], byteOffset: number, readonly bytes: number) {
    for (let i = 0; i < pfns.length; i++) {
      const off = i === 0 ? 0 : i * PAGE - byteOffset;
      const gpa = pfns[i]! * PAGE + (i === 0 ? byteOffset : 0);
      const len = Math.min((i === 0 ? PAGE - byteOffset : PAGE), bytes - off);
      const last = this.runs[this.runs.length - 1];
      if (last && last[1] + last[2] === gpa) last[2] += len;
      else this.runs.push([off, gpa, len]);
    }
  }

  /** Calls fn(gpa, bufferOffset, bytes) for each contiguous piece of [off, off + len). */
  private each(off: number, len: number, fn: (gpa: number, at: number, n: number) => void): void {
    for (const [start, gpa, n] of this.runs) {
      if (off >= start + n || len === 0) continue;
      const from = Math.max(off, start);
      const take = Math.min(start + n, off + len) - from;
      if (take <= 0) continue;
      fn(gpa + (from - start), from - off, take);
    }
  }

  /**
   * Core-memory offset of [off, off + len) when it lies in one contiguous run, checked by the DMA
   * domain for `access` now (never cached: a strict domain may unmap it); -1 when it spans runs.
   */
  at(off: number, len: number, access: 'read' | 'write'): number {
    for (let i = 0; i < this.runs.length; i++) {
      const r = this.runs[i]!; // [start, gpa, bytes]; indexed, as destructuring would allocate an iterator
      if (off >= r[0]! && off + len <= r[0]! + r[2]!) return translateQuick(this.dma, r[1]! + (off - r[0]!), len, access);
    }
    return -1;
  }

  /** A private copy of [off, off + len) (the caller checked the range). */
  read(off: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    this.each(off, len, (gpa, at, n) => this.dma.read(gpa, n, out.subarray(at, at + n)));
    return out;
  }

  write(off: number, data: Uint8Array): void {
    this.each(off, data.length, (gpa, at, n) => this.dma.write(gpa, data.subarray(at, at + n)));
  }
}

export interface NetvspOptions {
  /** The device's view of guest memory (the same domain the HostBus uses). */
  dma: DmaDomain;
  /** The adapter's MAC address: 6 bytes or "00:15:5d:..". */
  mac: Uint8Array | string;
  /** The switch the adapter's port is on (none: frames the guest sends are counted and dropped). */
  switch?: VirtualSwitch;
  instanceId?: Guid;
  /** NVSP versions accepted (default 1, 2, 4, 5, 6, 6.1). */
  versions?: number[];
  /** Receive-buffer section size offered (default 1728: a 1514-byte frame with its RNDIS header and PPIs). */
  recvSectionBytes?: number;
  /** Send-buffer section size offered (default 6144, as Hyper-V). */
  sendSectionBytes?: number;
  /** Link speed reported, in bits per second (default 10 Gb/s). */
  linkSpeed?: number;
  /** MTU (default 1500). */
  mtu?: number;
  /** Device instance name (default 'netvsp0'): the switch port's name. */
  name?: string;
  /** Tap points netvsc:tx:decode|execute, netvsc:rx:post, netvsc:ctl:decode; traces are the frames. */
  taps?: TapRegistry;
  /** Sub-channels (vRSS): the bus to offer them on and how many at most (NVSP 5 and later). */
  subChannels?: { bus: HostBus; max: number };
}



type Step = 'go' | 'drop' | 'complete';

interface NicState {
  version: number;
  recv: GuestBuffer | null;
  recvSection: number;
  /** Free receive sections (a stack of indices). */
  free: number[];
  send: GuestBuffer | null;
  sendSection: number;
  packetFilter: number;
}

/** One open channel of the adapter (the primary, then sub-channels) with its own receive queue. */
interface Lane {
  ch: HostChannel<RxBatch>;
  /** Frames filled since the last flush: one transfer-page packet carries them all. */
  batch: RxBatch;
  /** Transfer-page packets that found the ring full: sent in order once it drains. */
  backlog: RxBatch[];
  /** Flushes the lane at the end of a microtask turn (one function per lane, not one per batch). */
  flushSoon: () => void;
}

/** Receive sections one transfer-page packet carries at most. */
const BATCH_MAX = 64;

/**
 * The receive sections of one transfer-page packet, [section, bytes] pairs: the packet's
 * context until its completion gives the sections back; then it serves a later packet (a typed
 * array and a count, so refilling it allocates nothing).
 */
class RxBatch {
  n = 0;
  readonly pairs = new Uint32Array(2 * BATCH_MAX);
  add(section: number, bytes: number): void {
    this.pairs[2 * this.n] = section;
    this.pairs[2 * this.n + 1] = bytes;
    this.n++;
  }
}
/** Frame views netvsp keeps for reuse: one per message position of a send. */
const TX_VIEWS = 64;

/** Parses "00:15:5d:01:02:03" (or takes 6 bytes). */
export function parseMac(mac: Uint8Array | string): Uint8Array {
  if (mac instanceof Uint8Array && mac.length === 6) return mac.slice();
  const m = typeof mac === 'string' ? /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(mac) : null;
  if (!m) throw new SgringError('InvalidArgument', `MAC ${String(mac)} is not 6 bytes or "xx:xx:xx:xx:xx:xx"`);
  return Uint8Array.from(m.slice(1).map((h) => parseInt(h, 16)));
}

const u32 = (v: number) => {
  const b = new Uint8Array(4);
  writeU32LE(b, 0, v);
  return b;
};

export class NetvspDevice {
  readonly mac: Uint8Array;
  readonly name: string;
  readonly counters = {
    /** Frames the guest sent, and the bytes. */
    txFrames: 0, txBytes: 0,
    /** Frames put into the guest's receive buffer, and the bytes. */
    rxFrames: 0, rxBytes: 0,
    /** Frames for the guest dropped: no free receive section, no receive buffer yet, or the link down. */
    rxNoSection: 0, rxNotReady: 0, rxLinkDown: 0,
    /** Frames that waited in their receive section for ring space (none lost). */
    rxQueued: 0,
    /** RNDIS messages that failed a check (the request is answered INVALID_RNDIS_PACKET). */
    badRndis: 0,
    /** NVSP requests refused: a bad buffer handle, section index or size, a message too short. */
    badRequests: 0,
    /** RNDIS control messages answered, and OIDs refused as unsupported. */
    control: 0, unsupportedOids: 0,
    /** In-band NVSP types this host does not know. */
    unknownMessages: 0,
  };
  private readonly dma: DmaDomain;
  private readonly port: SwitchPort | null;
  private readonly versions: number[];
  private readonly recvSectionBytes: number;
  private readonly sendSectionBytes: number;
  private readonly linkSpeed: number;
  private readonly mtu: number;
  private readonly instanceId: Guid | undefined;
  /** The open channels: the primary first, then the sub-channels as they open. */
  private readonly lanes: Lane[] = [];
  private st: NicState | null = null;
  private readonly subChannels: { bus: HostBus; max: number } | null;
  private offeredSubChannels = 0;
  private linkUp = true;
  private readonly taps: TapRegistry | null;
  private points: { txDecode: StagePoint; txExecute: StagePoint; rxPost: StagePoint; ctlDecode: StagePoint } | null = null;
  private readonly sw: VirtualSwitch | null;
  private nextRequest = 1;
  /** The send section being read (frames are handed on before the next one is read). */
  /** The NVSP message of every receive packet. */
  private readonly rxMessage = encodeNvsp(NVSP.sendRndisPkt, RNDIS_CHANNEL.data, NO_SECTION, 0);

  constructor(opts: NetvspOptions) {
    optionNames(opts, ['dma', 'mac', 'switch', 'instanceId', 'versions', 'recvSectionBytes', 'sendSectionBytes', 'linkSpeed', 'mtu', 'name', 'taps', 'subChannels'], 'NetvspDevice');
    if (opts.subChannels !== undefined && (!opts.subChannels.bus || !Number.isInteger(opts.subChannels.max) || opts.subChannels.max < 0 || opts.subChannels.max > 63)) {
      throw new SgringError('InvalidArgument', 'subChannels is { bus: HostBus, max: 0..63 }');
    }
    this.subChannels = opts.subChannels ?? null;
    if (!opts?.dma) throw new SgringError('InvalidArgument', 'NetvspDevice needs the DMA domain (opts.dma)');
    this.dma = opts.dma;
    this.mac = parseMac(opts.mac);
    this.name = opts.name ?? 'netvsp0';
    this.versions = opts.versions ?? Object.values(NVSP_VERSION);
    this.recvSectionBytes = opts.recvSectionBytes ?? 1728;
    this.sendSectionBytes = opts.sendSectionBytes ?? 6144;
    this.linkSpeed = opts.linkSpeed ?? 10e9;
    this.mtu = opts.mtu ?? 1500;
    this.instanceId = opts.instanceId;
    this.sw = opts.switch ?? null;
    this.port = opts.switch ? opts.switch.addPort(this.name, (f) => this.deliver(f), () => this.flush()) : null;
    this.taps = opts.taps ?? null;
    if (this.taps) {
      const [txDecode, txExecute, rxPost, ctlDecode] = this.taps.declare(this.name, [
        { name: 'netvsc:tx:decode', description: 'a frame the guest sent, as the host read it from its send section or page buffer' },
        { name: 'netvsc:tx:execute', description: 'the frame on its way out of the adapter to its switch port' },
        { name: 'netvsc:rx:post', description: 'a frame from the switch on its way into the guest\'s receive buffer' },
        { name: 'netvsc:ctl:decode', description: 'an RNDIS control message the guest sent (INITIALIZE, QUERY, SET, KEEPALIVE)' },
      ], { encoder: ethernetEncoder });
      this.points = { txDecode: txDecode!, txExecute: txExecute!, rxPost: rxPost!, ctlDecode: ctlDecode! };
    }
  }

  /**
   * Runs a stage's taps on one frame (or control message): 'go', 'drop', 'complete' (the taps
   * ended it: completion.status says how), or a promise of one when a tap delays it.
   */
  private stage(p: StagePoint, frame: Uint8Array, completion: { status: number; cdw0: number }, request: string): Step | Promise<Step> {
    const o = this.taps!.run(p, {
      device: this.name, queue: 0, io: { kind: 'other', opcode: frame.length >= 14 ? (frame[12]! << 8) | frame[13]! : 0 }, command: null, completion,
      data: [frame], statuses: NET_TAP_STATUSES, request, timeNs: BigInt(Math.round(performance.now() * 1e6)),
    });
    const step: Step = o.error ? 'drop' : o.action === 'continue' ? 'go' : o.action;
    return o.wait ? o.wait.then(() => step) : step;
  }

  /**
   * A frame the guest sent (its own copy), through tx:decode and tx:execute from stage `from` on,
   * to the switch: synchronously unless a tap delays it.
   */
  private txTapped(frame: Uint8Array, request: string, from = 0): void {
    const pts = [this.points!.txDecode, this.points!.txExecute];
    for (let i = from; i < pts.length; i++) {
      if (pts[i]!.taps === null) continue;
      const step = this.stage(pts[i]!, frame, { status: NVSP_STATUS.success, cdw0: 0 }, request);
      if (step instanceof Promise) {
        void step.then((s) => s === 'go' && this.txTapped(frame, request, i + 1));
        return;
      }
      if (step !== 'go') return; // dropped or ended by a tap: not forwarded
    }
    if (this.linkUp) this.port?.input(frame);
  }

  /** The offer for `HostBus.offer`: the network class, handlers set when the guest opens it. */
  offer(): HostOfferSpec {
    return { classId: 'network', ...(this.instanceId ? { instanceId: this.instanceId } : {}), onOpen: (ch) => this.attach(ch as HostChannel<RxBatch>) };
  }

  /** The link as the guest sees it; set it to indicate media connect or disconnect. */
  get link(): boolean {
    return this.linkUp;
  }

  set link(up: boolean) {
    if (up === this.linkUp) return;
    this.linkUp = up;
    this.indicate(encodeRndisIndicateStatus(up ? RNDIS_STATUS.mediaConnect : RNDIS_STATUS.mediaDisconnect));
  }

  private attach(ch: HostChannel<RxBatch>): void {
    const sub = ch.offer.subChannelIndex !== 0;
    if (sub && this.st === null) return; // a sub-channel of an adapter that never opened
    if (!sub) {
      this.lanes.length = 0;
      this.st = { version: 0, recv: null, recvSection: 0, free: [], send: null, sendSection: 0, packetFilter: 0 };
    }
    const st = this.st!;
    const lane: Lane = { ch, batch: this.newBatch(), backlog: [], flushSoon: () => this.flushLane(lane) };
    this.lanes.push(lane);
    ch.onPacket = (p) => this.handle(ch, st, p);
    // The end of a burst of what this guest sent: the switch's ports hand on the frames they batched.
    ch.onPollEnd = () => this.sw?.flush();
    // A receive packet's completion gives its sections back (an error: the channel ended), and the
    // guest has read ring space free: what waited for it goes now.
    ch.onCompletion = (b, err) => {
      // A completion of a packet the device sent (anything else on its channel carries no sections).
      if (b instanceof RxBatch) {
        for (let k = 0; k < b.n; k++) st.free.push(b.pairs[2 * k]!);
        this.recycle(b);
      }
      if (err === null && lane.backlog.length > 0) this.drain(lane);
    };
    ch.onClose = () => {
      const i = this.lanes.indexOf(lane);
      if (i >= 0) this.lanes.splice(i, 1);
      for (const g of [lane.batch, ...lane.backlog]) for (let k = 0; k < g.n; k++) st.free.push(g.pairs[2 * k]!);
      lane.batch.n = 0;
      lane.backlog.length = 0;
      if (!sub) this.offeredSubChannels = 0;
      if (this.lanes.length === 0 && this.scratchPtr >= 0) {
        // The adapter's last channel: its send-section copy goes back to core memory.
        ch.core.free(this.scratchPtr);
        this.scratchPtr = -1;
        this.scratchBytes = 0;
      }
    };
  }

  private handle(ch: HostChannel<RxBatch>, st: NicState, p: ReceivedPacket): void {
    const reply = this.reply(ch, st, p);
    if (p.completionRequested) ch.completeId(p.transactionIdLo, p.transactionIdHi, reply);
  }

  /** The answer to one NVSP message (sent when the guest asked for one). */
  private reply(ch: HostChannel<RxBatch>, st: NicState, p: ReceivedPacket): Uint8Array {
    // The message is read where it lies in the end's private read buffer (no view for a send).
    const u8 = ch.core.u8;
    const at = p.offset;
    const len = p.length;
    if (len < 4) {
      this.counters.badRequests++;
      return PKT_COMPLETE[NVSP_STATUS.fail]!;
    }
    const type = readU32LE(u8, at);
    if (type === NVSP.sendRndisPkt) return PKT_COMPLETE[this.rndisPacket(ch, st, u8, at, len, p)]!;
    const msg = p.payload();
    switch (type) {
      case NVSP.init: {
        if (msg.length < 12) {
          this.counters.badRequests++;
          return encodeInitComplete(NVSP_STATUS.fail);
        }
        const { min, max } = decodeNvspInit(msg);
        const v = this.versions.filter((x) => x >= min && x <= max).sort((a, b) => b - a)[0];
        st.version = v ?? 0;
        return encodeInitComplete(v !== undefined ? NVSP_STATUS.success : max < Math.min(...this.versions) ? NVSP_STATUS.protocolTooOld : NVSP_STATUS.protocolTooNew);
      }
      case NVSP.sendNdisVersion:
      case NVSP.sendNdisConfig:
      case NVSP.switchDataPath:
        return EMPTY;
      case NVSP.sendRecvBuf:
        return this.takeRecvBuffer(ch, st, msg);
      case NVSP.sendSendBuf:
        return this.takeSendBuffer(ch, st, msg);
      case NVSP.revokeRecvBuf:
        st.recv = null;
        st.free = [];
        for (const l of this.lanes) {
          l.batch.n = 0;
          l.backlog.length = 0;
        }
        return EMPTY;
      case NVSP.subchannel:
        return this.allocateSubChannels(ch, st, msg);
      case NVSP.revokeSendBuf:
        st.send = null;
        return EMPTY;
      default:
        this.counters.unknownMessages++;
        return PKT_COMPLETE[NVSP_STATUS.unsupported]!;
    }
  }

  /**
   * SUBCHANNEL (allocate): as many as asked up to the maximum, offered after the answer (as
   * Hyper-V does), then the send indirection table spreading the guest's transmit over them.
   */
  private allocateSubChannels(ch: HostChannel<RxBatch>, st: NicState, msg: Uint8Array): Uint8Array {
    const want = msg.length >= 12 && readU32LE(msg, 4) === 1 ? readU32LE(msg, 8) : 0;
    const n = Math.min(want, (this.subChannels?.max ?? 0) - this.offeredSubChannels);
    if (!this.subChannels || ch.offer.subChannelIndex !== 0 || st.version < NVSP_VERSION.v5 || n <= 0) {
      this.counters.badRequests++;
      return encodeNvsp(NVSP.subchannel, NVSP_STATUS.fail, 0);
    }
    this.subChannels.bus.offerSubChannels(ch.offer.relid, n);
    this.offeredSubChannels += n;
    const t = new Uint8Array(12 + 64); // type, count 16, offset 12 (from the message's start), the table
    t.set(encodeNvsp(NVSP.sendIndirectionTable, 16, 12).subarray(0, 12));
    for (let i = 0; i < 16; i++) writeU32LE(t, 12 + 4 * i, i % (1 + this.offeredSubChannels));
    ch.send(t);
    return encodeNvsp(NVSP.subchannel, NVSP_STATUS.success, n);
  }

  private takeRecvBuffer(ch: HostChannel<RxBatch>, st: NicState, msg: Uint8Array): Uint8Array {
    const g = msg.length >= 10 ? ch.gpadl(decodeSendBuffer(msg).gpadl) : undefined;
    const count = g ? Math.floor(g.byteCount / this.recvSectionBytes) : 0;
    if (!g || decodeSendBuffer(msg).id !== RECV_BUFFER_ID || st.version === 0 || count === 0) {
      this.counters.badRequests++;
      return encodeRecvBufComplete(NVSP_STATUS.fail, []);
    }
    st.recv = new GuestBuffer(this.dma, g.pfns, g.byteOffset, g.byteCount);
    st.recvSection = this.recvSectionBytes;
    st.free = Array.from({ length: count }, (_, i) => count - 1 - i);
    return encodeRecvBufComplete(NVSP_STATUS.success, [{ offset: 0, subAllocSize: this.recvSectionBytes, numSubAllocs: count, endOffset: count * this.recvSectionBytes }]);
  }

  private takeSendBuffer(ch: HostChannel<RxBatch>, st: NicState, msg: Uint8Array): Uint8Array {
    const g = msg.length >= 10 ? ch.gpadl(decodeSendBuffer(msg).gpadl) : undefined;
    if (!g || st.version === 0 || g.byteCount < this.sendSectionBytes) {
      this.counters.badRequests++;
      return encodeSendBufComplete(NVSP_STATUS.fail, 0);
    }
    st.send = new GuestBuffer(this.dma, g.pfns, g.byteOffset, g.byteCount);
    st.sendSection = this.sendSectionBytes;
    return encodeSendBufComplete(NVSP_STATUS.success, this.sendSectionBytes);
  }

  /** SEND_RNDIS_PKT: the RNDIS messages of a send section or of the packet's page buffer. Returns the NVSP status. */
  private rndisPacket(ch: HostChannel<RxBatch>, st: NicState, u8: Uint8Array, at: number, len: number, p: ReceivedPacket): number {
    if (len < 16) {
      this.counters.badRequests++;
      return NVSP_STATUS.fail;
    }
    const channel = readU32LE(u8, at + 4);
    const section = readU32LE(u8, at + 8);
    const bytes = readU32LE(u8, at + 12);
    let data: Uint8Array;
    try {
      if (section !== NO_SECTION) {
        // A send-buffer section: the index and the bytes used must lie inside the buffer.
        if (!st.send || section >= Math.floor(st.send.bytes / st.sendSection) || bytes > st.sendSection || bytes < 8) {
          this.counters.badRequests++;
          return NVSP_STATUS.fail;
        }
        // One private copy (the guest may rewrite its section meanwhile: hardening P3), into a
        // region of core memory the device keeps: the frames are read there in place.
        const from = st.send.at(section * st.sendSection, bytes, 'read');
        if (from >= 0) {
          const core = ch.core;
          if (this.scratchBytes < bytes) {
            if (this.scratchPtr >= 0) core.free(this.scratchPtr);
            this.scratchPtr = core.allocUninitialized(st.sendSection);
            this.scratchBytes = st.sendSection;
          }
          const mem = core.u8; // the allocation may have grown core memory
          mem.copyWithin(this.scratchPtr, from, from + bytes);
          if (channel !== RNDIS_CHANNEL.control) return this.frames(mem, this.scratchPtr, this.scratchPtr + bytes, true);
          data = mem.slice(this.scratchPtr, this.scratchPtr + bytes);
        } else data = st.send.read(section * st.sendSection, bytes);
      } else if (p.gpa) {
        const total = p.gpa.segments.reduce((n, s) => n + s.len, 0);
        if (total > 1 << 20) { // more than any frame: refused before anything is copied
          this.counters.badRequests++;
          return NVSP_STATUS.fail;
        }
        data = new Uint8Array(total);
        let at = 0;
        for (const s of p.gpa.segments) {
          this.dma.read(s.addr, s.len, data.subarray(at, at + s.len));
          at += s.len;
        }
      } else {
        this.counters.badRequests++;
        return NVSP_STATUS.fail;
      }
    } catch (e) {
      if (!(e instanceof SgringError)) throw e;
      this.counters.badRequests++; // a DMA fault: the guest's buffer is not where it said
      return NVSP_STATUS.fail;
    }
    return channel === RNDIS_CHANNEL.control ? this.control(st, data) : this.frames(data, 0, data.length, false);
  }

  /**
   * The RNDIS PACKETs in [start, end) of `data` (several when the guest aggregated them, each
   * padded to 8 bytes), each frame handed to the switch as a view; views of core memory (`keep`)
   * are kept per message position while their place and length repeat (the switch lets go of a
   * frame when input returns).
   */
  private frames(data: Uint8Array, start: number, end: number, keep: boolean): number {
    const r = this.reader;
    if (keep && data !== this.txViewsOf) {
      // Another view of core memory (it grew): the kept views see the old buffer. Comparing the
      // view objects costs less than comparing buffers per frame (`.buffer` is a slow getter).
      this.txViews.length = 0;
      this.txViewsOf = data;
    }
    for (let at = start, k = 0; at + 8 <= end; k++) {
      try {
        if (!r.read(data, at, end - at)) {
          this.counters.badRndis++;
          return NVSP_STATUS.invalidRndisPacket;
        }
      } catch (e) {
        if (!(e instanceof SgringError)) throw e;
        this.counters.badRndis++;
        return NVSP_STATUS.invalidRndisPacket;
      }
      let frame = keep && k < TX_VIEWS ? this.txViews[k] : undefined;
      if (frame === undefined || frame.byteOffset !== data.byteOffset + r.frameAt || frame.length !== r.frameLen) {
        frame = data.subarray(r.frameAt, r.frameAt + r.frameLen);
        if (keep && k < TX_VIEWS) this.txViews[k] = frame;
      }
      this.counters.txFrames++;
      this.counters.txBytes += frame.length;
      const pts = this.points;
      if (pts !== null && (pts.txDecode.taps !== null || pts.txExecute.taps !== null)) this.txTapped(frame.slice(), `tx${this.nextRequest++}`);
      else if (this.linkUp) this.port?.input(frame, true); // the channel's poll end flushes the burst
      at += (readU32LE(data, at + 4) + 7) & ~7;
    }
    return NVSP_STATUS.success;
  }
  /** Reads the RNDIS PACKETs of a send in place. */
  private readonly reader = new RndisPacketReader();
  /** The frame views of the last sends, by message position, and the view of core memory they were taken from. */
  private readonly txViews: Uint8Array[] = [];
  private txViewsOf: Uint8Array | null = null;
  /** The private copy of a send section (core memory; -1 until the first). */
  private scratchPtr = -1;
  private scratchBytes = 0;

  /** One RNDIS control message; its completion goes back through the receive buffer. */
  private control(st: NicState, data: Uint8Array): number {
    let m: RndisMessage;
    try {
      m = decodeRndis(data);
    } catch (e) {
      if (!(e instanceof SgringError)) throw e;
      this.counters.badRndis++;
      // A QUERY or SET whose info buffer lies outside the message: INVALID_DATA to its request id [H48].
      const t = data.length >= 12 ? readU32LE(data, 0) : 0;
      if (t === RNDIS_MSG.query) this.indicate(encodeRndisQueryComplete(readU32LE(data, 8), RNDIS_STATUS.invalidData, new Uint8Array(0)));
      else if (t === RNDIS_MSG.set) this.indicate(encodeRndisSetComplete(readU32LE(data, 8), RNDIS_STATUS.invalidData));
      return NVSP_STATUS.invalidRndisPacket;
    }
    this.counters.control++;
    const p = this.points?.ctlDecode;
    if (p && p.taps !== null) {
      const completion = { status: NVSP_STATUS.success, cdw0: 0 };
      const step = this.stage(p, data, completion, `ctl${this.nextRequest++}`);
      if (step instanceof Promise) {
        const copy = data.slice();
        void step.then((s) => s === 'go' && this.answerControl(st, decodeRndis(copy)));
        return NVSP_STATUS.success;
      }
      if (step !== 'go') return step === 'complete' ? completion.status : NVSP_STATUS.success; // ended or dropped: no RNDIS answer
    }
    return this.answerControl(st, m);
  }

  private answerControl(st: NicState, m: RndisMessage): number {
    switch (m.type) {
      case RNDIS_MSG.initialize:
        this.indicate(encodeRndisInitializeComplete({ rid: m.rid, status: RNDIS_STATUS.success, maxPacketsPerMessage: 8, maxTransferSize: 0x40000, alignmentFactor: 3 }));
        break;
      case RNDIS_MSG.query: {
        const v = this.query(m.oid);
        if (v === null) this.counters.unsupportedOids++;
        this.indicate(encodeRndisQueryComplete(m.rid, v === null ? RNDIS_STATUS.notSupported : RNDIS_STATUS.success, v ?? new Uint8Array(0)));
        break;
      }
      case RNDIS_MSG.set: {
        let status: number = RNDIS_STATUS.success;
        if (m.oid === OID.genCurrentPacketFilter) {
          if (m.info.length < 4) status = RNDIS_STATUS.invalidLength;
          else st.packetFilter = readU32LE(m.info, 0);
        } else if (m.oid !== OID.offloadParameters && m.oid !== OID.multicastList && m.oid !== OID.genRssParameters) {
          status = RNDIS_STATUS.notSupported; // only OIDs on the allow-list are ever looked at [H48]
          this.counters.unsupportedOids++;
        }
        this.indicate(encodeRndisSetComplete(m.rid, status));
        break;
      }
      case RNDIS_MSG.keepalive:
        this.indicate(encodeRndisKeepaliveComplete(m.rid, RNDIS_STATUS.success));
        break;
      case RNDIS_MSG.reset:
        this.indicate(encodeRndisResetComplete(RNDIS_STATUS.success));
        break;
      case RNDIS_MSG.halt:
        break;
      default:
        this.counters.badRndis++;
        return NVSP_STATUS.invalidRndisPacket;
    }
    return NVSP_STATUS.success;
  }

  /** The value of an OID this host answers (spec §5.2 step 8), or null: not supported. */
  private query(oid: number): Uint8Array | null {
    switch (oid) {
      case OID.permanentAddress:
      case OID.currentAddress: return this.mac.slice();
      case OID.genMediaConnectStatus: return u32(this.linkUp ? 0 : 1);
      case OID.genLinkSpeed: return u32(Math.min(0xffffffff, Math.floor(this.linkSpeed / 100)));
      case OID.genMaximumFrameSize: return u32(this.mtu);
      case OID.genMaximumTotalSize: return u32(this.mtu + 14);
      case OID.genCurrentPacketFilter: return u32(this.st?.packetFilter ?? 0);
      case OID.maximumListSize: return u32(32);
      case OID.genHardwareStatus:
      case OID.genMediaSupported:
      case OID.genMediaInUse: return u32(0); // ready; 802.3
      case OID.genVendorId: return u32(0x00155d); // Microsoft's OUI, as Hyper-V reports
      case OID.genMaximumSendPackets: return u32(8);
      case OID.genRssCapabilities: {
        if (!this.subChannels) return null;
        // NDIS RSS capabilities (object type 0x88, revision 2, 18 bytes): Toeplitz over IPv4/IPv6
        // TCP, as many queues and interrupt messages as channels, a 128-entry indirection table.
        const b = new Uint8Array(18);
        b[0] = 0x88;
        b[1] = 2;
        b[2] = 18;
        writeU32LE(b, 4, 0x100 | 0x200 | 0x400);
        writeU32LE(b, 8, this.subChannels.max + 1);
        writeU32LE(b, 12, this.subChannels.max + 1);
        b[16] = 128;
        return b;
      }
      default: return null;
    }
  }

  /** Puts one RNDIS message (a control completion or a status indication) into a receive section. */
  private indicate(message: Uint8Array): boolean {
    return this.toGuest(message, null);
  }

  /**
   * A frame from the switch for the guest: an RNDIS PACKET in a free receive section, handed over
   * in a transfer-page packet. False (counted) when it cannot go now.
   */
  deliver(frame: Uint8Array): boolean {
    if (!this.linkUp) {
      this.counters.rxLinkDown++;
      return false;
    }
    const p = this.points?.rxPost;
    if (p && p.taps !== null) {
      const own = frame.slice(); // the switch's frame may go to other ports too: the taps get a copy
      const step = this.stage(p, own, { status: NVSP_STATUS.success, cdw0: 0 }, `rx${this.nextRequest++}`);
      if (step instanceof Promise) {
        void step.then((s) => s === 'go' && this.post(own));
        return true;
      }
      return step === 'go' && this.post(own);
    }
    return this.post(frame);
  }

  private post(frame: Uint8Array): boolean {
    if (!this.toGuest(null, frame)) return false;
    this.counters.rxFrames++;
    this.counters.rxBytes += frame.length;
    return true;
  }

  /** Writes `message`, or an RNDIS PACKET around `frame`, into a free receive section and hands it over. */
  private toGuest(message: Uint8Array | null, frame: Uint8Array | null): boolean {
    const lanes = this.lanes;
    // Control answers on the primary; frames spread over the open channels by flow (the addresses
    // of an IPv4 frame, else the MAC addresses), so one flow stays on one channel and in order.
    const lane = lanes.length > 1 && frame ? lanes[flowHash(frame) % lanes.length]! : lanes[0];
    const ch = lane?.ch;
    const st = this.st;
    if (!lane || !ch || ch.state !== 'open' || !st?.recv) {
      this.counters.rxNotReady++;
      return false;
    }
    const bytes = message ? message.length : RNDIS_PACKET_HEADER + frame!.length;
    if (bytes > st.recvSection || st.free.length === 0) {
      this.counters.rxNoSection++;
      return false;
    }
    const s = st.free.pop()!;
    const off = s * st.recvSection;
    try {
      const at = st.recv.at(off, bytes, 'write');
      if (at >= 0 && frame) writeRndisPacketFast(ch.core.u8, ch.core.u32, at, frame.length, undefined, frame); // straight into the guest's section
      else if (at >= 0) ch.core.u8.set(message!, at);
      else st.recv.write(off, message ?? encodeRndisPacket(frame!));
    } catch (e) {
      st.free.push(s);
      if (!(e instanceof SgringError)) throw e;
      this.counters.rxNotReady++; // the buffer is no longer mapped
      return false;
    }
    // Frames share a transfer-page packet (several ranges, as guests allow since NVSP 2) until the
    // sender's burst ends (VirtualSwitch.flush), BATCH_MAX fill one, or, for frames from outside a
    // poll (an uplink's socket), a microtask passes. A control message goes at once, behind them.
    if (frame) {
      if (lane.batch.n === 0) queueMicrotask(lane.flushSoon);
      lane.batch.add(s, bytes);
      if (lane.batch.n >= BATCH_MAX) this.flushLane(lane);
      return true;
    }
    this.flushLane(lane);
    const one = this.newBatch();
    one.add(s, bytes);
    this.send(lane, one);
    return true;
  }

  /** Hands every batched frame to the guest. */
  flush(): void {
    for (const l of this.lanes) this.flushLane(l);
  }

  private flushLane(lane: Lane): void {
    if (lane.batch.n === 0) return;
    const g = lane.batch;
    lane.batch = this.newBatch();
    this.send(lane, g);
  }

  /** One transfer-page packet for the sections of `g`, in order behind whatever waits for ring space (the filled sections bound the wait). */
  private send(lane: Lane, g: RxBatch): void {
    if (lane.backlog.length > 0 || !this.hand(lane.ch, g)) {
      lane.backlog.push(g);
      this.counters.rxQueued++;
    }
  }

  /** One transfer-page packet for the sections of `g`; false when the ring has no room. */
  private hand(ch: HostChannel<RxBatch>, g: RxBatch): boolean {
    if (ch.state !== 'open') { // the channel went away: the sections are free again, the frames lost
      for (let k = 0; k < g.n; k++) this.st?.free.push(g.pairs[2 * k]!);
      this.recycle(g);
      return true;
    }
    const size = this.st!.recvSection;
    // The ranges are encoded into the ring at once: one reused set per range count serves every packet.
    const n = g.n;
    const xfer = (this.xfers[n] ??= { pageSetId: RECV_BUFFER_ID, senderOwns: false, ranges: Array.from({ length: n }, () => ({ byteCount: 0, byteOffset: 0 })) });
    for (let k = 0; k < n; k++) {
      const r = xfer.ranges[k]!;
      r.byteCount = g.pairs[2 * k + 1]!;
      r.byteOffset = g.pairs[2 * k]! * size;
    }
    return ch.requestTransferPages(xfer, this.rxMessage, g) !== 0;
  }
  private readonly xfers: TransferPages[] = [];
  /** Batches of completed packets, for the next ones. */
  private readonly spareBatches: RxBatch[] = [];
  private newBatch(): RxBatch {
    return this.spareBatches.pop() ?? new RxBatch();
  }
  private recycle(b: RxBatch): void {
    b.n = 0;
    if (this.spareBatches.length < 256) this.spareBatches.push(b);
  }

  /** Sends what waited for ring space, in order, until the ring is full again. */
  private drain(lane: Lane): void {
    const b = lane.backlog;
    let i = 0;
    while (i < b.length && this.hand(lane.ch, b[i]!)) i++;
    b.splice(0, i);
  }
}
