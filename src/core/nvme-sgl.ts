// NVMe SGL façade (spec/nvme.md §4): descriptor encoding, buildSgl (host-driver side) and
// walkSgl (controller side); and the batch forms of both data-pointer formats, PRP and SGL
// (one engine call builds or walks many commands: the way to go fast, DESIGN "engine boundary").

import {
  NVME_CMD_COUNT, NVME_CMD_DPTR, NVME_CMD_FIRST, NVME_CMD_LENGTH, NVME_CMD_SIZE, NVME_CMD_STATUS, SEG_SIZE,
  SGL_DESC_SIZE, SGL_OFF_ID, SGL_OFF_LEN, SGL_TYPE_BIT_BUCKET, SGL_TYPE_DATA_BLOCK, SGL_TYPE_LAST_SEGMENT,
  SGL_TYPE_SEGMENT,
} from '../generated/constants';
import type { Core } from '../engine/core';
import { SgringError } from '../engine/errors';
import {
  checkLength, withGuest, decodeNvmeStatus, ensure, readSegments, resolveOptions, splitAddress, walkResult,
  toBigAddress, workspace, writeAddresses, writeConfig, writePool, writeSegments, type NvmeAddress, type NvmeStatus, type NvmeWalkOptions,
  type NvmeWalkResult, type ResolvedOptions, type NvmeSegment,
} from './nvme-common';

export type SglType = 'data' | 'bitBucket' | 'segment' | 'lastSegment';
const TYPE_CODES: Record<SglType, number> = {
  data: SGL_TYPE_DATA_BLOCK, bitBucket: SGL_TYPE_BIT_BUCKET, segment: SGL_TYPE_SEGMENT, lastSegment: SGL_TYPE_LAST_SEGMENT,
};

/** One SGL descriptor (16 bytes on the wire). */
export interface SglDescriptor {
  /** The 64-bit address field, exact. */
  addr: bigint;
  length: number;
  /** The identifier byte: type in bits 7:4, sub-type in 3:0. */
  id: number;
  /** The type's name, or 'type0xN' for others. */
  type: string;
}

export interface SglDescriptorInput {
  addr: NvmeAddress;
  length: number;
  /** Default 'data'; ignored when `id` is given. */
  type?: SglType;
  /** Raw identifier byte (e.g. to build hostile descriptors). */
  id?: number;
}

/** The 16 wire bytes of a descriptor (address LE, length LE, 3 reserved zero bytes, id). */
export function encodeSglDescriptor(d: SglDescriptorInput): Uint8Array {
  const [lo, hi] = splitAddress(d.addr, 'addr');
  const id = d.id ?? TYPE_CODES[d.type ?? 'data'] << 4;
  if (!Number.isInteger(id) || id < 0 || id > 0xff) throw new SgringError('InvalidArgument', `SGL identifier ${id} is not a byte`);
  const b = new Uint8Array(SGL_DESC_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, lo, true);
  dv.setUint32(4, hi, true);
  dv.setUint32(SGL_OFF_LEN, checkLength(d.length), true);
  b[SGL_OFF_ID] = id;
  return b;
}

export function decodeSglDescriptor(b: Uint8Array): SglDescriptor {
  const dv = new DataView(b.buffer, b.byteOffset, SGL_DESC_SIZE);
  const id = b[SGL_OFF_ID]!;
  const name = (Object.keys(TYPE_CODES) as SglType[]).find((k) => TYPE_CODES[k] === id >> 4);
  return { addr: dv.getBigUint64(0, true), length: dv.getUint32(SGL_OFF_LEN, true), id, type: name ?? `type0x${(id >> 4).toString(16)}` };
}

const toBytes = (d: Uint8Array | SglDescriptorInput) => (d instanceof Uint8Array ? d : encodeSglDescriptor(d));

export interface BuildSglInput extends Pick<NvmeWalkOptions, 'mps' | 'mdts' | 'maxTransferBytes'> {
  /** Data segments, any alignment, each non-empty. */
  segments: readonly { addr: NvmeAddress; len: number }[];
  /** Guest pages for descriptor segments (page = mps bytes); the first may carry a 16-byte
   *  aligned offset leaving room for two descriptors. */
  listPages?: readonly NvmeAddress[];
}

export interface BuiltSgl {
  sgl1: SglDescriptor;
  /** SGL1 as the 16 bytes for SQE bytes 24..39. */
  sgl1Bytes: Uint8Array;
  length: number;
  /** The pages used for descriptor segments, in chain order. */
  listPages: bigint[];
}

