// storvsc: the guest end of a VMBus SCSI adapter (spec/vmbus.md §4.4–4.5). attach() opens the
// channel and runs the initialisation as Linux does (BEGIN, the newest protocol version the host
// accepts, QUERY_PROPERTIES, END, sub-channels); scsi() sends one command with its data described
// by a GPA-direct range, and one reaper loop takes the completions of every command in flight,
// reading each reply with the hardened clamps of wire.ts. Disk discovery: REPORT LUNS on each
// target asked for, then INQUIRY and READ CAPACITY per LUN.

import { CoreViews } from '../../engine/core-views';
import { SgringError } from '../../engine/errors';
import type { Segment } from '../../core/gpa-range';
import { copyFromBounce, copyToBounce, planPageList, zeroBounce, type PagePlan } from '../../core/pagelist';
import { optionNames } from '../../core/args';
import type { GuestBus } from '../../vmbus/guest-bus';
import type { GuestChannel } from '../../vmbus/guest-channel';
import type { Offer } from '../../vmbus/offers';
import type { FreeingPageAllocator } from '../../vmbus/guest-pages';
import type { ReceivedPacket } from '../../vmbus/received-packet';
import { Watchdog } from '../../vmbus/watchdog';
import type { StagePoint, TapRegistry } from '../../taps/registry';
import type { TapCompletion } from '../../taps/event';
import { iscsiEncoder } from '../../trace/iscsi';
import { capture, settle } from '../../sync/settle';
import { fixedSense, SCSI_STATUS, SENSE_KEY } from '../scsi/sense';
import { ioOf, kindOf, SCSI_TAP_STATUSES, tapSense } from '../scsi/taps';
import {
  decodeCompleteIo, decodeProperties, decodeVstorHeader, encodeCreateSubChannels, encodeExecuteSrb, encodeQueryProtocolVersion, encodeVstor,
  SRB_DIRECTION, SRB_STATUS, VSTOR_OP, VSTOR_PACKET_BYTES, VSTOR_VERSION, type SrbRequest, type VstorProperties,
} from './wire';

const PAGE = 4096;

export interface StorvscOptions {
  /** Guest pages for the data staging buffers and bounce pages (given back by detach()). */
  allocPages: FreeingPageAllocator;
  /** Versions to offer, newest first (default Win10, Win8.1, Win8: what Linux offers). */
  versions?: number[];
  /** Per-request deadline in ms (default 5000): a request the host never answers fails with Timeout. */
  timeoutMs?: number;
  /** Targets scanned by discover() (default 0..1). */
  scanTargets?: number[];
  /**
   * Processors to spread commands over: asks the host for min(cpus - 1, its maximum)
   * sub-channels [H40] and sends round-robin over all open channels (default 1: no sub-channels).
   */
  cpus?: number;
  /** Tap points storvsc:io:submit|complete (the guest's view of each command), traced as iSCSI. */
  taps?: TapRegistry;
  /** Device instance name for taps and traces (default 'storvsc0'). */
  name?: string;
}

export interface ScsiCommandOptions {
  /** Data to write (direction write). */
  data?: Uint8Array;
  /** Bytes to read (direction read). */
  length?: number;
  /** Read into this array (at least the bytes asked) instead of a new one. */
  into?: Uint8Array;
  /**
   * The data buffer as guest-physical segments of the caller's own guest memory: no staging copy;
   * pages that break Hyper-V's page-list rule are bounced as planPageList decides. `direction`
   * says which way the data goes (default 'read').
   */
  segments?: readonly Segment[];
  direction?: 'read' | 'write';
}

export interface ScsiCommandResult {
  status: number;
  srbStatus: number;
  sense: Uint8Array;
  /** Bytes the host moved (clamped to the request). */
  transferred: number;
  /** Read data, `transferred` bytes (null for writes, and for reads into segments). */
  data: Uint8Array | null;
}

export interface StorvscDisk {
  target: number;
  lun: number;
  vendor: string;
  product: string;
  /** From READ CAPACITY (16); 0 when the disk did not answer it. */
  blockSize: number;
  blockCount: number;
}

/**
 * One command in flight. Records are reused (a block command allocates nothing of its own): one
 * owns a CDB buffer and an options object its command's are copied into, and a page plan for a
 * caller's list that already obeys the page-list rule.
 */
class Command {
  channel!: GuestChannel;
  target = 0;
  lun = 0;
  cdb: Uint8Array = EMPTY;
  length = 0;
  direction = 0;
  /** Staging or bounce pages of this command (pages 0: none). */
  gpa = 0;
  pages = 0;
  segments: readonly Segment[] | null = null;
  plan: PagePlan | null = null;
  into: Uint8Array | null = null;
  resolve: (r: ScsiCommandResult) => void = noop;
  reject: (e: Error) => void = noop;
  request = 0;
  /**
   * A block command (read / write / flush): its result is checked as checked() does under this
   * name and the promise resolves with the read data (`data`) or nothing; null: the promise
   * resolves with the result as it is. UNIT ATTENTION is sent again up to `tries` more times.
   */
  what: string | null = null;
  tries = 0;
  data = false;
  /** The command's options (a copy of the caller's, in the record's own object). */
  readonly o: ScsiCommandOptions = setOptions({});
  ownCdb: Uint8Array = new Uint8Array(16);
  /** The plan of a list that obeys the page-list rule as it is (its pages refilled per command). */
  readonly rulePlan: PagePlan = { byteOffset: 0, byteCount: 0, pages: [], copies: [], bouncedBytes: 0, bounceEntries: [], pageSize: PAGE };
}

