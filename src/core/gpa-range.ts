// GPA ranges (spec/vmbus.md §2.5) and the page-list rule (§4.7), typed: encode a segment list
// into the wire image a guest puts in a GPA-direct packet, decode (hostile) ranges into the
// guest-physical segments a host DMAs, and classify a whole list in one engine call.
//
// Addresses are JS numbers (safe integers). Each call stages its input in a per-core scratch
// region, makes one engine call and reads the result back; the only allocation in core memory
// is that scratch, which grows geometrically and is reused.

import {
  SEG_SIZE, PL_RES_SIZE, PL_RES_INDEX, PL_RES_BYTES, PL_RES_COUNT, PL_RES_DETAIL, GPA_RANGE_HEADER_SIZE,
  GPA_DIRECT_PREFIX_SIZE, GPA_MULTI_MERGE, GPA_MULTI_PER_SEGMENT, GPA_DECODE_PER_PAGE, PL_RULE_HYPERV,
  PL_RULE_NVME_PRP, CLS_POS_MASK, CLS_FIRST, CLS_MIDDLE, CLS_LAST, CLS_START_ALIGNED, CLS_END_ALIGNED,
  CLS_VIOLATION, CLS_EMPTY, CLS_DWORD_MISALIGNED, CLS_OVERFLOW, PAGE_SIZE, PKT_TRAILER_SIZE, PKT_MAX_BYTES,
  E_BufferTooSmall, E_PageListRule,
} from '../generated/constants';
import type { Core } from '../engine/core';
import { SgringError } from '../engine/errors';
import { emptyRegion, fit, type ScratchRegion } from '../engine/region';

/** A guest-physical buffer piece. */
export interface Segment { addr: number; len: number }
/** One GPA range as on the wire: the host reads it as one virtually contiguous stream. */
export interface GpaRange { byteCount: number; byteOffset: number; pfns: number[] }
/** A decoded piece: `range` is the index of the range it came from. */
export interface DecodedSegment extends Segment { range: number }
export type PageListRule = 'hyperv' | 'nvme-prp';
/** Where to write an image instead of returning a fresh copy: a region of core memory. */
export interface Region { ptr: number; len: number }

export interface GpaDecodeResult {
  ranges: GpaRange[];
  segments: DecodedSegment[];
  /** Bytes the ranges occupy; the upper-protocol message starts right after them. */
  bytes: number;
}

export interface ClassifyResult {
  /** Index of the first segment that breaks the rule, or -1 when the list is legal. */
  firstViolation: number;
  /** One class byte per segment (constants CLS_*; see describeSegmentClass). */
  classes: Uint8Array;
  /** Which segment, which offset, and what the host would read instead; only when illegal. */
  violation?: string;
}

const TWO32 = 0x1_0000_0000;
const hex = (x: number) => `0x${x.toString(16).toUpperCase()}`;

// ---- scratch -----------------------------------------------------------------------------

const scratchOf = new WeakMap<Core, ScratchRegion>();

/** An 8-aligned scratch region of at least `bytes` in this core's memory. */
function scratch(core: Core, bytes: number): number {
  let s = scratchOf.get(core);
  if (!s) scratchOf.set(core, (s = emptyRegion()));
  return fit(core, s, bytes, 4096);
}

const resField = (core: Core, res: number, off: number) => core.u32[(res + off) >>> 2]!;

/** Validates the segments and returns how many 4 KiB pages they touch. */
function countPages(segments: readonly Segment[], what: string): number {
  if (!Array.isArray(segments)) throw new SgringError('InvalidArgument', `${what}: segments must be an array`);
  let pages = 0;
  for (let i = 0; i < segments.length; i++) {
    const { addr, len } = segments[i] ?? ({} as Segment);
    if (!Number.isSafeInteger(addr) || addr < 0 || !Number.isInteger(len) || len < 0 || len > 0xffffffff) {
      throw new SgringError('InvalidArgument', `${what}: segment ${i} needs a non-negative safe integer addr and a u32 len (got ${addr}, ${len})`, { segment: i });
    }
    if (len > 0) pages += Math.floor((addr + len - 1) / PAGE_SIZE) - Math.floor(addr / PAGE_SIZE) + 1;
  }
  return pages;
}

