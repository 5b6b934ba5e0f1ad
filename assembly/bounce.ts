// Minimal-copy bounce planning and the bounce copies (spec/vmbus.md §2.5 and §4.7, nvme.md §3).
//
// A host reads a transfer as one stream through a page list: byte k of the stream sits in
// entry (byteOffset + k) / P at in-page offset (byteOffset + k) % P. An entry can be the
// caller's own page only if every stream byte of its window lies at exactly that place in
// guest memory; otherwise it must be a bounce page that receives a copy of the window.
//
// For a segment starting at stream offset s and address a, "lies at that place" means
// a - s ≡ byteOffset (mod P): each segment has one byteOffset (its phase) that lets it stay,
// and a window can stay when all its pieces share one a - s (they are physically contiguous)
// with that phase. The planner tries every phase any segment offers (plus 0, the all-bounce
// layout with the fewest pages), counts the bytes each would copy in O(n), and keeps the best:
// fewest bytes copied, then fewest pages, then the first segment's own offset, then the
// smallest offset, among the choices that fit maxPages and the bounce pool.

import {
  SEG_SIZE, SEG_OFF_ADDR, SEG_OFF_LEN, RULE_HYPERV, RULE_NVME_PRP, PAGE_SIZE_MIN, PAGE_SIZE_MAX,
  PLAN_BYTE_OFFSET, PLAN_BYTE_COUNT, PLAN_PAGE_COUNT, PLAN_COPY_COUNT, PLAN_BOUNCED_BYTES,
  PLAN_BOUNCE_PAGES, PLAN_PAGE_SIZE, PLAN_NEEDED, PLAN_BAD_INDEX, PLAN_HEADER_SIZE, PAGE_ENTRY_SIZE,
  PAGE_OFF_FRAME, PAGE_OFF_BOUNCE, NOT_BOUNCED, COPY_ENTRY_SIZE, COPY_OFF_SEGMENT,
  COPY_OFF_SEGMENT_OFFSET, COPY_OFF_DEST, COPY_OFF_LENGTH, COPY_OFF_STREAM, GPA_LIMIT_MAX_LO, GPA_LIMIT_MAX_HI,
  E_InvalidArgument, E_BufferTooSmall, E_EmptySegmentList, E_ZeroLengthSegment, E_OutsideGuestRam,
  E_TransferTooLarge, E_TooManyPages, E_BouncePoolTooSmall, E_BadBouncePage, E_InvalidPageSize, E_InvalidPlan,
} from './generated/constants';
// Bounce copies use memory.copy: windows are page-sized, and a (corrupt) plan whose source and
// destination overlap gets memmove semantics, as in the reference twin.
import { inMemory } from './mem';
import { guestRange, u64of } from './guest';

// @ts-ignore: decorator
@inline function segAddr(segs: usize, i: u32): u64 {
  return load<u64>(segs + <usize>i * SEG_SIZE, SEG_OFF_ADDR);
}

// @ts-ignore: decorator
@inline function segLen(segs: usize, i: u32): u32 {
  return load<u32>(segs + <usize>i * SEG_SIZE, SEG_OFF_LEN);
}

/** Bytes of the stream that page entry j holds, for byteOffset o and length total. */
// @ts-ignore: decorator
@inline function windowLen(j: u64, o: u64, total: u64, p: u64): u64 {
  const start = j == 0 ? 0 : j * p - o;
  const end = (j + 1) * p - o;
  return (end < total ? end : total) - start;
}

/**
 * Bytes copied (high 32 bits) and bounce pages used (low 32 bits) when byteOffset is o.
 * One pass over the segments: pages wholly inside one segment are counted arithmetically.
 */