const EMPTY = new Uint8Array(0);
const noop = () => {};

/** Fills `to` with every field of `from` (all undefined without it), in one shape; returns `to`. */
function setOptions(to: ScsiCommandOptions, from: ScsiCommandOptions = {}): ScsiCommandOptions {
  to.data = from.data;
  to.length = from.length;
  to.into = from.into;
  to.segments = from.segments;
  to.direction = from.direction;
  return to;
}

export class StorvscDriver {
  version = 0;
  properties: VstorProperties = { maxChannels: 0, multiChannel: false, maxTransferBytes: 0 };
  disks: StorvscDisk[] = [];
  /** The primary channel and the sub-channels that opened; commands go round-robin over them. */
  readonly channels: GuestChannel[] = [];
  private nextChannel = 0;
  /** Packets the host sent on its own (not completions), and what became of them; bytes bounced. */
  readonly counters = { subChannelOpenFailed: 0, rescans: 0, short: 0, completeIoWithoutId: 0, fchbaWithoutId: 0, unknown: 0, bouncedBytes: 0 };
  /** Called after a host-initiated rescan (ENUMERATE_BUS, REMOVE_DEVICE) has run discover(). */
  onRescan: ((disks: StorvscDisk[]) => void) | null = null;
  readonly name: string;
  /** Staging buffers not in use, by page count: reused, so a steady load allocates nothing. */
  private readonly pool = new Map<number, number[]>();
  /** Staging pages of requests that timed out: the host may still write them, so they are never reused. */
  leakedPages = 0;
  /** Hung requests fail with Timeout when the reaper runs this watchdog. */
  private readonly watchdog: Watchdog;
  private outstanding = 0;
  private readonly blocked: Command[] = [];
  private reaping = false;
  private detaching = false;
  private readonly idle: (() => void)[] = [];
  private requests = 1;
  private scratch = new Uint32Array(2 + 2 * 18);
  /** The EXECUTE_SRB being sent (copied into the ring by the send). */
  private readonly srb = new Uint8Array(VSTOR_PACKET_BYTES);
  private readonly taps: TapRegistry | null;
  private readonly points: { submit: StagePoint; complete: StagePoint } | null = null;

  private constructor(readonly bus: GuestBus, readonly channel: GuestChannel, private readonly opts: StorvscOptions) {
    this.name = opts.name ?? 'storvsc0';
    this.watchdog = new Watchdog(() => this.channels, { deadlineMs: this.timeout });
    this.taps = opts.taps ?? null;
    if (this.taps) {
      const [submit, complete] = this.taps.declare(this.name, [
        { name: 'storvsc:io:submit', description: 'the command as the guest sends it (CDB, write data)' },
        { name: 'storvsc:io:complete', description: 'the reply as the guest read it: SCSI status, sense, read data' },
      ], { encoder: iscsiEncoder });
      this.points = { submit: submit!, complete: complete! };
    }
    this.adopt(channel);
  }

  private adopt(ch: GuestChannel): void {
    ch.onPacket = (p) => this.unsolicited(p.payload(), p.transactionId);
    (ch as GuestChannel<Command>).onCompletion = (c, e, p) => this.onCompletion(c, e, p);
    this.channels.push(ch);
  }

  /** Opens the offer's channel, initialises the adapter and discovers its disks. */
  static async attach(bus: GuestBus, offer: Offer, opts: StorvscOptions): Promise<StorvscDriver> {
    optionNames(opts, ['allocPages', 'versions', 'timeoutMs', 'scanTargets', 'cpus', 'taps', 'name'], 'StorvscDriver.attach');
    if (typeof opts?.allocPages?.free !== 'function') throw new SgringError('InvalidArgument', 'StorvscDriver.attach needs allocPages (a pageAllocator, which can free)');
    const ch = await bus.open(offer);
    const drv = new StorvscDriver(bus, ch, opts);
    try {
      await drv.init();
      await drv.discover();
    } catch (e) {
      await drv.detach().catch(() => undefined);
      throw e;
    }
    return drv;
  }

  private get timeout(): number {
    return this.opts.timeoutMs ?? 5000;
  }

  /** One init step: the reply must be COMPLETE_IO; returns its status [H38]. */
  private async step(packet: Uint8Array): Promise<{ status: number; reply: Uint8Array }> {
    const reply = await this.channel.call(packet, this.timeout);
    const h = decodeVstorHeader(reply);
    if (h.operation !== VSTOR_OP.completeIo) throw new SgringError('HostRefused', `storvsp answered operation ${h.operation} during initialisation, not COMPLETE_IO`);
    return { status: h.status, reply };
  }