/** Builds SGL1 and any descriptor segments (written into guest memory) for the segments. */
export function buildSgl(core: Core, input: BuildSglInput): BuiltSgl {
  const r = resolveOptions(input);
  const ws = workspace(core);
  const listPages = input.listPages ?? [];
  const segPtr = ensure(core, ws, 'segs', input.segments.length, SEG_SIZE);
  writeSegments(core, segPtr, input.segments);
  const pool = writePool(core, ws, listPages);
  writeConfig(core, ws, r);
  const st = core.fn.sglBuild(ws.cfg, segPtr, input.segments.length, pool, listPages.length, ws.rec);
  if (st < 0) throw SgringError.fromStatus(st, 'buildSgl');
  const sgl1Bytes = core.u8.slice(ws.rec + NVME_CMD_DPTR, ws.rec + NVME_CMD_DPTR + SGL_DESC_SIZE);
  return {
    sgl1: decodeSglDescriptor(sgl1Bytes), sgl1Bytes, length: core.u32[(ws.rec + NVME_CMD_LENGTH) >> 2]!,
    listPages: listPages.slice(0, st).map(toBigAddress),
  };
}

export interface WalkSglInput extends NvmeWalkOptions {
  /** SGL1: the 16 bytes from the SQE, or a descriptor to encode. */
  sgl1: Uint8Array | SglDescriptorInput;
  length: number;
}

/** Walks SGL1 as a controller would (§4 table): segments, or the NVMe status to complete with. */
export function walkSgl(core: Core, input: WalkSglInput): NvmeWalkResult {
  const r = resolveOptions(input);
  const ws = workspace(core);
  const length = checkLength(input.length);
  const bytes = toBytes(input.sgl1);
  if (bytes.length !== SGL_DESC_SIZE) throw new SgringError('InvalidArgument', `sgl1 must be ${SGL_DESC_SIZE} bytes`);
  writeConfig(core, ws, r);
  core.u8.set(bytes, ws.rec + NVME_CMD_DPTR);
  return walkResult(core, ws, withGuest(core, r, () => core.fn.sglWalk(ws.cfg, ws.rec, length, ws.out, ws.outCap)), 'walkSgl');
}

// ---- batch forms (PRP and SGL) ----

export type DataPointerFormat = 'prp' | 'sgl';

export interface NvmeBatchOptions extends NvmeWalkOptions {
  format: DataPointerFormat;
  /** Commands the batch holds. */
  capacity: number;
  /** Segments the batch's segment array holds (default capacity * 16, at least maxMappings). */
  segmentCapacity?: number;
}

function checkCapacity(n: unknown, what: string): number {
  if (!Number.isInteger(n) || (n as number) < 1 || (n as number) > 1 << 22) throw new SgringError('InvalidArgument', `${what} ${String(n)} must be in [1, 2^22]`);
  return n as number;
}

abstract class CommandBatch {
  readonly core: Core;
  readonly format: DataPointerFormat;
  readonly capacity: number;
  /** Core offset of the command records (NVME_CMD_SIZE bytes each). */
  readonly cmds: number;
  /** Core offset of the segment array and its capacity. */
  readonly segs: number;
  readonly segmentCapacity: number;
  /** Commands added so far. */
  count = 0;
  protected readonly options: ResolvedOptions;

  constructor(core: Core, o: NvmeBatchOptions) {
    if (o.format !== 'prp' && o.format !== 'sgl') throw new SgringError('InvalidArgument', `format must be 'prp' or 'sgl'`);
    this.core = core;
    this.format = o.format;
    this.options = resolveOptions(o);
    this.capacity = checkCapacity(o.capacity, 'capacity');
    this.segmentCapacity = checkCapacity(o.segmentCapacity ?? Math.max(this.capacity * 16, this.options.maxMappings), 'segmentCapacity');
    this.cmds = core.alloc(this.capacity * NVME_CMD_SIZE, 8);
    this.segs = core.alloc(this.segmentCapacity * SEG_SIZE, 8);
  }

  clear(): void {
    this.count = 0;
  }

  protected slot(): number {
    if (this.count >= this.capacity) throw new SgringError('BufferTooSmall', `the batch holds ${this.capacity} commands`);
    return this.count++;
  }

  protected field(i: number, off: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) throw new SgringError('InvalidArgument', `no command ${i} in this batch`);
    return this.core.u32[(this.cmds + i * NVME_CMD_SIZE + off) >> 2]!;
  }

  /** The NVME_CMD_STATUS word of command i (signed). */
  protected rawStatus(i: number): number {
    return this.field(i, NVME_CMD_STATUS) | 0;
  }
}

/**
 * Many commands walked in one engine call. Add commands, then run(): results land in the
 * batch's segment array (each command's FIRST/COUNT) until it is full; run(from) continues.
 */
export class NvmeWalkBatch extends CommandBatch {
  constructor(core: Core, o: NvmeBatchOptions) {
    super(core, o);
    if (this.segmentCapacity < this.options.maxMappings) {
      throw new SgringError('InvalidArgument', `segmentCapacity must hold maxMappings (${this.options.maxMappings}) segments`);
    }
  }