/** Writes (validated) segments as 16-byte entries at ptr. */
function stageSegments(core: Core, segments: readonly Segment[], ptr: number): void {
  const u32 = core.u32;
  for (let i = 0; i < segments.length; i++) {
    const { addr, len } = segments[i]!;
    const w = (ptr >>> 2) + i * 4;
    u32[w] = addr; // a Uint32Array store keeps the low 32 bits
    u32[w + 1] = Math.floor(addr / TWO32);
    u32[w + 2] = len;
    u32[w + 3] = 0;
  }
}

// Default output limit: the most range bytes one GPA-direct packet can carry (tlen is a u16 of
// q-words, spec §2.8). Sizes below it are exact for legal input; a bigger image is reported as
// BufferTooSmall with the size it needs (pass `into` to write one anyway).
const MAX_IMAGE = PKT_MAX_BYTES - GPA_DIRECT_PREFIX_SIZE;

type EncodeCall = (segs: number, n: number, out: number, cap: number, res: number) => number;

/** Runs an encoder over the segments; returns the image as a copy, or as a view of `into`. */
function encodeWith(core: Core, segments: readonly Segment[], into: Region | undefined, what: string,
                    size: (pages: number, n: number) => number, call: EncodeCall): { bytes: Uint8Array; rangeCount: number } {
  const pages = countPages(segments, what);
  const n = segments.length;
  const cap = into ? into.len : Math.min(MAX_IMAGE, size(pages, n));
  const res = scratch(core, PL_RES_SIZE + n * SEG_SIZE + (into ? 0 : cap));
  const segs = res + PL_RES_SIZE;
  stageSegments(core, segments, segs);
  let out = segs + n * SEG_SIZE;
  if (into) {
    core.checkRange(into.ptr, into.len);
    out = into.ptr;
  }
  const st = call(segs, n, out, cap, res);
  if (st < 0) throw encodeError(core, res, st, segments, what);
  const bytes = into ? core.view(out, st) : core.u8.slice(out, out + st);
  return { bytes, rangeCount: resField(core, res, PL_RES_COUNT) };
}

function encodeError(core: Core, res: number, st: number, segments: readonly Segment[], what: string): SgringError {
  const index = resField(core, res, PL_RES_INDEX);
  if (st === E_BufferTooSmall) {
    const needed = resField(core, res, PL_RES_BYTES);
    return SgringError.fromStatus(st, `${what}: the image needs ${needed} bytes`, { needed });
  }
  if (st === E_PageListRule) {
    const cls = resField(core, res, PL_RES_DETAIL);
    return new SgringError('PageListRule', `${what}: ${explainViolation(segments, index, cls, 'hyperv', PAGE_SIZE)}`, { segment: index, class: cls });
  }
  return SgringError.fromStatus(st, segments.length > 0 ? `${what}, segment ${index}` : what, { segment: index });
}

// ---- encode (driver side) ----------------------------------------------------------------

/**
 * One multi-page GPA range { byte_count, byte_offset, pfn[N] } (§2.5, storvsc's form), from a
 * segment list that satisfies the §4.7 rule or from its fields. Returns a copy of the image, or
 * a view of `into` when given. Throws SgringError: PageListRule (details.segment, with an
 * explanation), GpaEmptyByteCount, GpaOffsetTooLarge, GpaOverflow, GpaPfnTooLarge,
 * GpaPfnCountMismatch, BufferTooSmall (details.needed).
 */