function evaluate(segs: usize, n: u32, p: u64, o: u64, total: u64): u64 {
  const mask = p - 1;
  let cost: u64 = 0;
  let pages: u64 = 0;
  let cur: u64 = 0; // page entry being filled
  let curOwn = true;
  let curHas = false;
  let curDelta: u64 = 0;
  let s: u64 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const e = s + segLen(segs, i);
    const delta = segAddr(segs, i) - s; // wraps like a two's complement offset: only compared and masked
    const ok = ((delta - o) & mask) == 0;
    const js = (s + o) / p;
    const je = (e - 1 + o) / p;
    if (js != cur) {
      // The previous segment ended exactly at a page boundary: that entry is complete.
      if (!curOwn) {
        cost += windowLen(cur, o, total, p);
        pages++;
      }
      cur = js;
      curHas = false;
    }
    curOwn = curHas ? curOwn && ok && delta == curDelta : ok;
    curDelta = delta;
    curHas = true;
    if (je > js) {
      if (!curOwn) {
        cost += windowLen(js, o, total, p);
        pages++;
      }
      if (!ok) {
        cost += (je - js - 1) * p;
        pages += je - js - 1;
      }
      cur = je;
      curOwn = ok;
    }
    s = e;
  }
  if (!curOwn) {
    cost += windowLen(cur, o, total, p);
    pages++;
  }
  return (cost << 32) | pages;
}

/**
 * Plans the page list for `n` segments at `segs` (shared segment format). `rule` is RULE_HYPERV
 * (page size 4096) or RULE_NVME_PRP (byteOffset dword aligned, page size = MPS). `pool` holds
 * `poolCount` page-aligned guest-physical addresses (u64) the plan may bounce into; segments
 * and pool pages must lie below the guest limit (lo/hi). Writes the plan image to `out`
 * (PLAN_* header, page entries, copy entries) and returns 0, or a negative status with
 * PLAN_BAD_INDEX / PLAN_NEEDED filled in when they apply.
 */
