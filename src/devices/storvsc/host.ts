// storvsp: the host end of a VMBus SCSI adapter (spec/vmbus.md §4). It answers the guest's
// initialisation (BEGIN, QUERY_PROTOCOL_VERSION for the versions it supports, QUERY_PROPERTIES,
// END), then runs each EXECUTE_SRB on the ScsiDisk at (target, lun): write data gathered from
// the packet's GPA range and read data scattered into it, both through the device's DMA domain,
// and a COMPLETE_IO with SRB status, SCSI status, bytes moved and sense data. Requests it cannot
// read are answered INVALID REQUEST and counted; a DMA fault fails that request only.

import { SgringError } from '../../engine/errors';
import { GPA_DIRECT_PREFIX_SIZE } from '../../generated/constants';
import { optionNames } from '../../core/args';
import { translateQuick, type DmaDomain } from '../../memory/dma-domain';
import type { HostChannel, HostOfferSpec } from '../../vmbus/host-channel';
import type { HostBus } from '../../vmbus/host-bus';
import type { Guid } from '../../vmbus/guid';
import type { ReceivedPacket } from '../../vmbus/received-packet';
import type { GpaDecodeResult } from '../../core/gpa-range';
import { reportLuns, ScsiDisk, type ScsiResult } from '../scsi/disk';
import { SCSI_STATUS } from '../scsi/sense';
import { isReadOp, isWriteOp } from '../scsi/taps';
import { anyTap, declareScsiStages, runStaged, type ScsiStages } from '../scsi/staged';
import type { TapRegistry } from '../../taps/registry';
import type { BlockBackend } from '../block/backend';
import { CopyBatch } from '../block/copy-batch';
import {
  decodeExecuteSrb, decodeProtocolVersion, decodeSubChannelCount, decodeVstorHeader, encodeCompleteIo, encodeProperties, encodeVstor,
  SRB_DIRECTION, SRB_STATUS, VSTOR_OP, VSTOR_PACKET_BYTES, VSTOR_VERSION, type SrbRequest,
} from './wire';

const EMPTY = new Uint8Array(0);

/** NT status a real host answers an unsupported protocol version with. */
export const VSTOR_STATUS_REVISION_MISMATCH = 0xc0000059;
/** NT status for a packet the host cannot act on. */
export const VSTOR_STATUS_INVALID_PARAMETER = 0xc000000d;

export interface StorvspTarget {
  target: number;
  lun: number;
  /** A block backend (served by a new ScsiDisk) or a ScsiDisk. */
  backend: BlockBackend | ScsiDisk;
}

export interface StorvspOptions {
  targets: StorvspTarget[];
  /** The device's view of guest memory (the same domain the HostBus uses). */
  dma: DmaDomain;
  instanceId?: Guid;
  /** Protocol versions accepted (default: Win8, Win8.1, Win10). */
  versions?: number[];
  /** Largest transfer per request (default 2 MiB, reported in QUERY_PROPERTIES). */
  maxTransferBytes?: number;
  /** Sub-channels: the bus to offer them on and how many at most (QUERY_PROPERTIES says so). */
  subChannels?: { bus: HostBus; max: number };
  /** Tap points storvsc:io:decode|execute|writeback, traced as iSCSI. */
  taps?: TapRegistry;
  /** Device instance name for taps and traces (default 'storvsp0'). */
  name?: string;
}

interface ChannelState {
  version: number;
  initialized: boolean;
}

export class StorvspDevice {
  /** The disks by `target * 256 + lun` (fixed at construction). */
  readonly disks: ReadonlyMap<number, ScsiDisk>;
  readonly counters = { requests: 0, failed: 0, replyFailed: 0, pageListRefused: 0, invalidRequests: 0, invalidLun: 0, dmaFaults: 0, unknownOperations: 0, beforeInit: 0 };
  readonly name: string;
  private readonly taps: TapRegistry | null;
  private points: ScsiStages | null = null;
  private nextRequest = 1;
  private readonly subChannels: { bus: HostBus; max: number } | null;
  /** The primary channel's negotiated state, shared by its sub-channels (they skip initialisation). */
  private primary: ChannelState | null = null;
  private offeredSubChannels = 0;
  /** Requests served per channel (the multi-channel spread shows here): counted in a record per channel, not a map per request. */
  private readonly served: { relid: number; n: number }[] = [];
  private readonly dma: DmaDomain;
  private readonly versions: number[];
  private readonly maxTransferBytes: number;
  private readonly instanceId: Guid | undefined;
  private readonly reply = new Uint8Array(VSTOR_PACKET_BYTES);
  /** The fast path's copies within one poll (disks in core memory), moved in one engine call at its end. */
  private copies: CopyBatch | null = null;

