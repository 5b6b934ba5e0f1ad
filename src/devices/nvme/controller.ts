// The NVMe controller model (spec/nvme.md §1-2, §5): BAR0 registers through mmioRead /
// mmioWrite, the enable / reset / shutdown state machine, the admin queue and up to `maxQueues`
// I/O queue pairs in guest memory reached only through a DMA domain, phase tags, SQ head
// reporting, completions held while a CQ is full, doorbell validation (a bad doorbell is an
// Asynchronous Event, never a fetch out of range), interrupts per CQ vector. Commands run
// through the pipeline stages of the frankendrive talk, each a tap point:
// nvme:{admin,io}:{fetch,decode,execute,writeback}, pci:regread:writeback, pci:regwrite:decode.

import type { Core } from '../../engine/core';
import { SgringError } from '../../engine/errors';
import { optionNames } from '../../core/args';
import { walkSgl } from '../../core/nvme-sgl';
import { resolveOptions, walkOutput, walkPrpInto, walkPrpWords, type NvmeSegment, type ResolvedOptions } from '../../core/nvme-common';
import { ExternalDmaDomain } from '../../memory/external';
import type { IommuDomain } from '../../memory/iommu';
import { DMA_READ, DMA_WRITE } from '../../generated/constants';
import type { Region } from '../../core/gpa-range';
import type { StagePoint, TapRegistry } from '../../taps/registry';
import type { TapEvent } from '../../taps/event';
import { nvmeTcpEncoder } from '../../trace/nvme-tcp';
import type { BlockBackend } from '../block/backend';
import { CopyBatch } from '../block/copy-batch';
import { executeAdmin, FID } from './admin';
import { FetchedCommand, isPromise, type Command, type Result } from './command';
import type { ControllerContext } from './context';
import type { ControllerIdentity, FabricsIdentity, HealthCounters } from './identify';
import { backendStatus, executeIo } from './io';
import { cqFull, drainHeld, fetchSqe, postCqe, QueueTable, sqEmpty, type CompletionQueue, type NvmeDma, type SubmissionQueue } from './queues';
import { bar0Size, capability, cc, CSTS_CFS, CSTS_RDY, CSTS_SHST_COMPLETE, REG, VERSION_1_4 } from './registers';
import { NVME_SC, NVME_TAP_STATUSES } from './status';

export interface NvmeControllerOptions {
  /**
   * How the controller reaches guest memory (queues and data): an IommuDomain over the core's
   * guest window (a strict one maps only what the driver granted), or an ExternalDmaDomain over
   * an emulator's own RAM (attachToV86 makes one).
   */
  dma: NvmeDma;
  /** Namespaces 1..n, each over a block backend. */
  namespaces: { backend: BlockBackend }[];
  /** I/O queue pairs (default 16). */
  maxQueues?: number;
  /** Entries per queue at most, MQES + 1 (default 1024). */
  maxQueueEntries?: number;
  /** Max data transfer, 2^mdts pages of 4 KiB (default 9: 2 MiB). */
  mdts?: number;
  /** Interrupt vectors (default maxQueues + 1). */
  vectors?: number;
  /** Called when a CQ with interrupts enabled gets completions (vector as given at its creation; 0 for admin). */
  onInterrupt?: (vector: number) => void;
  taps?: TapRegistry;
  /** Device instance name for taps and traces (default 'nvme0'). */
  name?: string;
  serial?: string;
  model?: string;
  /** Run commands as soon as a doorbell is written (default true); false: only process() runs them. */
  processOnDoorbell?: boolean;
}

interface Stages {
  fetch: StagePoint; decode: StagePoint; execute: StagePoint; writeback: StagePoint;
}

/** Memory page size the walks use (CC.MPS 0: MPSMIN = MPSMAX). */
const PAGE = 4096;
const NVM_WRITE = 0x01;
const NVM_READ = 0x02;
/** The fast lane's batch: copies and completions it holds at most before it moves them. */
const LANE_ENTRIES = 1024;
const LANE_CQES = 256;
const EVENT_ERROR = 0;
const INFO_INVALID_DOORBELL = 1;
const INFO_INVALID_DOORBELL_VALUE = 2;
const LOG_ERROR = 0x01;

export class NvmeController implements ControllerContext {
  readonly core: Core;
  readonly name: string;
  readonly maxIoQueues: number;
  readonly maxQueueEntries: number;
  readonly vectors: number;
  readonly mdts: number;
  readonly maxTransferBytes: number;
  /** CAP (constant for the controller's life). */
  private readonly cap: bigint;
  /** BAR0 size in bytes. */
  readonly barSize: number;
  readonly sqs = new QueueTable<SubmissionQueue>();
  readonly cqs = new Map<number, CompletionQueue>();
  readonly features = new Map<number, number>();
  readonly health: HealthCounters = { blocksRead: 0, blocksWritten: 0, readCommands: 0, writeCommands: 0, errors: 0 };
  /** What the controller ignored or refused, by reason (bad doorbells, MMIO outside the registers...). */
  readonly counters: Record<string, number> = {};
  onInterrupt: ((vector: number) => void) | null;
  /** Run commands inside the doorbell write (the option of that name); an emulator binding that must not do so turns it off. */
  processOnDoorbell: boolean;
  /** Set by a fabric front end (NvmeTcpTarget) while a host is associated: its controller id, the subsystem NQN, capsule sizes. */
  fabrics: (FabricsIdentity & { cntlid: number; subnqn: string }) | null = null;
  /** The DMA domain the controller reaches memory through. */
  readonly dma: NvmeDma;
  /** The same domain when guest RAM is outside core memory (the walkers read lists through it). */
  private readonly external: ExternalDmaDomain | null;
  private readonly disks: BlockBackend[];
  /** The walks' settings (MDTS, mappings per command, where guest RAM is), resolved once. */
  private readonly walkOptions: ResolvedOptions;
  private readonly taps: TapRegistry | null;
  private readonly admin: Stages | null;
  private readonly io: Stages | null;
  private readonly regread: StagePoint | null;
  private readonly regwrite: StagePoint | null;
  private readonly msix: StagePoint | null;
  private readonly opts: NvmeControllerOptions;
  private cc = 0;
  private csts = 0;
  private aqa = 0;
  private asq = 0n;
  private acq = 0n;
  private intms = 0;
  private aers: Command[] = [];
  private toSignal: CompletionQueue[] = [];
  /** Command records free for the next fetch. */
  private readonly spare: FetchedCommand[] = [];
  private sqCache: SubmissionQueue[] = [];
  private sqCacheVersion = -1;
  private events: number[] = [];
  private errors: Uint8Array[] = [];
  private errorCount = 0;
  private inflight = 0;
  private processing = false;
  private generation = 0;
  private clock = 0n;