export function planPages(segs: usize, n: u32, pageSize: u32, rule: u32, maxPages: u32, pool: usize, poolCount: u32,
  limitLo: u32, limitHi: u32, out: usize, outCap: u32): i32 {
  if (!inMemory(out, outCap) || outCap < PLAN_HEADER_SIZE || (out & 7) != 0) return E_InvalidArgument;
  memory.fill(out, 0, PLAN_HEADER_SIZE);
  if (rule != RULE_HYPERV && rule != RULE_NVME_PRP) return E_InvalidArgument;
  if (pageSize < PAGE_SIZE_MIN || pageSize > PAGE_SIZE_MAX || (pageSize & (pageSize - 1)) != 0 ||
      (rule == RULE_HYPERV && pageSize != PAGE_SIZE_MIN)) return E_InvalidPageSize;
  if (n == 0) return E_EmptySegmentList;
  if (n > 0x7fffffff / SEG_SIZE || !inMemory(segs, n * SEG_SIZE) || poolCount > 0x7fffffff / 8 || !inMemory(pool, poolCount * 8)) return E_InvalidArgument;
  const p = <u64>pageSize;
  const limit = u64of(limitLo, limitHi);
  if (limit > u64of(GPA_LIMIT_MAX_LO, GPA_LIMIT_MAX_HI)) return E_InvalidArgument;
  let total: u64 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const len = <u64>segLen(segs, i);
    store<u32>(out, i, PLAN_BAD_INDEX);
    if (len == 0) return E_ZeroLengthSegment;
    if (!guestRange(limit, segAddr(segs, i), len)) return E_OutsideGuestRam;
    total += len;
    if (total > 0xffffffff) return E_TransferTooLarge;
  }
  for (let k: u32 = 0; k < poolCount; k++) {
    const b = load<u64>(pool + <usize>k * 8);
    store<u32>(out, k, PLAN_BAD_INDEX);
    if ((b & (p - 1)) != 0) return E_BadBouncePage;
    if (!guestRange(limit, b, p)) return E_OutsideGuestRam;
  }
  store<u32>(out, 0, PLAN_BAD_INDEX);

  // Candidate byte offsets: each segment's phase, and 0. The first segment's phase wins ties.
  const first = segAddr(segs, 0) & (p - 1);
  let bestO: u64 = 0;
  let bestCost: u64 = 0;
  let bestPages: u64 = 0;
  let bestBounce: u64 = 0;
  let found = false;
  let blocked: i32 = 0; // why the last rejected candidate was rejected
  let poolNeed: u64 = 0xffffffff; // fewest bounce pages a candidate the pool refused needed
  // Phases already offered, one bit each, in the output area behind the header (it is written
  // only once the search is over); for short lists, or without room, a scan of the earlier ones.
  const seenMap = out + PLAN_HEADER_SIZE;
  const useMap = n > PHASE_SCAN_MAX && <u64>outCap >= <u64>PLAN_HEADER_SIZE + (p >> 3);
  if (useMap) memory.fill(seenMap, 0, <usize>(p >> 3));
  let s: u64 = 0;
  for (let c: u32 = 0; c <= n; c++) {
    let o: u64 = 0;
    if (c < n) {
      o = (segAddr(segs, c) - s) & (p - 1);
      s += segLen(segs, c);
      if (rule == RULE_NVME_PRP && (o & 3) != 0) continue;
      // Skip a phase an earlier segment already offered.
      if (useMap) {
        const at = seenMap + <usize>(o >> 3);
        const bit = <u8>(1 << <u8>(o & 7));
        const v = load<u8>(at);
        if ((v & bit) != 0) continue;
        store<u8>(at, v | bit);
      } else {
        let seen = false;
        let s2: u64 = 0;
        for (let d: u32 = 0; d < c; d++) {
          if (((segAddr(segs, d) - s2) & (p - 1)) == o) {
            seen = true;
            break;
          }
          s2 += segLen(segs, d);
        }
        if (seen) continue;
      }
    }
    const pages = (o + total + p - 1) / p;
    if (pages > <u64>maxPages) {
      blocked = E_TooManyPages;
      continue;
    }
    const r = evaluate(segs, n, p, o, total);
    const cost = r >> 32;
    const bounce = r & 0xffffffff;
    if (bounce > <u64>poolCount) {
      blocked = E_BouncePoolTooSmall;
      if (bounce < poolNeed) poolNeed = bounce;
      continue;
    }
    let better = !found;
    if (found) {
      if (cost != bestCost) better = cost < bestCost;
      else if (pages != bestPages) better = pages < bestPages;
      else if ((o == first) != (bestO == first)) better = o == first;
      else better = o < bestO;
    }
    if (better) {
      found = true;
      bestO = o;
      bestCost = cost;
      bestPages = pages;
      bestBounce = bounce;
    }
  }
  if (!found) {
    if (blocked == E_BouncePoolTooSmall) store<u32>(out, <u32>poolNeed, PLAN_NEEDED);
    return blocked;
  }

  // Room for the image: header, page entries, and at most one copy per segment piece in a
  // bounced page (each segment starts at most one piece in a page it shares).
  const needed = <u64>PLAN_HEADER_SIZE + bestPages * PAGE_ENTRY_SIZE + (bestBounce + <u64>n) * COPY_ENTRY_SIZE;
  store<u32>(out, <u32>(needed > 0xffffffff ? 0xffffffff : needed), PLAN_NEEDED);
  if (needed > <u64>outCap) return E_BufferTooSmall;
  const st = checkPool(segs, n, p, pool, <u32>bestBounce, out, outCap);
  if (st < 0) return st;
  return writePlan(segs, n, p, bestO, total, <u32>bestPages, pool, out);
}

/** Up to this many segments, finding repeated phases by a scan costs less than clearing a bitmap. */
const PHASE_SCAN_MAX: u32 = 32;

/** Hash slot of a frame key: both halves folded, then Fibonacci hashing to `bits` bits. */
// @ts-ignore: decorator
@inline function slotOf(key: u64, bits: u32): u32 {
  return ((<u32>key ^ <u32>(key >> 32)) * 0x9e3779b9) >>> (32 - bits);
}

