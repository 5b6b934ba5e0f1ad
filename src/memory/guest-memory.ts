// GuestMemory: the guest-physical address space as a window of core memory (gpa lives at core
// offset guestBase + gpa, DESIGN "Memory model"), with range-checked reads, writes and views,
// and gather/scatter through a segment list, a PagePlan or GPA range bytes in one engine call.
// It is the guest's own view (no IOMMU): device models should DMA through an IommuDomain, which
// shares the staging and error code below.

import {
  DMA_READ, DMA_WRITE, DMA_RES_ADDR_HI, DMA_RES_ADDR_LO, DMA_RES_DETAIL, DMA_RES_INDEX, DMA_RES_SIZE,
  E_DmaDeviceWindow, E_DmaOverrun, E_DmaStale, E_IommuFault, E_OutsideGuestRam, SEG_SIZE,
} from '../generated/constants';
import type { Core } from '../engine/core';
import { SgringError } from '../engine/errors';
import { emptyRegion, fit, type ScratchRegion } from '../engine/region';
import type { PagePlan, Segment } from '../core/pagelist';
import { decodeGpaRanges, type Region } from '../core/gpa-range';
import type { DmaAccess, DmaDomain } from './dma-domain';

/** GPA ranges as they follow a GPA-direct packet's prefix (spec/vmbus.md §2.5), decoded with decodeGpaRanges. */
export interface GpaRangeSource {
  gpaRanges: Uint8Array | Region;
  rangeCount: number;
}

/** What a DMA runs over: guest-physical segments, a planned page list, or GPA range bytes. */
export type DmaSource = readonly Segment[] | PagePlan | GpaRangeSource;

/** A buffer for gather/scatter: bytes anywhere, or a region of core memory (no staging copy). */
export type DmaBuffer = Uint8Array | Region;

export interface GatherOptions {
  /** Where to put the bytes (default: a fresh Uint8Array). Must hold the transfer. */
  into?: DmaBuffer;
  /** Bytes to read from the start of the stream (default: all the source describes). */
  length?: number;
}

const TWO32 = 0x1_0000_0000;
const MAX_TRANSFER = 0x7fffffff;
const hex = (x: number) => `0x${x.toString(16)}`;

/**
 * The stream a host reads through a plan (byteOffset into the first page, then whole pages,
 * byteCount bytes in all), as segments; physically contiguous pages are merged. Throws
 * InvalidPlan when the pages cannot hold byteCount bytes.
 */
export function planSegments(plan: PagePlan): Segment[] {
  const { pageSize: p, byteOffset, byteCount, pages } = plan;
  if (!Number.isInteger(p) || p <= 0 || !Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset >= p ||
      !Number.isInteger(byteCount) || byteCount < 0 || !Array.isArray(pages)) {
    throw new SgringError('InvalidPlan', 'planSegments: the plan needs integer pageSize, byteOffset < pageSize, byteCount and pages');
  }
  const out: Segment[] = [];
  let left = byteCount;
  for (let j = 0; j < pages.length && left > 0; j++) {
    const start = j === 0 ? byteOffset : 0;
    const len = Math.min(p - start, left);
    const addr = pages[j]! * p + start;
    const prev = out[out.length - 1];
    if (prev && prev.addr + prev.len === addr) prev.len += len;
    else out.push({ addr, len });
    left -= len;
  }
  if (left > 0) throw new SgringError('InvalidPlan', `planSegments: ${pages.length} pages cannot hold ${byteCount} bytes from offset ${byteOffset}`);
  return out;
}

/** The segments a DMA source describes (GPA range bytes are decoded as a hostile host input). */
export function toSegments(core: Core, source: DmaSource): readonly Segment[] {
  if (Array.isArray(source)) return source;
  const s = source as PagePlan & GpaRangeSource;
  if (s && s.gpaRanges !== undefined) return decodeGpaRanges(core, s.gpaRanges, s.rangeCount).segments;
  if (s && Array.isArray(s.pages)) return planSegments(s);
  throw new SgringError('InvalidArgument', 'a DMA source is a segment array, a PagePlan or { gpaRanges, rangeCount }');
}

