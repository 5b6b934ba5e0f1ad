// Segment lists <-> Hyper-V GPA ranges (spec/vmbus.md §2.5), and the batch legality classifier
// for the page-list rule table of §4.7 (and its NVMe PRP variant).
//
// Segment lists use the shared format of scripts/constants/segments.mjs: 16-byte entries
// { addr u64 guest-physical, len u32, flags u32 }, 8-aligned. Every function here makes one
// pass over its whole list, reads each input value once, and writes only inside the regions it
// is given. Besides its i32 result each encoder/decoder fills a 16-byte result block `res`
// (PL_RES_*): which segment or range failed, bytes needed or consumed, ranges or segments.
// On a negative result the output region may hold a partial image (both engines write the same
// bytes); only `res` is meaningful then.
//
// Trust: the decoder reads bytes a guest wrote (checklist §3.2 items 14-15, OpenVMM gparange);
// its loop is bounded by the byte length it is given, never by range_count (hardening P4).

import {
  SEG_SIZE, SEG_OFF_LEN, SEG_OFF_FLAGS, GPA_RANGE_HEADER_SIZE, GPA_RANGE_OFF_BYTE_OFFSET, GPA_PFN_SIZE,
  GPA_PAGE_SHIFT, GPA_MAX_BYTE_OFFSET, GPA_COUNT_LIMIT, GPA_PFN_BITS, GPA_ADDR_BITS, GPA_PAGE_ENTRY_SIZE,
  GPA_MULTI_MERGE, GPA_MULTI_PER_SEGMENT, GPA_DECODE_PER_PAGE, PL_RES_INDEX, PL_RES_BYTES, PL_RES_COUNT,
  PL_RES_DETAIL, PL_RES_SIZE, PL_RULE_HYPERV, PL_RULE_NVME_PRP, PL_MIN_PAGE_SIZE, PL_MAX_PAGE_SIZE,
  CLS_ONLY, CLS_FIRST, CLS_MIDDLE, CLS_LAST, CLS_VIOLATION, PAGE_SIZE,
  E_InvalidArgument, E_BufferTooSmall, E_PageListRule, E_GpaRangeCountZero, E_GpaRangeTooSmall,
  E_GpaEmptyByteCount, E_GpaOffsetTooLarge, E_GpaOverflow, E_GpaPfnTooLarge, E_GpaPfnCountMismatch,
} from './generated/constants';
import { inMemory, copyBytes } from './mem';

const PAGE_MASK: u32 = PAGE_SIZE - 1;

// ---- argument checks and the result block ------------------------------------------------

/** An 8-aligned list of n segment entries inside memory (n * 16 cannot overflow). */
// @ts-ignore: decorator
@inline function segList(ptr: usize, n: u32): bool {
  return (ptr & 7) == 0 && n <= 0x7fffffff / SEG_SIZE && inMemory(ptr, n * SEG_SIZE);
}

// @ts-ignore: decorator
@inline function resOk(res: usize): bool {
  return (res & 3) == 0 && inMemory(res, PL_RES_SIZE);
}

// @ts-ignore: decorator
@inline function sat32(x: u64): u32 {
  return x > 0xffffffff ? 0xffffffff : <u32>x;
}

/** Fills every field of the result block and returns `ret`: each exit writes all four. */
function finish(res: usize, ret: i32, index: u32, bytes: u64, count: u64, detail: u32): i32 {
  store<u32>(res, index, PL_RES_INDEX);
  store<u32>(res, sat32(bytes), PL_RES_BYTES);
  store<u32>(res, sat32(count), PL_RES_COUNT);
  store<u32>(res, detail, PL_RES_DETAIL);
  return ret;
}

// ---- the rule table (§4.7) ---------------------------------------------------------------

/**
 * The class byte of one segment at list position `pos` (CLS_*). The rule: every segment but the
 * first starts at offset 0 of its page; every segment but the last ends at a page end; no
 * segment is empty or wraps 2^64 (an end of exactly 2^64 is fine). The NVMe PRP variant adds
 * that the first entry starts dword aligned (PRP1's two low bits are reserved).
 */