  constructor(opts: StorvspOptions) {
    optionNames(opts, ['targets', 'dma', 'instanceId', 'versions', 'maxTransferBytes', 'subChannels', 'taps', 'name'], 'StorvspDevice');
    if (opts.subChannels !== undefined && (!opts.subChannels.bus || !Number.isInteger(opts.subChannels.max) || opts.subChannels.max < 0 || opts.subChannels.max > 64)) {
      throw new SgringError('InvalidArgument', 'subChannels is { bus: HostBus, max: 0..64 }');
    }
    this.subChannels = opts.subChannels ?? null;
    if (!opts.dma) throw new SgringError('InvalidArgument', 'StorvspDevice needs the DMA domain (opts.dma)');
    if (!Array.isArray(opts.targets) || opts.targets.length === 0) throw new SgringError('InvalidArgument', 'StorvspDevice needs targets: [{ target, lun, backend }, ...]');
    const disks = new Map<number, ScsiDisk>();
    this.disks = disks;
    for (const t of opts.targets) {
      if (!Number.isInteger(t.target) || t.target < 0 || t.target > 255 || !Number.isInteger(t.lun) || t.lun < 0 || t.lun > 255) {
        throw new SgringError('InvalidArgument', `target ${t.target} / lun ${t.lun}: each is 0..255`);
      }
      const key = t.target * 256 + t.lun;
      if (disks.has(key)) throw new SgringError('InvalidArgument', `target ${t.target} lun ${t.lun} given twice`);
      disks.set(key, t.backend instanceof ScsiDisk ? t.backend : new ScsiDisk(t.backend));
    }
    this.dma = opts.dma;
    this.versions = opts.versions ?? [VSTOR_VERSION.win8, VSTOR_VERSION.win8_1, VSTOR_VERSION.win10];
    this.maxTransferBytes = opts.maxTransferBytes ?? 2 << 20;
    this.instanceId = opts.instanceId;
    this.name = opts.name ?? 'storvsp0';
    this.taps = opts.taps ?? null;
    if (this.taps) this.points = declareScsiStages(this.taps, this.name, 'storvsc');
  }

  /** The offer for `HostBus.offer`: the storage class, handlers set when the guest opens it. */
  offer(): HostOfferSpec {
    return { classId: 'storage', ...(this.instanceId ? { instanceId: this.instanceId } : {}), onOpen: (ch) => this.attach(ch) };
  }

  /** Requests served per channel relid so far, in the order the channels opened. */
  get perChannel(): Map<number, number> {
    const m = new Map<number, number>();
    for (const s of this.served) m.set(s.relid, (m.get(s.relid) ?? 0) + s.n);
    return m;
  }

  private attach(ch: HostChannel): void {
    const sub = ch.offer.subChannelIndex > 0 && this.primary !== null;
    const st: ChannelState = sub ? this.primary! : { version: 0, initialized: false };
    if (!sub) this.primary = st;
    this.copies ??= new CopyBatch(ch.core);
    const served = { relid: ch.offer.relid, n: 0 };
    this.served.push(served);
    ch.onPacket = (p) => {
      served.n++;
      try {
        this.handle(ch, st, p);
      } catch (e) {
        this.copies!.flush(); // the poll ends here without onPollEnd, and still writes the completions staged so far
        throw e;
      }
    };
    // The fast path's copies move once per poll, before the poll writes its completions to the ring.
    ch.onPollEnd = () => this.copies!.flush();
    // A GPA range the channel could not read (a PFN count that does not match its bytes, an
    // offset past the page...): INVALID REQUEST for that command, as for a list with holes.
    ch.onBadPacket = (p) => {
      if (!p.completionRequested) return;
      ch.completeId(p.transactionIdLo, p.transactionIdHi, this.refusePageList(st, p.payload()));
    };
  }

  private refusePageList(st: ChannelState, msg: Uint8Array): Uint8Array {
    this.counters.pageListRefused++;
    const req = decodeExecuteSrb(msg, st.version);
    return encodeCompleteIo('invalid' in req ? { port: 0, path: 0, target: 0, lun: 0, direction: SRB_DIRECTION.none } : req,
      { srbStatus: SRB_STATUS.invalidRequest, scsiStatus: 0, dataTransferLength: 0, sense: EMPTY }, st.version);
  }