/** Sum of the segment lengths (for a plan: its byteCount, see planSegments). */
function sourceBytes(segments: readonly Segment[]): number {
  let total = 0;
  for (const s of segments) total += s.len;
  return total;
}

// ---- staging: one scratch region per core: result block | segment list | staged buffer ------

const scratchOf = new WeakMap<Core, ScratchRegion>();

interface Staged { res: number; segs: number; buf: number }

/** @internal Validates and writes the segments into scratch (outside guest RAM), with room for a buffer. */
export function stage(core: Core, segments: readonly Segment[], bufBytes: number): Staged {
  const n = segments.length;
  for (let i = 0; i < n; i++) {
    const { addr, len } = segments[i] ?? ({} as Segment);
    if (!Number.isSafeInteger(addr) || addr < 0 || !Number.isInteger(len) || len < 0 || len > 0xffffffff) {
      throw new SgringError('InvalidArgument', `segment ${i} needs a non-negative safe-integer addr and a u32 len (got ${addr}, ${len})`, { segment: i });
    }
  }
  const bytes = DMA_RES_SIZE + n * SEG_SIZE + bufBytes;
  let s = scratchOf.get(core);
  if (!s) scratchOf.set(core, (s = emptyRegion()));
  const segs = fit(core, s, bytes, 4096) + DMA_RES_SIZE;
  const u32 = core.u32;
  for (let i = 0; i < n; i++) {
    const { addr, len } = segments[i]!;
    const w = (segs >>> 2) + 4 * i;
    u32[w] = addr; // a Uint32Array store keeps the low 32 bits
    u32[w + 1] = Math.floor(addr / TWO32);
    u32[w + 2] = len;
    u32[w + 3] = 0;
  }
  return { res: s.ptr, segs, buf: segs + n * SEG_SIZE };
}

/**
 * Stages the list with room for a len-byte buffer. When that would grow the scratch, the list is
 * checked first: a hostile length (a decoded GPA range of 0xFFFFFFFF bytes) must fail with its
 * DMA error, not make core memory grow (checklist: no unbounded allocation).
 */
function stageWithBuffer(core: Core, caller: DmaCaller, segments: readonly Segment[], access: number, len: number): Staged {
  const s = scratchOf.get(core);
  if (!s || s.cap < DMA_RES_SIZE + segments.length * SEG_SIZE + len) runCheck(core, caller, segments, access, len);
  return stage(core, segments, len);
}

/** Core offset of a buffer that already lies in core memory (a Region, or a view of the memory), else null. */
function directPtr(core: Core, b: DmaBuffer | undefined): { ptr: number; len: number } | null {
  if (b === undefined) return null;
  if (b instanceof Uint8Array) return b.buffer === core.u8.buffer ? { ptr: b.byteOffset, len: b.length } : null;
  if (!b || !Number.isInteger(b.ptr) || !Number.isInteger(b.len) || b.ptr < 0 || b.len < 0) {
    throw new SgringError('InvalidArgument', 'a DMA buffer is a Uint8Array or a { ptr, len } region of core memory');
  }
  return { ptr: b.ptr, len: b.len };
}

/** Who is doing a DMA: the domain image (0 = none), its request generation, a name for errors. */
export interface DmaCaller { dom: number; gen: number; who: string }

/** @internal The typed error for a DMA status, with the result block's segment, address and detail. */
export function dmaError(core: Core, st: number, res: number, caller: DmaCaller, access: string, len: number): SgringError {
  const u32 = core.u32;
  const segment = u32[(res + DMA_RES_INDEX) >>> 2]!;
  const address = u32[(res + DMA_RES_ADDR_HI) >>> 2]! * TWO32 + u32[(res + DMA_RES_ADDR_LO) >>> 2]!;
  const detail = u32[(res + DMA_RES_DETAIL) >>> 2]!;
  const at = `segment ${segment} at ${hex(address)}`;
  let what: string;
  if (st === E_IommuFault) what = `${at}: the page grants ${detail & DMA_READ ? 'r' : '-'}${detail & DMA_WRITE ? 'w' : '-'}`;
  else if (st === E_OutsideGuestRam) what = `${at}: guest RAM is ${hex(core.guestBytes)} bytes`;
  else if (st === E_DmaDeviceWindow) what = `${at}: inside device window ${detail}`;
  else if (st === E_DmaStale) what = `request generation ${caller.gen}, domain generation ${detail}`;
  else if (st === E_DmaOverrun) what = `the list holds ${detail} bytes, the transfer is ${len}`;
  else {
    const hint = caller.dom !== 0 ? ' (under a domain, the buffer must lie outside guest RAM and the domain image)' : '';
    return SgringError.fromStatus(st, `${caller.who}: ${access} DMA${hint}`, { device: caller.who });
  }
  return SgringError.fromStatus(st, `${caller.who}: ${access} DMA, ${what}`, { device: caller.who, segment, address, detail });
}

