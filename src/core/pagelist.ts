// planPageList and the bounce copies: the typed façade over the engine's planner
// (assembly/bounce.ts). A plan describes a transfer as byteOffset + page frames, the way a
// Hyper-V GPA range (spec/vmbus.md §2.5) or an NVMe PRP list (nvme.md §3) carries it, and says
// which windows must be copied through bounce pages so that the host reads exactly the caller's
// bytes. The planner copies as few bytes as possible.

import {
  COPY_ENTRY_SIZE, COPY_OFF_DEST, COPY_OFF_LENGTH, COPY_OFF_SEGMENT, COPY_OFF_SEGMENT_OFFSET, COPY_OFF_STREAM,
  E_BadBouncePage, E_BouncePoolTooSmall, E_BufferTooSmall, E_OutsideGuestRam, E_ZeroLengthSegment, NOT_BOUNCED, NO_PAGE_LIMIT, PAGE_ENTRY_SIZE, PAGE_OFF_BOUNCE, PAGE_OFF_FRAME, PAGE_SIZE,
  PLAN_BAD_INDEX, PLAN_BOUNCED_BYTES, PLAN_BYTE_COUNT, PLAN_BYTE_OFFSET, PLAN_COPY_COUNT, PLAN_HEADER_SIZE,
  PLAN_NEEDED, PLAN_PAGE_COUNT, PLAN_PAGE_SIZE, RULE_HYPERV, RULE_NVME_PRP, SEG_OFF_ADDR, SEG_OFF_LEN, SEG_SIZE,
} from '../generated/constants';
import type { Core } from '../engine/core';
import { SgringError } from '../engine/errors';
import { replace } from '../engine/region';
import { describe, isU32, optionNames } from './args';
import { loadCoreSync } from '../engine/load';

/** One piece of a scatter-gather list: `len` bytes at guest-physical address `addr`. */
export interface Segment {
  addr: number;
  len: number;
}

export type PageRule = 'hyperv' | 'nvme-prp';

/** One copy a plan needs: `length` bytes of segment `segment` from `segmentOffset` to guest address `dest`. */
export interface PlanCopy {
  segment: number;
  segmentOffset: number;
  dest: number;
  length: number;
  /** Position of these bytes in the transfer (used to copy back no more than a read returned). */
  streamOffset: number;
}

export interface PagePlan {
  /** Offset of the first byte in the first page (< page size; dword aligned for NVMe). */
  byteOffset: number;
  /** Transfer length: the sum of the segment lengths. */
  byteCount: number;
  /** Page frame numbers (address / page size), one per page entry. */
  pages: number[];
  /** What to copy where before a write (and back after a read). */
  copies: PlanCopy[];
  /** Sum of the copy lengths. */
  bouncedBytes: number;
  /** Indices of the entries in `pages` that are bounce pages. */
  bounceEntries: number[];
  /** Page size the plan was made for. */
  pageSize: number;
}

export interface PlanOptions {
  rule: PageRule;
  /** Page size: 4096 for Hyper-V (the default); the controller's MPS (4 KiB..64 KiB) for NVMe. */
  pageSize?: number;
  /** Most page entries the transport can carry (default: no limit). */
  maxPages?: number;
  /** Page-aligned guest-physical addresses the planner may use as bounce pages, in order. */
  bouncePages?: number[];
  /** Core whose engine plans (default: one shared Wasm core, loaded synchronously). */
  core?: Core;
  /**
   * Size of guest RAM: every segment and bounce page must lie below it. Default: the core's guest
   * window when it has one, else 2^52 (the widest guest-physical address space).
   */
  guestBytes?: number;
}

const TWO32 = 0x1_0000_0000;
const GPA_SPACE = 2 ** 52;

let defaultCore: Core | null = null;
/** The shared core planPageList uses when none is given. */
export function defaultPlanningCore(): Core {
  defaultCore ??= loadCoreSync();
  return defaultCore;
}

/** Per-core scratch regions for segment lists, pools and plan images; grown by doubling. */
interface Scratch { segs: number; segCap: number; pool: number; poolCap: number; out: number; outCap: number }
const scratches = new WeakMap<Core, Scratch>();