/**
 * The pool pages a plan uses must be distinct and must not overlap the caller's data, or a copy
 * would overwrite what another copy still has to read. A hash set of their frame numbers, built
 * in the output area before the plan is written there (it holds at least 40 bytes per bounce
 * page: room for twice as many slots as pages), makes this linear in pages and segments.
 * Returns 0, or E_BadBouncePage with PLAN_BAD_INDEX = the first pool index at fault.
 */
function checkPool(segs: usize, n: u32, p: u64, pool: usize, count: u32, out: usize, outCap: u32): i32 {
  store<u32>(out, 0, PLAN_BAD_INDEX);
  if (count == 0) return 0;
  const room = (outCap - PLAN_HEADER_SIZE) / 12; // a u64 key and a u32 index per slot
  let slots: u32 = 2;
  while (slots < count * 2 && slots <= room >> 1) slots <<= 1; // load at most 1/2 (or what room allows: < 0.6)
  const bits = ctz<u32>(slots);
  const keys = out + PLAN_HEADER_SIZE; // frame + 1; 0 = empty
  const idx = keys + <usize>slots * 8;
  memory.fill(keys, 0, <usize>slots * 8);
  const shift = ctz<u64>(p);
  let bad = count;
  for (let k: u32 = 0; k < count; k++) {
    const key = (load<u64>(pool + <usize>k * 8) >> shift) + 1;
    let h = slotOf(key, bits);
    for (;;) {
      const at = keys + <usize>h * 8;
      const v = load<u64>(at);
      if (v == 0) {
        store<u64>(at, key);
        store<u32>(idx + <usize>h * 4, k);
        break;
      }
      if (v == key) {
        if (k < bad) bad = k; // a later copy of an earlier page
        break;
      }
      h = (h + 1) & (slots - 1);
    }
  }
  for (let i: u32 = 0; i < n; i++) {
    const f0 = segAddr(segs, i) >> shift;
    const f1 = (segAddr(segs, i) + <u64>segLen(segs, i) - 1) >> shift;
    if (f1 - f0 >= <u64>count) {
      // A segment longer than the pool: test each pool page against it instead.
      for (let k: u32 = 0; k < count && k < bad; k++) {
        const f = load<u64>(pool + <usize>k * 8) >> shift;
        if (f >= f0 && f <= f1) bad = k;
      }
      continue;
    }
    for (let f = f0; f <= f1; f++) {
      let h = slotOf(f + 1, bits);
      for (;;) {
        const v = load<u64>(keys + <usize>h * 8);
        if (v == 0) break;
        if (v == f + 1) {
          const k = load<u32>(idx + <usize>h * 4);
          if (k < bad) bad = k;
          break;
        }
        h = (h + 1) & (slots - 1);
      }
    }
  }
  if (bad == count) return 0;
  store<u32>(out, bad, PLAN_BAD_INDEX);
  return E_BadBouncePage;
}

