// storvsc: the guest end of a VMBus SCSI adapter (spec/vmbus.md §4.4–4.5). attach() opens the
// channel and runs the initialisation as Linux does (BEGIN, the newest protocol version the host
// accepts, QUERY_PROPERTIES, END); scsi() sends one command with its data described by a
// GPA-direct range over staging pages in guest memory, and reads the reply with the hardened
// clamps of wire.ts. Disk discovery: REPORT LUNS on each target asked for, INQUIRY per LUN.

import { SgringError } from '../../engine/errors';
import { encodeGpaRange } from '../../core/gpa-range';
import { optionNames } from '../../core/args';
import type { GuestBus } from '../../vmbus/guest-bus';
import type { GuestChannel } from '../../vmbus/guest-channel';
import type { Offer } from '../../vmbus/offers';
import type { FreeingPageAllocator } from '../../vmbus/guest-pages';
import { SCSI_STATUS } from '../scsi/sense';
import {
  decodeCompleteIo, decodeProperties, decodeVstorHeader, encodeCreateSubChannels, encodeExecuteSrb, encodeQueryProtocolVersion, encodeVstor,
  SRB_DIRECTION, VSTOR_OP, VSTOR_VERSION, type VstorProperties,
} from './wire';

const PAGE = 4096;

export interface StorvscOptions {
  /** Guest pages for the data staging buffer (given back by detach()). */
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
}

export interface ScsiCommandOptions {
  /** Data to write (direction write). */
  data?: Uint8Array;
  /** Bytes to read (direction read). */
  length?: number;
}

export interface ScsiCommandResult {
  status: number;
  srbStatus: number;
  sense: Uint8Array;
  /** Bytes the host moved (clamped to the request). */
  transferred: number;
  /** Read data, `transferred` bytes. */
  data: Uint8Array | null;
}

export interface StorvscDisk {
  target: number;
  lun: number;
  vendor: string;
  product: string;
}

export class StorvscDriver {
  version = 0;
  properties: VstorProperties = { maxChannels: 0, multiChannel: false, maxTransferBytes: 0 };
  disks: StorvscDisk[] = [];
  /** The primary channel and the sub-channels that opened; commands go round-robin over them. */
  readonly channels: GuestChannel[] = [];
  private nextChannel = 0;
  /** Packets the host sent on its own (not completions), and what became of them. */
  readonly counters = { subChannelOpenFailed: 0, rescans: 0, short: 0, completeIoWithoutId: 0, fchbaWithoutId: 0, unknown: 0 };
  /** Called after a host-initiated rescan (ENUMERATE_BUS, REMOVE_DEVICE) has run discover(). */
  onRescan: ((disks: StorvscDisk[]) => void) | null = null;
  /** Staging buffers not in use, by page count: reused, so a steady load allocates nothing. */
  private readonly pool = new Map<number, number[]>();
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Staging pages of requests that timed out: the host may still write them, so they are never reused. */
  leakedPages = 0;

  private constructor(readonly bus: GuestBus, readonly channel: GuestChannel, private readonly opts: StorvscOptions) {
    this.channels.push(channel);
  }