/** @internal Device reads guest memory through `caller`'s domain: one dmaGather call. */
export function runGather(core: Core, caller: DmaCaller, source: DmaSource, opts: GatherOptions = {}): Uint8Array {
  const segments = toSegments(core, source);
  const len = opts.length ?? sourceBytes(segments);
  if (!Number.isInteger(len) || len < 0 || len > MAX_TRANSFER) throw new SgringError('InvalidArgument', `${caller.who}: transfer length ${len} must be an integer below 2 GiB`);
  const into = opts.into;
  const intoLen = into instanceof Uint8Array ? into.length : into?.len;
  if (intoLen !== undefined && intoLen < len) throw new SgringError('BufferTooSmall', `${caller.who}: the transfer needs ${len} bytes, the buffer holds ${intoLen}`, { needed: len });
  const direct = directPtr(core, into);
  const s = direct ? stage(core, segments, 0) : stageWithBuffer(core, caller, segments, DMA_READ, len);
  const buf = direct ? direct.ptr : s.buf;
  const st = core.fn.dmaGather(caller.dom, caller.gen, core.guestBase, core.guestBytes, s.segs, segments.length, buf, len, s.res);
  if (st < 0) throw dmaError(core, st, s.res, caller, 'read', len);
  if (direct) return core.view(buf, len);
  if (into instanceof Uint8Array) {
    into.set(core.u8.subarray(buf, buf + len));
    return into.subarray(0, len);
  }
  return core.u8.slice(buf, buf + len);
}

/** @internal Device writes guest memory through `caller`'s domain: one dmaScatter call. Returns bytes written. */
export function runScatter(core: Core, caller: DmaCaller, source: DmaSource, data: DmaBuffer): number {
  const segments = toSegments(core, source);
  const direct = directPtr(core, data);
  const len = direct ? direct.len : (data as Uint8Array).length;
  if (!direct && !(data instanceof Uint8Array)) throw new SgringError('InvalidArgument', `${caller.who}: scatter data must be a Uint8Array or a region`);
  if (len > MAX_TRANSFER) throw new SgringError('InvalidArgument', `${caller.who}: transfer length ${len} must be below 2 GiB`);
  const s = direct ? stage(core, segments, 0) : stageWithBuffer(core, caller, segments, DMA_WRITE, len);
  const buf = direct ? direct.ptr : s.buf;
  if (!direct) core.u8.set(data as Uint8Array, buf);
  const st = core.fn.dmaScatter(caller.dom, caller.gen, core.guestBase, core.guestBytes, s.segs, segments.length, buf, len, s.res);
  if (st < 0) throw dmaError(core, st, s.res, caller, 'write', len);
  return st;
}

/** @internal Checks `len` stream bytes for access without moving them (zero-copy users). */
export function runCheck(core: Core, caller: DmaCaller, segments: readonly Segment[], access: number, len: number): void {
  if (!Number.isInteger(len) || len < 0 || len > MAX_TRANSFER) throw new SgringError('InvalidArgument', `${caller.who}: length ${len} must be an integer below 2 GiB`);
  const s = stage(core, segments, 0);
  checkStaged(core, caller, s.segs, segments.length, access, len, s.res);
}