/** Second pass for the chosen byteOffset: page entries, then the copies for bounced windows. */
function writePlan(segs: usize, n: u32, p: u64, o: u64, total: u64, pageCount: u32, pool: usize, out: usize): i32 {
  const mask = p - 1;
  const pagesAt = out + PLAN_HEADER_SIZE;
  // Mark every entry as the caller's own page at the frame its first byte implies; then clear
  // the ones that cannot stay. frameOf(j) is set from the segment holding the window's first byte.
  let s: u64 = 0;
  let cur: u64 = 0;
  let curOwn = true;
  let curHas = false;
  let curDelta: u64 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const e = s + segLen(segs, i);
    const a = segAddr(segs, i);
    const delta = a - s;
    const ok = ((delta - o) & mask) == 0;
    const js = (s + o) / p;
    const je = (e - 1 + o) / p;
    if (js != cur) {
      setEntry(pagesAt, cur, curOwn, curDelta, o, p);
      cur = js;
      curHas = false;
    }
    curOwn = curHas ? curOwn && ok && delta == curDelta : ok;
    if (!curHas) curDelta = delta;
    curHas = true;
    if (je > js) {
      setEntry(pagesAt, js, curOwn, curDelta, o, p);
      for (let j = js + 1; j < je; j++) setEntry(pagesAt, j, ok, delta, o, p);
      cur = je;
      curOwn = ok;
      curDelta = delta;
    }
    s = e;
  }
  setEntry(pagesAt, cur, curOwn, curDelta, o, p);

  // Hand out bounce pages in entry order.
  let used: u32 = 0;
  for (let j: u32 = 0; j < pageCount; j++) {
    const ent = pagesAt + <usize>j * PAGE_ENTRY_SIZE;
    if (load<u32>(ent, PAGE_OFF_BOUNCE) != NOT_BOUNCED) {
      store<u32>(ent, used, PAGE_OFF_BOUNCE);
      store<u64>(ent, load<u64>(pool + <usize>used * 8) / p, PAGE_OFF_FRAME);
      used++;
    }
  }

  // Copies: every piece of a segment that falls in a bounced entry, in stream order.
  const copiesAt = pagesAt + <usize>pageCount * PAGE_ENTRY_SIZE;
  let copies: u32 = 0;
  let bounced: u64 = 0;
  s = 0;
  for (let i: u32 = 0; i < n; i++) {
    const e = s + segLen(segs, i);
    let k = s;
    while (k < e) {
      const j = (k + o) / p;
      const end = (j + 1) * p - o < e ? (j + 1) * p - o : e;
      const ent = pagesAt + <usize>j * PAGE_ENTRY_SIZE;
      const b = load<u32>(ent, PAGE_OFF_BOUNCE);
      if (b != NOT_BOUNCED) {
        const c = copiesAt + <usize>copies * COPY_ENTRY_SIZE;
        store<u32>(c, i, COPY_OFF_SEGMENT);
        store<u32>(c, <u32>(k - s), COPY_OFF_SEGMENT_OFFSET);
        store<u64>(c, load<u64>(pool + <usize>b * 8) + ((k + o) & mask), COPY_OFF_DEST);
        store<u32>(c, <u32>(end - k), COPY_OFF_LENGTH);
        store<u32>(c, <u32>k, COPY_OFF_STREAM);
        copies++;
        bounced += end - k;
      }
      k = end;
    }
    s = e;
  }
  store<u32>(out, <u32>o, PLAN_BYTE_OFFSET);
  store<u32>(out, <u32>total, PLAN_BYTE_COUNT);
  store<u32>(out, pageCount, PLAN_PAGE_COUNT);
  store<u32>(out, copies, PLAN_COPY_COUNT);
  store<u32>(out, <u32>bounced, PLAN_BOUNCED_BYTES);
  store<u32>(out, used, PLAN_BOUNCE_PAGES);
  store<u32>(out, <u32>p, PLAN_PAGE_SIZE);
  store<u32>(out, PLAN_HEADER_SIZE + pageCount * PAGE_ENTRY_SIZE + copies * COPY_ENTRY_SIZE, PLAN_NEEDED);
  return 0;
}

/**
 * Entry j: the caller's own page, or "bounce" (its pool index is set later). For an own page,
 * stream byte k of the window is at address delta + k and at in-page offset (o + k) mod p, so
 * the frame follows from the window's first byte k0 (computed on the real, non-negative address).
 */
// @ts-ignore: decorator
@inline function setEntry(pagesAt: usize, j: u64, own: bool, delta: u64, o: u64, p: u64): void {
  const ent = pagesAt + <usize>j * PAGE_ENTRY_SIZE;
  if (own) {
    const k0: u64 = j == 0 ? 0 : j * p - o;
    store<u64>(ent, (delta + k0 - ((o + k0) & (p - 1))) / p, PAGE_OFF_FRAME);
    store<u32>(ent, NOT_BOUNCED, PAGE_OFF_BOUNCE);
  } else {
    store<u64>(ent, 0, PAGE_OFF_FRAME);
    store<u32>(ent, 0, PAGE_OFF_BOUNCE);
  }
  store<u32>(ent, 0, PAGE_OFF_BOUNCE + 4);
}

