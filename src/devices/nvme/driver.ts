// The NVMe host driver: brings a controller up as Linux and FreeBSD do (disable and wait for
// !RDY, admin queue, enable and wait for RDY within CAP.TO, Identify, number of queues, I/O
// queue pairs), submits with command-id tracking, reaps completions by phase tag and rings each
// doorbell once per batch, builds PRPs from the caller's data, and recovers: a command that
// times out is aborted, and if that does not answer, the controller is reset and what did not
// complete is submitted again. Errors are SgringError NvmeCommandFailed with the NVMe status.

import { CoreViews } from '../../engine/core-views';
import type { Core } from '../../engine/core';
import { SgringError } from '../../engine/errors';
import { optionNames } from '../../core/args';
import { buildPrp } from '../../core/nvme-prp';
import { buildPrpInto, resolveOptions } from '../../core/nvme-common';
import { buildSgl } from '../../core/nvme-sgl';
import { copyFromBounce, copyToBounce, planPageList, zeroBounce, type Segment } from '../../core/pagelist';
import type { PageAllocator } from '../../vmbus/guest-pages';
import { capture, settle } from '../../sync/settle';
import { putSqe, takeCqe, type HostQueuePair } from './queues';
import { REG } from './registers';
import { statusDnr, statusSc, statusSct } from './status';

/** What the driver needs of a controller: its registers (the same thread, or a proxy to another). */
export interface NvmeRegisters {
  mmioRead(offset: number, size: 4 | 8): number | bigint;
  mmioWrite(offset: number, size: 4 | 8, value: number | bigint): void;
  onInterrupt?: ((vector: number) => void) | null;
  /** For a controller in another thread: resolves once its registers can be read. */
  whenReady?(): Promise<void>;
}

export interface NvmeDriverOptions {
  /** Guest pages for queues, PRP lists and bounce buffers (pageAllocator(core) gives them back). */
  allocPages: PageAllocator;
  /** I/O queue pairs to create (default 1; the controller may grant fewer). */
  ioQueues?: number;
  /** Entries per queue (default 64). */
  queueDepth?: number;
  /** Per-command deadline before the driver aborts it (default 5000 ms). */
  timeoutMs?: number;
  /** Retries for an error whose DNR bit is clear (default 3). */
  retries?: number;
  /**
   * How a caller's segment list that breaks the PRP rule is described: 'auto' (default) as an SGL
   * when the controller supports SGLs (Identify SGLS), bounced into PRP pages otherwise; 'prp'
   * always bounces. A list that obeys the PRP rule always goes as PRPs, with no copy.
   */
  dataPointer?: 'auto' | 'prp';
}

export interface NvmeCompletion {
  cdw0: number;
  /** Status field: SC | SCT << 8 | DNR << 14. */
  status: number;
  sqid: number;
  cid: number;
}

export interface NamespaceInfo {
  nsid: number;
  blockSize: number;
  blockCount: number;
}

/**
 * A command in the driver's hands, and the caller's promise it settles. `after(ok)` runs once the
 * command is over (gives back pages, copies data out) and its value is what the promise resolves
 * with; without `after` the promise resolves with the completion whatever its status.
 */
/** Runs once a command is over (gives back pages, copies data out); its value is what the caller's promise resolves with. */
type After = (ok: boolean, p: Pending) => unknown;

class Pending {
  /** When the command is overdue (ms, performance.now()); 0 while recovery handles it. */
  deadline = 0;
  tries = 0;
  /** Which command this record carries (records are reused): a recovery step that waited checks it is still the same one. */
  serial = 0;
  /** The command: the caller's bytes until it is placed, then its CID's copy (kept for retries and resubmission). */
  sqe: Uint8Array = EMPTY;
  private resolve: (v: unknown) => void = noop;
  private reject: (e: unknown) => void = noop;
  private after: After | null = null;
  /**
   * What after() gives back or copies out (set before the command is issued, cleared once it is
   * over): the caller's buffer of a staged transfer (null: none), its staging run of `pages`
   * pages, its PRP list run (-1: none; listRun(pages - 1) pages).
   */
  data: Uint8Array | null = null;
  /** Bytes a read copies out into `data`. */
  bytes = 0;
  gpa = 0;
  pages = 0;
  list = -1;
  read = false;

  /** Takes a new command (a fresh record, or one done() gave back to the driver's spares). */
  init(sqe: Uint8Array, resolve: (v: unknown) => void, reject: (e: unknown) => void, after: After | null): this {
    this.serial++;
    this.deadline = 0;
    this.tries = 0;
    this.sqe = sqe;
    this.resolve = resolve;
    this.reject = reject;
    this.after = after;
    return this;
  }

  /** The command's completion. Settles the caller's promise and lets go of everything the command held. */
  done(status: number, cdw0: number, sqid: number, cid: number): void {
    const { resolve, reject, after } = this;
    this.resolve = this.reject = noop;
    this.after = null;
    if (after === null) return resolve({ status, cdw0, sqid, cid } satisfies NvmeCompletion);
    const v = after(status === 0, this);
    this.data = null;
    this.list = -1;
    if (status === 0) resolve(v);
    else reject(commandError(this.sqe, status, cdw0, sqid, cid));
  }

  /** The command cannot complete (the controller failed, or was reset under an admin command). */
  fail(e: unknown): void {
    this.after?.(false, this);
    this.data = null;
    this.list = -1;
    this.reject(e);
  }
}