  constructor(core: Core, opts: NvmeControllerOptions) {
    optionNames(opts, ['dma', 'namespaces', 'maxQueues', 'maxQueueEntries', 'mdts', 'vectors', 'onInterrupt', 'taps', 'name', 'serial', 'model', 'processOnDoorbell'], 'NvmeController');
    if (!opts?.dma || typeof opts.dma.gather !== 'function') throw new SgringError('InvalidArgument', 'NvmeController needs dma: an IommuDomain or an ExternalDmaDomain');
    if (!Array.isArray(opts.namespaces) || opts.namespaces.length === 0 || opts.namespaces.some((n) => !n?.backend)) {
      throw new SgringError('InvalidArgument', 'NvmeController needs namespaces: [{ backend }, ...]');
    }
    const int = (v: number | undefined, d: number, lo: number, hi: number, what: string) => {
      const x = v ?? d;
      if (!Number.isInteger(x) || x < lo || x > hi) throw new SgringError('InvalidArgument', `NvmeController: ${what} ${String(v)} must be an integer in [${lo}, ${hi}]`);
      return x;
    };
    this.core = core;
    this.laneCopies = new CopyBatch(core, LANE_ENTRIES);
    this.opts = opts;
    this.dma = opts.dma;
    this.external = opts.dma instanceof ExternalDmaDomain ? opts.dma : null;
    this.disks = opts.namespaces.map((n) => n.backend);
    this.maxIoQueues = int(opts.maxQueues, 16, 1, 1024, 'maxQueues');
    this.maxQueueEntries = int(opts.maxQueueEntries, 1024, 2, 65536, 'maxQueueEntries');
    this.mdts = int(opts.mdts, 9, 1, 12, 'mdts');
    this.maxTransferBytes = 4096 * 2 ** this.mdts;
    this.cap = capability(this.maxQueueEntries - 1, 20);
    this.vectors = int(opts.vectors, this.maxIoQueues + 1, 1, 2048, 'vectors');
    this.barSize = bar0Size(this.maxIoQueues + 1);
    this.walkOptions = resolveOptions({ mdts: this.mdts, maxMappings: 4096, guest: this.external ?? undefined });
    this.name = opts.name ?? 'nvme0';
    this.onInterrupt = opts.onInterrupt ?? null;
    this.processOnDoorbell = opts.processOnDoorbell ?? true;
    this.taps = opts.taps ?? null;
    if (this.taps) {
      const stage = (s: string) => ({ name: s, description: '' });
      const points = this.taps.declare(this.name, [
        ...['fetch', 'decode', 'execute', 'writeback'].map((s) => stage(`nvme:admin:${s}`)),
        ...['fetch', 'decode', 'execute', 'writeback'].map((s) => stage(`nvme:io:${s}`)),
        stage('pci:regread:writeback'), stage('pci:regwrite:decode'), stage('nvme:msix:writeback'),
      ], { encoder: nvmeTcpEncoder });
      const group = (o: number): Stages => ({ fetch: points[o]!, decode: points[o + 1]!, execute: points[o + 2]!, writeback: points[o + 3]! });
      this.admin = group(0);
      this.io = group(4);
      this.regread = points[8]!;
      this.regwrite = points[9]!;
      this.msix = points[10]!;
    } else {
      this.admin = this.io = null;
      this.regread = this.regwrite = this.msix = null;
    }
    this.reset();
  }

  /** Namespace `nsid` (1-based), or undefined. */
  namespace(nsid: number): BlockBackend | undefined {
    return nsid >= 1 && nsid <= this.disks.length ? this.disks[nsid - 1] : undefined;
  }

  get namespaceCount(): number {
    return this.disks.length;
  }

  /**
   * The level of a pin-based (INTx) interrupt: true while a CQ with interrupts enabled holds
   * completions the host has not consumed (its tail ahead of the last head doorbell) and its
   * vector is not masked by INTMS.
   */
  get interruptPending(): boolean {
    for (const cq of this.cqs.values()) {
      if (cq.ien && cq.tail !== cq.head && !(cq.vector < 32 && (this.intms & (1 << cq.vector)) !== 0)) return true;
    }
    return false;
  }

  /** True while CSTS.RDY is set. */
  get ready(): boolean {
    return (this.csts & CSTS_RDY) !== 0;
  }

  identity(): ControllerIdentity {
    return {
      vendorId: 0x1b36, serial: this.opts.serial ?? `SGR${this.name}`, model: this.opts.model ?? 'sgring NVMe', firmware: '1.0',
      mdts: this.mdts, namespaces: this.disks.length, maxQueueEntries: this.maxQueueEntries, cntlid: this.fabrics?.cntlid ?? 1,
      subnqn: this.fabrics?.subnqn ?? `nqn.2026-12.sgring:${this.name}`, aerl: 3, acl: 3, fabrics: this.fabrics ?? undefined,
    };
  }

  // ---- BAR0 ----