  /** Adds a PRP command; returns its index. */
  addPrp(prp1: NvmeAddress, prp2: NvmeAddress, length: number): number {
    if (this.format !== 'prp') throw new SgringError('InvalidArgument', 'this batch walks SGLs');
    const [a, b] = splitAddress(prp1, 'prp1');
    const [c, d] = splitAddress(prp2, 'prp2');
    const len = checkLength(length);
    const i = this.slot();
    const u32 = this.core.u32;
    const p = (this.cmds + i * NVME_CMD_SIZE) >> 2;
    u32[p] = a;
    u32[p + 1] = b;
    u32[p + 2] = c;
    u32[p + 3] = d;
    u32[p + (NVME_CMD_LENGTH >> 2)] = len;
    return i;
  }

  /** Adds an SGL command; returns its index. */
  addSgl(sgl1: Uint8Array | SglDescriptorInput, length: number): number {
    if (this.format !== 'sgl') throw new SgringError('InvalidArgument', 'this batch walks PRPs');
    const bytes = toBytes(sgl1);
    const len = checkLength(length);
    const i = this.slot();
    this.core.u8.set(bytes.subarray(0, SGL_DESC_SIZE), this.cmds + i * NVME_CMD_SIZE + NVME_CMD_DPTR);
    this.core.u32[(this.cmds + i * NVME_CMD_SIZE + NVME_CMD_LENGTH) >> 2] = len;
    return i;
  }

  /**
   * Walks commands [from, count) and returns the index after the last one walked (count when
   * all fit). Results of commands before `from` from an earlier run are overwritten.
   */
  run(from = 0): number {
    const ws = workspace(this.core);
    writeConfig(this.core, ws, this.options);
    const fn = this.format === 'prp' ? this.core.fn.prpWalkBatch : this.core.fn.sglWalkBatch;
    const st = withGuest(this.core, this.options, () => fn(ws.cfg, this.cmds + from * NVME_CMD_SIZE, this.count - from, this.segs, this.segmentCapacity));
    if (st < 0) throw SgringError.fromStatus(st, `${this.format} walk batch`);
    return from + st;
  }

  /** null when command i succeeded, else the NVMe status it completes with. */
  status(i: number): NvmeStatus | null {
    const st = this.rawStatus(i);
    return st === 0 ? null : decodeNvmeStatus(st);
  }

  segmentCount(i: number): number {
    return this.field(i, NVME_CMD_COUNT);
  }

  /** The segments of command i (from the last run that covered it). */
  segments(i: number): NvmeSegment[] {
    return readSegments(this.core, this.segs + this.field(i, NVME_CMD_FIRST) * SEG_SIZE, this.segmentCount(i));
  }
}

/**
 * Many transfers built in one engine call, taking list pages from one pool in order. Add
 * transfers as segment lists, then run(); each result gives the data pointer or the error.
 */
export class NvmeBuildBatch extends CommandBatch {
  private segsUsed = 0;
  readonly pool: number;
  readonly poolPages: number[];

  constructor(core: Core, o: NvmeBatchOptions & { listPages: readonly NvmeAddress[] }) {
    super(core, o);
    this.pool = core.alloc(Math.max(1, o.listPages.length) * 8, 8);
    writeAddresses(core, this.pool, o.listPages);
    this.poolPages = o.listPages.map((p) => Number(p));
  }

  override clear(): void {
    super.clear();
    this.segsUsed = 0;
  }

  /** Adds a transfer; returns its index. */
  add(segments: readonly { addr: NvmeAddress; len: number }[]): number {
    if (this.segsUsed + segments.length > this.segmentCapacity) throw new SgringError('BufferTooSmall', `the batch holds ${this.segmentCapacity} segments`);
    writeSegments(this.core, this.segs + this.segsUsed * SEG_SIZE, segments);
    const i = this.slot();
    const p = (this.cmds + i * NVME_CMD_SIZE) >> 2;
    const u32 = this.core.u32;
    u32[p + (NVME_CMD_FIRST >> 2)] = this.segsUsed;
    u32[p + (NVME_CMD_COUNT >> 2)] = segments.length;
    this.segsUsed += segments.length;
    return i;
  }

  /** Builds every transfer; returns the pool pages used in total. */
  run(): number {
    const ws = workspace(this.core);
    writeConfig(this.core, ws, this.options);
    const fn = this.format === 'prp' ? this.core.fn.prpBuildBatch : this.core.fn.sglBuildBatch;
    const st = fn(ws.cfg, this.cmds, this.count, this.segs, this.segsUsed, this.pool, this.poolPages.length);
    if (st < 0) throw SgringError.fromStatus(st, `${this.format} build batch`);
    return st;
  }

  /** Throws the SgringError of transfer i, or returns its 16-byte data pointer and length. */
  result(i: number): { dptr: Uint8Array; length: number; listPages: number } {
    const st = this.rawStatus(i);
    if (st < 0) throw SgringError.fromStatus(st, `${this.format} build batch, transfer ${i}`);
    const at = this.cmds + i * NVME_CMD_SIZE;
    return { dptr: this.core.u8.slice(at, at + 16), length: this.field(i, NVME_CMD_LENGTH), listPages: st };
  }
}