// @ts-ignore: decorator
@inline function classOf(addr: u64, len: u32, mask: u32, pos: u32, rule: u32): u32 {
  const end = addr + <u64>len;
  const so = <u32>addr & mask;
  const eo = <u32>end & mask;
  const empty = <u32>(len == 0);
  const ovf = <u32>(end < addr && end != 0);
  const odd = <u32>((<u32>addr & 3) != 0);
  let bad = empty | ovf;
  if (pos >= CLS_MIDDLE) bad |= <u32>(so != 0);
  if (pos == CLS_FIRST || pos == CLS_MIDDLE) bad |= <u32>(eo != 0);
  if (rule == PL_RULE_NVME_PRP && pos <= CLS_FIRST) bad |= odd;
  return pos | (<u32>(so == 0) << 2) | (<u32>(eo == 0) << 3) | (bad << 4) | (empty << 5) | (odd << 6) | (ovf << 7);
}

// @ts-ignore: decorator
@inline function positionOf(i: u32, n: u32): u32 {
  return i == 0 ? (n == 1 ? CLS_ONLY : CLS_FIRST) : (i == n - 1 ? CLS_LAST : CLS_MIDDLE);
}

/** Class of middle entry i, written to classes[i] (see pageListClassify). */
// @ts-ignore: decorator
@inline function middleClass(segs: usize, classes: usize, i: u32, mask: u32): u32 {
  const e = segs + (<usize>i << 4);
  const lo = load<u32>(e);
  const len = load<u32>(e, SEG_OFF_LEN);
  const so = lo & mask;
  const eo = (lo + len) & mask;
  let m = CLS_MIDDLE | (<u32>(so == 0) << 2) | (<u32>(eo == 0) << 3) | (<u32>((so | eo | <u32>(len == 0)) != 0) << 4) |
    (<u32>(len == 0) << 5) | (<u32>((lo & 3) != 0) << 6);
  if (load<u32>(e, 4) == 0xffffffff) m = classOf(load<u64>(e), len, mask, CLS_MIDDLE, PL_RULE_HYPERV);
  store<u8>(classes + i, <u8>m);
  return m;
}

/**
 * Writes one class byte per segment to `classes` and returns the index of the first segment
 * that breaks the rule, or n when the whole list is legal (so the result never collides with a
 * status). pageSize: a power of two from 4 KiB to 128 MiB (every NVMe MPS); rule: PL_RULE_*.
 * One tight loop over the 16-byte entries: this is what planners call to ask "already legal?".
 */
export function pageListClassify(segs: usize, n: u32, pageSize: u32, rule: u32, classes: usize): i32 {
  if (pageSize < PL_MIN_PAGE_SIZE || pageSize > PL_MAX_PAGE_SIZE || (pageSize & (pageSize - 1)) != 0 ||
      rule > PL_RULE_NVME_PRP || !segList(segs, n) || !inMemory(classes, n)) {
    return E_InvalidArgument;
  }
  if (n == 0) return 0;
  const mask = pageSize - 1;
  let c = classOf(load<u64>(segs), load<u32>(segs, SEG_OFF_LEN), mask, n == 1 ? CLS_ONLY : CLS_FIRST, rule);
  store<u8>(classes, <u8>c);
  if (n == 1) return (c & CLS_VIOLATION) != 0 ? 0 : 1;
  // Middle entries follow the same rule under both variants. The hot loop computes the class in
  // 32-bit halves and ORs the classes together instead of tracking the first violation; only an
  // address whose high half is all ones can wrap 2^64, and that rare entry takes the exact path.
  const last = n - 1;
  let any = c;
  let i: u32 = 1;
  for (; i + 1 < last; i += 2) {
    any |= middleClass(segs, classes, i, mask) | middleClass(segs, classes, i + 1, mask);
  }
  if (i < last) any |= middleClass(segs, classes, i, mask);
  const e = segs + (<usize>last << 4);
  c = classOf(load<u64>(e), load<u32>(e, SEG_OFF_LEN), mask, CLS_LAST, rule);
  store<u8>(classes + last, <u8>c);
  any |= c;
  if ((any & CLS_VIOLATION) == 0) return <i32>n;
  let first: u32 = 0;
  while ((load<u8>(classes + first) & CLS_VIOLATION) == 0) first++;
  return <i32>first;
}