  private async init(): Promise<void> {
    const begin = await this.step(encodeVstor({ operation: VSTOR_OP.beginInitialization }).bytes);
    if (begin.status !== 0) throw new SgringError('HostRefused', `BEGIN_INITIALIZATION failed with status 0x${begin.status.toString(16)}`);
    for (const v of this.opts.versions ?? [VSTOR_VERSION.win10, VSTOR_VERSION.win8_1, VSTOR_VERSION.win8]) {
      if ((await this.step(encodeQueryProtocolVersion(v))).status === 0) {
        this.version = v;
        break;
      }
    }
    if (this.version === 0) throw new SgringError('HostRefused', 'storvsp accepted none of the protocol versions offered'); // [H39]
    const props = await this.step(encodeVstor({ operation: VSTOR_OP.queryProperties }, this.version).bytes);
    if (props.status !== 0) throw new SgringError('HostRefused', `QUERY_PROPERTIES failed with status 0x${props.status.toString(16)}`);
    this.properties = decodeProperties(props.reply);
    const end = await this.step(encodeVstor({ operation: VSTOR_OP.endInitialization }, this.version).bytes);
    if (end.status !== 0) throw new SgringError('HostRefused', `END_INITIALIZATION failed with status 0x${end.status.toString(16)}`);
    const want = Math.min((this.opts.cpus ?? 1) - 1, this.properties.multiChannel ? this.properties.maxChannels : 0);
    if (want > 0) await this.openSubChannels(want);
  }

  /** CREATE_SUB_CHANNELS, then open each sub-channel offered; one that fails to open stays unused [H40]. */
  private async openSubChannels(n: number): Promise<void> {
    const r = await this.step(encodeCreateSubChannels(n, this.version));
    if (r.status !== 0) return; // the adapter works on its primary channel alone
    const deadline = performance.now() + this.timeout;
    const offers = () => this.bus.offers.subChannels(this.channel.offer);
    while (offers().length < n && performance.now() < deadline) {
      this.bus.poll();
      await new Promise<void>((res) => setTimeout(res, 0));
    }
    for (const offer of offers()) {
      try {
        this.adopt(await this.bus.open(offer));
      } catch {
        this.counters.subChannelOpenFailed++;
      }
    }
  }

  /**
   * One SCSI command to (target, lun). Its data moves through one GPA range: over a staging
   * buffer of guest pages (reused: a steady load allocates none), or over the caller's own guest
   * memory (`segments`), bounced only where planPageList says the list breaks Hyper-V's rule.
   * Commands overlap; one loop reaps the completions of all of them.
   */
  scsi(target: number, lun: number, cdb: Uint8Array, o: ScsiCommandOptions = {}): Promise<ScsiCommandResult> {
    return this.issue(target, lun, cdb, o, null, 0, false);
  }

  /** A command whose promise `what` decides (see Command.what); rejects rather than throws on bad arguments. */
  private issue<T>(target: number, lun: number, cdb: Uint8Array, o: ScsiCommandOptions, what: string | null, tries: number, data: boolean): Promise<T> {
    const promise = new Promise<T>(capture);
    const resolve = settle.resolve as (r: ScsiCommandResult) => void;
    const reject = settle.reject as (e: Error) => void;
    try {
      const c = this.command(target, lun, cdb, o, resolve, reject);
      c.what = what;
      c.tries = tries;
      c.data = data;
      if (this.points !== null && this.points.submit.taps !== null) void this.submitTapped(c);
      else this.submit(c);
    } catch (e) {
      reject(e as Error);
    }
    return promise;
  }