// ---- bounce copies ------------------------------------------------------------------------

/**
 * Checks a plan image against its segment list before any byte moves: sizes inside `planBytes`,
 * every copy inside its segment, every address inside the guest window. Returns the copy count
 * or a negative status.
 */
function checkPlan(segs: usize, n: u32, plan: usize, planBytes: u32, guestBytes: u64): i32 {
  if (!inMemory(plan, planBytes) || planBytes < PLAN_HEADER_SIZE || !inMemory(segs, <usize>n * SEG_SIZE)) return E_InvalidArgument;
  const pages = <u64>load<u32>(plan, PLAN_PAGE_COUNT);
  const copies = <u64>load<u32>(plan, PLAN_COPY_COUNT);
  const p = <u64>load<u32>(plan, PLAN_PAGE_SIZE);
  if (<u64>PLAN_HEADER_SIZE + pages * PAGE_ENTRY_SIZE + copies * COPY_ENTRY_SIZE > <u64>planBytes) return E_InvalidPlan;
  if (p < PAGE_SIZE_MIN || p > PAGE_SIZE_MAX || (p & (p - 1)) != 0) return E_InvalidPlan;
  const copiesAt = plan + PLAN_HEADER_SIZE + <usize>pages * PAGE_ENTRY_SIZE;
  for (let c: u32 = 0; c < <u32>copies; c++) {
    const e = copiesAt + <usize>c * COPY_ENTRY_SIZE;
    const i = load<u32>(e, COPY_OFF_SEGMENT);
    if (i >= n) return E_InvalidPlan;
    const off = <u64>load<u32>(e, COPY_OFF_SEGMENT_OFFSET);
    const len = <u64>load<u32>(e, COPY_OFF_LENGTH);
    const sl = <u64>segLen(segs, i);
    if (len > sl || off > sl - len) return E_InvalidPlan;
    if (!guestRange(guestBytes, segAddr(segs, i) + off, len) || !guestRange(guestBytes, load<u64>(e, COPY_OFF_DEST), len)) return E_OutsideGuestRam;
  }
  for (let j: u32 = 0; j < <u32>pages; j++) {
    const ent = plan + PLAN_HEADER_SIZE + <usize>j * PAGE_ENTRY_SIZE;
    if (load<u32>(ent, PAGE_OFF_BOUNCE) != NOT_BOUNCED) {
      const f = load<u64>(ent, PAGE_OFF_FRAME);
      if (f > guestBytes / p || !guestRange(guestBytes, f * p, p)) return E_OutsideGuestRam;
    }
  }
  return <i32>copies;
}

/**
 * Write direction: copies every bounced window from the caller's segments into its bounce page,
 * and zeroes the parts of bounce pages the stream does not cover (before byteOffset in the first
 * entry, after the end in the last), so a reused page never shows old data to the host (P10).
 * Returns the bytes copied or a negative status; nothing is written unless all checks pass.
 */