  /** Opens the offer's channel, initialises the adapter and discovers its disks. */
  static async attach(bus: GuestBus, offer: Offer, opts: StorvscOptions): Promise<StorvscDriver> {
    optionNames(opts, ['allocPages', 'versions', 'timeoutMs', 'scanTargets', 'cpus'], 'StorvscDriver.attach');
    if (typeof opts?.allocPages?.free !== 'function') throw new SgringError('InvalidArgument', 'StorvscDriver.attach needs allocPages (a pageAllocator, which can free)');
    const ch = await bus.open(offer);
    const drv = new StorvscDriver(bus, ch, opts);
    ch.onPacket = (p) => drv.unsolicited(p.payload(), p.transactionId);
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
        const ch = await this.bus.open(offer);
        ch.onPacket = (p) => this.unsolicited(p.payload(), p.transactionId);
        this.channels.push(ch);
      } catch {
        this.counters.subChannelOpenFailed++;
      }
    }
  }

  /**
   * One SCSI command to (target, lun). Data moves through a staging buffer in guest pages that
   * one GPA range describes; commands may overlap (each has its own buffer).
   */
  scsi(target: number, lun: number, cdb: Uint8Array, o: ScsiCommandOptions = {}): Promise<ScsiCommandResult> {
    const run = this.run(target, lun, cdb, o);
    this.inFlight.add(run);
    const forget = () => this.inFlight.delete(run);
    run.then(forget, forget);
    return run;
  }

  private async run(target: number, lun: number, cdb: Uint8Array, o: ScsiCommandOptions): Promise<ScsiCommandResult> {
    const write = o.data !== undefined;
    const length = write ? o.data!.length : (o.length ?? 0);
    if (!Number.isInteger(length) || length < 0) throw new SgringError('InvalidArgument', `length ${length} is not a byte count`);
    if (this.properties.maxTransferBytes > 0 && length > this.properties.maxTransferBytes) {
      throw new SgringError('TransferTooLarge', `${length} bytes is more than the host's ${this.properties.maxTransferBytes} per request`);
    }
    const direction = length === 0 ? SRB_DIRECTION.none : write ? SRB_DIRECTION.write : SRB_DIRECTION.read;
    const msg = encodeExecuteSrb({ port: 0, path: 0, target, lun, cdb, direction, dataTransferLength: length }, this.version);
    let ch = this.channels[this.nextChannel++ % this.channels.length]!;
    if (ch.state !== 'open') ch = this.channel; // a sub-channel closed or rescinded: the primary serves
    if (length === 0) return result(decodeCompleteIo(await ch.call(msg, this.timeout), 0), null);
    const pages = Math.ceil(length / PAGE);
    const gpa = this.pool.get(pages)?.pop() ?? this.opts.allocPages(pages);
    const core = this.bus.core;
    const at = core.guestBase + gpa;
    let reply: Uint8Array;
    try {
      if (write) core.u8.set(o.data!, at);
      reply = await ch.callGpa({ rangeBytes: encodeGpaRange(core, [{ addr: gpa, len: length }]), rangeCount: 1 }, msg, this.timeout);
    } catch (e) {
      if (e instanceof SgringError && e.code === 'Timeout') this.leakedPages += pages; // the host may still write them
      else this.release(pages, gpa);
      throw e;
    }
    try {
      const r = decodeCompleteIo(reply, length); // throws MessageTooShort for a reply without an SRB
      return result(r, direction === SRB_DIRECTION.read ? core.u8.slice(at, at + r.dataTransferLength) : null);
    } finally {
      this.release(pages, gpa);
    }
  }

  private release(pages: number, gpa: number): void {
    const list = this.pool.get(pages);
    if (list) list.push(gpa);
    else this.pool.set(pages, [gpa]);
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

  /** REPORT LUNS on each scanned target, then INQUIRY on each LUN found. */
  async discover(): Promise<StorvscDisk[]> {
    const found: StorvscDisk[] = [];
    for (const target of this.opts.scanTargets ?? [0, 1]) {
      const rl = await this.scsi(target, 0, Uint8Array.of(0xa0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0), { length: 4096 });
      if ((rl.srbStatus & 0x3f) !== 1 || rl.status !== SCSI_STATUS.good || !rl.data || rl.data.length < 8) continue;
      const dv = new DataView(rl.data.buffer, rl.data.byteOffset, rl.data.length);
      const n = Math.min(dv.getUint32(0) / 8, (rl.data.length - 8) / 8);
      for (let i = 0; i < n; i++) {
        const lun = rl.data[8 + i * 8 + 1]!;
        const inq = await this.scsi(target, lun, Uint8Array.of(0x12, 0, 0, 0, 36, 0), { length: 36 });
        if (inq.status !== SCSI_STATUS.good || !inq.data || inq.data.length < 36) continue;
        const text = (a: number, b: number) => new TextDecoder().decode(inq.data!.subarray(a, b)).trim();
        found.push({ target, lun, vendor: text(8, 16), product: text(16, 32) });
      }
    }
    this.disks = found;
    return found;
  }

  /** scsi(), retried (up to 3 times) while the disk answers UNIT ATTENTION, as an OS's SCSI layer does. */
  private async retried(target: number, lun: number, cdb: Uint8Array, o: ScsiCommandOptions): Promise<ScsiCommandResult> {
    let r = await this.scsi(target, lun, cdb, o);
    for (let i = 0; i < 3 && r.status === SCSI_STATUS.checkCondition && r.sense.length > 2 && (r.sense[2]! & 0xf) === 0x6; i++) r = await this.scsi(target, lun, cdb, o);
    return r;
  }

  /** Reads `blocks` blocks at `lba` (READ 16). */
  async read(target: number, lun: number, lba: number, blocks: number, blockSize = 512): Promise<Uint8Array> {
    return checked(await this.retried(target, lun, rw16(0x88, lba, blocks), { length: blocks * blockSize }), 'READ (16)').data!;
  }

  /** Writes whole blocks at `lba` (WRITE 16). */
  async write(target: number, lun: number, lba: number, data: Uint8Array, blockSize = 512): Promise<void> {
    if (data.length % blockSize !== 0) throw new SgringError('InvalidArgument', `${data.length} bytes is not a whole number of ${blockSize}-byte blocks`);
    checked(await this.retried(target, lun, rw16(0x8a, lba, data.length / blockSize), { data }), 'WRITE (16)');
  }

  async flush(target: number, lun: number): Promise<void> {
    checked(await this.retried(target, lun, Uint8Array.of(0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0), {}), 'SYNCHRONIZE CACHE (10)');
  }

  /** Waits for the commands in flight, closes the channel and gives the staging pages back. */
  async detach(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    if (this.channel.state === 'open') await this.channel.close();
    for (const list of this.pool.values()) for (const gpa of list) this.opts.allocPages.free(gpa);
    this.pool.clear();
  }
}