  /** Checks a command's arguments and prepares its buffer; throws (the promise rejects) on bad ones. */
  private command(target: number, lun: number, cdb: Uint8Array, o: ScsiCommandOptions, resolve: Command['resolve'], reject: Command['reject']): Command {
    if (this.detaching) throw new SgringError('ChannelClosed', 'the adapter is detaching');
    const segments = o.segments ?? null;
    const write = o.data !== undefined || (segments !== null && o.direction === 'write');
    const length = segments !== null ? segmentBytes(segments) : o.data !== undefined ? o.data.length : (o.length ?? 0);
    if (!Number.isInteger(length) || length < 0) throw new SgringError('InvalidArgument', `length ${length} is not a byte count`);
    if (o.into !== undefined && (!(o.into instanceof Uint8Array) || o.into.length < length)) throw new SgringError('InvalidArgument', `into must be a Uint8Array of at least ${length} bytes`);
    if (this.properties.maxTransferBytes > 0 && length > this.properties.maxTransferBytes) {
      throw new SgringError('TransferTooLarge', `${length} bytes is more than the host's ${this.properties.maxTransferBytes} per request`);
    }
    const direction = length === 0 ? SRB_DIRECTION.none : write ? SRB_DIRECTION.write : SRB_DIRECTION.read;
    let channel = this.channels[this.nextChannel++ % this.channels.length]!;
    if (channel.state !== 'open') channel = this.channel; // a sub-channel closed or rescinded: the primary serves
    const c = this.spare.pop() ?? new Command();
    c.channel = channel;
    c.target = target;
    c.lun = lun;
    if (cdb === this.cdbScratch) {
      // A block command's CDB, built in the driver's scratch: the record takes that buffer, and
      // its own becomes the scratch (a swap, not a copy).
      this.cdbScratch = c.ownCdb;
      c.ownCdb = c.cdb = cdb;
    } else c.cdb = cdb;
    c.length = length;
    c.direction = direction;
    c.gpa = c.pages = 0;
    c.segments = segments;
    c.plan = null;
    c.into = o.into ?? null;
    c.resolve = resolve;
    c.reject = reject;
    c.request = this.requests++;
    c.what = null;
    c.tries = 0;
    c.data = false;
    setOptions(c.o, o);
    this.encode(c); // checks the CDB now; send() uses it while no other command was encoded meanwhile
    const core = this.bus.core;
    if (segments !== null && length > 0 && (c.plan = obeysRule(segments, length, core.guestBytes, c.rulePlan)) !== null) {
      // Already a valid page list: the caller's pages are the buffer, nothing to plan or bounce.
    } else if (segments !== null && length > 0) {
      c.pages = Math.ceil(length / PAGE) + 1;
      c.gpa = this.stagingPages(c.pages);
      try {
        c.plan = planPageList(segments, { rule: 'hyperv', core, bouncePages: Array.from({ length: c.pages }, (_, i) => c.gpa + i * PAGE) });
      } catch (e) {
        this.release(c);
        throw e;
      }
      this.counters.bouncedBytes += c.plan.bouncedBytes;
      if (c.plan.bouncedBytes === 0) {
        this.release(c); // the caller's pages are the buffer
        c.pages = 0;
      } else if (write) copyToBounce(core, segments, c.plan);
      else zeroBounce(core, segments, c.plan);
    } else if (length > 0) {
      c.pages = Math.ceil(length / PAGE);
      c.gpa = this.stagingPages(c.pages);
      if (write) core.u8.set(o.data!, core.guestBase + c.gpa);
    }
    return c;
  }

  /** Sends `c`, or queues it until the ring or the id table has room again. */
  private submit(c: Command): void {
    this.outstanding++;
    if (this.blocked.length > 0 || !this.send(c)) this.blocked.push(c);
    if (!this.reaping) void this.reap();
  }

  private readonly request: SrbRequest = { port: 0, path: 0, target: 0, lun: 0, cdb: new Uint8Array(1), direction: 0, dataTransferLength: 0 };
  /** The EXECUTE_SRB of `c` in this.srb. */
  private encoded: Command | null = null;
  private encode(c: Command): Uint8Array {
    if (this.encoded === c) return this.srb;
    this.encoded = null;
    const r = this.request;
    r.target = c.target;
    r.lun = c.lun;
    r.cdb = c.cdb;
    r.direction = c.direction;
    r.dataTransferLength = c.length;
    encodeExecuteSrb(r, this.version, this.srb);
    this.encoded = c;
    return this.srb;
  }

  private send(c: Command): boolean {
    let id: number;
    try {
      const message = this.encode(c);
      if (c.length === 0) id = c.channel.request(message, c);
      else {
        const p = c.plan;
        const range = p !== null ? this.range(p.byteCount, p.byteOffset, p.pages) : this.range(c.length, c.gpa % PAGE, null, Math.floor(c.gpa / PAGE));
        id = c.channel.requestGpa({ rangeBytes: range, rangeCount: 1 }, message, c);
      }
    } catch (e) {
      this.finish(c, e as Error, false);
      return true;
    }
    return id !== 0;
  }

  /** The submit stage's taps, then the send (or what the taps decided instead). */
  private async submitTapped(c: Command): Promise<void> {
    const completion = { status: 0, cdw0: 0 };
    const step = await this.stage(this.points!.submit, c, completion, c.direction === SRB_DIRECTION.write ? this.dataViews(c) : null);
    if (step === 'go') return this.submit(c);
    this.outstanding++;
    if (step === 'complete') return this.completed(c, tapResult(completion.status, c));
    // Dropped before it reached the ring: nothing will answer it, so it fails at its deadline.
    setTimeout(() => this.finish(c, new SgringError('Timeout', `request ${c.request} was dropped by a tap before it was sent`), false), this.timeout);
  }

  /** One loop reaps every command in flight: polls the bus, retries queued sends, runs the watchdog. */
  private async reap(): Promise<void> {
    this.reaping = true;
    try {
      let nextCheck = performance.now() + this.watchdog.intervalMs;
      while (this.outstanding > 0) {
        this.bus.poll();
        while (this.blocked.length > 0 && this.send(this.blocked[0]!)) this.blocked.shift();
        if (this.outstanding === 0) break;
        const now = performance.now();
        if (now >= nextCheck) {
          this.watchdog.check(now);
          nextCheck = now + this.watchdog.intervalMs;
        }
        await this.bus.waitForHost(Math.min(100, this.watchdog.intervalMs));
      }
    } finally {
      this.reaping = false;
    }
  }