// ---- encoders (driver side) --------------------------------------------------------------

/**
 * Writes PFNs firstPfn..lastPfn as u64s at out + at, as many as fit below cap, and returns the
 * image size once all of them are counted. Only writes are bounded by cap, so the loop runs
 * at most cap/8 times however large the segment claims to be.
 */
function emitPfns(out: usize, cap: u32, at: u64, firstPfn: u64, lastPfn: u64): u64 {
  const pages = lastPfn - firstPfn + 1;
  if (at < <u64>cap) {
    const room = (<u64>cap - at) >> 3;
    const k = pages < room ? pages : room;
    const dst = out + <usize>at;
    for (let j: u64 = 0; j < k; j++) store<u64>(dst + <usize>(j << 3), firstPfn + j);
  }
  return at + (pages << 3);
}

/**
 * One multi-page GPA range { byte_count, byte_offset, pfn[N] } (§2.5, Linux
 * vmbus_sendpacket_mpb_desc / FreeBSD vmbus_chan_send_prplist) from a segment list that
 * satisfies the §4.7 rule; a segment may span several pages, which become consecutive PFNs.
 * Returns the bytes written (8 + 8N). Errors: PageListRule (res INDEX = segment, DETAIL = its
 * class byte, exactly what pageListClassify reports), GpaEmptyByteCount (no segments),
 * GpaPfnTooLarge, GpaOverflow (byte_count would pass the u32 limit), BufferTooSmall (BYTES =
 * bytes needed). A list that is legal is never "too small" if cap >= 8 + 8N (checklist 33).
 */
export function gpaEncode(segs: usize, n: u32, out: usize, cap: u32, res: usize): i32 {
  if (!segList(segs, n) || !inMemory(out, cap) || !resOk(res)) return E_InvalidArgument;
  if (n == 0) return finish(res, E_GpaEmptyByteCount, 0, 0, 0, 0);
  const offset = <u32>load<u64>(segs) & GPA_MAX_BYTE_OFFSET;
  let total: u64 = 0;
  let at: u64 = GPA_RANGE_HEADER_SIZE;
  for (let i: u32 = 0; i < n; i++) {
    const e = segs + (<usize>i << 4);
    const addr = load<u64>(e);
    const len = load<u32>(e, SEG_OFF_LEN);
    const cls = classOf(addr, len, PAGE_MASK, positionOf(i, n), PL_RULE_HYPERV);
    if ((cls & CLS_VIOLATION) != 0) return finish(res, E_PageListRule, i, 0, 0, cls);
    const lastByte = addr + <u64>(len - 1); // no wrap: classOf refused empty and overflowing segments
    if ((lastByte >> GPA_ADDR_BITS) != 0) return finish(res, E_GpaPfnTooLarge, i, 0, 0, 0);
    total += len;
    if (total > <u64>(GPA_COUNT_LIMIT - offset)) return finish(res, E_GpaOverflow, i, 0, 0, 0);
    at = emitPfns(out, cap, at, addr >> GPA_PAGE_SHIFT, lastByte >> GPA_PAGE_SHIFT);
  }
  if (at > <u64>cap) return finish(res, E_BufferTooSmall, 0, at, 1, 0);
  store<u32>(out, <u32>total);
  store<u32>(out, offset, GPA_RANGE_OFF_BYTE_OFFSET);
  return finish(res, <i32>at, 0, at, 1, 0);
}

/**
 * One GPA range from its fields: byteOffset, byteCount and npfn u64 PFNs at `pfns` (8-aligned).
 * npfn must be exactly ceil((byteOffset + byteCount) / 4096) (§4.7). Checks, in OpenVMM's
 * order: GpaEmptyByteCount, GpaOffsetTooLarge, GpaOverflow, then GpaPfnCountMismatch (res COUNT
 * = PFNs required), GpaPfnTooLarge (INDEX = PFN), BufferTooSmall. Returns bytes written.
 */