function scratch(core: Core, segs: number, pool: number, out: number): Scratch {
  let s = scratches.get(core);
  if (!s) {
    s = { segs: 0, segCap: 0, pool: 0, poolCap: 0, out: 0, outCap: 0 };
    scratches.set(core, s);
  }
  if (segs > s.segCap) {
    const cap = Math.max(segs, 2 * s.segCap, 64);
    s.segs = replace(core, s.segs, cap * SEG_SIZE);
    s.segCap = cap;
  }
  if (pool > s.poolCap) {
    const cap = Math.max(pool, 2 * s.poolCap, 64);
    s.pool = replace(core, s.pool, cap * 8);
    s.poolCap = cap;
  }
  if (out > s.outCap) {
    const cap = Math.max(out, 2 * s.outCap, 4096);
    s.out = replace(core, s.out, cap);
    s.outCap = cap;
  }
  return s;
}

function setU64(u32: Uint32Array, at: number, v: number): void {
  u32[at >> 2] = v; // a Uint32Array store keeps the low 32 bits
  u32[(at >> 2) + 1] = Math.floor(v / TWO32);
}

const getU64 = (u32: Uint32Array, at: number) => u32[at >> 2]! + u32[(at >> 2) + 1]! * TWO32;

/** Throws InvalidArgument unless `segments` is a list of { addr: safe integer >= 0, len: u32 }. */
export function checkSegments(segments: readonly Segment[]): void {
  checkNumbers(segments, []);
}

function checkNumbers(segments: readonly Segment[], pool: readonly number[]): void {
  if (!Array.isArray(segments)) throw new SgringError('InvalidArgument', 'segments must be an array of { addr, len }');
  segments.forEach((s, i) => {
    if (!s || !Number.isSafeInteger(s.addr) || s.addr < 0 || !Number.isInteger(s.len) || s.len < 0 || s.len > 0xffffffff) {
      throw new SgringError('InvalidArgument', `segment ${i} needs a non-negative safe-integer addr and a u32 len`, { index: i });
    }
  });
  pool.forEach((b, i) => {
    if (!Number.isSafeInteger(b) || b < 0) throw new SgringError('InvalidArgument', `bounce page ${i} is not a non-negative safe integer`, { index: i });
  });
}

/** Writes a segment list into core memory at `at` in the shared 16-byte format. */
export function writeSegments(core: Core, at: number, segments: readonly Segment[]): void {
  const u32 = core.u32;
  for (let i = 0; i < segments.length; i++) {
    const e = at + i * SEG_SIZE;
    setU64(u32, e + SEG_OFF_ADDR, segments[i]!.addr);
    u32[(e + SEG_OFF_LEN) >> 2] = segments[i]!.len;
    u32[(e + SEG_OFF_LEN + 4) >> 2] = 0;
  }
}

/** Reads a plan image written by the engine into a PagePlan. */
function readPlan(core: Core, out: number): PagePlan {
  const u32 = core.u32;
  const h = (off: number) => u32[(out + off) >> 2]!;
  const pageCount = h(PLAN_PAGE_COUNT);
  const copyCount = h(PLAN_COPY_COUNT);
  const pages: number[] = new Array(pageCount);
  const bounceEntries: number[] = [];
  for (let j = 0; j < pageCount; j++) {
    const e = out + PLAN_HEADER_SIZE + j * PAGE_ENTRY_SIZE;
    pages[j] = getU64(u32, e + PAGE_OFF_FRAME);
    if (u32[(e + PAGE_OFF_BOUNCE) >> 2] !== NOT_BOUNCED) bounceEntries.push(j);
  }
  const copies: PlanCopy[] = new Array(copyCount);
  const at = out + PLAN_HEADER_SIZE + pageCount * PAGE_ENTRY_SIZE;
  for (let c = 0; c < copyCount; c++) {
    const e = at + c * COPY_ENTRY_SIZE;
    copies[c] = {
      segment: u32[(e + COPY_OFF_SEGMENT) >> 2]!, segmentOffset: u32[(e + COPY_OFF_SEGMENT_OFFSET) >> 2]!,
      dest: getU64(u32, e + COPY_OFF_DEST), length: u32[(e + COPY_OFF_LENGTH) >> 2]!, streamOffset: u32[(e + COPY_OFF_STREAM) >> 2]!,
    };
  }
  return {
    byteOffset: h(PLAN_BYTE_OFFSET), byteCount: h(PLAN_BYTE_COUNT), pages, copies,
    bouncedBytes: h(PLAN_BOUNCED_BYTES), bounceEntries, pageSize: h(PLAN_PAGE_SIZE),
  };
}

