// NVMe PRP façade (spec/nvme.md §3): buildPrp for the guest-driver side, walkPrp for the
// controller side, the NVMe status decoding shared with the SGL façade, and the per-core work
// area both use. The engine (Wasm or reference) does every check; this file only lays out
// arguments and decodes results. Errors of the caller are SgringErrors; a hostile data pointer
// is not an error of the caller but an NVMe status in the result ({ ok: false, status }).

import {
  NVME_CFG_FLAGS, NVME_CFG_GUEST_BASE, NVME_CFG_GUEST_BYTES, NVME_CFG_MAX_BYTES,
  NVME_CFG_MAX_DESCRIPTORS, NVME_CFG_MAX_MAPPINGS, NVME_CFG_MPS, NVME_CFG_SCRATCH, NVME_CFG_SCRATCH_BYTES,
  NVME_CFG_SIZE, NVME_CMD_LENGTH, NVME_CMD_PRP1, NVME_CMD_PRP2, NVME_CMD_SIZE, NVME_DNR, NVME_MPS_MAX,
  NVME_MPS_MIN, NVME_REASON_SHIFT, NVME_WALK_MASK_PRP1, NVME_WALK_MERGE, NVME_WALK_SGL_EXCESS, SEG_OFF_LEN,
  SEG_SIZE, SGL_CHUNK_DESCRIPTORS, SGL_DESC_SIZE,
} from '../generated/constants';
import type { Core } from '../engine/core';
import { SgringError } from '../engine/errors';

/** A guest-physical range (the shared segment format, as numbers). */
export interface Segment {
  addr: number;
  len: number;
}

/** A 64-bit bus address at the API edge: a non-negative safe integer or a bigint. */
export type BusAddress = number | bigint;

/** An NVMe completion status (spec §5) and the check that produced it. */
export interface NvmeStatus {
  sct: number;
  sc: number;
  dnr: boolean;
  /** Status name, e.g. 'PrpOffsetInvalid'. */
  name: string;
  /** Which check fired, e.g. 'ListEntryNotPageAligned' (see NVME_WHY_* in the constants). */
  reason: string;
  /** The CQE status word without the phase bit: SC | SCT << 8 | DNR << 14. */
  field: number;
}

export type NvmeWalkResult = { ok: true; segments: Segment[] } | { ok: false; status: NvmeStatus };

/** Controller settings of a walk (the NVME_CFG_* block). */
export interface NvmeWalkOptions {
  /** Memory page size (CC.MPS) in bytes: 4096 (default) to 65536, a power of two. */
  mps?: number;
  /** MDTS as Identify reports it: max transfer = 2^mdts * 4 KiB; 0 (default) = no limit. */
  mdts?: number;
  /** Max transfer in bytes; overrides mdts. 0 = no limit. */
  maxTransferBytes?: number;
  /** Mappings (PRP entries / data descriptors) one command may use; default 1024 as QEMU. */
  maxMappings?: number;
  /** Merge physically contiguous segments (default true; the first is never merged backwards). */
  merge?: boolean;
  /** PRP: clear PRP1 bits 1:0 as bhyve does instead of failing with 0x13 (default false). */
  maskPrp1?: boolean;
  /** SGL: the controller advertises SGLS "excess length" (default false). */
  excessLength?: boolean;
  /** SGL: descriptors one walk may read (default 65536); past it Internal Error + DNR. */
  maxDescriptors?: number;
}

const SC_NAMES: Record<number, string> = {
  0x02: 'InvalidField', 0x04: 'DataTransferError', 0x06: 'InternalError', 0x0d: 'InvalidSglSegmentDescriptor',
  0x0e: 'InvalidNumberOfSglDescriptors', 0x0f: 'DataSglLengthInvalid', 0x11: 'SglDescriptorTypeInvalid',
  0x13: 'PrpOffsetInvalid',
};

/** Index = NVME_WHY_* value. */
const REASONS = [
  '', 'TransferExceedsMdts', 'Prp1NotDwordAligned', 'Prp2NotPageAligned', 'ListPointerNotQwordAligned',
  'ListEntryNotPageAligned', 'ChainPointerNotPageAligned', 'ChainLoop', 'ListOutsideGuest', 'DataOutsideGuest',
  'TooManyMappings', 'TooManyListPages', 'Sgl1TypeInvalid', 'SegmentLengthInvalid', 'AddressOverflow',
  'SegmentDescriptorNotLast', 'DescriptorTypeInvalid', 'LastSegmentEndsInPointer', 'SegmentWithoutData',
  'ExcessDescriptors', 'DescriptorsTooShort', 'SegmentPointerTypeInvalid', 'TooManyDescriptors',
];