/** @internal runCheck over `n` segments already in core memory at `segs` in the SEG format (a walk's output). */
export function runCheckAt(core: Core, caller: DmaCaller, segs: number, n: number, access: number, len: number): void {
  let s = scratchOf.get(core);
  if (!s) scratchOf.set(core, (s = emptyRegion()));
  checkStaged(core, caller, segs, n, access, len, fit(core, s, DMA_RES_SIZE, 4096));
}

/** The engine's check of `n` SEG records at `segs`, its result block at `res`; throws the typed DMA error. */
function checkStaged(core: Core, caller: DmaCaller, segs: number, n: number, access: number, len: number, res: number): void {
  const st = core.fn.dmaCheck(caller.dom, caller.gen, core.guestBase, core.guestBytes, segs, n, access, len, res);
  if (st < 0) throw dmaError(core, st, res, caller, access === DMA_WRITE ? 'write' : access === DMA_READ ? 'read' : 'read/write', len);
}

export const accessBits = (access: DmaAccess): number => {
  if (access === 'read') return DMA_READ;
  if (access === 'write') return DMA_WRITE;
  throw new SgringError('InvalidArgument', `access must be 'read' or 'write' (got ${String(access)})`);
};

/**
 * Guest RAM as the guest sees it: every guest-physical address below `size`, readable and
 * writable. Reads, writes and views are range-checked (OutsideGuestRam, nothing partial);
 * gather/scatter run one engine call over a whole list. Views are valid until memory grows.
 */
export class GuestMemory implements DmaDomain {
  readonly core: Core;
  private readonly caller: DmaCaller = { dom: 0, gen: 0, who: 'guest' };

  constructor(core: Core) {
    if (core.guestBytes === 0) throw new SgringError('InvalidArgument', 'this core has no guest RAM window (load it with guestBytes > 0)');
    this.core = core;
  }

  /** Bytes of guest RAM. */
  get size(): number {
    return this.core.guestBytes;
  }

  /** Core-memory offset of guest-physical address 0. */
  get base(): number {
    return this.core.guestBase;
  }

  /** Throws OutsideGuestRam unless [gpa, gpa+len) lies in guest RAM (hardening P2 form). */
  checkRange(gpa: number, len: number): void {
    const size = this.core.guestBytes;
    if (!Number.isSafeInteger(gpa) || gpa < 0 || !Number.isSafeInteger(len) || len < 0) {
      throw new SgringError('InvalidArgument', `guest range (${gpa}, ${len}) needs non-negative safe integers`);
    }
    if (!(len <= size && gpa <= size - len)) {
      throw new SgringError('OutsideGuestRam', `guest range [${hex(gpa)}, +${len}) is outside guest RAM (${hex(size)} bytes)`, { address: gpa, length: len });
    }
  }

  /** A zero-copy view of guest [gpa, gpa+len). */
  view(gpa: number, len: number): Uint8Array {
    this.checkRange(gpa, len);
    return this.core.view(this.core.guestBase + gpa, len);
  }

  translate(gpa: number, len: number, access: DmaAccess): number {
    accessBits(access);
    this.checkRange(gpa, len);
    return this.core.guestBase + gpa;
  }

  read(gpa: number, len: number, dest?: Uint8Array): Uint8Array {
    this.checkRange(gpa, len);
    if (dest && dest.length < len) throw new SgringError('BufferTooSmall', `read of ${len} bytes into a ${dest.length}-byte buffer`, { needed: len });
    const src = this.core.u8.subarray(this.core.guestBase + gpa, this.core.guestBase + gpa + len);
    if (!dest) return src.slice();
    dest.set(src);
    return dest.subarray(0, len);
  }

  write(gpa: number, data: Uint8Array): void {
    this.checkRange(gpa, data.length);
    this.core.u8.set(data, this.core.guestBase + gpa);
  }

  /** Copies the stream a source describes out of guest RAM (checked as a whole first). */
  gather(source: DmaSource, opts?: GatherOptions): Uint8Array {
    return runGather(this.core, this.caller, source, opts);
  }

  /** Copies `data` into the first data.length bytes of the stream; nothing is written on error. Returns bytes written. */
  scatter(source: DmaSource, data: DmaBuffer): number {
    return runScatter(this.core, this.caller, source, data);
  }
}