  /** Reads a BAR0 register: size 4 gives a number, 8 (CAP, ASQ, ACQ) a bigint. Outside the registers: 0. */
  mmioRead(offset: number, size: 4 | 8): number | bigint {
    let v = this.readRegister(offset, size);
    if (this.regread?.taps) {
      const completion = { status: 0, cdw0: typeof v === 'bigint' ? Number(v & 0xffff_ffffn) : v };
      const o = this.taps!.run(this.regread, this.regEvent(offset, completion));
      if (o.action === 'complete' && typeof v === 'number') v = completion.cdw0 >>> 0;
    }
    return v;
  }

  /** Writes a BAR0 register (4 bytes; 8 for ASQ / ACQ). Misaligned, narrow or read-only writes are ignored and counted. */
  mmioWrite(offset: number, size: 4 | 8, value: number | bigint): void {
    if (this.regwrite?.taps) {
      const completion = { status: 0, cdw0: Number(BigInt(value) & 0xffff_ffffn) };
      const o = this.taps!.run(this.regwrite, this.regEvent(offset, completion));
      if (o.action === 'drop' || o.action === 'complete') return;
    }
    if (!Number.isInteger(offset) || offset < 0 || (size !== 4 && size !== 8) || offset % 4 !== 0 || offset > this.barSize - size) return this.count('mmioIgnored');
    // The per-command path: a 32-bit doorbell write of a number needs no 64-bit arithmetic.
    if (offset >= REG.DOORBELLS && size === 4 && typeof value === 'number' && value >= 0 && value <= 0xffff_ffff && Number.isInteger(value)) {
      return this.doorbell((offset - REG.DOORBELLS) >> 2, value);
    }
    const v = BigInt.asUintN(64, BigInt(value));
    if (offset >= REG.DOORBELLS) {
      if (size !== 4) return this.count('mmioIgnored');
      return this.doorbell((offset - REG.DOORBELLS) >> 2, Number(v & 0xffff_ffffn));
    }
    const lo = Number(v & 0xffff_ffffn);
    switch (offset) {
      case REG.INTMS: this.intms |= lo; return;
      case REG.INTMC: this.intms &= ~lo; return;
      case REG.CC: return this.writeCc(lo);
      case REG.AQA: if (!this.enabled) this.aqa = lo & 0x0fff0fff; return;
      case REG.ASQ: if (!this.enabled) this.asq = size === 8 ? v : (this.asq & 0xffff_ffff_0000_0000n) | v; return;
      case REG.ASQ + 4: if (!this.enabled) this.asq = (this.asq & 0xffff_ffffn) | (v << 32n); return;
      case REG.ACQ: if (!this.enabled) this.acq = size === 8 ? v : (this.acq & 0xffff_ffff_0000_0000n) | v; return;
      case REG.ACQ + 4: if (!this.enabled) this.acq = (this.acq & 0xffff_ffffn) | (v << 32n); return;
      default: return this.count('mmioReadOnly');
    }
  }

  private readRegister(offset: number, size: number): number | bigint {
    if (!Number.isInteger(offset) || offset < 0 || (size !== 4 && size !== 8) || offset % 4 !== 0 || offset > this.barSize - size) {
      this.count('mmioIgnored');
      return size === 8 ? 0n : 0;
    }
    const reg64 = (o: number): bigint => {
      if (o === REG.CAP) return this.cap;
      if (o === REG.ASQ) return this.asq;
      if (o === REG.ACQ) return this.acq;
      return BigInt(this.reg32(o)) | (BigInt(this.reg32(o + 4)) << 32n);
    };
    if (size === 8) return reg64(offset);
    return this.reg32(offset);
  }

  private reg32(o: number): number {
    switch (o) {
      case REG.CAP: return Number(this.cap & 0xffff_ffffn);
      case REG.CAP + 4: return Number(this.cap >> 32n);
      case REG.VS: return VERSION_1_4;
      case REG.INTMS: case REG.INTMC: return this.intms >>> 0;
      case REG.CC: return this.cc >>> 0;
      case REG.CSTS: return this.csts;
      case REG.AQA: return this.aqa;
      case REG.ASQ: return Number(this.asq & 0xffff_ffffn);
      case REG.ASQ + 4: return Number(this.asq >> 32n);
      case REG.ACQ: return Number(this.acq & 0xffff_ffffn);
      case REG.ACQ + 4: return Number(this.acq >> 32n);
      default: return 0; // doorbells and reserved registers read as 0
    }
  }

  private get enabled(): boolean {
    return cc.en(this.cc) === 1;
  }

  /** CC: EN 0 -> 1 brings the admin queue up (or sets CFS); 1 -> 0 resets; SHN completes a shutdown at once. */
  private writeCc(v: number): void {
    const wasEnabled = this.enabled;
    // CSS, MPS and AMS latch only while disabled.
    this.cc = wasEnabled ? (this.cc & 0x3ff0) | (v & ~0x3ff0) : v;
    if (cc.shn(v) !== 0) {
      for (const d of this.disks) {
        try {
          const r = d.flush();
          if (isPromise(r)) r.catch(() => {});
        } catch {
          // a failing flush at shutdown is the backend's to report; the shutdown completes
        }
      }
      this.csts = (this.csts & ~0xc) | CSTS_SHST_COMPLETE;
    } else {
      this.csts &= ~0xc;
    }
    if (!wasEnabled && this.enabled) this.enable();
    else if (wasEnabled && !this.enabled) this.reset();
  }