/** True when an engine result is an NVMe status (engine statuses are -1 .. -99). */
export const isNvmeStatus = (code: number): boolean => code <= -(1 << NVME_REASON_SHIFT);

/** Decodes an engine result <= -65536 into an NvmeStatus. */
export function decodeNvmeStatus(code: number): NvmeStatus {
  const v = -code;
  const field = v & 0xffff;
  const sc = field & 0xff;
  const sct = (field >> 8) & 7;
  return {
    sct, sc, dnr: (field & NVME_DNR) !== 0, field,
    name: sct === 0 ? (SC_NAMES[sc] ?? `Generic0x${sc.toString(16)}`) : `Sct${sct}Sc0x${sc.toString(16)}`,
    reason: REASONS[Math.floor(v / (1 << NVME_REASON_SHIFT))] ?? 'Unknown',
  };
}

/** §3.1 rule 10: PRP entries of a transfer of `length` bytes whose PRP1 sits at `offset`. */
export function prpEntryCount(length: number, offset: number, mps = 4096): number {
  if (length === 0) return 0;
  const first = mps - (offset % mps);
  return 1 + Math.ceil(Math.max(0, length - first) / mps);
}

// ---- argument helpers ----

const TWO32 = 0x1_0000_0000;
const isU32 = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 0xffffffff;

/** Splits a bus address into [lo, hi]; throws InvalidArgument unless it is a valid u64. */
export function splitAddress(a: BusAddress, what: string): [number, number] {
  if (typeof a === 'bigint') {
    if (a < 0n || a >= 1n << 64n) throw new SgringError('InvalidArgument', `${what} ${a} is not a 64-bit address`);
    return [Number(a & 0xffffffffn), Number(a >> 32n)];
  }
  if (!Number.isSafeInteger(a) || a < 0) throw new SgringError('InvalidArgument', `${what} ${a} is not a non-negative safe integer (use a bigint)`);
  return [a % TWO32, Math.floor(a / TWO32)];
}

export function checkLength(length: unknown, what = 'length'): number {
  if (!isU32(length)) throw new SgringError('InvalidArgument', `${what} ${String(length)} must be an integer in [0, 2^32 - 1]`);
  return length;
}

// ---- the per-core work area ----

/** Regions one core's façade calls reuse: config, one record, scratch, and growable arrays. */
interface Workspace {
  cfg: number;
  rec: number;
  scratch: number;
  scratchBytes: number;
  out: number;
  outCap: number;
  segs: number;
  segCap: number;
  pool: number;
  poolCap: number;
}

const workspaces = new WeakMap<Core, Workspace>();

/** @internal The façade's work area in `core` (allocated once, grown on demand). */
export function workspace(core: Core): Workspace {
  let ws = workspaces.get(core);
  if (!ws) {
    ws = { cfg: core.alloc(NVME_CFG_SIZE, 8), rec: core.alloc(NVME_CMD_SIZE, 8), scratch: 0, scratchBytes: 0, out: 0, outCap: 0, segs: 0, segCap: 0, pool: 0, poolCap: 0 };
    workspaces.set(core, ws);
  }
  return ws;
}

/** Makes `ws[key]` an array of at least n records of `size` bytes (old contents are not kept). */
export function ensure(core: Core, ws: Workspace, key: 'out' | 'segs' | 'pool', n: number, size: number): number {
  const capKey = `${key === 'out' ? 'out' : key === 'segs' ? 'seg' : 'pool'}Cap` as 'outCap' | 'segCap' | 'poolCap';
  if (ws[capKey] < n) {
    const cap = Math.max(n, 2 * ws[capKey], 16);
    ws[key] = core.alloc(cap * size, 8);
    ws[capKey] = cap;
  }
  return ws[key];
}

/** Resolved walk/build settings; `maxMappings` also sizes the output array. */
export interface ResolvedOptions {
  mps: number;
  maxBytes: number;
  flags: number;
  maxMappings: number;
  maxDescriptors: number;
}

export function resolveOptions(o: NvmeWalkOptions = {}): ResolvedOptions {
  const mps = o.mps ?? 4096;
  if (!Number.isInteger(mps) || mps < NVME_MPS_MIN || mps > NVME_MPS_MAX || (mps & (mps - 1)) !== 0) {
    throw new SgringError('NvmeInvalidConfig', `mps ${mps} must be a power of two from ${NVME_MPS_MIN} to ${NVME_MPS_MAX}`);
  }
  let maxBytes = 0;
  if (o.maxTransferBytes !== undefined) maxBytes = checkLength(o.maxTransferBytes, 'maxTransferBytes');
  else if (o.mdts !== undefined) {
    if (!Number.isInteger(o.mdts) || o.mdts < 0 || o.mdts > 255) throw new SgringError('InvalidArgument', `mdts ${o.mdts} must be in [0, 255]`);
    const bytes = 4096 * 2 ** o.mdts;
    maxBytes = o.mdts === 0 || bytes > 0xffffffff ? 0 : bytes;
  }
  const maxMappings = o.maxMappings ?? 1024;
  const maxDescriptors = o.maxDescriptors ?? 65536;
  for (const [k, v] of [['maxMappings', maxMappings], ['maxDescriptors', maxDescriptors]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 1 << 20) throw new SgringError('InvalidArgument', `${k} ${v} must be in [1, 2^20]`);
  }
  const flags = (o.merge ?? true ? NVME_WALK_MERGE : 0) | (o.maskPrp1 ? NVME_WALK_MASK_PRP1 : 0) |
    (o.excessLength ? NVME_WALK_SGL_EXCESS : 0);
  return { mps, maxBytes, flags, maxMappings, maxDescriptors };
}