  /** A channel's completion of one of our commands, or its failure (Timeout, channel closed). */
  private onCompletion(c: Command, error: SgringError | null, p: ReceivedPacket | null): void {
    if (error) return this.finish(c, error, error.code === 'Timeout');
    const tapped = this.points !== null && this.points.complete.taps !== null;
    let r: ScsiCommandResult;
    try {
      // Read where it lies in the channel's read buffer (no view); MessageTooShort for a reply without an SRB.
      const reply = decodeCompleteIo(p!.core.u8, c.length, this.reply, p!.offset, p!.length);
      if (reply.operation !== VSTOR_OP.completeIo) throw new SgringError('HostRefused', `storvsp answered an SRB with operation ${reply.operation}`);
      // A block command's result stays inside the driver (completed() reads it and lets it go): one object serves them all.
      r = c.what !== null && !tapped ? this.result : { status: 0, srbStatus: 0, sense: reply.sense, transferred: 0, data: null };
      r.status = reply.scsiStatus;
      r.srbStatus = reply.srbStatus;
      r.sense = reply.sense;
      r.transferred = reply.dataTransferLength;
      r.data = null;
    } catch (e) {
      return this.finish(c, e as Error, false);
    }
    if (tapped) void this.completeTapped(c, r);
    else this.completed(c, r);
  }
  private readonly reply = decodeCompleteIo(new Uint8Array(VSTOR_PACKET_BYTES), 0);
  private readonly result: ScsiCommandResult = { status: 0, srbStatus: 0, sense: new Uint8Array(0), transferred: 0, data: null };

  private async completeTapped(c: Command, r: ScsiCommandResult): Promise<void> {
    const completion = { status: r.status === SCSI_STATUS.good ? 0 : r.status | ((r.sense[2] ?? 0) & 0xf) << 8, cdw0: 0 };
    const step = await this.stage(this.points!.complete, c, completion, c.direction === SRB_DIRECTION.read && r.transferred > 0 ? this.dataViews(c, r.transferred) : null, r.sense.length > 0 ? r.sense : null);
    if (step === 'drop') {
      // The completion is lost on its way to the caller: the request hangs until its deadline.
      setTimeout(() => this.finish(c, new SgringError('Timeout', `the completion of request ${c.request} was dropped by a tap`), false), this.timeout);
      return;
    }
    this.completed(c, step === 'complete' ? tapResult(completion.status, c) : r);
  }

  /** Delivers a result: read data copied out (up to the bytes moved), the buffer given back. */
  private completed(c: Command, r: ScsiCommandResult): void {
    const core = this.bus.core;
    if (c.direction === SRB_DIRECTION.read) {
      const n = r.transferred;
      if (c.plan !== null) {
        if (c.plan.bouncedBytes > 0) copyFromBounce(core, c.segments!, c.plan, n);
      }
      else if (c.segments === null) {
        const at = core.guestBase + c.gpa;
        r.data = c.into !== null ? (n === c.into.length ? c.into : c.into.subarray(0, n)) : core.u8.slice(at, at + n);
        if (c.into !== null) c.into.set(this.views.get(core, at, n));
      }
    }
    this.settle(c);
    if (c.tries > 0 && r.status === SCSI_STATUS.checkCondition && r.sense.length > 2 && (r.sense[2]! & 0xf) === SENSE_KEY.unitAttention) {
      // Sent again as a new command; this record stays with it (the retry reads its CDB and options).
      this.issue(c.target, c.lun, c.cdb, c.o, c.what, c.tries - 1, c.data).then(c.resolve as (v: unknown) => void, c.reject);
      return;
    }
    const { resolve, reject, what, data } = c;
    this.recycle(c);
    if (what === null) return resolve(r);
    let ok: ScsiCommandResult;
    try {
      ok = checked(r, what);
    } catch (e) {
      return reject(e as Error);
    }
    (resolve as (v: unknown) => void)(data ? ok.data : undefined);
  }

  private finish(c: Command, e: Error, leak: boolean): void {
    if (leak && c.pages > 0) {
      this.leakedPages += c.pages; // the host may still write them: never reused
      c.pages = 0;
    }
    this.settle(c);
    const reject = c.reject;
    this.recycle(c);
    reject(e);
  }

  private settle(c: Command): void {
    if (c.pages > 0) this.release(c);
    c.pages = 0;
    this.outstanding--;
    if (this.outstanding === 0 && this.idle.length > 0) for (const w of this.idle.splice(0)) w();
  }

  private stagingPages(pages: number): number {
    return this.pool.get(pages)?.pop() ?? this.opts.allocPages(pages);
  }

  private release(c: Command): void {
    const list = this.pool.get(c.pages);
    if (list) list.push(c.gpa);
    else this.pool.set(c.pages, [c.gpa]);
  }

