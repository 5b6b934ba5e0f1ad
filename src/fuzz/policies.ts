// Bounce policies with planPageList's signature: ours, and faithful models of two drivers'
// historical ones (spec/vmbus.md §4.7), for the policy fuzzer to compare.

import { SgringError } from '../engine/errors';
import { planPageList, type PagePlan, type PlanCopy, type PlanOptions, type Segment } from '../core/pagelist';

/** Anything that turns a scatter-gather list into a page-list plan. */
export type BouncePolicy = (segments: readonly Segment[], opts: PlanOptions) => PagePlan;

function basics(segments: readonly Segment[], opts: PlanOptions) {
  if (segments.length === 0) throw new SgringError('EmptySegmentList');
  const p = opts.pageSize ?? 4096;
  let total = 0;
  for (const s of segments) total += s.len;
  return { p, total, pool: opts.bouncePages ?? [] };
}

/**
 * FreeBSD storvsc's CAM S/G path (storvsc_check_bounce_buffer_sgl and the PFN list built after
 * it), modelled as the driver behaves:
 *  - fewer than two segments: no bounce;
 *  - otherwise a segment is marked when its start is not page aligned, and a "hole" is found when
 *    an aligned start follows an unaligned one, or an unaligned start follows an aligned one or
 *    does not continue the previous segment physically; only segment *starts* are looked at;
 *  - with a hole, each marked segment i is copied to the start of bounce page i (the driver
 *    takes one pool page per segment); the list has one PFN per segment and byteOffset 0 when
 *    segment 0 was bounced, else segment 0's offset;
 *  - without one, one PFN per segment (the page of its start), plus the page after the last
 *    segment's start when that start is not page aligned.
 */
export const freebsdSgBounce: BouncePolicy = (segments, opts) => {
  const { p, total, pool } = basics(segments, opts);
  const n = segments.length;
  const offsetOf = (a: number) => a % p;
  const frame = (a: number) => Math.floor(a / p);
  let marked: boolean[] = segments.map(() => false);
  let hole = false;
  if (n >= 2) {
    let prevAligned = offsetOf(segments[0]!.addr) === 0;
    marked[0] = !prevAligned;
    for (let i = 1; i < n; i++) {
      const s = segments[i]!;
      if (offsetOf(s.addr) === 0) {
        if (!prevAligned) hole = true;
        prevAligned = true;
      } else {
        marked[i] = true;
        const prev = segments[i - 1]!;
        if (prevAligned || s.addr !== prev.addr + prev.len) hole = true;
        prevAligned = false;
      }
    }
  }
  if (!hole) marked = segments.map(() => false);
  const copies: PlanCopy[] = [];
  const pages: number[] = [];
  let stream = 0;
  if (hole && pool.length < n) throw new SgringError('BouncePoolTooSmall', `freebsdSgBounce takes one bounce page per segment: ${n} needed, ${pool.length} given`);
  segments.forEach((s, i) => {
    if (marked[i]) {
      copies.push({ segment: i, segmentOffset: 0, dest: pool[i]!, length: s.len, streamOffset: stream });
      pages.push(frame(pool[i]!));
    } else {
      pages.push(frame(s.addr));
    }
    stream += s.len;
  });
  const last = segments[n - 1]!;
  if (!hole && offsetOf(last.addr) !== 0) pages.push(frame(last.addr) + 1);
  return {
    byteOffset: marked[0] ? 0 : offsetOf(segments[0]!.addr), byteCount: total, pages, copies,
    bouncedBytes: copies.reduce((a, c) => a + c.length, 0),
    bounceEntries: segments.flatMap((_, i) => (marked[i] ? [i] : [])), pageSize: p,
  };
};

/**
 * Old Linux storvsc (~2013, do_bounce_buffer): fewer than two segments are fine; otherwise the
 * first must end at its page end, the last must start at offset 0, and middle ones must be whole
 * aligned pages. The first violation bounces the whole transfer into fresh pages from offset 0.
 * Without a violation each segment contributes the pages it spans (the block layer of the day
 * split entries at page boundaries, so this is what the driver saw).
 */
export const linuxLegacyBounce: BouncePolicy = (segments, opts) => {
  const { p, total, pool } = basics(segments, opts);
  const n = segments.length;
  const off = (a: number) => a % p;
  let violation = false;
  if (n >= 2) {
    segments.forEach((s, i) => {
      if (i === 0) violation ||= off(s.addr) + s.len !== p;
      else if (i === n - 1) violation ||= off(s.addr) !== 0;
      else violation ||= off(s.addr) !== 0 || s.len !== p;
    });
  }
  if (!violation) {
    const pages: number[] = [];
    for (const s of segments) {
      for (let f = Math.floor(s.addr / p); f <= Math.floor((s.addr + s.len - 1) / p); f++) pages.push(f);
    }
    return { byteOffset: off(segments[0]!.addr), byteCount: total, pages, copies: [], bouncedBytes: 0, bounceEntries: [], pageSize: p };
  }
  const need = Math.ceil(total / p);
  if (pool.length < need) throw new SgringError('BouncePoolTooSmall', `linuxLegacyBounce needs ${need} bounce pages, ${pool.length} given`);
  const copies: PlanCopy[] = [];
  let stream = 0;
  segments.forEach((s, i) => {
    // Split each segment where the bounce pages change.
    for (let done = 0; done < s.len;) {
      const k = stream + done;
      const length = Math.min(s.len - done, p - (k % p));
      copies.push({ segment: i, segmentOffset: done, dest: pool[Math.floor(k / p)]! + (k % p), length, streamOffset: k });
      done += length;
    }
    stream += s.len;
  });
  return {
    byteOffset: 0, byteCount: total, pages: pool.slice(0, need).map((b) => Math.floor(b / p)), copies,
    bouncedBytes: total, bounceEntries: Array.from({ length: need }, (_, j) => j), pageSize: p,
  };
};

/** The policies the fuzzer knows by name: ours (minimal copies) and the two driver models. */
export const bouncePolicies: { optimal: BouncePolicy; freebsdSgBounce: BouncePolicy; linuxLegacyBounce: BouncePolicy } = {
  optimal: planPageList,
  freebsdSgBounce,
  linuxLegacyBounce,
};