export function gpaEncodeRange(byteOffset: u32, byteCount: u32, pfns: usize, npfn: u32, out: usize, cap: u32, res: usize): i32 {
  if ((pfns & 7) != 0 || npfn > 0x7fffffff / GPA_PFN_SIZE || !inMemory(pfns, npfn * GPA_PFN_SIZE) ||
      !inMemory(out, cap) || !resOk(res)) {
    return E_InvalidArgument;
  }
  if (byteCount == 0) return finish(res, E_GpaEmptyByteCount, 0, 0, 0, 0);
  if (byteOffset > GPA_MAX_BYTE_OFFSET) return finish(res, E_GpaOffsetTooLarge, 0, 0, 0, 0);
  if (byteCount > GPA_COUNT_LIMIT - byteOffset) return finish(res, E_GpaOverflow, 0, 0, 0, 0);
  const pages = (byteOffset + byteCount + PAGE_MASK) >> GPA_PAGE_SHIFT;
  if (npfn != pages) return finish(res, E_GpaPfnCountMismatch, 0, 0, pages, 0);
  for (let i: u32 = 0; i < npfn; i++) {
    if ((load<u64>(pfns + (<usize>i << 3)) >> GPA_PFN_BITS) != 0) return finish(res, E_GpaPfnTooLarge, i, 0, 0, 0);
  }
  const needed: u64 = <u64>GPA_RANGE_HEADER_SIZE + (<u64>pages << 3);
  if (needed > <u64>cap) return finish(res, E_BufferTooSmall, 0, needed, 1, 0);
  store<u32>(out, byteCount);
  store<u32>(out, byteOffset, GPA_RANGE_OFF_BYTE_OFFSET);
  copyBytes(out + GPA_RANGE_HEADER_SIZE, pfns, pages << 3);
  return finish(res, <i32>needed, 0, needed, 1, 0);
}

/** Common per-segment checks of the list encoders that accept any layout: returns 0 or a status. */
// @ts-ignore: decorator
@inline function wireCheck(addr: u64, len: u32): i32 {
  if (len == 0) return E_GpaEmptyByteCount;
  // addr below 2^52 first, so the last-byte sum cannot wrap.
  if ((addr >> GPA_ADDR_BITS) != 0 || ((addr + <u64>(len - 1)) >> GPA_ADDR_BITS) != 0) return E_GpaPfnTooLarge;
  return 0;
}

/**
 * The single-page list (§2.5; Linux vmbus_sendpacket_pagebuffer, FreeBSD
 * vmbus_chan_send_sglist): every segment is cut at 4 KiB boundaries and each piece becomes a
 * 16-byte range { len, offset, pfn } with exactly one PFN, so any layout is describable.
 * Returns bytes written; res COUNT = range_count. Errors: GpaRangeCountZero (no segments),
 * GpaEmptyByteCount / GpaPfnTooLarge (INDEX = segment), BufferTooSmall (BYTES, COUNT needed).
 */
export function gpaEncodePages(segs: usize, n: u32, out: usize, cap: u32, res: usize): i32 {
  if (!segList(segs, n) || !inMemory(out, cap) || !resOk(res)) return E_InvalidArgument;
  if (n == 0) return finish(res, E_GpaRangeCountZero, 0, 0, 0, 0);
  let at: u64 = 0;
  let entries: u64 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const e = segs + (<usize>i << 4);
    const addr = load<u64>(e);
    const len = load<u32>(e, SEG_OFF_LEN);
    const bad = wireCheck(addr, len);
    if (bad != 0) return finish(res, bad, i, 0, 0, 0);
    const lastByte = addr + <u64>(len - 1);
    const firstPfn = addr >> GPA_PAGE_SHIFT;
    const pieces = (lastByte >> GPA_PAGE_SHIFT) - firstPfn + 1;
    if (at < <u64>cap) {
      const room = (<u64>cap - at) >> 4;
      const k = pieces < room ? pieces : room;
      for (let j: u64 = 0; j < k; j++) {
        const start: u32 = j == 0 ? <u32>addr & PAGE_MASK : 0;
        const end: u32 = j == pieces - 1 ? (<u32>lastByte & PAGE_MASK) + 1 : PAGE_SIZE;
        const dst = out + <usize>(at + (j << 4));
        store<u32>(dst, end - start);
        store<u32>(dst, start, GPA_RANGE_OFF_BYTE_OFFSET);
        store<u64>(dst, firstPfn + j, GPA_RANGE_HEADER_SIZE);
      }
    }
    at += pieces * GPA_PAGE_ENTRY_SIZE;
    entries += pieces;
  }
  if (at > <u64>cap) return finish(res, E_BufferTooSmall, 0, at, entries, 0);
  return finish(res, <i32>at, 0, at, entries, 0);
}