  private handle(ch: HostChannel, st: ChannelState, p: ReceivedPacket): void {
    const lo = p.transactionIdLo;
    const hi = p.transactionIdHi;
    const wanted = p.completionRequested; // read now: the packet view is reused before an async answer
    // The fast path first: a READ or WRITE of one GPA range, after initialisation, with no tap,
    // read where the message lies in the channel's read buffer (no view of it).
    const u8 = ch.core.u8;
    const at = p.offset;
    if (wanted && p.gpa !== null && st.initialized && p.length >= 12 && u8[at] === VSTOR_OP.executeSrb && (u8[at + 1]! | u8[at + 2]! | u8[at + 3]!) === 0 &&
        p.gpa.ranges.length === 1 && p.gpa.bytes === p.headerBytes - GPA_DIRECT_PREFIX_SIZE && this.direct(st, u8, at, p.length, p.gpa, lo, hi, ch)) {
      this.counters.requests++;
      return;
    }
    this.copies!.flush(); // what the fast path batched goes first (the general path may touch the same blocks)
    this.general(ch, st, p, p.payload(), lo, hi, wanted);
  }

  // Apart from handle(): its closures would make every call, the fast path's too, allocate a context.
  private general(ch: HostChannel, st: ChannelState, p: ReceivedPacket, msg: Uint8Array, lo: number, hi: number, wanted: boolean): void {
    const answer = (payload: Uint8Array) => {
      if (!wanted) return;
      ch.completeId(lo, hi, payload);
      ch.flush();
    };
    const status = (s: number) => encodeVstor({ operation: VSTOR_OP.completeIo, flags: 0, status: s }, st.version || VSTOR_VERSION.win10).bytes;
    if (msg.length < 12) {
      this.counters.invalidRequests++;
      return answer(status(VSTOR_STATUS_INVALID_PARAMETER));
    }
    const { operation } = decodeVstorHeader(msg);
    switch (operation) {
      case VSTOR_OP.beginInitialization:
        st.initialized = false;
        return answer(status(0));
      case VSTOR_OP.queryProtocolVersion: {
        const v = decodeProtocolVersion(msg);
        if (!this.versions.includes(v)) return answer(encodeVstor({ operation: VSTOR_OP.completeIo, flags: 0, status: VSTOR_STATUS_REVISION_MISMATCH }, v).bytes);
        st.version = v;
        return answer(status(0));
      }
      case VSTOR_OP.queryProperties: {
        const max = this.subChannels?.max ?? 0;
        return answer(encodeProperties({ maxChannels: max, multiChannel: max > 0, maxTransferBytes: this.maxTransferBytes }, st.version || VSTOR_VERSION.win10));
      }
      case VSTOR_OP.createSubChannels: {
        const n = msg.length >= 14 ? decodeSubChannelCount(msg) : 0;
        if (!this.subChannels || !st.initialized || ch.offer.subChannelIndex !== 0 || n === 0 || n + this.offeredSubChannels > this.subChannels.max) {
          this.counters.invalidRequests++;
          return answer(status(VSTOR_STATUS_INVALID_PARAMETER));
        }
        answer(status(0)); // the answer first, then the offers (as Hyper-V does)
        this.subChannels.bus.offerSubChannels(ch.offer.relid, n);
        this.offeredSubChannels += n;
        return;
      }
      case VSTOR_OP.endInitialization:
        st.initialized = st.version !== 0;
        return answer(status(st.initialized ? 0 : VSTOR_STATUS_INVALID_PARAMETER));
      case VSTOR_OP.executeSrb:
        this.counters.requests++;
        if (!st.initialized) {
          this.counters.beforeInit++;
          return answer(status(VSTOR_STATUS_INVALID_PARAMETER));
        }
        // The data buffer is one GPA range (Linux and FreeBSD send one; spec §4.5): a packet with
        // several could describe a buffer with holes, and one whose range names more PFNs than its
        // bytes span (FreeBSD's faulty S/G bounce sends those) maps bytes the sender did not mean:
        // both are refused, not guessed at.
        if (p.gpa && (p.gpa.ranges.length !== 1 || p.gpa.bytes !== p.headerBytes - GPA_DIRECT_PREFIX_SIZE)) return answer(this.refusePageList(st, msg));
        void this.execute(st, msg.slice(), p.gpa ? p.gpa.segments.map((s) => ({ addr: s.addr, len: s.len })) : null).then((b) => b && answer(b)) // null: dropped by a tap
          .catch(() => this.counters.replyFailed++); // the channel closed or broke meanwhile
        return;
      default:
        this.counters.unknownOperations++;
        return answer(status(VSTOR_STATUS_INVALID_PARAMETER));
    }
  }