  /**
   * One GPA range (spec §2.5: byte count, byte offset, PFNs) in a reused buffer: the PFNs given, or
   * the ones from `firstPfn` on that `byteCount` bytes at `byteOffset` span.
   */
  private range(byteCount: number, byteOffset: number, pfns: readonly number[] | null, firstPfn = 0): Uint8Array {
    const n = pfns !== null ? pfns.length : Math.ceil((byteOffset + byteCount) / PAGE);
    if (this.scratch.byteLength < 8 + 8 * n) {
      this.scratch = new Uint32Array(2 + 2 * n);
      this.rangeViews = [];
    }
    // Little-endian words (every platform JavaScript runs on is little-endian, as the ring is).
    const w = this.scratch;
    w[0] = byteCount;
    w[1] = byteOffset;
    for (let i = 0; i < n; i++) {
      const pfn = pfns !== null ? pfns[i]! : firstPfn + i;
      w[2 + 2 * i] = pfn; // a Uint32Array store keeps the low 32 bits
      w[3 + 2 * i] = pfn > 0xffff_ffff ? Math.floor(pfn / 0x1_0000_0000) : 0;
    }
    return (this.rangeViews[n] ??= new Uint8Array(w.buffer, 0, 8 + 8 * n));
  }
  /** Views of the range buffer by PFN count. */
  private rangeViews: Uint8Array[] = [];

  /** Views of a command's data in guest memory, in order (the first `bytes`). */
  private dataViews(c: Command, bytes = c.length): Uint8Array[] {
    const core = this.bus.core;
    const list = c.segments !== null ? c.segments : [{ addr: c.gpa, len: c.length }];
    const out: Uint8Array[] = [];
    for (let i = 0, left = bytes; left > 0 && i < list.length; i++) {
      const n = Math.min(list[i]!.len, left);
      out.push(core.u8.subarray(core.guestBase + list[i]!.addr, core.guestBase + list[i]!.addr + n));
      left -= n;
    }
    return out;
  }

  /** Runs a stage's taps: 'go', 'drop', or 'complete' (completion.status says how). */
  private async stage(p: StagePoint, c: Command, completion: TapCompletion, data: Uint8Array[] | null, sense: Uint8Array | null = null): Promise<'go' | 'drop' | 'complete'> {
    const o = this.taps!.run(p, {
      device: this.name, queue: this.channels.indexOf(c.channel), io: ioOf(c.cdb), command: c.cdb, completion, data, statuses: SCSI_TAP_STATUSES,
      request: String(c.request), timeNs: BigInt(Math.round(performance.now() * 1e6)), detail: { lun: c.lun, transferBytes: c.length, sense },
    });
    if (o.error) {
      completion.status = SCSI_TAP_STATUSES.internal;
      return 'complete';
    }
    if (o.wait) await o.wait;
    return o.action === 'continue' ? 'go' : o.action;
  }

  /**
   * A packet the host sent on its own. ENUMERATE_BUS and REMOVE_DEVICE rescan; everything else is
   * skipped and counted: shorter than a vstor header [H30], a COMPLETE_IO [H31] or FCHBA_DATA [H32]
   * that answers nothing (id 0), an operation this driver does not know [H42].
   */
  private unsolicited(msg: Uint8Array, tid: bigint): void {
    if (msg.length < 12) {
      this.counters.short++;
      return;
    }
    const op = decodeVstorHeader(msg).operation;
    if (op === VSTOR_OP.enumerateBus || op === VSTOR_OP.removeDevice) {
      this.counters.rescans++;
      void this.discover().then((d) => this.onRescan?.(d), () => undefined);
    } else if (op === VSTOR_OP.completeIo && tid === 0n) this.counters.completeIoWithoutId++;
    else if (op === VSTOR_OP.fchbaData && tid === 0n) this.counters.fchbaWithoutId++;
    else this.counters.unknown++;
  }

  /** REPORT LUNS on each scanned target, then INQUIRY and READ CAPACITY (16) on each LUN found. */
  async discover(): Promise<StorvscDisk[]> {
    const found: StorvscDisk[] = [];
    for (const target of this.opts.scanTargets ?? [0, 1]) {
      const rl = await this.scsi(target, 0, Uint8Array.of(0xa0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0), { length: 4096 });
      if ((rl.srbStatus & 0x3f) !== SRB_STATUS.success || rl.status !== SCSI_STATUS.good || !rl.data || rl.data.length < 8) continue;
      const dv = new DataView(rl.data.buffer, rl.data.byteOffset, rl.data.length);
      const n = Math.min(dv.getUint32(0) / 8, (rl.data.length - 8) / 8);
      for (let i = 0; i < n; i++) {
        const lun = rl.data[8 + i * 8 + 1]!;
        const inq = await this.scsi(target, lun, Uint8Array.of(0x12, 0, 0, 0, 36, 0), { length: 36 });
        if (inq.status !== SCSI_STATUS.good || !inq.data || inq.data.length < 36) continue;
        const text = (a: number, b: number) => new TextDecoder().decode(inq.data!.subarray(a, b)).trim();
        const cap = await this.issue<ScsiCommandResult>(target, lun, Uint8Array.of(0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0), { length: 32 }, null, 3, false);
        const c = cap.status === SCSI_STATUS.good && cap.data && cap.data.length >= 12 ? new DataView(cap.data.buffer, cap.data.byteOffset, 12) : null;
        found.push({ target, lun, vendor: text(8, 16), product: text(16, 32), blockSize: c ? c.getUint32(8) : 0, blockCount: c ? Number(c.getBigUint64(0)) + 1 : 0 });
      }
    }
    this.disks = found;
    return found;
  }

