// A SCSI direct-access disk (SBC-3 / SPC-4) over a block backend: the target both storvsp and
// the iSCSI front end serve. It executes one CDB at a time and answers a SCSI status, fixed-format
// sense data for a CHECK CONDITION, and the data-in bytes (cut to the initiator's allocation).

import type { Core } from '../../engine/core';
import { SgringError } from '../../engine/errors';
import { optionNames } from '../../core/args';
import type { BlockBackend } from '../block/backend';
import type { CopyBatch } from '../block/copy-batch';
import { fixedSense, SCSI_STATUS, SENSE, SENSE_KEY, type Sense } from './sense';

export interface ScsiRequest {
  cdb: Uint8Array;
  /** Data-out (initiator to target): the blocks of a WRITE, an UNMAP parameter list... */
  dataOut?: Uint8Array;
  /** Bytes the initiator can take as data-in (default: what the CDB asks). */
  allocation?: number;
}

export interface ScsiResult {
  status: number;
  /** Fixed-format sense data when status is CHECK CONDITION. */
  sense: Uint8Array | null;
  /** Data-in for the initiator, already cut to its allocation. */
  data: Uint8Array | null;
  /** Bytes moved: data-in returned, or data-out taken. */
  transferred: number;
}

export interface ScsiDiskOptions {
  /** Core memory for staging (default: the backend's own core). */
  core?: Core;
  vendor?: string;
  product?: string;
  revision?: string;
  serial?: string;
  /** 8-byte NAA identifier base for VPD page 0x83 (default derived from the serial). */
  naa?: bigint;
}

const OP = {
  testUnitReady: 0x00, requestSense: 0x03, read6: 0x08, write6: 0x0a, inquiry: 0x12, modeSense6: 0x1a, startStop: 0x1b,
  readCapacity10: 0x25, read10: 0x28, write10: 0x2a, verify10: 0x2f, syncCache10: 0x35, unmap: 0x42, modeSense10: 0x5a,
  read16: 0x88, write16: 0x8a, verify16: 0x8f, syncCache16: 0x91, writeSame16: 0x93, serviceActionIn16: 0x9e, reportLuns: 0xa0,
} as const;

const MAX_TRANSFER_BLOCKS = 2048; // 1 MiB of 512-byte blocks: the Block Limits page says so
const MAX_UNMAP_BLOCKS = 1 << 20; // libiscsi's conformance suite calls more than 2^20 insane
const MAX_UNMAP_DESCRIPTORS = 256;

const ascii = (b: Uint8Array, at: number, len: number, s: string) => {
  for (let i = 0; i < len; i++) b[at + i] = i < s.length ? s.charCodeAt(i) & 0x7f : 0x20;
};

class CheckCondition extends Error {
  constructor(readonly senseData: Sense, readonly info?: number) {
    super('check condition');
  }
}

const check = (s: Sense, info?: number): never => {
  throw new CheckCondition(s, info);
};

export class ScsiDisk {
  readonly backend: BlockBackend;
  readonly core: Core;
  readonly vendor: string;
  readonly product: string;
  readonly revision: string;
  readonly serial: string;
  private readonly naa: bigint;
  /** A unit attention waiting for the next command (after a reset or a capacity change). */
  private attention: Sense | null = SENSE.powerOnOrReset;
  private lastSense: Sense | null = null;
  /** What the disk answered, by outcome. */
  readonly counters = { commands: 0, checkConditions: 0, readBlocks: 0, writtenBlocks: 0 };