  /**
   * The fast path of a READ or WRITE whose data buffer is contiguous in core memory, with no tap
   * attached: the disk moves the blocks straight between the medium and guest memory (no staging
   * copy), and a synchronous disk's answer goes out in the same poll as its request. False when
   * the command needs the general path (which also answers every refusal and fault).
   */
  private direct(st: ChannelState, u8: Uint8Array, at: number, len: number, gpa: GpaDecodeResult, lo: number, hi: number, ch: HostChannel): boolean {
    if (gpa.segments.length !== 1 || anyTap(this.points)) return false;
    const req = decodeExecuteSrb(u8, st.version, this.request, at, len);
    if ('invalid' in req) return false;
    const op = req.cdb[0]!;
    const length = req.dataTransferLength;
    const read = isReadOp(op);
    if (read ? req.direction !== SRB_DIRECTION.read : !isWriteOp(op) || req.direction !== SRB_DIRECTION.write) return false;
    const disk = this.diskAt(req.target * 256 + req.lun);
    if (!disk || length === 0 || length > this.maxTransferBytes || length > gpa.segments[0]!.len) return false;
    let ptr: number;
    try {
      const addr = gpa.segments[0]!.addr;
      const access = read ? 'write' : 'read';
      ptr = translateQuick(this.dma, addr, length, access);
    } catch {
      return false;
    }
    const r = disk.transfer(req.cdb, ptr, length, this.copies);
    if (r === null) return false;
    if (!(r instanceof Promise)) {
      // Staged: written with the rest of this poll's answers.
      ch.completeId(lo, hi, this.completion(req, r, r.status === SCSI_STATUS.good ? length : 0, st.version, this.reply));
      return true;
    }
    this.answerLater(r, { ...req }, lo, hi, ch, length, st.version); // this.request serves the next packet meanwhile
    return true;
  }

  // Apart from direct(): its closures would make every call allocate a context.
  private answerLater(r: Promise<ScsiResult>, req: SrbRequest, lo: number, hi: number, ch: HostChannel, length: number, version: number): void {
    void r.then((res) => {
      ch.completeId(lo, hi, this.completion(req, res, res.status === SCSI_STATUS.good ? length : 0, version, this.reply));
      ch.flush();
    }).catch(() => this.counters.replyFailed++); // the channel closed or broke meanwhile
  }
  /** The disk at `target * 256 + lun`: the last one asked for is kept (the disks never change after construction). */
  private diskAt(key: number): ScsiDisk | undefined {
    if (key !== this.lastKey) {
      this.lastKey = key;
      this.lastDisk = this.disks.get(key);
    }
    return this.lastDisk;
  }
  private lastKey = -1;
  private lastDisk: ScsiDisk | undefined = undefined;

  /** The fast path's EXECUTE_SRB, decoded into the same object each time. */
  private readonly request: SrbRequest = { port: 0, path: 0, target: 0, lun: 0, cdb: new Uint8Array(0), direction: 0, dataTransferLength: 0 };

  /**
   * COMPLETE_IO for a disk's answer: success with `moved` bytes, or the error with its sense
   * (into `into` when given: a buffer the caller hands to completeId at once).
   */
  private completion(req: SrbRequest, r: ScsiResult, moved: number, version: number, into?: Uint8Array): Uint8Array {
    if (r.status === SCSI_STATUS.good) {
      const good = this.goodReply; // encoded at once: one object serves every success
      good.dataTransferLength = moved;
      return encodeCompleteIo(req, good, version, 0, into);
    }
    this.counters.failed++;
    return encodeCompleteIo(req, { srbStatus: SRB_STATUS.error, scsiStatus: r.status, dataTransferLength: 0, sense: r.sense ?? EMPTY }, version, 0, into);
  }

  private readonly goodReply = { srbStatus: SRB_STATUS.success, scsiStatus: SCSI_STATUS.good, dataTransferLength: 0, sense: EMPTY };