  private enable(): void {
    const asqs = (this.aqa & 0xfff) + 1;
    const acqs = ((this.aqa >>> 16) & 0xfff) + 1;
    const bad = asqs < 2 || acqs < 2 || cc.iosqes(this.cc) !== 6 || cc.iocqes(this.cc) !== 4 || cc.css(this.cc) !== 0 || cc.mps(this.cc) !== 0 ||
      this.checkRing(Number(this.asq & ~0xfffn), asqs * 64) !== 0 || this.checkRing(Number(this.acq & ~0xfffn), acqs * 16) !== 0 ||
      this.asq > BigInt(Number.MAX_SAFE_INTEGER) || this.acq > BigInt(Number.MAX_SAFE_INTEGER);
    if (bad) {
      this.csts |= CSTS_CFS;
      this.count('enableRefused');
      return;
    }
    this.cqs.set(0, { id: 0, gpa: Number(this.acq & ~0xfffn), size: acqs, ien: true, vector: 0, tail: 0, head: 0, phase: 1, sqs: 1, held: [], laneWaiting: 0 });
    this.sqs.set(0, { id: 0, gpa: Number(this.asq & ~0xfffn), size: asqs, cqid: 0, head: 0, tail: 0 });
    this.csts = (this.csts & ~CSTS_CFS) | CSTS_RDY;
  }

  /** Controller reset (CC.EN 1 -> 0, and at construction): every queue, event and feature forgotten, RDY cleared last. */
  private reset(): void {
    this.generation++; // completions of commands still running from before are dropped
    this.sqs.clear();
    this.cqs.clear();
    this.aers = [];
    this.toSignal = [];
    this.events = [];
    this.features.clear();
    this.features.set(FID.numberOfQueues, ((this.maxIoQueues - 1) << 16) | (this.maxIoQueues - 1));
    this.features.set(FID.volatileWriteCache, 1);
    for (const f of [FID.arbitration, 0x02, 0x04, FID.interruptCoalescing, FID.asyncEventConfig]) this.features.set(f, 0);
    this.inflight = 0;
    this.csts &= ~(CSTS_RDY | CSTS_CFS);
  }

  /** 0 when [gpa, gpa+bytes) can hold a queue (mapped for the device both ways), else the status to refuse with. */
  checkRing(gpa: number, bytes: number): number {
    try {
      this.dma.check(gpa, bytes, 'read');
      this.dma.check(gpa, bytes, 'write');
      return 0;
    } catch {
      return NVME_SC.invalidField;
    }
  }

  // ---- doorbells ----

  private doorbell(index: number, value: number): void {
    const qid = index >> 1;
    const isCq = (index & 1) === 1;
    if (!this.ready) return this.count('doorbellNotReady');
    const q = isCq ? this.cqs.get(qid) : this.sqs.get(qid);
    if (!q) {
      this.count('doorbellNoQueue');
      return this.event(EVENT_ERROR, INFO_INVALID_DOORBELL, LOG_ERROR);
    }
    if (value >= q.size || value > 0xffff) {
      this.count('doorbellBadValue');
      return this.event(EVENT_ERROR, INFO_INVALID_DOORBELL_VALUE, LOG_ERROR);
    }
    if (isCq) {
      const cq = q as CompletionQueue;
      cq.head = value;
      if (drainHeld(this.dma, cq) > 0) this.interrupt(cq);
    } else {
      (q as SubmissionQueue).tail = value;
    }
    if (this.processOnDoorbell) this.process();
  }

  // ---- command processing ----

  /**
   * Fetches and runs commands from every SQ with work, admin first, round robin, at most
   * `budget`; a queue whose CQ is full waits for its head doorbell. Returns the commands started.
   */
  process(budget = Infinity): number {
    if (this.processing || !this.ready) return 0;
    this.processing = true;
    let n = 0;
    // Untapped I/O on synchronous namespaces takes the fast lane; the arbitration burst bounds what one SQ runs per round.
    const fast = this.external === null && (this.io === null || !tappedStages(this.io));
    const ab = this.features.get(FID.arbitration)! & 7;
    const burst = ab === 7 ? Infinity : 1 << ab;
    try {
      for (let progress = true; progress && n < budget;) {
        progress = false;
        const list = this.sqList();
        const version = this.sqs.version;
        for (let i = 0; i < list.length; i++) {
          const sq = list[i]!;
          if (n >= budget || !this.ready) break;
          // A queue deleted by a command of this round is skipped (the table's version says whether any was).
          if ((this.sqs.version !== version && !this.sqs.has(sq.id)) || sqEmpty(sq)) continue;
          const cq = this.cqs.get(sq.cqid);
          if (!cq || cqFull(cq) || cq.held.length > 0) continue;
          if (fast && sq.id !== 0) {
            const k = this.fastLane(sq, cq, Math.min(budget - n, burst));
            n += k;
            progress ||= k > 0;
            // Its burst taken, the queue waits for the next round; else the command the lane left is the general path's.
            if (k === burst || sqEmpty(sq) || cqFull(cq)) continue;
          }
          // The lane's commands complete before anything the general path runs (their completions may take the last slots).
          this.laneFlush();
          if (cqFull(cq)) continue;
          let c: FetchedCommand;
          try {
            c = fetchSqe(this.dma, sq, this.spare.pop() ?? new FetchedCommand());
          } catch {
            // The SQ's memory became unreachable (unmapped after creation): the controller cannot go on.
            this.csts |= CSTS_CFS;
            this.count('fetchFault');
            return n;
          }
          this.run(c, sq.id === 0 ? this.admin : this.io);
          n++;
          progress = true;
        }
      }
    } finally {
      this.laneFlush(); // also when something threw: no completion stays behind
      this.processing = false;
      this.signal();
    }
    return n;
  }