export function bounceCopyOut(segs: usize, n: u32, plan: usize, planBytes: u32, guestBase: usize, guestBytes: u32): i32 {
  const g = <u64>guestBytes;
  if (!inMemory(guestBase, guestBytes)) return E_InvalidArgument;
  const copies = checkPlan(segs, n, plan, planBytes, g);
  if (copies < 0) return copies;
  const pages = load<u32>(plan, PLAN_PAGE_COUNT);
  const p = load<u32>(plan, PLAN_PAGE_SIZE);
  const o = load<u32>(plan, PLAN_BYTE_OFFSET);
  const endOff = (o + load<u32>(plan, PLAN_BYTE_COUNT)) & (p - 1);
  if (pages > 0) {
    const first = plan + PLAN_HEADER_SIZE;
    if (load<u32>(first, PAGE_OFF_BOUNCE) != NOT_BOUNCED && o != 0) {
      memory.fill(guestBase + <usize>(load<u64>(first, PAGE_OFF_FRAME) * p), 0, o);
    }
    const last = plan + PLAN_HEADER_SIZE + <usize>(pages - 1) * PAGE_ENTRY_SIZE;
    if (load<u32>(last, PAGE_OFF_BOUNCE) != NOT_BOUNCED && endOff != 0) {
      memory.fill(guestBase + <usize>(load<u64>(last, PAGE_OFF_FRAME) * p) + endOff, 0, p - endOff);
    }
  }
  const copiesAt = plan + PLAN_HEADER_SIZE + <usize>pages * PAGE_ENTRY_SIZE;
  let moved: u64 = 0;
  for (let c: i32 = 0; c < copies; c++) {
    const e = copiesAt + <usize>c * COPY_ENTRY_SIZE;
    const len = load<u32>(e, COPY_OFF_LENGTH);
    const src = segAddr(segs, load<u32>(e, COPY_OFF_SEGMENT)) + load<u32>(e, COPY_OFF_SEGMENT_OFFSET);
    memory.copy(guestBase + <usize>load<u64>(e, COPY_OFF_DEST), guestBase + <usize>src, len);
    moved += len;
  }
  return <i32>(moved < 0x7fffffff ? moved : 0x7fffffff);
}

/**
 * Read direction, before the device writes: zeroes every bounce page of the plan, so nothing a
 * previous request left there reaches the device (checklist 32). Returns 0 or a negative status.
 */
export function bounceZero(segs: usize, n: u32, plan: usize, planBytes: u32, guestBase: usize, guestBytes: u32): i32 {
  if (!inMemory(guestBase, guestBytes)) return E_InvalidArgument;
  const copies = checkPlan(segs, n, plan, planBytes, <u64>guestBytes);
  if (copies < 0) return copies;
  const pages = load<u32>(plan, PLAN_PAGE_COUNT);
  const p = load<u32>(plan, PLAN_PAGE_SIZE);
  for (let j: u32 = 0; j < pages; j++) {
    const ent = plan + PLAN_HEADER_SIZE + <usize>j * PAGE_ENTRY_SIZE;
    if (load<u32>(ent, PAGE_OFF_BOUNCE) != NOT_BOUNCED) memory.fill(guestBase + <usize>(load<u64>(ent, PAGE_OFF_FRAME) * p), 0, p);
  }
  return 0;
}

/**
 * Read direction, after the device finished: copies bounced windows back into the caller's
 * segments, but only the first `actual` bytes of the stream (checklist 31: a short transfer
 * never exposes unused bounce bytes). Returns the bytes copied back or a negative status.
 */
export function bounceCopyBack(segs: usize, n: u32, plan: usize, planBytes: u32, guestBase: usize, guestBytes: u32, actual: u32): i32 {
  if (!inMemory(guestBase, guestBytes)) return E_InvalidArgument;
  const copies = checkPlan(segs, n, plan, planBytes, <u64>guestBytes);
  if (copies < 0) return copies;
  const pages = load<u32>(plan, PLAN_PAGE_COUNT);
  const copiesAt = plan + PLAN_HEADER_SIZE + <usize>pages * PAGE_ENTRY_SIZE;
  let moved: u64 = 0;
  for (let c: i32 = 0; c < copies; c++) {
    const e = copiesAt + <usize>c * COPY_ENTRY_SIZE;
    const stream = load<u32>(e, COPY_OFF_STREAM);
    if (stream >= actual) continue;
    let len = load<u32>(e, COPY_OFF_LENGTH);
    if (len > actual - stream) len = actual - stream;
    const dst = segAddr(segs, load<u32>(e, COPY_OFF_SEGMENT)) + load<u32>(e, COPY_OFF_SEGMENT_OFFSET);
    memory.copy(guestBase + <usize>dst, guestBase + <usize>load<u64>(e, COPY_OFF_DEST), len);
    moved += len;
  }
  return <i32>(moved < 0x7fffffff ? moved : 0x7fffffff);
}