interface Queue extends HostQueuePair {
  /** Free command ids (0 .. size-2: at most size-1 in flight). */
  free: number[];
  /** The command under each CID, null while the CID is free. */
  pending: (Pending | null)[];
  /** Each CID's copy of its command's SQE. */
  copies: Uint8Array[];
  /** Commands waiting for a free command id (more submitted than the queue holds), in order. */
  waiting: Pending[];
  /** SQEs written since the last doorbell. */
  unrung: number;
  /** A doorbell is due at the end of this microtask turn (every command submitted in it shares it). */
  ringDue: boolean;
  ringTask: () => void;
}

const PAGE = 4096;
const EMPTY = new Uint8Array(0);
const ADMIN = { deleteSq: 0x00, createSq: 0x01, deleteCq: 0x04, createCq: 0x05, identify: 0x06, abort: 0x08, setFeatures: 0x09 };
const NVM = { flush: 0x00, write: 0x01, read: 0x02 };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class NvmeDriver {
  readonly core: Core;
  private readonly ctrl: NvmeRegisters;
  private readonly opts: Required<Omit<NvmeDriverOptions, 'allocPages'>> & Pick<NvmeDriverOptions, 'allocPages'>;
  private queues: Queue[] = [];
  private ioNext = 0;
  /** Identify Controller, as the controller returned it (4096 bytes), after init(). */
  identify: Uint8Array | null = null;
  namespaces: NamespaceInfo[] = [];
  /** Max transfer in bytes (from MDTS). */
  maxTransfer = 0;
  /** Recovery steps taken: aborts sent, controller resets, commands retried. */
  readonly stats = {
    aborts: 0, resets: 0, retries: 0, timeouts: 0,
    /** Commands whose data went as an SGL (a segment list the PRP rule could not describe), and bytes bounced instead. */
    sglCommands: 0, bouncedBytes: 0,
    /** CQEs ignored: a CID not outstanding (or a duplicate), another queue's SQ ID, or an SQ head out of range ([H59]). */
    bogusCompletions: 0,
  };
  private capTimeoutMs = 0;
  /** Where a read or write SQE is put together; issue() copies it to its CID's copy at once. */
  private readonly buildWords = new Uint32Array(16);
  private readonly build = new Uint8Array(this.buildWords.buffer);

  constructor(core: Core, ctrl: NvmeRegisters, opts: NvmeDriverOptions) {
    optionNames(opts, ['allocPages', 'ioQueues', 'queueDepth', 'timeoutMs', 'retries', 'dataPointer'], 'NvmeDriver');
    if (opts?.dataPointer !== undefined && opts.dataPointer !== 'auto' && opts.dataPointer !== 'prp') throw new SgringError('InvalidArgument', `NvmeDriver: dataPointer ${String(opts.dataPointer)} is not 'auto' or 'prp'`);
    if (typeof opts?.allocPages !== 'function') throw new SgringError('InvalidArgument', 'NvmeDriver needs allocPages (pageAllocator(core))');
    if (!ctrl || typeof ctrl.mmioRead !== 'function' || typeof ctrl.mmioWrite !== 'function') throw new SgringError('InvalidArgument', 'NvmeDriver needs a controller (mmioRead / mmioWrite)');
    this.core = core;
    this.ctrl = ctrl;
    this.opts = { ioQueues: 1, queueDepth: 64, timeoutMs: 5000, retries: 3, dataPointer: 'auto', ...opts };
    for (const k of ['ioQueues', 'queueDepth', 'timeoutMs', 'retries'] as const) {
      const v = this.opts[k];
      if (!Number.isInteger(v) || v < (k === 'retries' ? 0 : k === 'queueDepth' ? 2 : 1)) throw new SgringError('InvalidArgument', `NvmeDriver: ${k} ${String(v)} is out of range`);
    }
    const previous = ctrl.onInterrupt ?? null;
    ctrl.onInterrupt = (v) => {
      previous?.(v);
      this.onVector(v);
    };
  }

  // ---- bring-up ----

  /** Brings the controller up and creates the I/O queues. Throws NvmeControllerFailed when it will not come ready. */
  async init(): Promise<void> {
    await this.ctrl.whenReady?.();
    const cap = BigInt(this.ctrl.mmioRead(REG.CAP, 8));
    const mqes = Number(cap & 0xffffn) + 1;
    this.capTimeoutMs = Math.max(500, Number((cap >> 24n) & 0xffn) * 500);
    const depth = Math.min(this.opts.queueDepth, mqes, 4096);
    await this.disable();
    const admin = this.makeQueue(0, depth);
    this.queues = [admin];
    this.ctrl.mmioWrite(REG.AQA, 4, ((depth - 1) << 16) | (depth - 1));
    this.ctrl.mmioWrite(REG.ASQ, 8, BigInt(admin.sq));
    this.ctrl.mmioWrite(REG.ACQ, 8, BigInt(admin.cq));
    this.ctrl.mmioWrite(REG.CC, 4, 0x00460001); // EN, IOSQES 6, IOCQES 4, MPS 4 KiB, NVM command set
    await this.waitStatus(true);
    const id = await this.adminData(this.sqe(ADMIN.identify, 0, { 10: 1 }), 4096);
    this.identify = id;
    const mdts = id[77]!;
    this.maxTransfer = mdts === 0 ? 1 << 20 : Math.min(4096 * 2 ** mdts, 1 << 20);
    const nn = new DataView(id.buffer, id.byteOffset).getUint32(516, true);
    this.namespaces = [];
    for (let nsid = 1; nsid <= Math.min(nn, 64); nsid++) {
      const ns = await this.adminData(this.sqe(ADMIN.identify, nsid, { 10: 0 }), 4096);
      const dv = new DataView(ns.buffer, ns.byteOffset);
      const lbaf = ns[26]! & 0xf;
      this.namespaces.push({ nsid, blockCount: Number(dv.getBigUint64(0, true)), blockSize: 2 ** ns[128 + 4 * lbaf + 2]! });
    }
    const want = this.opts.ioQueues - 1;
    const nq = await this.admin(this.sqe(ADMIN.setFeatures, 0, { 10: 0x07, 11: (want << 16) | want }));
    const granted = Math.min(this.opts.ioQueues, (nq.cdw0 & 0xffff) + 1, ((nq.cdw0 >>> 16) & 0xffff) + 1);
    for (let qid = 1; qid <= granted; qid++) {
      const q = this.makeQueue(qid, depth);
      await this.admin(this.sqe(ADMIN.createCq, 0, { 10: ((depth - 1) << 16) | qid, 11: (qid << 16) | 3 }, q.cq));
      await this.admin(this.sqe(ADMIN.createSq, 0, { 10: ((depth - 1) << 16) | qid, 11: (qid << 16) | 1 }, q.sq));
      this.queues.push(q);
    }
  }

  /** I/O queues in use. */
  get ioQueueCount(): number {
    return this.queues.length - 1;
  }

  private async disable(): Promise<void> {
    this.ctrl.mmioWrite(REG.CC, 4, 0);
    await this.waitStatus(false);
  }

  /** Waits (bounded by CAP.TO x 500 ms) for CSTS.RDY to become `ready`. */
  private async waitStatus(ready: boolean): Promise<void> {
    const until = Date.now() + this.capTimeoutMs;
    for (;;) {
      const csts = Number(this.ctrl.mmioRead(REG.CSTS, 4));
      if (ready && (csts & 2) !== 0) throw new SgringError('NvmeControllerFailed', 'CSTS.CFS: the controller reported a fatal status while enabling');
      if (((csts & 1) === 1) === ready) return;
      if (Date.now() > until) throw new SgringError('NvmeControllerFailed', `CSTS.RDY did not become ${ready ? 1 : 0} within CAP.TO (${this.capTimeoutMs} ms)`);
      await sleep(1);
    }
  }

  private makeQueue(qid: number, size: number): Queue {
    const copyArea = new ArrayBuffer(size * 64);
    const cq = this.opts.allocPages(Math.ceil((size * 16) / PAGE));
    const sq = this.opts.allocPages(Math.ceil((size * 64) / PAGE));
    const q: Queue = {
      qid, sq, cq, size, tail: 0, head: 0, phase: 1, free: Array.from({ length: size - 1 }, (_, i) => size - 2 - i), pending: new Array<Pending | null>(size).fill(null), waiting: [], unrung: 0,
      copies: Array.from({ length: size }, (_, cid) => new Uint8Array(copyArea, cid * 64, 64)),
      ringDue: false,
      ringTask: () => {
        q.ringDue = false;
        if (this.queues[q.qid] === q) this.ring(q);
      },
    };
    return q;
  }

  // ---- submission and completion ----

  sqe(opcode: number, nsid: number, cdw: Record<number, number> = {}, prp1: number | bigint = 0, prp2: number | bigint = 0): Uint8Array {
    const b = new Uint8Array(64);
    b[0] = opcode;
    put32(b, 4, nsid >>> 0);
    put64(b, 24, prp1);
    put64(b, 32, prp2);
    for (const i in cdw) put32(b, 4 * Number(i), cdw[i]! >>> 0);
    return b;
  }

  /**
   * Writes the command's SQE (its CID set here) into queue `q` and rings its doorbell once this
   * microtask turn ends (one doorbell per batch). With every command id in use it waits, in
   * order, for one to free ([H57]): a caller may submit more than the queue holds.
   */
  private issue(q: Queue, p: Pending): void {
    if (q.waiting.length > 0 || !this.place(q, p)) {
      p.sqe = p.sqe.slice(); // a CID's copy or the build area is reused while it waits
      q.waiting.push(p);
    }
    this.ringSoon(q);
  }

  /** Issues `sqe`; resolves with its completion, whatever its status. */
  private submit(q: Queue, sqe: Uint8Array): Promise<NvmeCompletion> {
    const promise = new Promise<NvmeCompletion>(capture);
    this.issue(q, this.record().init(sqe, settle.resolve, settle.reject, null));
    return promise;
  }

  /**
   * Issues a read or write on an I/O queue: `after(ok)` runs once it is over (gives back pages,
   * copies data out), then the promise resolves with what `after` returned, or rejects with
   * NvmeCommandFailed.
   */
  private submitIo<T>(sqe: Uint8Array, after: After, p: Pending = this.record()): Promise<T> {
    const promise = new Promise<T>(capture);
    this.issue(this.ioQueue(), p.init(sqe, settle.resolve, settle.reject, after));
    return promise;
  }

  /** submitIo for a transfer whose end is finishTransfer: the record carries what it gives back and copies out. */
  private submitTransfer<T>(sqe: Uint8Array, data: Uint8Array | null, gpa: number, pages: number, list: number, read: boolean, bytes = 0): Promise<T> {
    const p = this.record();
    p.data = data;
    p.bytes = bytes;
    p.gpa = gpa;
    p.pages = pages;
    p.list = list;
    p.read = read;
    return this.submitIo<T>(sqe, this.finishTransfer, p);
  }

  /**
   * The end of a read or write the driver staged or listed (Pending.data, gpa, pages, list): a
   * read's data copied out, the staging run and the list run given back. One function for every
   * such command, so none needs a closure of its own.
   */
  private readonly finishTransfer: After = (ok, p) => {
    const data = p.data;
    if (data !== null && ok && p.read) data.set(this.views.get(this.core, this.core.guestBase + p.gpa, p.bytes));
    if (p.list >= 0) this.give(listRun(p.pages - 1), p.list);
    if (data !== null) this.give(p.pages, p.gpa);
    return data ?? undefined;
  };

  /** Views of the staging runs reads are copied out of (runs are reused). */
  private readonly views = new CoreViews();

  /** Command records done() gave back, for the next commands (no allocation per command). */
  private readonly spare: Pending[] = [];
  private record(): Pending {
    return this.spare.pop() ?? new Pending();
  }

  /** Puts a command into the SQ under a free CID; false when none is free. */
  private place(q: Queue, p: Pending): boolean {
    const cid = q.free.pop();
    if (cid === undefined) return false;
    const sqe = q.copies[cid]!;
    if (p.sqe !== sqe) sqe.set(p.sqe);
    p.sqe = sqe;
    sqe[2] = cid;
    sqe[3] = cid >>> 8;
    putSqe(this.core.u8, this.core.guestBase, q, sqe);
    q.unrung++;
    this.armSweep();
    // The clock is as old as a sweep period at most: a deadline one period later is never early.
    p.deadline = this.clock + this.opts.timeoutMs + this.sweepPeriod;
    q.pending[cid] = p;
    return true;
  }

  private ringSoon(q: Queue): void {
    if (q.ringDue) return;
    q.ringDue = true;
    queueMicrotask(q.ringTask);
  }

  /** One SQ tail doorbell for everything written since the last one. */
  private ring(q: Queue): void {
    if (q.unrung === 0) return;
    q.unrung = 0;
    this.ctrl.mmioWrite(REG.DOORBELLS + 8 * q.qid, 4, q.tail);
    this.reap(q);
  }

  private onVector(vector: number): void {
    const q = this.queues[vector];
    if (q) this.reap(q);
  }

  /** Takes every new CQE (phase tag), settles its command, rings the CQ head doorbell once. */
  private reap(q: Queue): number {
    const dv = this.core.dv;
    let n = 0;
    for (let at = takeCqe(this.core.u8, this.core.guestBase, q); at >= 0; at = takeCqe(this.core.u8, this.core.guestBase, q)) {
      n++;
      this.settle(q, dv.getUint32(at, true), dv.getUint16(at + 8, true), dv.getUint16(at + 10, true), dv.getUint16(at + 12, true), dv.getUint16(at + 14, true) >> 1);
    }
    if (n > 0) this.ctrl.mmioWrite(REG.DOORBELLS + 8 * q.qid + 4, 4, q.head);
    if (q.waiting.length > 0 && q.free.length > 0) {
      while (q.waiting.length > 0 && this.place(q, q.waiting[0]!)) q.waiting.shift();
      this.ringSoon(q);
    }
    return n;
  }

  private settle(q: Queue, cdw0: number, sqhd: number, sqid: number, cid: number, status: number): void {
    const p = cid < q.size ? q.pending[cid] : null;
    if (!p || sqid !== q.qid || sqhd >= q.size) {
      this.stats.bogusCompletions++; // checklist 59: a CQE no outstanding command owns is ignored, counted
      return;
    }
    q.pending[cid] = null;
    q.free.push(cid);
    if (status !== 0 && !statusDnr(status) && p.tries < this.opts.retries) {
      this.stats.retries++;
      p.tries++;
      this.issue(q, p);
      return;
    }
    p.done(status, cdw0, sqid, cid);
    if (this.spare.length < 1024) this.spare.push(p); // nothing refers to it any more (a waiting recovery step checks its serial)
  }

  /** The commands holding a CID of `q`. */
  private inFlight(q: Queue): Pending[] {
    return q.pending.filter((p): p is Pending => p !== null);
  }

  /**
   * One timer for every deadline: it runs while commands are in flight, every quarter of the
   * timeout, and starts recovery for each overdue command (a timer per command would cost more
   * than the command).
   */
  private sweepTimer: unknown = null;
  /** performance.now() as of the last sweep (or the first command after an idle spell): deadlines are as coarse as the sweep. */
  private clock = 0;
  private get sweepPeriod(): number {
    return Math.max(1, this.opts.timeoutMs / 4);
  }
  private armSweep(): void {
    if (this.sweepTimer !== null) return;
    this.clock = performance.now();
    const tick = () => {
      this.sweepTimer = null;
      const now = (this.clock = performance.now());
      let busy = false;
      for (const q of this.queues) {
        for (let cid = 0; cid < q.size; cid++) {
          const p = q.pending[cid];
          if (!p) continue;
          busy = true;
          if (p.deadline !== 0 && now >= p.deadline) void this.timedOut(q, cid);
        }
      }
      if (busy) this.armSweep();
    };
    this.sweepTimer = setTimeout(tick, this.sweepPeriod);
  }

  private async timedOut(q: Queue, cid: number): Promise<void> {
    const p = q.pending[cid];
    if (!p || p.deadline === 0) return;
    const serial = p.serial;
    this.stats.timeouts++;
    p.deadline = 0;
    if (q.qid !== 0) {
      this.stats.aborts++;
      const abort = this.admin(this.sqe(ADMIN.abort, 0, { 10: (cid << 16) | q.qid }), true).catch(() => null);
      await Promise.race([abort, sleep(this.opts.timeoutMs)]);
      this.reap(q);
      if (q.pending[cid] !== p || p.serial !== serial) return; // it completed meanwhile (its record may carry another command now)
    }
    await this.recover();
  }

  /**
   * Controller reset and resubmission: every command that did not complete is written again,
   * in order, into fresh queues (the controller forgot the old ones).
   */
  private recovering: Promise<void> | null = null;
  private recover(): Promise<void> {
    this.recovering ??= (async () => {
      this.stats.resets++;
      const survivors = this.queues.filter((q) => q.qid !== 0).map((q) => [...this.inFlight(q), ...q.waiting].map((p) => ({ qid: q.qid, p })));
      const admin = this.queues[0];
      const adminWaiting = admin ? [...this.inFlight(admin), ...admin.waiting] : [];
      for (const q of this.queues) for (const p of this.inFlight(q)) p.deadline = 0;
      for (const p of adminWaiting) p.fail(new SgringError('NvmeControllerFailed', 'the controller was reset while this admin command waited'));
      try {
        await this.init();
      } catch (e) {
        for (const list of survivors) for (const { p } of list) p.fail(e);
        throw e;
      }
      for (const list of survivors) {
        for (const { qid, p } of list) {
          const q = this.queues[Math.min(qid, this.queues.length - 1)]!;
          this.issue(q, p);
        }
      }
      for (const q of this.queues) this.ring(q);
    })().finally(() => (this.recovering = null));
    return this.recovering.catch(() => {});
  }

  // ---- admin ----

  /** An admin command; rejects with NvmeCommandFailed unless `raw`. */
  private async admin(sqe: Uint8Array, raw = false): Promise<NvmeCompletion> {
    const q = this.queues[0];
    if (!q) throw new SgringError('NvmeControllerFailed', 'the driver is not initialised (await init())');
    const c = await this.submit(q, sqe);
    if (!raw && c.status !== 0) throw commandError(sqe, c.status, c.cdw0, c.sqid, c.cid);
    return c;
  }

  /** An admin command that returns `bytes` of data into a bounce page. */
  private async adminData(sqe: Uint8Array, bytes: number): Promise<Uint8Array> {
    const pages = Math.ceil(bytes / PAGE);
    const gpa = this.opts.allocPages(pages);
    try {
      new DataView(sqe.buffer).setBigUint64(24, BigInt(gpa), true);
      if (pages === 2) new DataView(sqe.buffer).setBigUint64(32, BigInt(gpa + PAGE), true);
      await this.admin(sqe);
      return this.core.u8.slice(this.core.guestBase + gpa, this.core.guestBase + gpa + bytes);
    } finally {
      this.opts.allocPages.free?.(gpa);
    }
  }

  /**
   * Sends a raw admin command (the CID is the driver's) and resolves with its completion,
   * error statuses included: the vendor commands of a model, for instance.
   */
  async adminPassthrough(sqe: Uint8Array): Promise<NvmeCompletion> {
    if (!(sqe instanceof Uint8Array) || sqe.length !== 64) throw new SgringError('InvalidArgument', 'adminPassthrough takes a 64-byte SQE');
    return this.admin(sqe.slice(), true);
  }

  // ---- I/O ----

  private ioQueue(): Queue {
    if (this.queues.length < 2) throw new SgringError('NvmeControllerFailed', 'no I/O queue: await init() first');
    const q = this.queues[1 + (this.ioNext++ % (this.queues.length - 1))]!;
    return q;
  }

  private ns(nsid: number): NamespaceInfo {
    const ns = this.namespaces[nsid - 1]; // Identify walks nsid 1..n in order
    if (ns?.nsid !== nsid) throw new SgringError('InvalidArgument', `namespace ${nsid} is not active (${this.namespaces.map((n) => n.nsid).join(', ') || 'none'})`);
    return ns;
  }

  /**
   * Reads `blocks` blocks from `lba`: into a Uint8Array (returned; a new one when none is given),
   * or straight into guest memory described by a scatter-gather list of guest-physical segments
   * (bounced where the list breaks the PRP rule).
   */
  read(nsid: number, lba: number | bigint, blocks: number, into?: Uint8Array): Promise<Uint8Array>;
  read(nsid: number, lba: number | bigint, blocks: number, segments: readonly Segment[]): Promise<void>;
  read(nsid: number, lba: number | bigint, blocks: number, target?: Uint8Array | readonly Segment[]): Promise<Uint8Array | void> {
    try {
      const ns = this.ns(nsid);
      if (Array.isArray(target)) {
        const bytes = this.checkIo(ns, lba, blocks, undefined, 'read');
        return this.segmentTransfer(NVM.read, ns, lba, blocks, bytes, target as readonly Segment[]);
      }
      const into = target as Uint8Array | undefined;
      const bytes = this.checkIo(ns, lba, blocks, into, 'read');
      return this.transfer(NVM.read, ns.nsid, lba, blocks, bytes, into ?? new Uint8Array(bytes));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Writes at `lba`: `write(nsid, lba, data)` with whole blocks of data, or
   * `write(nsid, lba, blocks, data | segments)` (segments: guest-physical, as for read).
   */
  write(nsid: number, lba: number | bigint, data: Uint8Array): Promise<void>;
  write(nsid: number, lba: number | bigint, blocks: number, data: Uint8Array | readonly Segment[]): Promise<void>;
  async write(nsid: number, lba: number | bigint, a: Uint8Array | number, b?: Uint8Array | readonly Segment[]): Promise<void> {
    const ns = this.ns(nsid);
    const data = typeof a === 'number' ? b : a;
    if (Array.isArray(data)) {
      const bytes = this.checkIo(ns, lba, a as number, undefined, 'write');
      return this.segmentTransfer(NVM.write, ns, lba, a as number, bytes, data as readonly Segment[]);
    }
    if (!(data instanceof Uint8Array) || data.length === 0 || data.length % ns.blockSize !== 0 || (typeof a === 'number' && data.length !== a * ns.blockSize)) {
      throw new SgringError('InvalidArgument', `write: data must be a Uint8Array of whole ${ns.blockSize}-byte blocks${typeof a === 'number' ? ` (${a} of them)` : ''}`);
    }
    const blocks = data.length / ns.blockSize;
    const bytes = this.checkIo(ns, lba, blocks, undefined, 'write');
    await this.transfer(NVM.write, ns.nsid, lba, blocks, bytes, data);
  }

  /**
   * A transfer straight to or from the caller's guest segments: their PRPs when the list obeys
   * the PRP rule, else an SGL or the plan that bounces the fewest bytes (planPageList, rule 'nvme-prp').
   */
  private segmentTransfer(opcode: number, ns: NamespaceInfo, lba: number | bigint, blocks: number, bytes: number, given: readonly Segment[]): Promise<void> {
    let total = 0;
    let empty = false;
    for (let i = 0; i < given.length; i++) {
      const g = given[i];
      if (!g || !Number.isSafeInteger(g.addr) || g.addr < 0 || !Number.isSafeInteger(g.len) || g.len < 0) {
        throw new SgringError('InvalidArgument', `segments[${i}] must be { addr, len } with non-negative safe integers`);
      }
      total += g.len;
      empty ||= g.len === 0;
    }
    if (total !== bytes) throw new SgringError('InvalidArgument', `the segments hold ${total} bytes; ${blocks} blocks are ${bytes}`);
    const segments = empty ? given.filter((g) => g.len > 0) : given; // an empty segment names no page
    if (!prpRuleHolds(segments)) return this.describedTransfer(opcode, ns, lba, blocks, bytes, segments);
    // PRPs name the caller's own pages: the first segment as it starts, then every page after it.
    const first = segments[0]!;
    let more: number[] | readonly number[] | null = NO_PAGES;
    if (segments.length === 1 && (first.addr % PAGE) + first.len > PAGE) more = null; // one run: its pages follow
    else if (segments.length > 1) {
      more = [];
      for (let i = 0; i < segments.length; i++) {
        const g = segments[i]!;
        for (let p = i === 0 ? g.addr - (g.addr % PAGE) + PAGE : g.addr; p < g.addr + g.len; p += PAGE) (more as number[]).push(p);
      }
    }
    const list = this.prpCommand(opcode, ns.nsid, lba, blocks, bytes, first.addr, more);
    return this.submitTransfer(this.build, null, 0, prpEntries(first.addr, bytes), list, false);
  }

  /** A segment list that breaks the PRP rule: as an SGL when the controller takes one, else bounced into PRP pages. */
  private async describedTransfer(opcode: number, ns: NamespaceInfo, lba: number | bigint, blocks: number, bytes: number, segments: readonly Segment[]): Promise<void> {
    const l = BigInt(lba);
    const cdw = { 10: Number(l & 0xffff_ffffn), 11: Number(l >> 32n), 12: blocks - 1 };
    if (this.opts.dataPointer === 'auto' && ((this.identify?.[536] ?? 0) & 3) === 1) {
      // An SGL describes any list as it is: one data block per segment, no copy.
      const listPages = Math.ceil((segments.length * 16) / (PAGE - 16)) + 1;
      const list = segments.length > 1 ? this.opts.allocPages(listPages) : -1;
      try {
        const sgl = buildSgl(this.core, { segments, listPages: list >= 0 ? Array.from({ length: listPages }, (_, i) => list + i * PAGE) : [] });
        const sqe = this.sqe(opcode, ns.nsid, cdw);
        sqe[1] = 0x40; // PSDT 01: SGL, the data pointer is SGL1
        sqe.set(sgl.sgl1Bytes, 24);
        this.stats.sglCommands++;
        const c = await this.submit(this.ioQueue(), sqe);
        if (c.status !== 0) throw commandError(sqe, c.status, c.cdw0, c.sqid, c.cid);
      } finally {
        if (list >= 0) this.opts.allocPages.free?.(list);
      }
      return;
    }
    const bounceCount = Math.ceil(bytes / PAGE) + 1;
    const pool = this.opts.allocPages(bounceCount);
    const plan = planPageList(segments, { rule: 'nvme-prp', core: this.core, bouncePages: Array.from({ length: bounceCount }, (_, i) => pool + i * PAGE) });
    const frames = plan.pages.map((f) => f * PAGE);
    const listPages = Math.ceil((frames.length * 8) / PAGE);
    const list = frames.length > 2 ? this.opts.allocPages(listPages) : -1;
    const owned = list >= 0 ? [pool, list] : [pool];
    try {
      this.stats.bouncedBytes += plan.bouncedBytes;
      if (opcode === NVM.write) copyToBounce(this.core, segments, plan);
      else zeroBounce(this.core, segments, plan);
      const prp = buildPrp(this.core, { addr: frames[0]! + plan.byteOffset, length: bytes, pages: frames.slice(1), listPages: list >= 0 ? Array.from({ length: listPages }, (_, i) => list + i * PAGE) : [] });
      const sqe = this.sqe(opcode, ns.nsid, cdw, Number(prp.prp1), prp.prp2);
      const c = await this.submit(this.ioQueue(), sqe);
      if (c.status !== 0) throw commandError(sqe, c.status, c.cdw0, c.sqid, c.cid);
      if (opcode === NVM.read) copyFromBounce(this.core, segments, plan, bytes);
    } finally {
      for (const p of owned) this.opts.allocPages.free?.(p);
    }
  }

  /** Flush (makes every completed write durable). */
  async flush(nsid: number): Promise<void> {
    this.ns(nsid);
    const sqe = this.sqe(NVM.flush, nsid);
    const c = await this.submit(this.ioQueue(), sqe);
    if (c.status !== 0) throw commandError(sqe, c.status, c.cdw0, c.sqid, c.cid);
  }

  private checkIo(ns: NamespaceInfo, lba: number | bigint, blocks: number, into: Uint8Array | undefined, what: string): number {
    const valid = typeof lba === 'bigint' ? lba >= 0n && lba < 2n ** 64n : Number.isSafeInteger(lba) && lba >= 0;
    if (!valid || !Number.isInteger(blocks) || blocks < 1 || blocks > 65536) throw new SgringError('InvalidArgument', `${what}: lba ${String(lba)} / blocks ${String(blocks)}`);
    const bytes = blocks * ns.blockSize;
    if (bytes > this.maxTransfer) throw new SgringError('InvalidArgument', `${what}: ${bytes} bytes is more than the controller's max transfer (${this.maxTransfer})`);
    if (into !== undefined && (!(into instanceof Uint8Array) || into.length < bytes)) throw new SgringError('InvalidArgument', `${what}: the buffer must hold ${bytes} bytes`);
    return bytes;
  }

  /**
   * A read into `data` or a write of it through a staging run of whole guest pages: PRPs for the
   * run, the command, the copy in before and out after. Resolves with `data` for a read.
   */
  private transfer(opcode: number, nsid: number, lba: number | bigint, blocks: number, bytes: number, data: Uint8Array): Promise<Uint8Array> {
    const pages = Math.ceil(bytes / PAGE);
    const gpa = this.take(pages);
    const at = this.core.guestBase + gpa;
    let list: number;
    try {
      if (opcode === NVM.write) this.core.u8.set(data.length === bytes ? data : data.subarray(0, bytes), at);
      list = this.prpCommand(opcode, nsid, lba, blocks, bytes, gpa, null);
    } catch (e) {
      this.give(pages, gpa);
      throw e;
    }
    return this.submitTransfer(this.build, data, gpa, pages, list, opcode === NVM.read, bytes);
  }

  /**
   * Fills `sqe` for a read or write of `bytes` whose data starts at `addr` and goes on at the
   * pages `more` (in order; null: the pages that follow addr's): PRP2 is the second page, or a PRP
   * list in a staging run of listRun(entries - 1) pages, whose address it returns (-1: none) for
   * the caller to give back.
   */
  private prpCommand(opcode: number, nsid: number, lba: number | bigint, blocks: number, bytes: number, addr: number, more: readonly number[] | null): number {
    // Every dword of the build area is written (no fill first): CDW0 (the CID goes in at place()),
    // NSID, CDW2-3 and MPTR zero, PRP1, PRP2, SLBA, NLB, CDW13-15 zero.
    const w = this.buildWords;
    w[0] = opcode;
    w[1] = nsid;
    w[2] = w[3] = w[4] = w[5] = 0;
    w[6] = addr; // a Uint32Array store keeps the low 32 bits
    w[7] = Math.floor(addr / 0x1_0000_0000);
    w[8] = w[9] = 0;
    if (typeof lba === 'bigint') {
      w[10] = Number(lba & 0xffff_ffffn);
      w[11] = Number((lba >> 32n) & 0xffff_ffffn);
    } else {
      w[10] = lba;
      w[11] = Math.floor(lba / 0x1_0000_0000);
    }
    w[12] = blocks - 1;
    w[13] = w[14] = w[15] = 0;
    const sqe = this.build;
    const after = prpEntries(addr, bytes) - 1;
    if (after === 1) {
      const prp2 = more === null ? addr - (addr % PAGE) + PAGE : more[0]!;
      w[8] = prp2;
      w[9] = Math.floor(prp2 / 0x1_0000_0000);
    }
    if (after <= 1) return -1;
    const pages = listRun(after);
    const list = this.take(pages);
    if (more === null && pages === 1) {
      // One run of pages and one list page: the entries are the pages after addr's, in order.
      const u32 = this.core.u32;
      const at = (this.core.guestBase + list) >>> 2;
      const base = addr - (addr % PAGE);
      for (let i = 0; i < after; i++) {
        u32[at + 2 * i] = base + (i + 1) * PAGE; // guest RAM lies below 4 GiB
        u32[at + 2 * i + 1] = 0;
      }
      w[8] = list; // guest RAM lies below 4 GiB
      return list;
    }
    try {
      put64(sqe, 32, buildPrpInto(this.core, PRP_OPTIONS, addr, bytes, more, pages === 1 ? [list] : Array.from({ length: pages }, (_, i) => list + i * PAGE)));
    } catch (e) {
      this.give(pages, list);
      throw e;
    }
    return list;
  }

  /**
   * Staging runs of guest pages, kept for the next transfer of the same size (up to 16 MiB of
   * them), so a steady stream of I/Os neither searches the allocator nor zeroes pages each time.
   * A transfer overwrites all of its run before the device or the caller sees it.
   */
  private readonly runs = new Map<number, number[]>();
  private cachedPages = 0;
  private take(pages: number): number {
    const r = this.runs.get(pages)?.pop();
    if (r === undefined) return this.opts.allocPages(pages);
    this.cachedPages -= pages;
    return r;
  }
  private give(pages: number, gpa: number): void {
    if (!this.opts.allocPages.free || this.cachedPages + pages > 4096) {
      this.opts.allocPages.free?.(gpa);
      return;
    }
    let list = this.runs.get(pages);
    if (!list) this.runs.set(pages, (list = []));
    list.push(gpa);
    this.cachedPages += pages;
  }

  /** Gives the staging runs back to the page allocator (shutdown, or to reclaim guest pages). */
  releaseBuffers(): void {
    for (const list of this.runs.values()) for (const gpa of list) this.opts.allocPages.free?.(gpa);
    this.runs.clear();
    this.cachedPages = 0;
  }

  /** Controller shutdown (CC.SHN normal), waiting for SHST complete. */
  async shutdown(): Promise<void> {
    this.releaseBuffers();
    this.ctrl.mmioWrite(REG.CC, 4, (Number(this.ctrl.mmioRead(REG.CC, 4)) & ~0xc000) | 0x4000);
    const until = Date.now() + this.capTimeoutMs;
    while (((Number(this.ctrl.mmioRead(REG.CSTS, 4)) >> 2) & 3) !== 2) {
      if (Date.now() > until) throw new SgringError('NvmeControllerFailed', 'the shutdown did not complete within CAP.TO');
      await sleep(1);
    }
  }
}

const NO_PAGES: readonly number[] = [];
/** The PRPs the driver builds: 4 KiB pages (CC.MPS 0), no transfer limit of the builder's own. */
const PRP_OPTIONS = resolveOptions({});
const noop = () => {};

function put32(b: Uint8Array, at: number, v: number): void {
  b[at] = v;
  b[at + 1] = v >>> 8;
  b[at + 2] = v >>> 16;
  b[at + 3] = v >>> 24;
}

/** A 64-bit little-endian field from a non-negative safe integer or a bigint. */
function put64(b: Uint8Array, at: number, v: number | bigint): void {
  if (typeof v === 'bigint') {
    put32(b, at, Number(v & 0xffff_ffffn));
    put32(b, at + 4, Number((v >> 32n) & 0xffff_ffffn));
  } else {
    put32(b, at, v); // its byte stores keep the low 32 bits (a double's % is a library call)
    put32(b, at + 4, Math.floor(v / 0x1_0000_0000));
  }
}

const OPNAMES: Record<number, string> = { 0: 'FLUSH', 1: 'WRITE', 2: 'READ' };

/** PRP entries of a transfer: its first page, then one per page after it. */
const prpEntries = (addr: number, bytes: number) => 1 + Math.ceil(Math.max(0, bytes - (PAGE - (addr % PAGE))) / PAGE);

/** Pages of a PRP list for `entries` entries (a chained list spends an entry per page on the pointer). */
const listRun = (entries: number) => Math.ceil(((entries + 1) * 8) / PAGE);

/** NvmeCommandFailed for a completion, with the status decoded as FreeBSD prints it (SCT/SC). */
function commandError(sqe: Uint8Array, status: number, cdw0: number, sqid: number, cid: number): SgringError {
  const c = { status, cdw0, sqid, cid };
  const sct = statusSct(c.status);
  const sc = statusSc(c.status);
  const hex = (n: number) => n.toString(16).padStart(2, '0');
  return new SgringError('NvmeCommandFailed', `${OPNAMES[sqe[0]!] ?? `opcode 0x${hex(sqe[0]!)}`} sqid:${c.sqid} cid:${c.cid}: status ${hex(sct)}/${hex(sc)}${statusDnr(c.status) ? ' DNR' : ''}`,
    { sct, sc, dnr: statusDnr(c.status), status: c.status, cdw0: c.cdw0, opcode: sqe[0] });
}

/** The PRP rule (spec/nvme.md §3.1): the first segment dword aligned, every later one starting on a page, every earlier one ending on one. */
function prpRuleHolds(segs: readonly Segment[]): boolean {
  const n = segs.length;
  for (let i = 0; i < n; i++) {
    const a = segs[i]!.addr;
    if (i === 0 ? a % 4 !== 0 : a % PAGE !== 0) return false;
    if (i < n - 1 && (a + segs[i]!.len) % PAGE !== 0) return false;
  }
  return true;
}