  /**
   * Reads and writes on a synchronous namespace whose PRPs need at most one list page, straight
   * from the SQ slot to the CQ slot: the blocks move in place between the disk and guest memory
   * (one backend call per run of adjacent pages; on a disk in core memory, a copy added to the
   * lane's batch, which process() moves in one engine call before it posts the completions that
   * wait for it), with no command record, walk or result object.
   * Each field is read from the slot once; the lane runs a command only when every check passes,
   * and stops at the first one that is anything else (another opcode, a list that chains, a field
   * out of range, a page not granted...), which the general path then fetches and answers.
   * Returns the commands it ran.
   */
  private fastLane(sq: SubmissionQueue, cq: CompletionQueue, budget: number): number {
    const dma = this.dma as IommuDomain;
    let n = 0;
    // Completions wait in the lane until their copies have moved (to the end of process(), or
    // until the general path runs a command): each needs a free CQ slot now.
    while (n < budget && sq.head !== sq.tail && cq.laneWaiting < (cq.head - cq.tail - 1 + cq.size) % cq.size) {
      const at = dma.grantedOffset(sq.gpa + sq.head * 64, 64, DMA_READ);
      if (at < 0) break;
      const u32 = this.core.u32;
      const w = at >>> 2;
      const dw0 = u32[w]!;
      const opcode = dw0 & 0xff;
      // Flags byte 0: no fused operation, PRPs (PSDT 0).
      if ((opcode !== NVM_WRITE && opcode !== NVM_READ) || (dw0 & 0xff00) !== 0) break;
      const nsid = u32[w + 1]!;
      const disk = nsid >= 1 && nsid <= this.disks.length ? this.disks[nsid - 1]! : null;
      if (disk === null || disk.synchronous !== true || (opcode === NVM_WRITE && disk.readOnly)) break;
      const blocks = (u32[w + 12]! & 0xffff) + 1;
      const bytes = blocks * disk.blockSize;
      const hi = u32[w + 11]!;
      const lba = hi * 0x1_0000_0000 + u32[w + 10]!;
      if (bytes > this.maxTransferBytes || hi >= 0x200000 || lba > disk.blockCount || blocks > disk.blockCount - lba) break;
      const prp1 = u32[w + 6]!;
      const bs = disk.blockSize;
      const first = Math.min(bytes, PAGE - (prp1 % PAGE));
      if (u32[w + 7] !== 0 || prp1 % 4 !== 0 || first % bs !== 0) break;
      const bits = opcode === NVM_READ ? DMA_WRITE : DMA_READ; // the device writes guest memory on a read
      const p1 = dma.grantedOffset(prp1, first, bits);
      if (p1 < 0) break;
      this.laneRuns[0] = p1;
      this.laneRuns[1] = first;
      this.laneCount = 1;
      let rest = bytes - first;
      if (rest > 0) {
        const prp2 = u32[w + 8]!;
        if (u32[w + 9] !== 0) break;
        // PRP2 is the second page, or (more than one page left) a list: one list page here,
        // whose entries are read once each; a list that chains is the general path's.
        const entries = rest > PAGE ? Math.ceil(rest / PAGE) : 0;
        const la = entries > 0 && prp2 % 8 === 0 && entries <= (PAGE - (prp2 % PAGE)) / 8 ? dma.grantedOffset(prp2, entries * 8, DMA_READ) : -1;
        if (entries === 0 ? prp2 % PAGE !== 0 : la < 0) break;
        const list = la >>> 2;
        // Adjacent pages make one run, checked at once (up to 32 pages) when the next one does not follow.
        let run = 0;
        let runLen = 0;
        for (let i = 0; rest > 0; i++) {
          const page = entries === 0 ? prp2 : u32[list + 2 * i]!;
          const len = Math.min(rest, PAGE);
          if ((entries > 0 && u32[list + 2 * i + 1] !== 0) || page % PAGE !== 0 || len % bs !== 0) break;
          if (runLen > 0 && page === run + runLen && runLen < 32 * PAGE) runLen += len;
          else {
            if (runLen > 0 && !this.laneRun(run, runLen, bits)) break;
            run = page;
            runLen = len;
          }
          rest -= len;
        }
        if (rest > 0 || !this.laneRun(run, runLen, bits)) break; // an entry or a page the lane does not take
      }
      const cid = dw0 >>> 16;
      sq.head = (sq.head + 1) % sq.size;
      const region = disk.inCore === undefined ? -1 : disk.inCore(this.core, lba, blocks, opcode === NVM_WRITE);
      let status = 0;
      if (region >= 0) {
        // A disk in core memory: the copies join the lane's batch, the completion waits for them.
        if (this.laneCopies.size + this.laneCount > LANE_ENTRIES || this.laneCqes === LANE_CQES) this.laneFlush();
        this.laneBatch(region, opcode === NVM_READ, cq, sq.id, cid, sq.head);
      } else {
        this.laneFlush(); // what the batch holds goes first
        try {
          const runs = this.laneRuns;
          for (let i = 0, at = lba; i < this.laneCount; i++) {
            const b = runs[2 * i + 1]! / bs;
            if (opcode === NVM_READ) disk.read(at, b, runs[2 * i]!);
            else disk.write(at, b, runs[2 * i]!);
            at += b;
          }
        } catch (e) {
          status = backendStatus(e);
        }
      }
      const h = this.health;
      if (status !== 0) {
        h.errors++;
        this.logError(sq.id, cid, nsid, status);
      } else if (opcode === NVM_READ) {
        h.readCommands++;
        h.blocksRead += blocks;
      } else {
        h.writeCommands++;
        h.blocksWritten += blocks;
      }
      if (region < 0) postCqe(dma, cq, 0, sq.head, sq.id, cid, status);
      n++;
    }
    if (n > 0) this.interrupt(cq); // signalled at the end of process(), after the flush
    return n;
  }

  /** The lane's batch: copies, and the completions waiting for them (CQ, SQ id, CID, SQ head). */
  private readonly laneCopies: CopyBatch;
  private readonly laneWaiting = new Uint32Array(3 * LANE_CQES);
  private readonly laneCqs: (CompletionQueue | null)[] = new Array<CompletionQueue | null>(LANE_CQES).fill(null);
  private laneCqes = 0;

