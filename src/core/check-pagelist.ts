// checkPageList: is a plan legal for its rule, and does the page list, after the plan's copies,
// describe exactly the caller's bytes? It checks the shape, then simulates memory: every byte of
// the transfer is tagged with its position, the copies move tags, and the host's read through
// byteOffset + pages must find every tag in order. The first difference is explained in words.

import { SgringError } from '../engine/errors';
import { checkPlanShape, checkSegments, type PagePlan, type PageRule, type Segment } from './pagelist';

export interface PageListVerdict {
  ok: boolean;
  /** The first violation, in words: which entry, which offset, what the host would read instead. */
  violation?: string;
}

const hex = (n: number) => `0x${n.toString(16)}`;

/** Sparse byte-tag memory: a tag is (stream position + 1); 0 means "not written by the transfer". */
class TagMemory {
  private readonly pages = new Map<number, Int32Array>();
  get(addr: number): number {
    return this.pages.get(Math.floor(addr / 4096))?.[addr % 4096] ?? 0;
  }
  set(addr: number, tag: number): void {
    const key = Math.floor(addr / 4096);
    let page = this.pages.get(key);
    if (!page) {
      page = new Int32Array(4096);
      this.pages.set(key, page);
    }
    page[addr % 4096] = tag;
  }
}

/** Where stream byte k lives in the caller's list: segment index and offset. */
function locate(starts: number[], k: number): { segment: number; offset: number } {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= k) lo = mid;
    else hi = mid - 1;
  }
  return { segment: lo, offset: k - starts[lo]! };
}

/**
 * Checks `plan` against `segments` under `rule`. The page size is the plan's (or opts.pageSize,
 * default 4096; Hyper-V requires 4096).
 */
export function checkPageList(segments: readonly Segment[], plan: PagePlan, rule: PageRule, opts: { pageSize?: number } = {}): PageListVerdict {
  if (rule !== 'hyperv' && rule !== 'nvme-prp') throw new SgringError('InvalidArgument', `unknown page-list rule '${String(rule)}'`);
  checkSegments(segments);
  checkPlanShape(plan, 'checkPageList');
  const bad = (violation: string): PageListVerdict => ({ ok: false, violation });
  const p = plan.pageSize ?? opts.pageSize ?? 4096;
  const starts: number[] = [];
  let total = 0;
  for (const s of segments) {
    starts.push(total);
    total += s.len;
  }
  if (rule === 'hyperv' && p !== 4096) return bad(`page size ${p}: a Hyper-V GPA range is always in 4096-byte pages`);
  if (plan.byteCount !== total) return bad(`byteCount is ${plan.byteCount} but the segments hold ${total} bytes`);
  const o = plan.byteOffset;
  if (!Number.isInteger(o) || o < 0 || o >= p) return bad(`byteOffset ${o} is not inside a ${p}-byte page`);
  if (rule === 'nvme-prp' && o % 4 !== 0) return bad(`byteOffset ${hex(o)} is not dword aligned (PRP1 bits 1:0 must be zero)`);
  const need = Math.ceil((o + total) / p);
  if (plan.pages.length !== need) {
    return bad(`the list has ${plan.pages.length} page entries; ${total} bytes starting at offset ${hex(o)} of the first page need ${need}`);
  }
  for (let j = 0; j < plan.pages.length; j++) {
    const f = plan.pages[j]!;
    if (!Number.isSafeInteger(f) || f < 0) return bad(`page entry ${j} holds ${f}, not a page frame number`);
  }
  for (let c = 0; c < plan.copies.length; c++) {
    const cp = plan.copies[c]!;
    const seg = segments[cp.segment];
    if (!seg) return bad(`copy ${c} names segment ${cp.segment}, which does not exist`);
    if (cp.length < 0 || cp.segmentOffset < 0 || cp.segmentOffset + cp.length > seg.len) {
      return bad(`copy ${c} takes bytes ${cp.segmentOffset}..${cp.segmentOffset + cp.length} of segment ${cp.segment}, which has ${seg.len}`);
    }
  }

  // Simulate: the caller's bytes carry their stream position, then the copies run in order.
  const mem = new TagMemory();
  segments.forEach((s, i) => {
    for (let k = 0; k < s.len; k++) mem.set(s.addr + k, starts[i]! + k + 1);
  });
  for (const cp of plan.copies) {
    const src = segments[cp.segment]!.addr + cp.segmentOffset;
    const tags = Array.from({ length: cp.length }, (_, t) => mem.get(src + t));
    tags.forEach((tag, t) => mem.set(cp.dest + t, tag));
  }
  // The host's read: stream byte k is at entry (o + k) / p, offset (o + k) % p.
  for (let k = 0; k < total; k++) {
    const j = Math.floor((o + k) / p);
    const off = (o + k) % p;
    const addr = plan.pages[j]! * p + off;
    const tag = mem.get(addr);
    if (tag === k + 1) continue;
    const want = locate(starts, k);
    const found = tag === 0
      ? 'bytes the transfer never wrote there'
      : (() => {
        const got = locate(starts, tag - 1);
        return `byte ${tag - 1} of the transfer (segment ${got.segment} offset ${got.offset})`;
      })();
    return bad(`page entry ${j} (frame ${hex(plan.pages[j]!)}), offset ${hex(off)}: the host reads transfer byte ${k} ` +
      `from ${hex(addr)} and finds ${found} instead of segment ${want.segment} offset ${want.offset} ` +
      `(at ${hex(segments[want.segment]!.addr + want.offset)})`);
  }
  return { ok: true };
}