/**
 * Writes the config block for `r` and makes sure scratch and output fit it. Scratch: one page
 * for the PRP list snapshot plus 8 bytes per list page a walk of maxMappings entries can visit,
 * and at least one 4 KiB SGL chunk.
 */
export function writeConfig(core: Core, ws: Workspace, r: ResolvedOptions): void {
  const listPages = Math.ceil(r.maxMappings / (r.mps / 8 - 1)) + 2;
  const scratchNeed = Math.max(r.mps + 8 * listPages, SGL_CHUNK_DESCRIPTORS * SGL_DESC_SIZE);
  if (ws.scratchBytes < scratchNeed) {
    ws.scratch = core.alloc(scratchNeed, 8);
    ws.scratchBytes = scratchNeed;
  }
  ensure(core, ws, 'out', r.maxMappings, SEG_SIZE);
  const u32 = core.u32;
  const c = ws.cfg >> 2;
  u32[c + (NVME_CFG_MPS >> 2)] = r.mps;
  u32[c + (NVME_CFG_MAX_BYTES >> 2)] = r.maxBytes;
  u32[c + (NVME_CFG_FLAGS >> 2)] = r.flags;
  u32[c + (NVME_CFG_GUEST_BASE >> 2)] = core.guestBase;
  u32[c + (NVME_CFG_GUEST_BYTES >> 2)] = core.guestBytes;
  u32[c + (NVME_CFG_MAX_MAPPINGS >> 2)] = r.maxMappings;
  u32[c + (NVME_CFG_SCRATCH >> 2)] = ws.scratch;
  u32[c + (NVME_CFG_SCRATCH_BYTES >> 2)] = ws.scratchBytes;
  u32[c + (NVME_CFG_MAX_DESCRIPTORS >> 2)] = r.maxDescriptors;
}

/** Reads `n` segments at `ptr` of the shared format. */
export function readSegments(core: Core, ptr: number, n: number): Segment[] {
  const u32 = core.u32;
  const segs: Segment[] = new Array(n);
  for (let i = 0, p = ptr >> 2; i < n; i++, p += SEG_SIZE >> 2) {
    segs[i] = { addr: u32[p]! + u32[p + 1]! * TWO32, len: u32[p + (SEG_OFF_LEN >> 2)]! };
  }
  return segs;
}

/** Writes segments into the shared format at `ptr`; each addr must be a valid u64. */
export function writeSegments(core: Core, ptr: number, segs: readonly { addr: BusAddress; len: number }[]): void {
  const u32 = core.u32;
  segs.forEach((s, i) => {
    const [lo, hi] = splitAddress(s.addr, `segments[${i}].addr`);
    const p = (ptr >> 2) + i * (SEG_SIZE >> 2);
    u32[p] = lo;
    u32[p + 1] = hi;
    u32[p + 2] = checkLength(s.len, `segments[${i}].len`);
    u32[p + 3] = 0;
  });
}

/** Turns a walk's engine result into an NvmeWalkResult (throws for engine errors). */
export function walkResult(core: Core, ws: Workspace, st: number, what: string): NvmeWalkResult {
  if (st >= 0) return { ok: true, segments: readSegments(core, ws.out, st) };
  if (isNvmeStatus(st)) return { ok: false, status: decodeNvmeStatus(st) };
  // The output array holds maxMappings segments, so BufferTooSmall cannot happen; anything
  // else is a bad argument.
  throw SgringError.fromStatus(st, what);
}

/** Writes u64 guest addresses (a list-page pool) at `ptr`. */
export function writeAddresses(core: Core, ptr: number, pages: readonly BusAddress[]): void {
  const u32 = core.u32;
  pages.forEach((p, i) => {
    const [lo, hi] = splitAddress(p, `listPages[${i}]`);
    u32[(ptr >> 2) + 2 * i] = lo;
    u32[(ptr >> 2) + 2 * i + 1] = hi;
  });
}