export function encodeGpaRange(core: Core, input: readonly Segment[] | GpaRange, opts: { into?: Region } = {}): Uint8Array {
  if (Array.isArray(input)) {
    return encodeWith(core, input, opts.into, 'GPA range', (pages) => GPA_RANGE_HEADER_SIZE + 8 * pages, core.fn.gpaEncode).bytes;
  }
  const r = input as GpaRange;
  const pfns = r?.pfns;
  if (!Array.isArray(pfns) || !Number.isInteger(r.byteOffset) || !Number.isInteger(r.byteCount) ||
      r.byteOffset < 0 || r.byteOffset > 0xffffffff || r.byteCount < 0 || r.byteCount > 0xffffffff) {
    throw new SgringError('InvalidArgument', 'GPA range: byteOffset and byteCount must be u32 and pfns an array');
  }
  const cap = GPA_RANGE_HEADER_SIZE + 8 * pfns.length;
  const base = scratch(core, PL_RES_SIZE + 2 * cap);
  const res = base;
  const src = base + PL_RES_SIZE;
  const u32 = core.u32;
  pfns.forEach((p, i) => {
    if (!Number.isSafeInteger(p) || p < 0) throw new SgringError('InvalidArgument', `GPA range: pfn ${i} (${p}) is not a non-negative safe integer`);
    u32[(src >>> 2) + 2 * i] = p;
    u32[(src >>> 2) + 2 * i + 1] = Math.floor(p / TWO32);
  });
  let [out, outCap] = [src + 8 * pfns.length, cap];
  if (opts.into) {
    core.checkRange(opts.into.ptr, opts.into.len);
    [out, outCap] = [opts.into.ptr, opts.into.len];
  }
  const st = core.fn.gpaEncodeRange(r.byteOffset, r.byteCount, src, pfns.length, out, outCap, res);
  if (st < 0) {
    const details = { pfn: resField(core, res, PL_RES_INDEX), needed: resField(core, res, PL_RES_BYTES), pfnsRequired: resField(core, res, PL_RES_COUNT) };
    throw SgringError.fromStatus(st, `GPA range {byteCount ${r.byteCount}, byteOffset ${hex(r.byteOffset)}, ${pfns.length} PFNs}`, details);
  }
  return opts.into ? core.view(out, st) : core.u8.slice(out, out + st);
}

/**
 * The single-page list (§2.5, netvsc TX and RNDIS control): each segment is cut at 4 KiB
 * boundaries and every piece becomes a 16-byte range with one PFN. Any layout is describable.
 * rangeCount goes in the packet's range_count. (Linux caps such lists at 32 entries; the caller
 * checks its own limit.)
 */
export function encodeGpaPageList(core: Core, segments: readonly Segment[], opts: { into?: Region } = {}): { bytes: Uint8Array; rangeCount: number } {
  return encodeWith(core, segments, opts.into, 'GPA page list', (pages) => 16 * pages, core.fn.gpaEncodePages);
}

/**
 * Several variable-size ranges back to back (§2.5, current Linux netvsc). By default a segment
 * joins the previous range whenever the §4.7 rule allows (fewest ranges; a legal list becomes
 * one range); `perSegment: true` makes one range per segment as netvsc_build_mpb_array does.
 */
export function encodeGpaRanges(core: Core, segments: readonly Segment[], opts: { perSegment?: boolean; into?: Region } = {}): { bytes: Uint8Array; rangeCount: number } {
  const mode = opts.perSegment ? GPA_MULTI_PER_SEGMENT : GPA_MULTI_MERGE;
  return encodeWith(core, segments, opts.into, 'GPA ranges', (pages, n) => GPA_RANGE_HEADER_SIZE * n + 8 * pages,
    (segs, n, out, cap, res) => core.fn.gpaEncodeMulti(segs, n, mode, out, cap, res));
}

/** Lengths of a GPA-direct packet carrying `rangeBytes` of ranges and a `messageBytes` message (§2.5). */
export function gpaDirectPacketSize(rangeBytes: number, messageBytes: number): { hlen: number; tlen: number; ringBytes: number } {
  const header = GPA_DIRECT_PREFIX_SIZE + rangeBytes; // always a multiple of 8
  const tlen = Math.ceil((header + messageBytes) / 8);
  return { hlen: header / 8, tlen, ringBytes: tlen * 8 + PKT_TRAILER_SIZE };
}

// ---- decode (host side) ------------------------------------------------------------------

/**
 * Parses `rangeCount` GPA ranges from the bytes after a GPA-direct packet's 24-byte prefix.
 * The input is copied into private scratch before it is parsed (hardening P3), so a guest that
 * rewrites shared memory meanwhile cannot change what was validated. Segments of one range
 * merge when physically contiguous unless `perPage`. Every bad input is a typed SgringError
 * (checklist behaviour E) naming the range and its byte offset: GpaRangeCountZero,
 * GpaRangeTooSmall, GpaEmptyByteCount, GpaOffsetTooLarge, GpaOverflow, GpaPfnTooLarge.
 * `into`: a result to refill, its arrays and objects reused (a packet reader's per-packet view).
 * `private`: the input region is already a private copy nobody else writes (a channel end's read
 * buffer): it is parsed where it lies, not copied again.
 */