/** Writes a range header at out + hdr if it fits below cap. */
// @ts-ignore: decorator
@inline function putHeader(out: usize, cap: u32, hdr: u64, count: u32, offset: u32): void {
  if (hdr + GPA_RANGE_HEADER_SIZE <= <u64>cap) {
    store<u32>(out + <usize>hdr, count);
    store<u32>(out + <usize>hdr, offset, GPA_RANGE_OFF_BYTE_OFFSET);
  }
}

/**
 * Several variable-size multi-page ranges back to back (§2.5, as current Linux netvsc builds).
 * GPA_MULTI_PER_SEGMENT: one range per segment. GPA_MULTI_MERGE: a segment joins the open range
 * when the rule allows it (the range ends at a page end and the segment starts at offset 0, and
 * byte_count stays in bounds), so a legal list becomes one range and any list the fewest.
 * Returns bytes written; res COUNT = range_count. Errors: GpaRangeCountZero, GpaEmptyByteCount,
 * GpaPfnTooLarge, GpaOverflow (one segment too long for a range), BufferTooSmall.
 */
export function gpaEncodeMulti(segs: usize, n: u32, mode: u32, out: usize, cap: u32, res: usize): i32 {
  if (mode > GPA_MULTI_PER_SEGMENT || !segList(segs, n) || !inMemory(out, cap) || !resOk(res)) return E_InvalidArgument;
  if (n == 0) return finish(res, E_GpaRangeCountZero, 0, 0, 0, 0);
  let at: u64 = 0;
  let ranges: u32 = 0;
  let hdr: u64 = 0;
  let count: u32 = 0;
  let offset: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const e = segs + (<usize>i << 4);
    const addr = load<u64>(e);
    const len = load<u32>(e, SEG_OFF_LEN);
    const bad = wireCheck(addr, len);
    if (bad != 0) return finish(res, bad, i, 0, 0, 0);
    const so = <u32>addr & PAGE_MASK;
    // offset + count <= GPA_COUNT_LIMIT holds for the open range, so these cannot wrap.
    const join = ranges != 0 && mode == GPA_MULTI_MERGE && so == 0 && ((offset + count) & PAGE_MASK) == 0 &&
      len <= GPA_COUNT_LIMIT - offset - count;
    if (!join) {
      if (ranges != 0) putHeader(out, cap, hdr, count, offset);
      if (len > GPA_COUNT_LIMIT - so) return finish(res, E_GpaOverflow, i, 0, 0, 0);
      hdr = at;
      at += GPA_RANGE_HEADER_SIZE;
      ranges++;
      offset = so;
      count = 0;
    }
    count += len;
    at = emitPfns(out, cap, at, addr >> GPA_PAGE_SHIFT, (addr + <u64>(len - 1)) >> GPA_PAGE_SHIFT);
  }
  putHeader(out, cap, hdr, count, offset);
  if (at > <u64>cap) return finish(res, E_BufferTooSmall, 0, at, ranges, 0);
  return finish(res, <i32>at, 0, at, ranges, 0);
}

// ---- decoder (host side, hostile input) --------------------------------------------------

/** Writes segment k { addr, len, flags } if k < cap. */
// @ts-ignore: decorator
@inline function putSeg(out: usize, cap: u32, k: u32, addr: u64, len: u32, flags: u32): void {
  if (k < cap) {
    const d = out + (<usize>k << 4);
    store<u64>(d, addr);
    store<u32>(d, len, SEG_OFF_LEN);
    store<u32>(d, flags, SEG_OFF_FLAGS);
  }
}