  /** Adds the current command's runs (laneRuns) to the batch, against the disk region at `region`, and its completion. */
  private laneBatch(region: number, read: boolean, cq: CompletionQueue, sqid: number, cid: number, sqhd: number): void {
    const runs = this.laneRuns;
    for (let i = 0, at = region; i < this.laneCount; i++) {
      const ptr = runs[2 * i]!;
      const len = runs[2 * i + 1]!;
      if (read) this.laneCopies.add(ptr, at, len);
      else this.laneCopies.add(at, ptr, len);
      at += len;
    }
    const k = this.laneCqes++;
    this.laneCqs[k] = cq;
    this.laneWaiting[3 * k] = sqid;
    this.laneWaiting[3 * k + 1] = cid;
    this.laneWaiting[3 * k + 2] = sqhd;
    cq.laneWaiting++;
  }

  /** Moves the batch's copies in one engine call (interleaved where that gives the same bytes), then posts the completions that waited for them. */
  private laneFlush(): void {
    this.laneCopies.flush();
    const w = this.laneWaiting;
    for (let i = 0; i < this.laneCqes; i++) {
      const cq = this.laneCqs[i]!;
      this.laneCqs[i] = null;
      cq.laneWaiting--;
      postCqe(this.dma, cq, 0, w[3 * i + 2]!, w[3 * i]!, w[3 * i + 1]!, 0);
    }
    this.laneCqes = 0;
  }

  /** The fast lane's runs of guest memory for one command: core offset, bytes (PRP1 and a list page of up to 512 entries). */
  private readonly laneRuns = new Uint32Array(2 * 513);
  private laneCount = 0;

  /** Adds guest run [gpa, gpa+len) to the lane's runs if the device may access it (`bits`), merged with the last run when adjacent in core memory. */
  private laneRun(gpa: number, len: number, bits: number): boolean {
    const at = (this.dma as IommuDomain).grantedOffset(gpa, len, bits);
    if (at < 0) return false;
    const runs = this.laneRuns;
    const last = 2 * this.laneCount - 2;
    if (at === runs[last]! + runs[last + 1]!) runs[last + 1] += len;
    else {
      runs[last + 2] = at;
      runs[last + 3] = len;
      this.laneCount++;
    }
    return true;
  }

  /** Commands fetched whose completion is not posted yet (async backends, delaying taps, AERs). */
  get pending(): number {
    return this.inflight + this.aers.length;
  }

  /** The SQs in a stable order, for process(); rebuilt when the set of queues changes. */
  private sqList(): SubmissionQueue[] {
    if (this.sqCacheVersion !== this.sqs.version) {
      this.sqCache = [...this.sqs.values()];
      this.sqCacheVersion = this.sqs.version;
    }
    return this.sqCache;
  }

  private run(c: FetchedCommand, stages: Stages | null): void {
    const gen = this.generation;
    this.inflight++;
    // The staged pipeline (async, an event per stage) only while a tap is attached to one of its stages.
    const tapped = stages !== null && tappedStages(stages);
    // An untapped I/O command is referred to by nothing once it completes: its record serves the next one.
    const reuse = !tapped && c.sqid !== 0;
    const r = tapped ? this.pipeline(c, stages) : this.execute(c, null);
    if (isPromise(r)) {
      r.then((res) => this.finish(c, res, gen, reuse), () => this.finish(c, { status: NVME_SC.internalError, cdw0: 0 }, gen, reuse)).finally(() => this.process());
    } else this.finish(c, r, gen, reuse);
  }

  private finish(c: FetchedCommand, r: Result | null, gen: number, reuse: boolean): void {
    this.inflight--;
    if (r !== null && gen === this.generation) this.complete(c, r);
    if (r?.release !== undefined) this.core.free(r.release);
    if (reuse && r !== null && this.spare.length < 256) this.spare.push(c);
  }

  private execute(c: Command, stage: ((data: Uint8Array | null) => Result | null) | null): Result | null | Promise<Result | null> {
    if (c.sqid === 0) return executeAdmin(this, c);
    const r = executeIo(this, c, stage);
    return isPromise(r) ? r.then((res) => this.account(c, res)) : this.account(c, r);
  }

  /** SMART counters for an I/O command's result. */
  private account(c: Command, res: Result): Result {
    const h = this.health;
    if (res.status !== 0) h.errors++;
    else if (c.opcode === 0x02) {
      h.readCommands++;
      h.blocksRead += (c.cdw(12) & 0xffff) + 1;
    } else if (c.opcode === 0x01) {
      h.writeCommands++;
      h.blocksWritten += (c.cdw(12) & 0xffff) + 1;
    }
    return res;
  }

  /** The staged path: each stage's taps may complete, drop, delay or edit the command. */
  private async pipeline(c: Command, s: Stages): Promise<Result | null> {
    const completion = { status: 0, cdw0: 0 };
    const stage = async (p: StagePoint, data: Uint8Array | null): Promise<'go' | 'complete' | 'drop' | Result> => {
      if (p.taps === null) return 'go';
      const o = this.taps!.run(p, this.cmdEvent(c, completion, data));
      if (o.error) return { status: NVME_SC.internalError, cdw0: 0 };
      if (o.wait) await o.wait;
      return o.action === 'continue' ? 'go' : o.action;
    };
    for (const p of [s.fetch, s.decode]) {
      const r = await stage(p, null);
      if (r === 'drop') return null;
      if (typeof r === 'object') return r;
      if (r === 'complete') return this.writeback(c, s, { status: completion.status, cdw0: completion.cdw0 }, completion);
    }
    let staged: Result | null = null;
    let execWait: Promise<unknown> | null = null;
    const res = await this.execute(c, (data) => {
      // The execute stage sees the data before it goes back to the host (reads) or to the disk (writes).
      if (s.execute.taps === null) return null;
      const o = this.taps!.run(s.execute, this.cmdEvent(c, completion, data));
      if (o.error) return (staged = { status: NVME_SC.internalError, cdw0: 0 });
      if (o.wait) execWait = o.wait;
      if (o.action === 'drop') return (staged = { status: -1, cdw0: 0 });
      if (o.action === 'complete') return (staged = { status: completion.status, cdw0: completion.cdw0 });
      return null;
    });
    if (execWait) await execWait;
    if (res === null) return null; // an AER: completes later
    if (staged !== null && (staged as Result).status === -1) {
      if (res.release !== undefined) this.core.free(res.release);
      return null;
    }
    if (s.execute.taps !== null && staged === null && c.sqid === 0) {
      const r = await stage(s.execute, res.data ?? null);
      if (r === 'drop') return null;
      if (typeof r === 'object') return r;
      if (r === 'complete') res.status = completion.status, res.cdw0 = completion.cdw0;
    }
    completion.status = res.status;
    completion.cdw0 = res.cdw0;
    return this.writeback(c, s, res, completion);
  }