  /**
   * A block command, sent again (up to 3 times) while the disk answers UNIT ATTENTION, as an OS's
   * SCSI layer does; resolves with the read data (`data`) or nothing, rejects as checked() says.
   */
  private block<T>(target: number, lun: number, cdb: Uint8Array, o: ScsiCommandOptions, what: string, data: boolean): Promise<T> {
    return this.issue<T>(target, lun, cdb, o, what, 3, data);
  }

  /** A block command's CDB and options are put together here; command() copies both into its record. */
  private cdbScratch: Uint8Array = new Uint8Array(16);
  private readonly optionsScratch: ScsiCommandOptions = setOptions({});
  private blockOptions(): ScsiCommandOptions {
    return setOptions(this.optionsScratch);
  }

  /** Views of the staging runs reads are copied out of. */
  private readonly views = new CoreViews();

  /** Command records done with, for the next commands. */
  private readonly spare: Command[] = [];
  /** Gives a finished command's record back (not while a tap or a retry may still look at it). */
  private recycle(c: Command): void {
    if (this.points !== null) return;
    if (this.encoded === c) this.encoded = null;
    c.resolve = c.reject = noop;
    c.into = null;
    c.segments = null;
    setOptions(c.o); // lets go of the caller's buffers
    if (this.spare.length < 1024) this.spare.push(c);
  }

  /** The block size of (target, lun) as discovered (512 for a LUN discover() did not see). */
  private blockSize(target: number, lun: number): number {
    for (let i = 0; i < this.disks.length; i++) {
      const d = this.disks[i]!;
      if (d.target === target && d.lun === lun && d.blockSize > 0) return d.blockSize;
    }
    return 512;
  }