/**
 * Parses `rangeCount` GPA ranges from the `len` bytes at `src` (a GPA-direct packet after its
 * 24-byte prefix; it must be a private copy, hardening P3) and emits the guest-physical
 * segments they describe into the segment list at `out` (cap entries, 8-aligned). Each segment's
 * flags hold the index of its range. By default the pieces of one range that are physically
 * contiguous (pfn[k+1] = pfn[k] + 1) become one segment; GPA_DECODE_PER_PAGE emits one segment
 * per page piece. Segments never merge across ranges, so a host keeps the range structure.
 *
 * Returns the segment count; res BYTES = bytes consumed (the upper-protocol message follows).
 * Every error is behaviour E (a typed status; the caller fails that packet) and names the
 * range (INDEX) and its offset in src (BYTES): GpaRangeCountZero (item 14), GpaRangeTooSmall
 * when a header or PFN lies past len (item 14; DETAIL = PFNs the range needs, 0 for a cut
 * header), GpaEmptyByteCount, GpaOffsetTooLarge, GpaOverflow (item 15), GpaPfnTooLarge (DETAIL
 * = PFN index), BufferTooSmall (COUNT = segments needed, after the whole input validated).
 */
export function gpaDecode(src: usize, len: u32, rangeCount: u32, flags: u32, out: usize, cap: u32, res: usize): i32 {
  if (flags > GPA_DECODE_PER_PAGE || !inMemory(src, len) || !segList(out, cap) || !resOk(res)) return E_InvalidArgument;
  if (rangeCount == 0) return finish(res, E_GpaRangeCountZero, 0, 0, 0, 0);
  const perPage = flags == GPA_DECODE_PER_PAGE;
  let at: u32 = 0;
  let k: u32 = 0;
  // Each range takes at least 16 bytes, so this loop ends within len/16 + 1 rounds whatever
  // range_count says (P4).
  for (let r: u32 = 0; r < rangeCount; r++) {
    if (len - at < GPA_RANGE_HEADER_SIZE) return finish(res, E_GpaRangeTooSmall, r, at, 0, 0);
    const h = src + at;
    const count = load<u32>(h);
    const offset = load<u32>(h, GPA_RANGE_OFF_BYTE_OFFSET);
    if (count == 0) return finish(res, E_GpaEmptyByteCount, r, at, 0, 0);
    if (offset > GPA_MAX_BYTE_OFFSET) return finish(res, E_GpaOffsetTooLarge, r, at, 0, 0);
    if (count > GPA_COUNT_LIMIT - offset) return finish(res, E_GpaOverflow, r, at, 0, 0);
    const pages = (offset + count + PAGE_MASK) >> GPA_PAGE_SHIFT;
    if (pages > (len - at - GPA_RANGE_HEADER_SIZE) >> 3) return finish(res, E_GpaRangeTooSmall, r, at, 0, pages);
    const lastLen = offset + count - ((pages - 1) << GPA_PAGE_SHIFT);
    let segAddr: u64 = 0;
    let segLen: u32 = 0;
    let prev: u64 = 0;
    for (let p: u32 = 0; p < pages; p++) {
      const pfn = load<u64>(h + GPA_RANGE_HEADER_SIZE + (<usize>p << 3));
      if ((pfn >> GPA_PFN_BITS) != 0) return finish(res, E_GpaPfnTooLarge, r, at, 0, p);
      const start: u32 = p == 0 ? offset : 0;
      const end: u32 = p == pages - 1 ? lastLen : PAGE_SIZE;
      if (p != 0 && !perPage && pfn == prev + 1) {
        segLen += end - start;
      } else {
        if (p != 0) putSeg(out, cap, k++, segAddr, segLen, r);
        segAddr = (pfn << GPA_PAGE_SHIFT) + start;
        segLen = end - start;
      }
      prev = pfn;
    }
    putSeg(out, cap, k++, segAddr, segLen, r);
    at += GPA_RANGE_HEADER_SIZE + (pages << 3);
  }
  if (k > cap) return finish(res, E_BufferTooSmall, 0, at, k, 0);
  return finish(res, <i32>k, 0, at, k, 0);
}
