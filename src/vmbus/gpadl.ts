// GPADLs (spec/vmbus.md §3.6): a guest buffer registered with the host under a 32-bit handle.
// The guest sends GPADL_HEADER with the first k <= 26 PFNs, then GPADL_BODY messages of m <= 28
// PFNs until all are sent; range_buflen = 8 + 8 * (all PFNs) is a u16, so a GPADL has at most
// 8190 pages. The host answers GPADL_CREATED only after the last body.
//
// Host side (GpadlTable): every field is hostile. A header or body that does not add up fails
// that GPADL with a non-zero status in GPADL_CREATED (behaviour E: the guest learns, the bus
// goes on); a body for a handle that is not being built cannot be answered (the guest cannot
// tell which request it belonged to) and is counted (I). Work is bounded by numbers the host
// owns: GPADLs at once, pages in all of them (P4, P11). msgnumber is not interpreted (Linux and
// FreeBSD leave it zero), so bodies are taken in arrival order.

import * as K from '../generated/constants';
import { SgringError } from '../engine/errors';
import type { GpadlBodyMessage, GpadlHeaderMessage } from './messages';

const PAGE = 4096;
const PFN_LIMIT = 2 ** K.GPA_PFN_BITS;

/** The header and body messages that register `pfns` (one range) under `handle` for channel `relid`. */
export function gpadlMessages(relid: number, handle: number, buffer: { pfns: readonly number[]; byteCount: number; byteOffset?: number }): [GpadlHeaderMessage, ...GpadlBodyMessage[]] {
  const { pfns, byteCount } = buffer;
  const byteOffset = buffer.byteOffset ?? 0;
  if (!Array.isArray(pfns) || pfns.length === 0 || pfns.length > K.GPADL_MAX_PFNS) {
    throw new SgringError('InvalidArgument', `a GPADL holds 1..${K.GPADL_MAX_PFNS} pages (range_buflen is a u16; got ${pfns?.length})`);
  }
  if (!Number.isInteger(handle) || handle < 1 || handle > 0xffffffff) throw new SgringError('InvalidArgument', `GPADL handle ${handle} must be a u32 other than 0`);
  if (!Number.isInteger(byteCount) || byteCount < 1 || !Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset >= PAGE ||
      Math.ceil((byteOffset + byteCount) / PAGE) !== pfns.length) {
    throw new SgringError('InvalidArgument', `GPADL of ${pfns.length} pages cannot describe ${byteCount} bytes at offset ${byteOffset}`);
  }
  const header: GpadlHeaderMessage = {
    type: 'gpadlHeader', childRelid: relid, gpadl: handle, rangeBufLen: 8 + 8 * pfns.length, rangeCount: 1,
    byteCount, byteOffset, pfns: pfns.slice(0, K.GPADL_HEADER_MAX_PFNS), trailingBytes: 0,
  };
  const bodies: GpadlBodyMessage[] = [];
  for (let i = K.GPADL_HEADER_MAX_PFNS, n = 0; i < pfns.length; i += K.GPADL_BODY_MAX_PFNS, n++) {
    bodies.push({ type: 'gpadlBody', msgNumber: n, gpadl: handle, pfns: pfns.slice(i, i + K.GPADL_BODY_MAX_PFNS), trailingBytes: 0 });
  }
  return [header, ...bodies];
}

/** PFNs of `pages` pages starting at page-aligned guest-physical `gpa`. */
export function pfnsOf(gpa: number, pages: number): number[] {
  if (!Number.isSafeInteger(gpa) || gpa < 0 || gpa % PAGE !== 0 || !Number.isInteger(pages) || pages < 1) {
    throw new SgringError('InvalidArgument', `a GPADL buffer must start on a page (gpa ${gpa}) and span at least one page`);
  }
  return Array.from({ length: pages }, (_, i) => gpa / PAGE + i);
}

/** True when the PFNs are consecutive frames (the buffer is contiguous in guest RAM). */
export function pfnsContiguous(pfns: readonly number[]): boolean {
  for (let i = 1; i < pfns.length; i++) if (pfns[i] !== pfns[0]! + i) return false;
  return true;
}

export interface Gpadl {
  handle: number;
  relid: number;
  byteCount: number;
  byteOffset: number;
  pfns: number[];
  /** 'building' until the last body arrived. */
  state: 'building' | 'created';
  /** Set while an open channel uses it as its ring buffer. */
  inUse: boolean;
}

/** What the host answers: nothing yet, GPADL_CREATED with a status, or nothing at all (counted). */
export type GpadlVerdict = { reply: 'none' } | { reply: 'created'; relid: number; handle: number; status: number } | { reply: 'ignore'; why: string };

export interface GpadlLimits {
  /** GPADLs (built or being built) at once (default 1024). */
  maxGpadls?: number;
  /** Pages across all of them (default 2^20 = 4 GiB of guest memory). */
  maxPages?: number;
}