  private async writeback(c: Command, s: Stages, res: Result, completion: { status: number; cdw0: number }): Promise<Result | null> {
    completion.status = res.status;
    completion.cdw0 = res.cdw0;
    if (s.writeback.taps !== null) {
      const o = this.taps!.run(s.writeback, this.cmdEvent(c, completion, c.opcode === 0x02 && c.sqid !== 0 ? res.data ?? null : null));
      if (o.error) return { ...res, status: NVME_SC.internalError, cdw0: 0 };
      if (o.wait) await o.wait;
      if (o.action === 'drop') return res.release !== undefined ? (this.core.free(res.release), null) : null;
    }
    return { ...res, status: completion.status, cdw0: completion.cdw0 };
  }

  private cmdEvent(c: Command, completion: { status: number; cdw0: number }, data: Uint8Array | null): TapEvent {
    const io = c.sqid === 0;
    const kind = io ? 'admin' : c.opcode === 0x01 ? 'write' : c.opcode === 0x02 ? 'read' : c.opcode === 0x00 ? 'flush' : c.opcode === 0x09 || c.opcode === 0x08 ? 'discard' : 'other';
    const blocks = (c.cdw(12) & 0xffff) + 1;
    const disk = this.namespace(c.nsid);
    return {
      device: this.name, queue: c.sqid, command: c.sqe, completion, data: data ? [data] : null,
      io: io ? { kind, opcode: c.opcode } : { kind, opcode: c.opcode, lba: (BigInt(c.cdw(11)) << 32n) | BigInt(c.cdw(10)), blocks },
      statuses: NVME_TAP_STATUSES, request: `${c.sqid}:${c.cid}`, timeNs: this.now(),
      detail: { sqhd: c.sqhd, transferBytes: !io && (kind === 'read' || kind === 'write') && disk ? blocks * disk.blockSize : data?.length ?? 0 },
    };
  }

  private regEvent(offset: number, completion: { status: number; cdw0: number }): TapEvent {
    return {
      device: this.name, queue: 0, io: { kind: 'other', opcode: offset }, command: null, completion, data: null,
      statuses: NVME_TAP_STATUSES, request: `reg:${offset}`, timeNs: this.now(), detail: { offset },
    };
  }

  private now(): bigint {
    const t = BigInt(Math.round((globalThis.performance?.now() ?? Date.now()) * 1e6));
    this.clock = t > this.clock ? t : this.clock + 1n;
    return this.clock;
  }

  /** Posts the CQE for `c` on its SQ's CQ (held if full) and interrupts. */
  private complete(c: Command, r: Result): void {
    const sq = this.sqs.get(c.sqid);
    if (!sq) return; // the SQ was deleted meanwhile
    const cq = this.cqs.get(sq.cqid);
    if (!cq) return;
    if (r.status !== 0 && c.sqid !== 0) this.logError(c.sqid, c.cid, c.nsid, r.status);
    if (postCqe(this.dma, cq, r.cdw0, c.sqhd, c.sqid, c.cid, r.status)) this.interrupt(cq);
  }

  /**
   * Interrupts for completions posted while process() runs wait for its end: one per CQ for the
   * whole batch (a real controller coalesces too; the host reaps everything new on each).
   */
  private interrupt(cq: CompletionQueue): void {
    if (this.processing) {
      if (!this.toSignal.includes(cq)) this.toSignal.push(cq);
      return;
    }
    this.fire(cq);
  }

  private signal(): void {
    while (this.toSignal.length > 0) this.fire(this.toSignal.shift()!);
  }

  private fire(cq: CompletionQueue): void {
    if (!cq.ien || !this.onInterrupt || this.cqs.get(cq.id) !== cq) return;
    if (cq.vector < 32 && (this.intms & (1 << cq.vector)) !== 0) return; // masked (INTMS/INTMC)
    if (this.msix?.taps) {
      // A tap may drop the message (a lost interrupt: the driver must find the completions anyway).
      const completion = { status: 0, cdw0: cq.vector };
      const o = this.taps!.run(this.msix, { ...this.regEvent(cq.vector, completion), queue: cq.id, request: `msix:${cq.id}` });
      if (o.action === 'drop' || o.action === 'complete') return;
    }
    this.onInterrupt(cq.vector);
  }

  // ---- asynchronous events and the error log ----

  /** An AER command: completes at once if an event waits, else later. */
  queueAer(c: Command): Result | null {
    const ev = this.events.shift();
    if (ev !== undefined) return { status: 0, cdw0: ev };
    if (this.aers.length > this.identity().aerl) return { status: NVME_SC.aerLimitExceeded, cdw0: 0 };
    this.aers.push(c); // `pending` counts it until an event completes it
    return null;
  }

  private event(type: number, info: number, lid: number): void {
    const dw0 = type | (info << 8) | (lid << 16);
    const c = this.aers.shift();
    if (c) {
      this.complete(c, { status: 0, cdw0: dw0 });
      return;
    }
    if (this.events.length < 16) this.events.push(dw0);
  }