export function decodeGpaRanges(core: Core, input: Uint8Array | Region, rangeCount: number, opts: { perPage?: boolean; into?: GpaDecodeResult; private?: boolean } = {}): GpaDecodeResult {
  if (!Number.isInteger(rangeCount) || rangeCount < 0 || rangeCount > 0xffffffff) {
    throw new SgringError('InvalidArgument', `rangeCount ${rangeCount} is not a u32`);
  }
  const bytes = input instanceof Uint8Array;
  const len = bytes ? input.length : input.len;
  if (!bytes) core.checkRange(input.ptr, input.len);
  const inPlace = !bytes && opts.private === true && input.ptr % 4 === 0;
  // Every PFN is at least 8 bytes, so len/8 segments always suffice.
  const cap = Math.max(1, Math.floor(len / 8));
  const base = scratch(core, PL_RES_SIZE + cap * SEG_SIZE + (inPlace ? 0 : len));
  const res = base;
  const out = base + PL_RES_SIZE;
  const src = inPlace ? input.ptr : out + cap * SEG_SIZE;
  const u8 = core.u8;
  if (bytes) u8.set(input, src);
  else if (!inPlace) u8.copyWithin(src, input.ptr, input.ptr + len);
  const st = core.fn.gpaDecode(src, len, rangeCount, opts.perPage ? GPA_DECODE_PER_PAGE : 0, out, cap, res);
  if (st < 0) {
    const range = resField(core, res, PL_RES_INDEX);
    const offset = resField(core, res, PL_RES_BYTES);
    const detail = resField(core, res, PL_RES_DETAIL);
    throw SgringError.fromStatus(st, `GPA range ${range} at byte ${offset}`, { range, offset, detail });
  }
  const u32 = core.u32;
  const result = opts.into ?? { ranges: [], segments: [], bytes: 0 };
  const segments = result.segments;
  if (segments.length > st) segments.length = st;
  for (let k = 0; k < st; k++) {
    const w = (out >>> 2) + 4 * k;
    const s = segments[k];
    if (s === undefined) segments.push({ addr: u32[w + 1]! * TWO32 + u32[w]!, len: u32[w + 2]!, range: u32[w + 3]! });
    else {
      s.addr = u32[w + 1]! * TWO32 + u32[w]!;
      s.len = u32[w + 2]!;
      s.range = u32[w + 3]!;
    }
  }
  // The private copy is validated: read the range fields back from it.
  const ranges = result.ranges;
  if (ranges.length > rangeCount) ranges.length = rangeCount;
  for (let r = 0, at = src >>> 2; r < rangeCount; r++) {
    const byteCount = u32[at]!;
    const byteOffset = u32[at + 1]!;
    const n = Math.ceil((byteOffset + byteCount) / PAGE_SIZE);
    const range: GpaRange = ranges[r] ?? (ranges[r] = { byteCount: 0, byteOffset: 0, pfns: [] });
    range.byteCount = byteCount;
    range.byteOffset = byteOffset;
    if (range.pfns.length > n) range.pfns.length = n;
    for (let p = 0; p < n; p++) range.pfns[p] = u32[at + 3 + 2 * p]! * TWO32 + u32[at + 2 + 2 * p]!;
    at += (GPA_RANGE_HEADER_SIZE + 8 * n) >>> 2;
  }
  result.bytes = resField(core, res, PL_RES_BYTES);
  return result;
}

// ---- classification ----------------------------------------------------------------------

/**
 * Classifies a whole list in one engine call against the §4.7 rule table ('hyperv', 4 KiB
 * pages) or its NVMe PRP variant (any MPS page size; the first entry must also be dword
 * aligned). Class bytes say position, alignment of start and end, and why a segment fails.
 */