export class GpadlTable {
  private readonly map = new Map<number, Gpadl>();
  private readonly expected = new Map<number, number>();
  private pages = 0;
  readonly maxGpadls: number;
  readonly maxPages: number;
  /** Bodies for no GPADL being built (counted, unanswerable). */
  strayBodies = 0;
  /** GPADLs refused, by reason. */
  readonly refused: Record<string, number> = {};

  constructor(limits: GpadlLimits = {}) {
    this.maxGpadls = limits.maxGpadls ?? 1024;
    this.maxPages = limits.maxPages ?? 1 << 20;
  }

  get(handle: number): Gpadl | undefined {
    return this.map.get(handle);
  }

  get size(): number {
    return this.map.size;
  }

  private fail(relid: number, handle: number, why: string, status: number = K.VMBUS_STATUS_INVALID_PARAMETER): GpadlVerdict {
    this.refused[why] = (this.refused[why] ?? 0) + 1;
    return { reply: 'created', relid, handle, status };
  }

  /** A GPADL_HEADER for channel `relid`; `relidOk` says whether that channel may take GPADLs now. */
  header(m: GpadlHeaderMessage, relidOk: boolean): GpadlVerdict {
    const { childRelid: relid, gpadl: handle } = m;
    if (!relidOk) return this.fail(relid, handle, 'unknownRelid', K.VMBUS_STATUS_INVALID_DEVICE_STATE);
    if (handle === 0) return this.fail(relid, handle, 'zeroHandle');
    if (this.map.has(handle)) return this.fail(relid, handle, 'duplicateHandle');
    if (m.rangeCount !== 1) return this.fail(relid, handle, 'rangeCount');
    if (m.rangeBufLen < 16 || (m.rangeBufLen & 7) !== 0 || m.trailingBytes !== 0) return this.fail(relid, handle, 'rangeBufLen');
    const total = (m.rangeBufLen - 8) / 8;
    if (m.byteOffset >= PAGE || m.byteCount === 0 || m.byteCount > K.GPA_COUNT_LIMIT - m.byteOffset ||
        Math.ceil((m.byteOffset + m.byteCount) / PAGE) !== total) return this.fail(relid, handle, 'byteCount');
    if (m.pfns.length > total || m.pfns.length > K.GPADL_HEADER_MAX_PFNS) return this.fail(relid, handle, 'tooManyPfns');
    if (m.pfns.some((p) => !(p < PFN_LIMIT))) return this.fail(relid, handle, 'pfnTooLarge');
    if (this.map.size >= this.maxGpadls || total > this.maxPages - this.pages) {
      return this.fail(relid, handle, 'resources', K.VMBUS_STATUS_INSUFFICIENT_RESOURCES);
    }
    const g: Gpadl = { handle, relid, byteCount: m.byteCount, byteOffset: m.byteOffset, pfns: m.pfns.slice(), state: 'building', inUse: false };
    this.map.set(handle, g);
    this.pages += total;
    this.expected.set(handle, total);
    return this.progress(g);
  }

  /** A GPADL_BODY. */
  body(m: GpadlBodyMessage): GpadlVerdict {
    const g = this.map.get(m.gpadl);
    if (!g || g.state !== 'building') {
      this.strayBodies++;
      return { reply: 'ignore', why: 'no GPADL with this handle is being built' };
    }
    const total = this.expected.get(g.handle)!;
    const bad = m.trailingBytes !== 0 ? 'ragged' : m.pfns.length > total - g.pfns.length || m.pfns.length > K.GPADL_BODY_MAX_PFNS ? 'tooManyPfns'
      : m.pfns.some((p) => !(p < PFN_LIMIT)) ? 'pfnTooLarge' : m.pfns.length === 0 ? 'emptyBody' : null;
    if (bad !== null) {
      this.remove(g.handle);
      return this.fail(g.relid, g.handle, bad);
    }
    for (const p of m.pfns) g.pfns.push(p);
    return this.progress(g);
  }

  private progress(g: Gpadl): GpadlVerdict {
    if (g.pfns.length < this.expected.get(g.handle)!) return { reply: 'none' };
    g.state = 'created';
    this.expected.delete(g.handle);
    return { reply: 'created', relid: g.relid, handle: g.handle, status: K.VMBUS_STATUS_SUCCESS };
  }

  /** GPADL_TEARDOWN: true when removed (answer GPADL_TORNDOWN); false when unknown, another channel's, or in use. */
  teardown(relid: number, handle: number): { ok: true } | { ok: false; why: string } {
    const g = this.map.get(handle);
    if (!g || g.relid !== relid) return { ok: false, why: 'unknown' };
    if (g.inUse) return { ok: false, why: 'inUse' };
    this.remove(handle);
    return { ok: true };
  }

  /** Forgets every GPADL of channel `relid` (after RELID_RELEASED or UNLOAD). */
  dropRelid(relid: number): void {
    for (const g of [...this.map.values()]) if (g.relid === relid) this.remove(g.handle);
  }

  private remove(handle: number): void {
    const g = this.map.get(handle);
    if (!g) return;
    this.pages -= this.expected.get(handle) ?? g.pfns.length;
    this.expected.delete(handle);
    this.map.delete(handle);
  }
}