  constructor(backend: BlockBackend, opts: ScsiDiskOptions = {}) {
    optionNames(opts, ['core', 'vendor', 'product', 'revision', 'serial', 'naa'], 'ScsiDisk');
    if (!backend || typeof backend.read !== 'function') throw new SgringError('InvalidArgument', 'ScsiDisk needs a BlockBackend');
    const core = opts.core ?? (backend as { core?: Core }).core;
    if (!core) throw new SgringError('InvalidArgument', 'ScsiDisk needs opts.core (the backend has none of its own)');
    this.backend = backend;
    this.core = core;
    this.vendor = opts.vendor ?? 'SGRING';
    this.product = opts.product ?? 'Virtual Disk';
    this.revision = opts.revision ?? '1.0';
    this.serial = opts.serial ?? `SGR${backend.blockCount.toString(16).padStart(8, '0')}`;
    this.naa = opts.naa ?? 0x6_0014_05_000000000n | BigInt([...this.serial].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7));
  }

  /** A reset (bus, target or LUN): the next command sees UNIT ATTENTION, POWER ON OR RESET. */
  reset(): void {
    this.attention = SENSE.powerOnOrReset;
  }

  /** After the backend's size changed: the next command sees UNIT ATTENTION, CAPACITY DATA HAS CHANGED. */
  capacityChanged(): void {
    this.attention = SENSE.capacityChanged;
  }

  /** Executes one command. Never throws for what the initiator sent: failures are CHECK CONDITION. */
  async execute(req: ScsiRequest): Promise<ScsiResult> {
    this.counters.commands++;
    try {
      const cdb = req?.cdb;
      if (!(cdb instanceof Uint8Array) || cdb.length < 6) check(SENSE.invalidOpcode);
      const op = cdb[0]!;
      // A pending unit attention is reported once, to the first command that is not INQUIRY,
      // REPORT LUNS or REQUEST SENSE (SPC-4 §5.13).
      if (this.attention && op !== OP.inquiry && op !== OP.reportLuns && op !== OP.requestSense) {
        const ua = this.attention;
        this.attention = null;
        check(ua);
      }
      const r = await this.run(op, cdb, req);
      this.lastSense = null;
      const want = req.allocation ?? r.length;
      const data = r.data ? r.data.subarray(0, Math.min(want, r.data.length)) : null;
      return { status: SCSI_STATUS.good, sense: null, data, transferred: data ? data.length : r.taken };
    } catch (e) {
      if (!(e instanceof CheckCondition)) {
        if (e instanceof SgringError && e.code === 'LbaOutOfRange') return this.fail(SENSE.lbaOutOfRange);
        if (e instanceof SgringError && e.code === 'ReadOnlyMedium') return this.fail(SENSE.writeProtected);
        return this.fail(SENSE.internalTargetFailure);
      }
      return this.fail(e.senseData, e.info);
    }
  }

  /**
   * READ or WRITE (6/10/16) straight between the medium and `bytes` of core memory at `ptr` (a
   * device's translated DMA buffer): no staging copy, and synchronous when the backend is. Returns
   * null when the command is not such a transfer of exactly `bytes`, carries FUA, a unit
   * attention is pending, or the backend is not synchronous (it would move the data after the
   * caller's DMA check, into pages the guest may no longer grant): the caller then runs
   * execute(), which answers those. With `batch`, blocks that lie in core memory
   * (BlockBackend.inCore) are added to it instead of copied now: the caller flushes it before
   * anything may see the data.
   */
  transfer(cdb: Uint8Array, ptr: number, bytes: number, batch: CopyBatch | null = null): ScsiResult | Promise<ScsiResult> | null {
    const op = cdb[0]!;
    const read = op === OP.read6 || op === OP.read10 || op === OP.read16;
    if ((!read && op !== OP.write6 && op !== OP.write10 && op !== OP.write16) || this.attention || this.backend.synchronous !== true || (op !== OP.write6 && (cdb[1]! & 0x08) !== 0)) return null;
    let lba: number;
    let blocks: number;
    try {
      ({ lba, blocks } = this.range(op, cdb));
      if (!read && this.backend.readOnly && blocks > 0) check(SENSE.writeProtected);
    } catch (e) {
      this.counters.commands++;
      return e instanceof CheckCondition ? this.fail(e.senseData, e.info) : null;
    }
    if (blocks * this.backend.blockSize !== bytes || bytes === 0) return null;
    this.counters.commands++;
    const region = batch === null || this.backend.inCore === undefined ? -1 : this.backend.inCore(batch.core, lba, blocks, !read);
    if (region >= 0) {
      if (read) batch!.add(ptr, region, bytes);
      else batch!.add(region, ptr, bytes);
      return this.moved(read, blocks, this.good);
    }
    let r: void | Promise<void>;
    try {
      r = read ? this.backend.read(lba, blocks, ptr) : this.backend.write(lba, blocks, ptr);
    } catch (e) {
      return this.ioFailed(e, read, lba);
    }
    return r instanceof Promise ? this.movedLater(r, read, lba, blocks) : this.moved(read, blocks, this.good);
  }

  /**
   * A synchronous GOOD is written into this one object, which the caller reads before its next
   * transfer() (no object per command); an asynchronous one gets its own.
   */
  private readonly good: ScsiResult = { status: SCSI_STATUS.good, sense: null, data: null, transferred: 0 };

  // Apart from transfer(): its closures would make every call allocate a context.
  private movedLater(r: Promise<void>, read: boolean, lba: number, blocks: number): Promise<ScsiResult> {
    return r.then(() => this.moved(read, blocks, { status: SCSI_STATUS.good, sense: null, data: null, transferred: 0 }), (e) => this.ioFailed(e, read, lba));
  }

  /** GOOD for a transfer() of `blocks` blocks, in `into`. */
  private moved(read: boolean, blocks: number, into: ScsiResult): ScsiResult {
    this.lastSense = null;
    if (read) this.counters.readBlocks += blocks;
    else this.counters.writtenBlocks += blocks;
    into.transferred = blocks * this.backend.blockSize;
    return into;
  }

  /** CHECK CONDITION for a backend's failure in transfer(). */
  private ioFailed(e: unknown, read: boolean, lba: number): ScsiResult {
    if (e instanceof SgringError && e.code === 'MediumError') return this.fail(read ? SENSE.unrecoveredReadError : SENSE.writeError, lba);
    if (e instanceof SgringError && e.code === 'ReadOnlyMedium') return this.fail(SENSE.writeProtected);
    if (e instanceof SgringError && e.code === 'LbaOutOfRange') return this.fail(SENSE.lbaOutOfRange);
    return this.fail(SENSE.internalTargetFailure);
  }

  private fail(s: Sense, info?: number): ScsiResult {
    this.counters.checkConditions++;
    this.lastSense = s;
    return { status: SCSI_STATUS.checkCondition, sense: fixedSense(s, info), data: null, transferred: 0 };
  }

  private async run(op: number, cdb: Uint8Array, req: ScsiRequest): Promise<{ data: Uint8Array | null; length: number; taken: number }> {
    const dv = new DataView(cdb.buffer, cdb.byteOffset, cdb.length);
    const need = (n: number) => (cdb.length < n ? check(SENSE.invalidFieldInCdb(0)) : undefined);
    const reply = (data: Uint8Array) => ({ data, length: data.length, taken: 0 });
    const none = { data: null, length: 0, taken: 0 };
    switch (op) {
      case OP.testUnitReady:
      case OP.startStop:
        return none;
      case OP.requestSense: {
        const s = this.attention ?? this.lastSense;
        this.attention = null;
        return { ...reply(fixedSense(s ?? { key: SENSE_KEY.noSense, asc: 0, ascq: 0 })), length: cdb[4]! };
      }
      case OP.inquiry: {
        const alloc = dv.getUint16(3);
        const data = cdb[1]! & 1 ? this.vpd(cdb[2]!) : (cdb[2]! !== 0 ? check(SENSE.invalidFieldInCdb(2)) : this.standardInquiry());
        return { data, length: alloc, taken: 0 };
      }
      case OP.readCapacity10: {
        const b = new Uint8Array(8);
        const d = new DataView(b.buffer);
        d.setUint32(0, Math.min(this.backend.blockCount - 1, 0xffffffff));
        d.setUint32(4, this.backend.blockSize);
        return reply(b);
      }
      case OP.serviceActionIn16: {
        need(16);
        if ((cdb[1]! & 0x1f) !== 0x10) check(SENSE.invalidFieldInCdb(1));
        const b = new Uint8Array(32);
        const d = new DataView(b.buffer);
        d.setBigUint64(0, BigInt(this.backend.blockCount - 1));
        d.setUint32(8, this.backend.blockSize);
        if (this.backend.discard) b[14] = 0x80 | 0x40; // LBPME: provisioning (UNMAP); LBPRZ: unmapped blocks read zero
        return { data: b, length: dv.getUint32(10), taken: 0 };
      }
      case OP.read6: case OP.read10: case OP.read16:
        return this.read(op, cdb);
      case OP.write6: case OP.write10: case OP.write16:
        return this.write(op, cdb, req.dataOut);
      case OP.verify10: case OP.verify16:
        return this.verify(op, cdb, req.dataOut);
      case OP.syncCache10: case OP.syncCache16:
        await this.backend.flush();
        return none;
      case OP.writeSame16:
        need(16);
        return this.writeSame(cdb, dv, req.dataOut);
      case OP.unmap:
        return this.unmap(req.dataOut, dv.getUint16(7));
      case OP.modeSense6: case OP.modeSense10:
        return this.modeSense(op, cdb, dv);
      case OP.reportLuns: {
        need(12);
        const b = reportLuns([0]);
        return { data: b, length: dv.getUint32(6), taken: 0 };
      }
      default:
        return check(SENSE.invalidOpcode);
    }
  }

  /** The LBA range a READ / WRITE / VERIFY (6, 10, 16) names, checked; the result is reused by the next call. */
  private range(op: number, cdb: Uint8Array): { lba: number; blocks: number } {
    let lba: number;
    let blocks: number;
    if (op === OP.read6 || op === OP.write6) {
      lba = ((cdb[1]! & 0x1f) << 16) | (cdb[2]! << 8) | cdb[3]!;
      blocks = cdb[4]! === 0 ? 256 : cdb[4]!;
    } else if (op === OP.read10 || op === OP.write10 || op === OP.verify10) {
      lba = be32(cdb, 2);
      blocks = (cdb[7]! << 8) | cdb[8]!;
      if ((cdb[1]! & 0xe0) !== 0) check(SENSE.invalidFieldInCdb(1)); // RD/WR/VRPROTECT: no protection information here
    } else {
      if (cdb.length < 16) check(SENSE.invalidFieldInCdb(0));
      const hi = be32(cdb, 2);
      lba = hi < 0x200000 ? hi * 0x1_0000_0000 + be32(cdb, 6) : Infinity; // past 2^53: out of range anyway
      blocks = be32(cdb, 10);
      if ((cdb[1]! & 0xe0) !== 0) check(SENSE.invalidFieldInCdb(1));
    }
    if (lba > this.backend.blockCount || blocks > this.backend.blockCount - lba) check(SENSE.lbaOutOfRange);
    if (blocks * this.backend.blockSize > MAX_TRANSFER_BLOCKS * 512) { // more than the Block Limits page allows
      check(SENSE.invalidFieldInCdb(op === OP.read6 || op === OP.write6 ? 4 : op === OP.read16 || op === OP.write16 || op === OP.verify16 ? 10 : 7));
    }
    this.ranged.lba = lba;
    this.ranged.blocks = blocks;
    return this.ranged;
  }
  private readonly ranged = { lba: 0, blocks: 0 };

  private async read(op: number, cdb: Uint8Array) {
    const { lba, blocks } = this.range(op, cdb);
    const bytes = blocks * this.backend.blockSize;
    if (bytes === 0) return { data: new Uint8Array(0), length: 0, taken: 0 };
    const data = await this.staged(bytes, async (ptr) => {
      try {
        await this.backend.read(lba, blocks, ptr);
      } catch (e) {
        if (e instanceof SgringError && e.code === 'MediumError') check(SENSE.unrecoveredReadError, lba);
        throw e;
      }
    }, true);
    this.counters.readBlocks += blocks;
    return { data: data!, length: bytes, taken: 0 };
  }

  private async write(op: number, cdb: Uint8Array, out: Uint8Array | undefined) {
    const { lba, blocks } = this.range(op, cdb);
    const bytes = blocks * this.backend.blockSize;
    if (this.backend.readOnly) check(SENSE.writeProtected);
    if (bytes === 0) return { data: null, length: 0, taken: 0 };
    if (!(out instanceof Uint8Array) || out.length < bytes) check(SENSE.invalidFieldInCdb(op === OP.write6 ? 4 : op === OP.write10 ? 7 : 10));
    await this.staged(bytes, async (ptr) => {
      this.core.u8.set(out!.subarray(0, bytes), ptr);
      try {
        await this.backend.write(lba, blocks, ptr);
      } catch (e) {
        if (e instanceof SgringError && e.code === 'MediumError') check(SENSE.writeError, lba);
        throw e;
      }
    }, false);
    this.counters.writtenBlocks += blocks;
    if ((cdb[1]! & 0x08) !== 0 && op !== OP.write6) await this.backend.flush(); // FUA: through to the medium
    return { data: null, length: 0, taken: bytes };
  }

  private async verify(op: number, cdb: Uint8Array, out: Uint8Array | undefined) {
    const { lba, blocks } = this.range(op, cdb);
    const bytchk = (cdb[1]! >> 1) & 3;
    if (bytchk === 0 || blocks === 0) return { data: null, length: 0, taken: 0 };
    if (bytchk !== 1) check(SENSE.invalidFieldInCdb(1));
    const bytes = blocks * this.backend.blockSize;
    if (!(out instanceof Uint8Array) || out.length < bytes) check(SENSE.invalidFieldInCdb(1));
    const medium = await this.staged(bytes, async (ptr) => this.backend.read(lba, blocks, ptr), true);
    for (let i = 0; i < bytes; i++) if (medium![i] !== out![i]) check(SENSE.miscompare, lba + Math.floor(i / this.backend.blockSize));
    return { data: null, length: 0, taken: bytes };
  }

  private async writeSame(cdb: Uint8Array, dv: DataView, out: Uint8Array | undefined) {
    const l = dv.getBigUint64(2);
    const lba = l > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(l);
    if ((cdb[1]! & 0xe0) !== 0) check(SENSE.invalidFieldInCdb(1)); // WRPROTECT: no protection information here
    if ((cdb[1]! & 0x10) !== 0) check(SENSE.invalidFieldInCdb(1)); // ANCHOR: anchored blocks are not supported (ANC_SUP clear)
    if (lba > this.backend.blockCount) check(SENSE.lbaOutOfRange);
    const blocks = dv.getUint32(10) || this.backend.blockCount - lba; // zero (WSNZ clear): up to the last block
    if (blocks > this.backend.blockCount - lba) check(SENSE.lbaOutOfRange);
    if (this.backend.readOnly) check(SENSE.writeProtected);
    if (blocks > MAX_UNMAP_BLOCKS) check(SENSE.invalidFieldInCdb(10));
    const bs = this.backend.blockSize;
    const ndob = (cdb[1]! & 0x01) !== 0; // no data-out buffer: the pattern is zeros
    if ((cdb[1]! & 0x08) !== 0 && this.backend.discard) {
      await this.backend.discard(lba, blocks); // UNMAP bit: deallocate (the blocks then read as zero)
      return { data: null, length: 0, taken: ndob ? 0 : bs };
    }
    if (!ndob && (!(out instanceof Uint8Array) || out.length < bs)) check(SENSE.invalidFieldInCdb(10));
    if (blocks === 0) return { data: null, length: 0, taken: ndob ? 0 : bs };
    const chunk = Math.min(blocks, 256);
    await this.staged(chunk * bs, async (ptr) => {
      if (ndob) this.core.u8.fill(0, ptr, ptr + chunk * bs);
      else for (let i = 0; i < chunk; i++) this.core.u8.set(out!.subarray(0, bs), ptr + i * bs);
      for (let done = 0; done < blocks; done += chunk) await this.backend.write(lba + done, Math.min(chunk, blocks - done), ptr);
    }, false);
    this.counters.writtenBlocks += blocks;
    return { data: null, length: 0, taken: ndob ? 0 : bs };
  }

  private async unmap(out: Uint8Array | undefined, paramLen: number) {
    if (this.backend.readOnly) check(SENSE.writeProtected);
    if (!this.backend.discard) check(SENSE.invalidOpcode);
    if (paramLen === 0) return { data: null, length: 0, taken: 0 };
    if (paramLen < 8 || !(out instanceof Uint8Array) || out.length < paramLen) check(SENSE.parameterListLength);
    const pv = new DataView(out!.buffer, out!.byteOffset, paramLen);
    const descBytes = pv.getUint16(2);
    if (descBytes % 16 !== 0 || 8 + descBytes > paramLen) check(SENSE.parameterListLength);
    if (descBytes / 16 > MAX_UNMAP_DESCRIPTORS) check(SENSE.invalidFieldInParameterList);
    const ranges: [number, number][] = [];
    for (let at = 8; at < 8 + descBytes; at += 16) {
      const l = pv.getBigUint64(at);
      const n = pv.getUint32(at + 8);
      const lba = l > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(l);
      if (lba > this.backend.blockCount || n > this.backend.blockCount - lba) check(SENSE.lbaOutOfRange);
      if (n > MAX_UNMAP_BLOCKS) check(SENSE.invalidFieldInParameterList);
      if (n > 0) ranges.push([lba, n]);
    }
    for (const [lba, n] of ranges) await this.backend.discard!(lba, n); // all checked before any is applied
    return { data: null, length: 0, taken: paramLen };
  }

  private modeSense(op: number, cdb: Uint8Array, dv: DataView) {
    const ten = op === OP.modeSense10;
    const dbd = (cdb[1]! & 0x08) !== 0;
    const pc = cdb[2]! >> 6;
    const page = cdb[2]! & 0x3f;
    if (pc === 3) check(SENSE.invalidFieldInCdb(2)); // saved values: not supported
    if (page !== 0x08 && page !== 0x0a && page !== 0x3f && page !== 0x00) check(SENSE.invalidFieldInCdb(2));
    const pages: number[] = [];
    if (page === 0x08 || page === 0x3f) {
      // Caching page: WCE set (a write cache SYNCHRONIZE CACHE flushes), RCD clear; changeable values all zero.
      const p = new Array(20).fill(0);
      p[0] = 0x08;
      p[1] = 0x12;
      if (pc !== 1) p[2] = 0x04; // WCE
      pages.push(...p);
    }
    if (page === 0x0a || page === 0x3f) {
      // Control page: descriptor-format sense off (D_SENSE 0), no software write protect; nothing changeable.
      const p = new Array(12).fill(0);
      p[0] = 0x0a;
      p[1] = 0x0a;
      if (pc !== 1) p[3] = 0x10; // queue algorithm modifier 1: unrestricted reordering
      pages.push(...p);
    }
    const blockDesc = dbd ? [] : (() => {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setUint32(0, Math.min(this.backend.blockCount, 0xffffff));
      b[0] = 0; // density code
      new DataView(b.buffer).setUint32(4, this.backend.blockSize & 0xffffff);
      return [...b];
    })();
    const wp = (this.backend.readOnly ? 0x80 : 0) | 0x10; // WP; DPOFUA: DPO and FUA are honoured
    const header = ten ? [0, 0, 0, wp, 0, 0, 0, blockDesc.length] : [0, 0, wp, blockDesc.length];
    const all = new Uint8Array([...header, ...blockDesc, ...pages]);
    if (ten) new DataView(all.buffer).setUint16(0, all.length - 2);
    else all[0] = all.length - 1;
    return { data: all, length: ten ? dv.getUint16(7) : cdb[4]!, taken: 0 };
  }

  private standardInquiry(): Uint8Array {
    const b = new Uint8Array(96);
    b[0] = 0x00; // direct-access block device, connected
    b[2] = 0x06; // SPC-4
    b[3] = 0x12; // HiSup, response data format 2
    b[4] = b.length - 5;
    b[7] = 0x02; // CmdQue
    ascii(b, 8, 8, this.vendor);
    ascii(b, 16, 16, this.product);
    ascii(b, 32, 4, this.revision);
    const dv = new DataView(b.buffer);
    dv.setUint16(58, 0x0460); // version descriptors: SPC-4
    dv.setUint16(60, 0x04c0); // SBC-3
    return b;
  }

  private vpd(page: number): Uint8Array {
    const bs = this.backend.blockSize;
    const provisioning = typeof this.backend.discard === 'function';
    switch (page) {
      case 0x00: {
        const list = [0x00, 0x80, 0x83, 0xb0, 0xb1, ...(provisioning ? [0xb2] : [])];
        return new Uint8Array([0, 0x00, 0, list.length, ...list]);
      }
      case 0x80: {
        const b = new Uint8Array(4 + this.serial.length);
        b[1] = 0x80;
        b[3] = this.serial.length;
        ascii(b, 4, this.serial.length, this.serial);
        return b;
      }
      case 0x83: {
        const b = new Uint8Array(4 + 4 + 16);
        b[1] = 0x83;
        b[3] = 20;
        b[4] = 0x01; // code set: binary
        b[5] = 0x03; // association: logical unit; type: NAA
        b[7] = 16;
        const dv = new DataView(b.buffer);
        dv.setBigUint64(8, this.naa);
        dv.setBigUint64(16, BigInt(this.backend.blockCount));
        return b;
      }
      case 0xb0: {
        const b = new Uint8Array(64);
        const dv = new DataView(b.buffer);
        b[1] = 0xb0;
        dv.setUint16(2, 0x3c);
        const maxBlocks = Math.floor((MAX_TRANSFER_BLOCKS * 512) / bs);
        dv.setUint32(8, maxBlocks); // maximum transfer length
        dv.setUint32(12, Math.min(maxBlocks, 128)); // optimal transfer length
        if (provisioning) {
          dv.setUint32(20, MAX_UNMAP_BLOCKS); // maximum unmap LBA count
          dv.setUint32(24, MAX_UNMAP_DESCRIPTORS); // maximum unmap block descriptor count
          dv.setUint32(28, 1); // optimal unmap granularity
        }
        dv.setBigUint64(36, BigInt(MAX_UNMAP_BLOCKS)); // maximum write same length
        return b;
      }
      case 0xb1: {
        const b = new Uint8Array(64);
        b[1] = 0xb1;
        new DataView(b.buffer).setUint16(2, 0x3c);
        new DataView(b.buffer).setUint16(4, 1); // medium rotation rate: non-rotating
        return b;
      }
      case 0xb2:
        if (!provisioning) break;
        return new Uint8Array([0, 0xb2, 0, 4, 0, 0x80 | 0x40 | 0x04, 0x02, 0]); // LBPU, LBPWS, LBPRZ; thin provisioned
    }
    return check(SENSE.invalidFieldInCdb(2));
  }

  /** Runs `fn` with a staging region of core memory; returns its bytes when `copyOut`. */
  private async staged(bytes: number, fn: (ptr: number) => Promise<void>, copyOut: boolean): Promise<Uint8Array | null> {
    const ptr = this.core.allocUninitialized(bytes);
    try {
      await fn(ptr);
      return copyOut ? this.core.u8.slice(ptr, ptr + bytes) : null;
    } finally {
      this.core.free(ptr);
    }
  }
}

/** REPORT LUNS parameter data (SAM single-level LUN format) for `luns`. */
export function reportLuns(luns: readonly number[]): Uint8Array {
  const b = new Uint8Array(8 + 8 * luns.length);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 8 * luns.length);
  luns.forEach((lun, i) => {
    if (lun < 256) b[8 + 8 * i + 1] = lun;
    else dv.setUint16(8 + 8 * i, 0x4000 | (lun & 0x3fff)); // flat space addressing
  });
  return b;
}

/** Big-endian u32 at `at` (CDB fields are big-endian). */
function be32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}