  private lunsOf(target: number): number[] {
    return [...this.disks.keys()].filter((k) => k >> 8 === target).map((k) => k & 0xff).sort((a, b) => a - b);
  }

  private reportLuns(target: number, cdb: Uint8Array): ScsiResult {
    const data = reportLuns(this.lunsOf(target));
    const alloc = cdb.length >= 10 ? new DataView(cdb.buffer, cdb.byteOffset, cdb.length).getUint32(6) : 0;
    const out = data.subarray(0, Math.min(alloc, data.length));
    return { status: SCSI_STATUS.good, sense: null, data: out, transferred: out.length };
  }

  /** The first `length` bytes the segments describe, read through the DMA domain. */
  private gather(segments: { addr: number; len: number }[], length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0, at = 0; at < length; i++) {
      const n = Math.min(segments[i]!.len, length - at);
      this.dma.read(segments[i]!.addr, n, out.subarray(at, at + n));
      at += n;
    }
    return out;
  }

  /** `data` into the segments from their start; every page is checked before anything is written. */
  private scatter(segments: { addr: number; len: number }[], data: Uint8Array): void {
    for (let i = 0, at = 0; at < data.length; at += segments[i]!.len, i++) this.dma.translate(segments[i]!.addr, Math.min(segments[i]!.len, data.length - at), 'write');
    for (let i = 0, at = 0; at < data.length; i++) {
      const n = Math.min(segments[i]!.len, data.length - at);
      this.dma.write(segments[i]!.addr, data.subarray(at, at + n));
      at += n;
    }
  }

  /** Runs one SRB and builds its COMPLETE_IO. Never throws: every failure is a status. */
  private async execute(st: ChannelState, msg: Uint8Array, segments: { addr: number; len: number }[] | null): Promise<Uint8Array | null> {
    const req = decodeExecuteSrb(msg, st.version);
    const fail = (r: Pick<SrbRequest, 'port' | 'path' | 'target' | 'lun' | 'direction'>, srbStatus: number) =>
      encodeCompleteIo(r, { srbStatus, scsiStatus: 0, dataTransferLength: 0, sense: EMPTY }, st.version);
    if ('invalid' in req) {
      this.counters.invalidRequests++;
      return fail({ port: 0, path: 0, target: 0, lun: 0, direction: SRB_DIRECTION.none }, SRB_STATUS.invalidRequest);
    }
    const disk = this.diskAt(req.target * 256 + req.lun);
    if (!disk && !(req.cdb[0] === 0xa0 && this.lunsOf(req.target).length > 0)) {
      this.counters.invalidLun++;
      return fail(req, SRB_STATUS.invalidLun);
    }
    const length = req.direction === SRB_DIRECTION.none ? 0 : req.dataTransferLength;
    const described = segments ? segments.reduce((a, s) => a + s.len, 0) : 0;
    if (length > this.maxTransferBytes || length > described) {
      this.counters.invalidRequests++; // more data than the page list describes, or than the host allows
      return fail(req, SRB_STATUS.invalidRequest);
    }
    try {
      const r = await runStaged(this.taps, this.points, {
        device: this.name, queue: 0, request: `${req.target}:${req.lun}:${this.nextRequest++}`, lun: req.lun, cdb: req.cdb, length,
        dataOut: req.direction === SRB_DIRECTION.write && length > 0 ? () => this.gather(segments!, length) : null,
        // REPORT LUNS belongs to the target: every LUN this adapter serves behind it.
        run: (dataOut) => (req.cdb[0] === 0xa0 ? this.reportLuns(req.target, req.cdb) : disk!.execute({ cdb: req.cdb, dataOut })),
      });
      if (r === null) return null; // dropped by a tap
      if (r.status !== SCSI_STATUS.good) return this.completion(req, r, 0, st.version);
      let moved = req.direction === SRB_DIRECTION.write ? Math.min(r.transferred, length) : 0;
      if (req.direction === SRB_DIRECTION.read && r.data) {
        const data = r.data.subarray(0, Math.min(r.data.length, length));
        if (data.length > 0) this.scatter(segments!, data);
        moved = data.length;
      }
      return this.completion(req, r, moved, st.version);
    } catch (e) {
      if (!(e instanceof SgringError)) throw e;
      this.counters.dmaFaults++; // an IOMMU fault or a range outside guest RAM: this request fails
      return fail(req, SRB_STATUS.error);
    }
  }
}