  /**
   * Reads `blocks` blocks at `lba` (READ 16): into a new array (returned), into `into`, or straight
   * into guest memory the segments describe (bounced only where the list breaks the rule).
   */
  read(target: number, lun: number, lba: number, blocks: number, into?: Uint8Array): Promise<Uint8Array>;
  read(target: number, lun: number, lba: number, blocks: number, segments: readonly Segment[]): Promise<void>;
  read(target: number, lun: number, lba: number, blocks: number, to?: Uint8Array | readonly Segment[]): Promise<Uint8Array | void> {
    try {
      const bytes = blocks * this.blockSize(target, lun);
      const cdb = rw16(this.cdbScratch, 0x88, lba, blocks);
      const o = this.blockOptions();
      if (Array.isArray(to)) {
        const segments = to as readonly Segment[];
        if (segmentBytes(segments) !== bytes) throw new SgringError('InvalidArgument', `the segments hold ${segmentBytes(segments)} bytes; ${blocks} blocks are ${bytes}`);
        o.segments = segments;
        o.direction = 'read';
        return this.block(target, lun, cdb, o, 'READ (16)', false);
      }
      o.length = bytes;
      o.into = to as Uint8Array | undefined;
      return this.block(target, lun, cdb, o, 'READ (16)', true);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Writes whole blocks at `lba` (WRITE 16): `data`, or `blocks` blocks from the guest memory the segments describe. */
  write(target: number, lun: number, lba: number, data: Uint8Array): Promise<void>;
  write(target: number, lun: number, lba: number, blocks: number, segments: readonly Segment[]): Promise<void>;
  write(target: number, lun: number, lba: number, a: Uint8Array | number, segments?: readonly Segment[]): Promise<void> {
    try {
      const bs = this.blockSize(target, lun);
      const o = this.blockOptions();
      let blocks: number;
      if (typeof a === 'number') {
        if (!Array.isArray(segments) || segmentBytes(segments) !== a * bs) throw new SgringError('InvalidArgument', `write(target, lun, lba, blocks, segments): the segments must hold ${a} blocks of ${bs} bytes`);
        o.segments = segments;
        o.direction = 'write';
        blocks = a;
      } else {
        if (!(a instanceof Uint8Array) || a.length % bs !== 0) throw new SgringError('InvalidArgument', `write: data must be a Uint8Array of whole ${bs}-byte blocks`);
        o.data = a;
        blocks = a.length / bs;
      }
      return this.block(target, lun, rw16(this.cdbScratch, 0x8a, lba, blocks), o, 'WRITE (16)', false);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async flush(target: number, lun: number): Promise<void> {
    await this.block(target, lun, Uint8Array.of(0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0), {}, 'SYNCHRONIZE CACHE (10)', false);
  }

  /** Waits for the commands in flight, closes the channels and gives the staging pages back. */
  async detach(): Promise<void> {
    if (this.outstanding > 0) await new Promise<void>((r) => this.idle.push(r));
    this.detaching = true;
    if (this.channel.state === 'open') await this.channel.close();
    for (const list of this.pool.values()) for (const gpa of list) this.opts.allocPages.free(gpa);
    this.pool.clear();
    this.taps?.undeclare(this.name);
  }
}

/**
 * The page list of segments that already obey Hyper-V's rule — only the first may start
 * mid-page, only the last may end mid-page — as a plan that bounces nothing; null when they do
 * not (or are not plain in-range numbers): planPageList then decides.
 */
function obeysRule(segments: readonly Segment[], length: number, guestBytes: number, plan: PagePlan): PagePlan | null {
  const n = segments.length;
  if (n > 64) return null;
  const pages = plan.pages as number[];
  let k = 0;
  for (let i = 0; i < n; i++) {
    const g = segments[i]!;
    const addr = g.addr;
    const len = g.len;
    if (!Number.isSafeInteger(addr) || addr < 0 || !Number.isInteger(len) || len <= 0 || addr + len > guestBytes) return null;
    if ((i > 0 && addr % PAGE !== 0) || (i < n - 1 && (addr + len) % PAGE !== 0)) return null;
    for (let f = Math.floor(addr / PAGE), last = Math.floor((addr + len - 1) / PAGE); f <= last; f++) pages[k++] = f;
  }
  if (pages.length !== k) pages.length = k;
  plan.byteOffset = segments[0]!.addr % PAGE;
  plan.byteCount = length;
  return plan;
}

const segmentBytes = (segments: readonly Segment[]): number => {
  if (!Array.isArray(segments)) throw new SgringError('InvalidArgument', 'segments must be an array of { addr, len }');
  let n = 0;
  for (let i = 0; i < segments.length; i++) n += segments[i]?.len as number; // indexed: for-of allocates an iterator
  return n;
};

/** The result a tap decided (status: SCSI status, sense key above it). */
function tapResult(status: number, c: Command): ScsiCommandResult {
  if (status === 0) return { status: SCSI_STATUS.good, srbStatus: SRB_STATUS.success, sense: new Uint8Array(0), transferred: c.length, data: null };
  const scsiStatus = status & 0xff;
  const sense = scsiStatus === SCSI_STATUS.checkCondition ? fixedSense(tapSense(status >> 8, kindOf(c.cdb))) : new Uint8Array(0);
  return { status: scsiStatus, srbStatus: SRB_STATUS.error | (sense.length > 0 ? SRB_STATUS.autosenseValid : 0), sense, transferred: 0, data: null };
}

/** READ (16) / WRITE (16) into `c` (16 bytes, overwritten whole). */
function rw16(c: Uint8Array, op: number, lba: number, blocks: number): Uint8Array {
  if (!Number.isSafeInteger(lba) || lba < 0 || !Number.isInteger(blocks) || blocks < 0 || blocks > 0xffffffff) {
    throw new SgringError('InvalidArgument', `lba ${lba} and blocks ${blocks} must be non-negative integers (blocks a u32)`);
  }
  const hi = Math.floor(lba / 0x1_0000_0000);
  const lo = lba >>> 0;
  c[0] = op;
  c[1] = 0;
  c[2] = hi >>> 24;
  c[3] = hi >>> 16;
  c[4] = hi >>> 8;
  c[5] = hi;
  c[6] = lo >>> 24;
  c[7] = lo >>> 16;
  c[8] = lo >>> 8;
  c[9] = lo;
  c[10] = blocks >>> 24;
  c[11] = blocks >>> 16;
  c[12] = blocks >>> 8;
  c[13] = blocks;
  c[14] = c[15] = 0;
  return c;
}

/** The result of a good command, or an SgringError (ReadOnlyMedium for DATA PROTECT, LbaOutOfRange, else MediumError) with status and sense in details. */
function checked(r: ScsiCommandResult, what: string): ScsiCommandResult {
  if (r.status === SCSI_STATUS.good && (r.srbStatus & 0x3f) === SRB_STATUS.success) return r;
  const s = r.sense;
  const details = { status: r.status, srbStatus: r.srbStatus, senseKey: s.length > 2 ? s[2]! & 0xf : undefined, asc: s[12], ascq: s[13] };
  const code = details.senseKey === 0x7 ? 'ReadOnlyMedium' : details.asc === 0x21 ? 'LbaOutOfRange' : 'MediumError';
  throw new SgringError(code, `${what}: SCSI status 0x${r.status.toString(16)}, SRB status 0x${r.srbStatus.toString(16)}${s.length > 13 ? `, sense ${s[2]! & 0xf}/${s[12]!.toString(16)}/${s[13]!.toString(16)}` : ''}`, details);
}