/** Writes the pool into the work area and returns its pointer. */
export function writePool(core: Core, ws: Workspace, pages: readonly BusAddress[]): number {
  const pool = ensure(core, ws, 'pool', pages.length, 8);
  writeAddresses(core, pool, pages);
  return pool;
}

// ---- PRP ----

export interface BuildPrpInput extends Pick<NvmeWalkOptions, 'mps' | 'mdts' | 'maxTransferBytes'> {
  /** The transfer as segments obeying the PRP rule (first dword aligned; the rest page aligned,
   *  every segment but the last ending on a page boundary). */
  segments?: readonly { addr: BusAddress; len: number }[];
  /** Or: first address + length + the page addresses after the first page. */
  addr?: BusAddress;
  length?: number;
  pages?: readonly BusAddress[];
  /** Guest pages the builder may use for PRP lists, in order; the first may carry a qword
   *  aligned in-page offset (as Linux's 256-byte pool produces). */
  listPages?: readonly BusAddress[];
}

export interface BuiltPrp {
  prp1: number;
  prp2: number;
  length: number;
  /** PRP entries (data pointers) of the transfer, §3.1 rule 10. */
  entries: number;
  /** The list pages used, in chain order (a prefix of listPages). */
  listPages: number[];
}

function prpSegments(input: BuildPrpInput, mps: number): readonly { addr: BusAddress; len: number }[] {
  if (input.segments) return input.segments;
  if (input.addr === undefined || input.length === undefined) {
    throw new SgringError('InvalidArgument', 'buildPrp needs segments, or addr + length (+ pages)');
  }
  const length = checkLength(input.length);
  if (length === 0) return [];
  const [lo] = splitAddress(input.addr, 'addr');
  const first = Math.min(length, mps - (lo % mps));
  const segs: { addr: BusAddress; len: number }[] = [{ addr: input.addr, len: first }];
  let rest = length - first;
  const pages = input.pages ?? [];
  for (let i = 0; rest > 0; i++) {
    if (i >= pages.length) throw new SgringError('InvalidArgument', `length ${length} needs more than ${pages.length} pages after the first`);
    const n = Math.min(rest, mps);
    segs.push({ addr: pages[i]!, len: n });
    rest -= n;
  }
  return segs;
}

/** Builds PRP1/PRP2 and any PRP lists (written into guest memory) for a transfer (§3.1-3.2). */
export function buildPrp(core: Core, input: BuildPrpInput): BuiltPrp {
  const r = resolveOptions(input);
  const ws = workspace(core);
  const segs = prpSegments(input, r.mps);
  const listPages = input.listPages ?? [];
  const segPtr = ensure(core, ws, 'segs', segs.length, SEG_SIZE);
  writeSegments(core, segPtr, segs);
  const pool = writePool(core, ws, listPages);
  writeConfig(core, ws, r);
  const st = core.fn.prpBuild(ws.cfg, segPtr, segs.length, pool, listPages.length, ws.rec);
  if (st < 0) throw SgringError.fromStatus(st, 'buildPrp');
  const u32 = core.u32;
  const rec = ws.rec >> 2;
  const prp1 = u32[rec + (NVME_CMD_PRP1 >> 2)]! + u32[rec + (NVME_CMD_PRP1 >> 2) + 1]! * TWO32;
  const length = u32[rec + (NVME_CMD_LENGTH >> 2)]!;
  return {
    prp1, prp2: u32[rec + (NVME_CMD_PRP2 >> 2)]! + u32[rec + (NVME_CMD_PRP2 >> 2) + 1]! * TWO32, length,
    entries: prpEntryCount(length, prp1 % r.mps, r.mps),
    listPages: listPages.slice(0, st).map((p) => Number(p)),
  };
}

export interface WalkPrpInput extends NvmeWalkOptions {
  prp1: BusAddress;
  prp2: BusAddress;
  length: number;
}

/** Walks PRP1/PRP2 as a controller would (§3.3): segments, or the NVMe status to complete with. */
export function walkPrp(core: Core, input: WalkPrpInput): NvmeWalkResult {
  const r = resolveOptions(input);
  const ws = workspace(core);
  const length = checkLength(input.length);
  const [p1lo, p1hi] = splitAddress(input.prp1, 'prp1');
  const [p2lo, p2hi] = splitAddress(input.prp2, 'prp2');
  writeConfig(core, ws, r);
  const u32 = core.u32;
  const rec = ws.rec >> 2;
  u32[rec] = p1lo;
  u32[rec + 1] = p1hi;
  u32[rec + 2] = p2lo;
  u32[rec + 3] = p2hi;
  return walkResult(core, ws, core.fn.prpWalk(ws.cfg, ws.rec, length, ws.out, ws.outCap), 'walkPrp');
}