export function classifySegments(core: Core, segments: readonly Segment[], opts: { rule?: PageListRule; pageSize?: number } = {}): ClassifyResult {
  const rule = opts.rule ?? 'hyperv';
  const pageSize = opts.pageSize ?? PAGE_SIZE;
  if (rule !== 'hyperv' && rule !== 'nvme-prp') throw new SgringError('InvalidArgument', `unknown rule '${String(rule)}'`);
  // Spec §0: PFNs on the Hyper-V wire are always 4 KiB frames, whatever the guest's page size.
  if (rule === 'hyperv' && pageSize !== PAGE_SIZE) throw new SgringError('InvalidArgument', `the Hyper-V rule uses 4096-byte pages (got ${pageSize})`);
  countPages(segments, 'classify');
  const n = segments.length;
  const segs = scratch(core, n * SEG_SIZE + n);
  stageSegments(core, segments, segs);
  const st = core.fn.pageListClassify(segs, n, pageSize, rule === 'hyperv' ? PL_RULE_HYPERV : PL_RULE_NVME_PRP, segs + n * SEG_SIZE);
  if (st < 0) throw SgringError.fromStatus(st, `classify (page size ${pageSize})`);
  const classes = core.u8.slice(segs + n * SEG_SIZE, segs + n * SEG_SIZE + n);
  if (st === n) return { firstViolation: -1, classes };
  return { firstViolation: st, classes, violation: explainViolation(segments, st, classes[st]!, rule, pageSize) };
}

export interface SegmentClass {
  position: 'only' | 'first' | 'middle' | 'last';
  startAligned: boolean;
  endAligned: boolean;
  violation: boolean;
  empty: boolean;
  dwordMisaligned: boolean;
  overflow: boolean;
}

/** The class byte of classifySegments as an object. */
export function describeSegmentClass(c: number): SegmentClass {
  const position = (['only', 'first', 'middle', 'last'] as const)[c & CLS_POS_MASK]!;
  return {
    position, startAligned: (c & CLS_START_ALIGNED) !== 0, endAligned: (c & CLS_END_ALIGNED) !== 0,
    violation: (c & CLS_VIOLATION) !== 0, empty: (c & CLS_EMPTY) !== 0,
    dwordMisaligned: (c & CLS_DWORD_MISALIGNED) !== 0, overflow: (c & CLS_OVERFLOW) !== 0,
  };
}

/**
 * Why segment `index` (class byte `cls`) breaks the rule: which segment, which offset, and what
 * the host would read instead. All earlier segments are legal when index is the first
 * violation, so the stream reaches segment `index` exactly at a page boundary.
 */
export function explainViolation(segments: readonly Segment[], index: number, cls: number, rule: PageListRule, pageSize: number): string {
  const s = segments[index]!;
  const who = rule === 'hyperv' ? 'the host' : 'the device';
  const pos = cls & CLS_POS_MASK;
  const name = `segment ${index} (${hex(s.addr)}, ${hex(s.len)} bytes)`;
  const startOff = s.addr % pageSize;
  const end = s.addr + s.len;
  const endOff = end % pageSize;
  if (cls & CLS_OVERFLOW) return `${name} runs past the end of the 64-bit address space`;
  if (cls & CLS_EMPTY) return `${name} is empty: a page list cannot describe a zero-length piece; drop it`;
  if (rule === 'nvme-prp' && pos <= CLS_FIRST && (cls & CLS_DWORD_MISALIGNED)) {
    return `${name} starts at ${hex(s.addr)}, which is not dword aligned: PRP1 must have its two low bits clear`;
  }
  if ((pos === CLS_MIDDLE || pos === CLS_LAST) && startOff !== 0) {
    return `${name} starts at offset ${hex(startOff)} of its page, but only the first segment may start mid-page: ` +
      `${who} enters every later page at offset 0, so it would read this segment's first bytes from ${hex(s.addr - startOff)} ` +
      `instead of ${hex(s.addr)} (${hex(startOff)} bytes too early)`;
  }
  const next = segments[index + 1];
  if (next && next.addr === end) {
    return `${name} ends at offset ${hex(endOff)} of its page and segment ${index + 1} continues at exactly ${hex(end)}: ` +
      `the bytes are physically contiguous, but as two segments the list names page ${hex(Math.floor(end / pageSize))} twice ` +
      `and no longer matches ${who}'s page count; merge them first (spec §4.7 example C)`;
  }
  const gap = pageSize - endOff;
  return `${name} ends at offset ${hex(endOff)} of its page, but every segment except the last must run to the page end: ` +
    `${who} reads whole pages, so it would take the ${hex(gap)} bytes at ${hex(end)}..${hex(end + gap - 1)} (past the segment) ` +
    `as the next stream bytes` + (next ? ` instead of segment ${index + 1}'s data at ${hex(next.addr)}` : '');
}
