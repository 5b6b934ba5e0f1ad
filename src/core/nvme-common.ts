// What the PRP and SGL façades (nvme-prp.ts, nvme-sgl.ts) share: the public result types, the
// NVMe status decoding, option checking, and the per-core work area (config block, record,
// scratch, growable arrays) their engine calls use. Not re-exported as a whole by src/index.ts:
// nvme-prp.ts re-exports the public part.

import {
  NVME_CFG_FLAGS, NVME_CFG_GUEST_BASE, NVME_CFG_GUEST_BYTES, NVME_CFG_MAX_BYTES,
  NVME_CFG_MAX_DESCRIPTORS, NVME_CFG_MAX_MAPPINGS, NVME_CFG_MPS, NVME_CFG_SCRATCH, NVME_CFG_SCRATCH_BYTES,
  NVME_CFG_SIZE, NVME_CMD_PRP2, NVME_CMD_SIZE, NVME_DNR, NVME_MPS_MAX,
  NVME_MPS_MIN, NVME_REASON_SHIFT, NVME_WALK_MASK_PRP1, NVME_WALK_MERGE, NVME_WALK_SGL_EXCESS, NVME_WALK_EXTERNAL, SEG_OFF_LEN,
  SEG_SIZE, SGL_CHUNK_DESCRIPTORS, SGL_DESC_SIZE,
} from '../generated/constants';
import type { Core, ExternalGuest } from '../engine/core';
import { SgringError } from '../engine/errors';
import { replace } from '../engine/region';

/**
 * A guest-physical range a walk mapped. `addr` is an exact number: a walk fails with Data
 * Transfer Error (DataOutsideGuest) before it maps anything outside guest RAM, which is below
 * 2 GiB, so no mapped address is ever near 2^53.
 */
export interface NvmeSegment {
  addr: number;
  len: number;
}

/** A 64-bit bus address at the API edge: a non-negative safe integer or a bigint. */
export type NvmeAddress = number | bigint;

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

export type NvmeWalkResult = { ok: true; segments: NvmeSegment[] } | { ok: false; status: NvmeStatus };

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
  /**
   * Walk side: guest RAM outside core memory (an emulator's, see ExternalGuest): list pages and
   * SGL segments are copied in through guest.copyOut and data ranges checked against guest.bytes.
   * Default: the core's guest window.
   */
  guest?: ExternalGuest;
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

// ---- argument helpers ----

const TWO32 = 0x1_0000_0000;
const isU32 = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 0xffffffff;