function result(r: ReturnType<typeof decodeCompleteIo>, data: Uint8Array | null): ScsiCommandResult {
  if (r.operation !== VSTOR_OP.completeIo) throw new SgringError('HostRefused', `storvsp answered an SRB with operation ${r.operation}`);
  return { status: r.scsiStatus, srbStatus: r.srbStatus, sense: r.sense, transferred: r.dataTransferLength, data };
}

function rw16(op: number, lba: number, blocks: number): Uint8Array {
  const c = new Uint8Array(16);
  const dv = new DataView(c.buffer);
  c[0] = op;
  dv.setBigUint64(2, BigInt(lba));
  dv.setUint32(10, blocks);
  return c;
}

/** The result of a good command, or an SgringError (ReadOnlyMedium for DATA PROTECT, LbaOutOfRange, else MediumError) with status and sense in details. */
function checked(r: ScsiCommandResult, what: string): ScsiCommandResult {
  if (r.status === SCSI_STATUS.good && (r.srbStatus & 0x3f) === 1) return r;
  const s = r.sense;
  const details = { status: r.status, srbStatus: r.srbStatus, senseKey: s.length > 2 ? s[2]! & 0xf : undefined, asc: s[12], ascq: s[13] };
  const code = details.senseKey === 0x7 ? 'ReadOnlyMedium' : details.asc === 0x21 ? 'LbaOutOfRange' : 'MediumError';
  throw new SgringError(code, `${what}: SCSI status 0x${r.status.toString(16)}, SRB status 0x${r.srbStatus.toString(16)}${s.length > 13 ? `, sense ${s[2]! & 0xf}/${s[12]!.toString(16)}/${s[13]!.toString(16)}` : ''}`, details);
}