  private logError(sqid: number, cid: number, nsid: number, status: number): void {
    const e = new Uint8Array(64);
    const dv = new DataView(e.buffer);
    // Error Count: unique and increasing per entry (a count read when the entry is posted would
    // repeat when several commands of the staged pipeline fail before the first one completes).
    dv.setBigUint64(0, BigInt(++this.errorCount), true);
    dv.setUint16(8, sqid, true);
    dv.setUint16(10, cid, true);
    dv.setUint16(12, status << 1, true);
    dv.setUint32(24, nsid, true);
    this.errors.unshift(e);
    if (this.errors.length > 64) this.errors.pop();
  }

  /** Error Information log page: the newest 64 entries of 64 bytes. */
  errorLog(): Uint8Array {
    const b = new Uint8Array(64 * 64);
    this.errors.forEach((e, i) => b.set(e, 64 * i));
    return b;
  }

  // ---- data movement ----

  /** The guest segments a command's data pointer names for `length` bytes, or the status to fail with. */
  dataSegments(c: Command, length: number): NvmeSegment[] | number {
    const psdt = c.sqe[1]! >>> 6;
    const r = psdt === 0
      ? walkPrpWords(this.core, this.walkOptions, c.cdw(6), c.cdw(7), c.cdw(8), c.cdw(9), length)
      : psdt === 3 ? null : walkSgl(this.core, { sgl1: c.sqe.subarray(24, 40), length, mdts: this.mdts, maxMappings: 4096, guest: this.external ?? undefined });
    if (r === null) return NVME_SC.invalidField;
    if (!r.ok) return r.status.field;
    // The walker reads PRP list pages and SGL segments from the guest window; whether the device may
    // read them is the DMA domain's to say, before any data moves ([H24] for list memory).
    return this.listsReadable(c, length, psdt) ? r.segments : NVME_SC.dataTransferError;
  }

  /** True when every PRP list entry or SGL segment a walk of `c` read is readable through the DMA domain. */
  private listsReadable(c: Command, length: number, psdt: number): boolean {
    if (this.external) return true; // every list read already went through its checks (copyOut)
    try {
      if (psdt === 0) {
        const prp1 = Number(c.u64(24));
        const first = PAGE - (prp1 % PAGE);
        if (length <= first + PAGE) return true; // PRP2 is data or unused
        let entries = Math.ceil((length - first) / PAGE);
        let at = Number(c.u64(32));
        for (;;) {
          const slots = (PAGE - (at % PAGE)) / 8;
          if (entries <= slots) {
            this.dma.check(at, entries * 8, 'read');
            return true;
          }
          this.dma.check(at, slots * 8, 'read');
          entries -= slots - 1;
          at = Number(this.readU64(at + (slots - 1) * 8));
        }
      }
      // SGL: follow Segment (2) / Last Segment (3) descriptors; each names a list whose last descriptor may chain on.
      let desc = c.sqe.subarray(24, 40);
      for (let n = 0; n < 4096; n++) {
        const type = desc[15]! >>> 4;
        if (type !== 2 && type !== 3) return true;
        const dv = new DataView(desc.buffer, desc.byteOffset, 16);
        const at = Number(dv.getBigUint64(0, true));
        const bytes = dv.getUint32(8, true);
        this.dma.check(at, bytes, 'read');
        if (type === 3 || bytes < 16) return true;
        desc = this.dma.read(at + bytes - 16, 16);
      }
      return false;
    } catch (e) {
      if (e instanceof SgringError) return false;
      throw e;
    }
  }

  private readU64(gpa: number): bigint {
    const b = this.dma.read(gpa, 8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  }

  walkInPlace(c: Command, length: number, access: 'read' | 'write'): number {
    if (this.external || (c.sqe[1]! >>> 6) !== 0) return -1;
    const n = walkPrpInto(this.core, this.walkOptions, c.cdw(6), c.cdw(7), c.cdw(8), c.cdw(9), length);
    if (n < 0 || !this.listsReadable(c, length, 0)) return -1; // the staged path walks again and says why
    this.walked = walkOutput(this.core) >>> 2;
    const dma = this.dma as IommuDomain;
    try {
      // A few segments are checked page by page from the permission table; a long list in one engine call.
      if (n <= 4) for (let i = 0; i < n; i++) dma.translateSmall(this.walkedAddr(i), this.walkedLen(i), access);
      else dma.checkAt(this.walked << 2, n, access, length);
      return n;
    } catch (e) {
      if (e instanceof SgringError) return -1;
      throw e;
    }
  }

  /** u32 index of the segments walkInPlace left. */
  private walked = 0;

  walkedAddr(i: number): number {
    const u32 = this.core.u32;
    const w = this.walked + 4 * i;
    return u32[w]! + u32[w + 1]! * 0x1_0000_0000;
  }

  walkedLen(i: number): number {
    return this.core.u32[this.walked + 4 * i + 2]!;
  }

  /** Controller -> host through the DMA domain; 0 or Data Transfer Error. */
  toHost(segs: NvmeSegment[], data: Uint8Array | Region): number {
    try {
      this.dma.scatter(segs, data);
      return 0;
    } catch (e) {
      if (e instanceof SgringError) return NVME_SC.dataTransferError;
      throw e;
    }
  }

  /** Host -> controller through the DMA domain; 0 or Data Transfer Error. */
  fromHost(segs: NvmeSegment[], into: Region): number {
    try {
      this.dma.gather(segs, { into });
      return 0;
    } catch (e) {
      if (e instanceof SgringError) return NVME_SC.dataTransferError;
      throw e;
    }
  }

  private count(what: string): void {
    this.counters[what] = (this.counters[what] ?? 0) + 1;
  }
}

/** True when a tap is attached to any stage of the group: its commands take the staged pipeline. */
function tappedStages(s: Stages): boolean {
  return s.fetch.taps !== null || s.decode.taps !== null || s.execute.taps !== null || s.writeback.taps !== null;
}