/** Splits a bus address into [lo, hi]; throws InvalidArgument unless it is a valid u64. */
export function splitAddress(a: NvmeAddress, what: string): [number, number] {
  if (typeof a === 'bigint') {
    if (a < 0n || a >= 1n << 64n) throw new SgringError('InvalidArgument', `${what} ${a} is not a 64-bit address`);
    return [Number(a & 0xffffffffn), Number(a >> 32n)];
  }
  if (!Number.isSafeInteger(a) || a < 0) throw new SgringError('InvalidArgument', `${what} ${a} is not a non-negative safe integer (use a bigint)`);
  return [a >>> 0, Math.floor(a / TWO32)];
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

/** The façade's work area in `core` (allocated once, grown on demand). */
export function workspace(core: Core): Workspace {
  let ws = workspaces.get(core);
  if (!ws) {
    ws = { cfg: core.alloc(NVME_CFG_SIZE, 8), rec: core.alloc(NVME_CMD_SIZE, 8), scratch: 0, scratchBytes: 0, out: 0, outCap: 0, segs: 0, segCap: 0, pool: 0, poolCap: 0 };
    workspaces.set(core, ws);
  }
  return ws;
}

const CAP_OF = { out: 'outCap', segs: 'segCap', pool: 'poolCap' } as const;

/** Makes `ws[key]` an array of at least n records of `size` bytes (old contents are not kept). */
export function ensure(core: Core, ws: Workspace, key: 'out' | 'segs' | 'pool', n: number, size: number): number {
  const capKey = CAP_OF[key];
  if (ws[capKey] < n) {
    const cap = Math.max(n, 2 * ws[capKey], 16);
    ws[key] = replace(core, ws[key], cap * size);
    ws[capKey] = cap;
  }
  return ws[key];
}

/** Resolved walk/build settings; `maxMappings` also sizes the output array. */
export interface ResolvedOptions {
  mps: number;
  maxBytes: number;
  guest: ExternalGuest | null;
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
    (o.excessLength ? NVME_WALK_SGL_EXCESS : 0) | (o.guest ? NVME_WALK_EXTERNAL : 0);
  const guest = o.guest ?? null;
  if (guest && (!Number.isInteger(guest.bytes) || guest.bytes < 0 || guest.bytes > 0xffffffff || typeof guest.copyOut !== 'function')) {
    throw new SgringError('InvalidArgument', 'guest must be { bytes: an integer below 4 GiB, copyOut(gpa, dst) }');
  }
  return { mps, maxBytes, flags, maxMappings, maxDescriptors, guest };
}

/**
 * Writes the config block for `r` and makes sure scratch and output fit it. Scratch: one page
 * for the PRP list snapshot plus 8 bytes per list page a walk of maxMappings entries can visit,
 * and at least one 4 KiB SGL chunk.
 */
/** Runs an engine walk with r.guest as the core's external guest for the call's duration. */
export function withGuest(core: Core, r: ResolvedOptions, walk: () => number): number {
  if (r.guest === null) return walk();
  core.external = r.guest;
  try {
    return walk();
  } finally {
    core.external = null;
  }
}

export function writeConfig(core: Core, ws: Workspace, r: ResolvedOptions): void {
  const listPages = Math.ceil(r.maxMappings / (r.mps / 8 - 1)) + 2;
  const scratchNeed = Math.max(r.mps + 8 * listPages, SGL_CHUNK_DESCRIPTORS * SGL_DESC_SIZE);
  if (ws.scratchBytes < scratchNeed) {
    ws.scratch = replace(core, ws.scratch, scratchNeed);
    ws.scratchBytes = scratchNeed;
  }
  ensure(core, ws, 'out', r.maxMappings, SEG_SIZE);
  const u32 = core.u32;
  const c = ws.cfg >> 2;
  u32[c + (NVME_CFG_MPS >> 2)] = r.mps;
  u32[c + (NVME_CFG_MAX_BYTES >> 2)] = r.maxBytes;
  u32[c + (NVME_CFG_FLAGS >> 2)] = r.flags;
  u32[c + (NVME_CFG_GUEST_BASE >> 2)] = core.guestBase;
  u32[c + (NVME_CFG_GUEST_BYTES >> 2)] = r.guest ? r.guest.bytes : core.guestBytes;
  u32[c + (NVME_CFG_MAX_MAPPINGS >> 2)] = r.maxMappings;
  u32[c + (NVME_CFG_SCRATCH >> 2)] = ws.scratch;
  u32[c + (NVME_CFG_SCRATCH_BYTES >> 2)] = ws.scratchBytes;
  u32[c + (NVME_CFG_MAX_DESCRIPTORS >> 2)] = r.maxDescriptors;
}

/** Reads `n` segments at `ptr` of the shared format. */
export function readSegments(core: Core, ptr: number, n: number): NvmeSegment[] {
  const u32 = core.u32;
  const segs: NvmeSegment[] = new Array(n);
  for (let i = 0, p = ptr >> 2; i < n; i++, p += SEG_SIZE >> 2) {
    segs[i] = { addr: u32[p]! + u32[p + 1]! * TWO32, len: u32[p + (SEG_OFF_LEN >> 2)]! };
  }
  return segs;
}

/** Writes segments into the shared format at `ptr`; each addr must be a valid u64. */
export function writeSegments(core: Core, ptr: number, segs: readonly { addr: NvmeAddress; len: number }[]): void {
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

/**
 * @internal A PRP walk for a controller's per-command path: options resolved once
 * (resolveOptions), PRP1 and PRP2 as the SQE's dwords 6-9, `length` a u32. Leaves the segments in
 * the workspace's output (walkOutput, SEG format, until the next walk on this core) and returns
 * their count, or the engine's negative result (an NVMe status when isNvmeStatus).
 */
export function walkPrpInto(core: Core, r: ResolvedOptions, p1lo: number, p1hi: number, p2lo: number, p2hi: number, length: number): number {
  const ws = workspace(core);
  writeConfig(core, ws, r);
  const u32 = core.u32;
  const rec = ws.rec >> 2;
  u32[rec] = p1lo;
  u32[rec + 1] = p1hi;
  u32[rec + 2] = p2lo;
  u32[rec + 3] = p2hi;
  return r.guest === null ? core.fn.prpWalk(ws.cfg, ws.rec, length, ws.out, ws.outCap) : withGuest(core, r, () => core.fn.prpWalk(ws.cfg, ws.rec, length, ws.out, ws.outCap));
}

/** @internal walkPrpInto as an NvmeWalkResult. */
export function walkPrpWords(core: Core, r: ResolvedOptions, p1lo: number, p1hi: number, p2lo: number, p2hi: number, length: number): NvmeWalkResult {
  return walkResult(core, workspace(core), walkPrpInto(core, r, p1lo, p1hi, p2lo, p2hi, length), 'walkPrp');
}

/**
 * @internal buildPrp for a driver's per-command path: the transfer is `addr` + `length` on
 * `pages` (the page addresses after the first; null: the pages that follow addr's), list pages
 * given as numbers, options resolved once. Writes any PRP list into guest memory and returns
 * PRP2 (PRP1 is `addr`).
 */
export function buildPrpInto(core: Core, r: ResolvedOptions, addr: number, length: number, pages: readonly number[] | null, listPages: readonly number[]): number {
  const ws = workspace(core);
  const first = Math.min(length, r.mps - (addr % r.mps));
  const n = 1 + Math.ceil((length - first) / r.mps);
  if (pages !== null && pages.length < n - 1) throw new SgringError('InvalidArgument', `length ${length} needs more than ${pages.length} pages after the first`);
  const segs = ensure(core, ws, 'segs', n, SEG_SIZE) >>> 2;
  const pool = ensure(core, ws, 'pool', listPages.length, 8) >>> 2;
  const u32 = core.u32;
  for (let i = 0, left = length; i < n; i++) {
    const a = i === 0 ? addr : pages === null ? addr - (addr % r.mps) + i * r.mps : pages[i - 1]!;
    const len = i === 0 ? first : Math.min(left, r.mps);
    const w = segs + 4 * i;
    u32[w] = a; // a Uint32Array store keeps the low 32 bits
    u32[w + 1] = Math.floor(a / TWO32);
    u32[w + 2] = len;
    u32[w + 3] = 0;
    left -= len;
  }
  for (let i = 0; i < listPages.length; i++) {
    u32[pool + 2 * i] = listPages[i]!;
    u32[pool + 2 * i + 1] = Math.floor(listPages[i]! / TWO32);
  }
  writeConfig(core, ws, r);
  const st = core.fn.prpBuild(ws.cfg, segs << 2, n, pool << 2, listPages.length, ws.rec);
  if (st < 0) throw SgringError.fromStatus(st, 'buildPrp');
  return u32[(ws.rec + NVME_CMD_PRP2) >> 2]! + u32[((ws.rec + NVME_CMD_PRP2) >> 2) + 1]! * TWO32;
}

/** @internal Core offset of the segments the last walk on `core` left. */
export function walkOutput(core: Core): number {
  return workspace(core).out;
}

/** The u64 at `at` in core memory, exact. */
export function readU64(core: Core, at: number): bigint {
  const u32 = core.u32;
  return (BigInt(u32[(at >> 2) + 1]!) << 32n) | BigInt(u32[at >> 2]!);
}

/** An address as the exact bigint it is (a list page as the caller gave it, number or bigint). */
export function toBigAddress(a: NvmeAddress): bigint {
  return typeof a === 'bigint' ? a : BigInt(a);
}

/** Writes u64 guest addresses (a list-page pool) at `ptr`. */
export function writeAddresses(core: Core, ptr: number, pages: readonly NvmeAddress[]): void {
  const u32 = core.u32;
  pages.forEach((p, i) => {
    const [lo, hi] = splitAddress(p, `listPages[${i}]`);
    u32[(ptr >> 2) + 2 * i] = lo;
    u32[(ptr >> 2) + 2 * i + 1] = hi;
  });
}

/** Writes the pool into the work area and returns its pointer. */
export function writePool(core: Core, ws: Workspace, pages: readonly NvmeAddress[]): number {
  const pool = ensure(core, ws, 'pool', pages.length, 8);
  writeAddresses(core, pool, pages);
  return pool;
}