function ruleCode(rule: PageRule): number {
  if (rule === 'hyperv') return RULE_HYPERV;
  if (rule === 'nvme-prp') return RULE_NVME_PRP;
  throw new SgringError('InvalidArgument', `unknown page-list rule '${String(rule)}' (use 'hyperv' or 'nvme-prp')`);
}

/**
 * Plans the page list for a scatter-gather list: the byteOffset and page frames a Hyper-V GPA
 * range or NVMe PRP list carries, with the fewest bytes bounced (ties: fewer pages, then the first
 * segment's own offset). Each page entry is either the caller's own page, holding that window of
 * the transfer at the same in-page offsets (several physically contiguous segments may share it),
 * or a bounce page from `bouncePages`. Throws SgringError when it cannot comply.
 */
export function planPageList(segments: readonly Segment[], opts: PlanOptions): PagePlan {
  optionNames(opts, ['rule', 'pageSize', 'maxPages', 'bouncePages', 'core', 'guestBytes'], 'planPageList');
  const rule = ruleCode(opts?.rule);
  const core = opts.core ?? defaultPlanningCore();
  const pageSize = opts.pageSize ?? PAGE_SIZE;
  const pool = opts.bouncePages ?? [];
  const maxPages = opts.maxPages ?? NO_PAGE_LIMIT;
  const limit = opts.guestBytes ?? (core.guestBytes > 0 ? core.guestBytes : GPA_SPACE);
  if (!Number.isInteger(maxPages) || maxPages < 0 || maxPages > NO_PAGE_LIMIT) throw new SgringError('InvalidArgument', `maxPages ${maxPages} is not a u32`);
  if (!Number.isSafeInteger(limit) || limit < 0 || limit > GPA_SPACE) throw new SgringError('InvalidArgument', `guestBytes ${limit} must be at most 2^52`);
  checkNumbers(segments, pool);
  const n = segments.length;
  // Refuse what the engine would refuse before sizing anything from the claimed lengths: a list
  // it then rejects must not grow core memory (which never shrinks).
  let total = 0;
  for (let i = 0; i < n; i++) {
    const g = segments[i]!;
    if (g.addr > limit || g.len > limit - g.addr) {
      throw new SgringError('OutsideGuestRam', `planPageList: segment ${i} [${g.addr}, +${g.len}) ends outside guest RAM (${limit} bytes; ` +
        'loadCore\'s guestBytes or the guestBytes option sets the window)', { index: i });
    }
    total += g.len;
  }
  if (total >= TWO32) throw new SgringError('TransferTooLarge', `planPageList: the segments add up to ${total} bytes; a transfer must be below 4 GiB`);
  // Upper bound of the image: every entry bounced, plus one copy per segment piece. Start from at
  // most 64 KiB; a larger legal plan gets BufferTooSmall with its exact size, and one retry.
  const maxEntries = Math.ceil((pageSize - 1 + total) / Math.max(pageSize, 1)) + 1;
  // At least room for the engine's bitmap of phases already tried (one bit per in-page offset).
  const outBytes = Math.max(Math.min(PLAN_HEADER_SIZE + maxEntries * PAGE_ENTRY_SIZE + (maxEntries + n) * COPY_ENTRY_SIZE, 64 * 1024),
    PLAN_HEADER_SIZE + (Number.isInteger(pageSize) && pageSize > 0 && pageSize <= 65536 ? pageSize >>> 3 : 0));
  const s = scratch(core, n, pool.length, outBytes);
  writeSegments(core, s.segs, segments);
  const u32 = core.u32;
  pool.forEach((b, k) => setU64(u32, s.pool + k * 8, b));
  let st = core.fn.planPages(s.segs, n, pageSize, rule, maxPages, s.pool, pool.length, limit % TWO32, Math.floor(limit / TWO32), s.out, s.outCap);
  if (st === E_BufferTooSmall) {
    const again = scratch(core, n, pool.length, core.u32[(s.out + PLAN_NEEDED) >> 2]!);
    st = core.fn.planPages(again.segs, n, pageSize, rule, maxPages, again.pool, pool.length, limit % TWO32, Math.floor(limit / TWO32), again.out, again.outCap);
  }
  if (st < 0) {
    const index = core.u32[(s.out + PLAN_BAD_INDEX) >> 2]!;
    const what = st === E_ZeroLengthSegment ? ` (segment ${index})`
      : st === E_BadBouncePage ? ` (bounce page ${index})`
        : st === E_OutsideGuestRam ? ` (segment or bounce page ${index}; guest RAM is ${limit} bytes)`
          : st === E_BouncePoolTooSmall ? `: it needs ${core.u32[(s.out + PLAN_NEEDED) >> 2]!} bounce pages, bouncePages holds ${pool.length}` : '';
    throw SgringError.fromStatus(st, `planPageList${what}`, { index });
  }
  return readPlan(core, s.out);
}

/** Writes a JS plan back into an engine plan image (for the copy functions). */
function writePlanImage(core: Core, at: number, plan: PagePlan): number {
  const u32 = core.u32;
  const bytes = PLAN_HEADER_SIZE + plan.pages.length * PAGE_ENTRY_SIZE + plan.copies.length * COPY_ENTRY_SIZE;
  core.u8.fill(0, at, at + PLAN_HEADER_SIZE);
  const h = (off: number, v: number) => (u32[(at + off) >> 2] = v);
  h(PLAN_BYTE_OFFSET, plan.byteOffset);
  h(PLAN_BYTE_COUNT, plan.byteCount);
  h(PLAN_PAGE_COUNT, plan.pages.length);
  h(PLAN_COPY_COUNT, plan.copies.length);
  h(PLAN_BOUNCED_BYTES, plan.bouncedBytes);
  h(PLAN_PAGE_SIZE, plan.pageSize);
  const bounced = new Set(plan.bounceEntries);
  plan.pages.forEach((f, j) => {
    const e = at + PLAN_HEADER_SIZE + j * PAGE_ENTRY_SIZE;
    setU64(u32, e + PAGE_OFF_FRAME, f);
    u32[(e + PAGE_OFF_BOUNCE) >> 2] = bounced.has(j) ? j : NOT_BOUNCED;
    u32[(e + PAGE_OFF_BOUNCE + 4) >> 2] = 0;
  });
  const copiesAt = at + PLAN_HEADER_SIZE + plan.pages.length * PAGE_ENTRY_SIZE;
  plan.copies.forEach((c, i) => {
    const e = copiesAt + i * COPY_ENTRY_SIZE;
    u32[(e + COPY_OFF_SEGMENT) >> 2] = c.segment;
    u32[(e + COPY_OFF_SEGMENT_OFFSET) >> 2] = c.segmentOffset;
    setU64(u32, e + COPY_OFF_DEST, c.dest);
    u32[(e + COPY_OFF_LENGTH) >> 2] = c.length;
    u32[(e + COPY_OFF_STREAM) >> 2] = c.streamOffset;
  });
  return bytes;
}

/**
 * A plan handed back by the caller is caller input: its shape is checked field by field before
 * any of it is written into an engine image (InvalidPlan names the first bad field).
 */
export function checkPlanShape(plan: unknown, where: string): asserts plan is PagePlan {
  const bad = (field: string, why: string): never => {
    throw new SgringError('InvalidPlan', `${where}: plan.${field} ${why} (pass the object planPageList returned)`, { field });
  };
  if (plan === null || typeof plan !== 'object') bad('', `is ${describe(plan)}, not a plan object`);
  const p = plan as Record<string, unknown>;
  for (const k of ['byteOffset', 'byteCount', 'bouncedBytes', 'pageSize'] as const) if (!isU32(p[k])) bad(k, `is ${describe(p[k])}, not an integer in [0, 2^32)`);
  for (const k of ['pages', 'copies', 'bounceEntries'] as const) if (!Array.isArray(p[k])) bad(k, `is ${describe(p[k])}, not an array`);
  (p.pages as unknown[]).forEach((f, i) => {
    if (!Number.isSafeInteger(f) || (f as number) < 0) bad(`pages[${i}]`, `is ${describe(f)}, not a frame number`);
  });
  (p.bounceEntries as unknown[]).forEach((j, i) => {
    if (!isU32(j) || j >= (p.pages as unknown[]).length) bad(`bounceEntries[${i}]`, `is ${describe(j)}, not an index into pages`);
  });
  (p.copies as unknown[]).forEach((c, i) => {
    if (c === null || typeof c !== 'object') bad(`copies[${i}]`, `is ${describe(c)}, not a copy`);
    const r = c as Record<string, unknown>;
    for (const k of ['segment', 'segmentOffset', 'length', 'streamOffset']) if (!isU32(r[k])) bad(`copies[${i}].${k}`, `is ${describe(r[k])}, not an integer in [0, 2^32)`);
    if (!Number.isSafeInteger(r.dest) || (r.dest as number) < 0) bad(`copies[${i}].dest`, `is ${describe(r.dest)}, not a guest address`);
  });
}

type CopyFn = 'bounceCopyOut' | 'bounceZero' | 'bounceCopyBack';

function runCopies(core: Core, segments: readonly Segment[], plan: PagePlan, fn: CopyFn, actual = 0): number {
  checkNumbers(segments, []);
  checkPlanShape(plan, fn);
  const bytes = PLAN_HEADER_SIZE + plan.pages.length * PAGE_ENTRY_SIZE + plan.copies.length * COPY_ENTRY_SIZE;
  const s = scratch(core, segments.length, 0, bytes);
  writeSegments(core, s.segs, segments);
  writePlanImage(core, s.out, plan);
  const args = [s.segs, segments.length, s.out, bytes, core.guestBase, core.guestBytes] as const;
  const st = fn === 'bounceCopyBack' ? core.fn.bounceCopyBack(...args, actual) : core.fn[fn](...args);
  if (st === E_OutsideGuestRam) {
    const i = segments.findIndex((g) => g.addr + g.len > core.guestBytes);
    const c = plan.copies.findIndex((k) => k.dest + k.length > core.guestBytes);
    const what = i >= 0 ? `segment ${i} [${segments[i]!.addr}, +${segments[i]!.len})` : c >= 0 ? `copy ${c}'s bounce destination ${plan.copies[c]!.dest}` : 'a segment or bounce page';
    throw new SgringError('OutsideGuestRam', `${fn}: ${what} lies outside this core's guest RAM (${core.guestBytes} bytes; ` +
      'loadCore({ guestBytes }) sets the window)', { index: i >= 0 ? i : c });
  }
  if (st < 0) throw SgringError.fromStatus(st, fn);
  return st;
}

/**
 * Before a write: copies every bounced window from the caller's segments into its bounce page in
 * the core's guest RAM, zeroing the bounce bytes the transfer does not cover. Returns bytes copied.
 */
export function copyToBounce(core: Core, segments: readonly Segment[], plan: PagePlan): number {
  return runCopies(core, segments, plan, 'bounceCopyOut');
}

/** Before a read: zeroes the plan's bounce pages so the device never sees stale data. */
export function zeroBounce(core: Core, segments: readonly Segment[], plan: PagePlan): void {
  runCopies(core, segments, plan, 'bounceZero');
}

/** After a read of `actualBytes`: copies the bounced windows back, never past actualBytes. Returns bytes copied. */
export function copyFromBounce(core: Core, segments: readonly Segment[], plan: PagePlan, actualBytes: number): number {
  if (!Number.isInteger(actualBytes) || actualBytes < 0) throw new SgringError('InvalidArgument', `actualBytes ${actualBytes} must be a non-negative integer`);
  return runCopies(core, segments, plan, 'bounceCopyBack', Math.min(actualBytes, 0xffffffff));
}
