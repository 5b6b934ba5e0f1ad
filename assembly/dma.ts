// IOMMU lookup and bounds-checked DMA between guest RAM and device buffers (DESIGN "Memory
// model"). A device never touches guest RAM directly: each call takes a whole segment list,
// checks every page of every segment first (device windows, guest RAM bounds, then the domain's
// permission bits), and only then copies, so a fault leaves guest RAM and the buffer untouched.
//
// `dom` is a domain image (DOM_* layout) or 0 for "no IOMMU": all guest RAM, read and write
// (the guest's own view, used by GuestMemory). `len` bytes of the segment list's stream move,
// from the start; a list that holds fewer bytes is DmaOverrun. Zero-length segments are skipped
// (hardening V4): every loop is bounded by n, a host-owned count.
//
// Host-side structures must not overlap what the guest can write, or the copy pass would read
// a segment list the check pass never saw (P3), or a DMA would land on the IOMMU's own table
// (P5): the segment list and result block lie outside the guest window; with a domain, so do the
// buffer and the domain image, and they are disjoint from each other.

import {
  SEG_SIZE, SEG_OFF_ADDR, SEG_OFF_LEN, DOM_MAGIC, DOM_MODE, DOM_GENERATION, DOM_PAGES, DOM_WINDOW_COUNT,
  DOM_WINDOWS, DOM_WINDOW_SIZE, DOM_MAX_WINDOWS, DOM_HEADER_SIZE, DOM_MAGIC_VALUE, DOM_MODE_IDENTITY,
  DOM_MODE_STRICT, DOM_PAGE_SHIFT, DMA_READ, DMA_WRITE, DMA_RES_INDEX, DMA_RES_ADDR_LO, DMA_RES_ADDR_HI,
  DMA_RES_DETAIL, DMA_RES_SIZE, E_InvalidArgument, E_OutsideGuestRam, E_IommuFault, E_DmaStale,
  E_DmaDeviceWindow, E_InvalidDomain, E_DmaOverrun,
} from './generated/constants';
import { ld32, memBytes, copyBytes, inMemory } from './mem';
import { guestRange } from './guest';

const MAX_LEN: u32 = 0x7fffffff;

// @ts-ignore: decorator
@inline function segAddr(segs: usize, i: u32): u64 {
  return load<u64>(segs + <usize>i * SEG_SIZE, SEG_OFF_ADDR);
}

// @ts-ignore: decorator
@inline function segLen(segs: usize, i: u32): u32 {
  return load<u32>(segs + <usize>i * SEG_SIZE, SEG_OFF_LEN);
}

/** True when [ptr, ptr+len) lies inside linear memory of `size` bytes (read once per call). */
// @ts-ignore: decorator
@inline function within(size: usize, ptr: usize, len: usize): bool {
  return len <= size && ptr <= size - len;
}

/** Both ranges lie in linear memory (< 2 GiB), so the sums cannot wrap. */
// @ts-ignore: decorator
@inline function overlaps(a: usize, alen: usize, b: usize, blen: usize): bool {
  return alen != 0 && blen != 0 && a < b + blen && b < a + alen;
}

/** Bytes of the domain image (header, plus the table in strict mode), or 0 when it is not one. */
function domainBytes(size: usize, dom: usize): u64 {
  if ((dom & 3) != 0 || !within(size, dom, DOM_HEADER_SIZE)) return 0;
  if (load<u32>(dom, DOM_MAGIC) != DOM_MAGIC_VALUE) return 0;
  const mode = load<u32>(dom, DOM_MODE);
  if (mode != DOM_MODE_IDENTITY && mode != DOM_MODE_STRICT) return 0;
  if (load<u32>(dom, DOM_WINDOW_COUNT) > DOM_MAX_WINDOWS) return 0;
  if (mode == DOM_MODE_IDENTITY) return DOM_HEADER_SIZE;
  const bytes = <u64>DOM_HEADER_SIZE + ((<u64>load<u32>(dom, DOM_PAGES) + 15) >> 4) * 4;
  if (bytes > <u64>MAX_LEN || !within(size, dom, <usize>bytes)) return 0;
  return bytes;
}

/**
 * Lowest page in [p0, p1] whose bits lack `need`, or -1. Whole table words are tested at once
 * (16 pages per load): the mask is the pages' read bits shifted to the needed bit(s).
 */
function firstMissing(table: usize, p0: u32, p1: u32, need: u32): i32 {
  let pg = p0;
  while (pg <= p1) {
    const wi = pg >> 4;
    const lo = pg & 15;
    const top = (wi << 4) + 15 < p1 ? (wi << 4) + 15 : p1;
    const span = (top & 15) - lo + 1;
    const ones: u32 = span == 16 ? 0x55555555 : ((<u32>1 << (span << 1)) - 1) & 0x55555555;
    const m = (ones << (lo << 1)) * need;
    const miss = m & ~ld32(table + (<usize>wi << 2));
    if (miss != 0) return <i32>((wi << 4) + (ctz(miss) >> 1));
    pg = top + 1;
  }
  return -1;
}

// @ts-ignore: decorator
@inline function fail(res: usize, status: i32, index: u32, addr: u64, detail: u32): i32 {
  store<u32>(res, index, DMA_RES_INDEX);
  store<u32>(res, <u32>addr, DMA_RES_ADDR_LO);
  store<u32>(res, <u32>(addr >> 32), DMA_RES_ADDR_HI);
  store<u32>(res, detail, DMA_RES_DETAIL);
  return status;
}

/**
 * Everything a DMA checks before a byte moves: the host layout, the request's generation, then
 * per segment of the first `len` stream bytes, in list order: device windows, guest RAM bounds,
 * and (strict mode) the permission bits of every page. Returns 0, or a status with the result
 * block filled in (nothing is written anywhere when the layout itself is bad).
 */
function check(dom: usize, gen: u32, guestBase: usize, guestBytes: u32, segs: usize, n: u32, buf: usize, bufLen: u32,
  need: u32, len: u32, res: usize): i32 {
  const size = memBytes();
  if ((res & 3) != 0 || !within(size, res, DMA_RES_SIZE) || !within(size, guestBase, guestBytes)) return E_InvalidArgument;
  if ((segs & 7) != 0 || n > MAX_LEN / SEG_SIZE || !within(size, segs, <usize>n * SEG_SIZE)) return E_InvalidArgument;
  if (len > MAX_LEN || !within(size, buf, bufLen)) return E_InvalidArgument;
  const segBytes = <usize>n * SEG_SIZE;
  if (overlaps(segs, segBytes, guestBase, guestBytes) || overlaps(res, DMA_RES_SIZE, guestBase, guestBytes) ||
      overlaps(res, DMA_RES_SIZE, segs, segBytes) || overlaps(buf, bufLen, segs, segBytes) || overlaps(buf, bufLen, res, DMA_RES_SIZE)) {
    return E_InvalidArgument;
  }
  let strict = false;
  let windows: u32 = 0;
  if (dom != 0) {
    if (overlaps(buf, bufLen, guestBase, guestBytes)) return E_InvalidArgument;
    const db = <usize>domainBytes(size, dom);
    if (db == 0 || overlaps(dom, db, guestBase, guestBytes) || overlaps(dom, db, buf, bufLen) ||
        overlaps(dom, db, segs, segBytes) || overlaps(dom, db, res, DMA_RES_SIZE)) return E_InvalidDomain;
    strict = load<u32>(dom, DOM_MODE) == DOM_MODE_STRICT;
    windows = load<u32>(dom, DOM_WINDOW_COUNT);
  }
  // Four stores: a memory.fill of 16 bytes is a runtime call in V8, costlier than the checks.
  store<u64>(res, 0);
  store<u64>(res, 0, 8);
  if (dom != 0) {
    const now = ld32(dom + DOM_GENERATION);
    // An odd generation is a reset in progress: no request may match it.
    if (now != gen || (now & 1) != 0) return fail(res, E_DmaStale, 0, 0, now);
  }
  const g = <u64>guestBytes;
  const pages = strict ? load<u32>(dom, DOM_PAGES) : 0;
  const table = dom + DOM_HEADER_SIZE;
  let remaining = <u64>len;
  for (let i: u32 = 0; i < n && remaining != 0; i++) {
    let l = <u64>segLen(segs, i);
    if (l > remaining) l = remaining;
    if (l == 0) continue;
    const a = segAddr(segs, i);
    for (let w: u32 = 0; w < windows; w++) {
      const ws = load<u64>(dom + DOM_WINDOWS + <usize>w * DOM_WINDOW_SIZE);
      const wl = load<u64>(dom + DOM_WINDOWS + <usize>w * DOM_WINDOW_SIZE, 8);
      // [a, a+l) meets [ws, ws+wl), written without sums that could wrap (P2).
      if (a >= ws ? a - ws < wl : ws - a < l) return fail(res, E_DmaDeviceWindow, i, a > ws ? a : ws, w);
    }
    if (!guestRange(g, a, l)) return fail(res, E_OutsideGuestRam, i, a > g ? a : g, 0);
    if (strict) {
      const p0 = <u32>(a >> DOM_PAGE_SHIFT);
      const p1 = <u32>((a + l - 1) >> DOM_PAGE_SHIFT);
      let miss: i32 = -1;
      if (p0 < pages) miss = firstMissing(table, p0, p1 < pages ? p1 : pages - 1, need);
      if (miss < 0 && p1 >= pages) miss = <i32>(p0 > pages ? p0 : pages);
      if (miss >= 0) {
        const at = <u64>miss << DOM_PAGE_SHIFT;
        const bits = <u32>miss < pages ? (ld32(table + (<usize>(<u32>miss >> 4) << 2)) >> ((<u32>miss & 15) << 1)) & 3 : 0;
        return fail(res, E_IommuFault, i, a > at ? a : at, bits);
      }
    }
    remaining -= l;
  }
  if (remaining != 0) return fail(res, E_DmaOverrun, n, 0, len - <u32>remaining);
  return 0;
}

/** Moves the first `len` stream bytes between guest RAM and buf (checked already). */
function move(guestBase: usize, segs: usize, n: u32, buf: usize, len: u32, toGuest: bool): void {
  let off: usize = 0;
  let remaining = len;
  for (let i: u32 = 0; i < n && remaining != 0; i++) {
    let l = segLen(segs, i);
    if (l > remaining) l = remaining;
    if (l == 0) continue;
    const g = guestBase + <usize>segAddr(segs, i);
    const dst = toGuest ? g : buf + off;
    const src = toGuest ? buf + off : g;
    // Only the no-IOMMU form may overlap (a guest-to-guest copy): memmove semantics there.
    if (overlaps(dst, l, src, l)) memory.copy(dst, src, l);
    else copyBytes(dst, src, l);
    off += l;
    remaining -= l;
  }
}

/**
 * Checks that the first `len` stream bytes of the list may be accessed with `access` (DMA_READ,
 * DMA_WRITE or both) under request generation `gen`, without moving anything. Returns len or a
 * negative status (result block filled in). Zero-copy users (translate, visit) call this first.
 */
export function dmaCheck(dom: usize, gen: u32, guestBase: usize, guestBytes: u32, segs: usize, n: u32, access: u32,
  len: u32, res: usize): i32 {
  if (access == 0 || (access & ~(DMA_READ | DMA_WRITE)) != 0) return E_InvalidArgument;
  const st = check(dom, gen, guestBase, guestBytes, segs, n, 0, 0, access, len, res);
  return st < 0 ? st : <i32>len;
}

/**
 * Device reads guest memory: copies the first `len` stream bytes of the list into buf, after
 * checking every page for DMA_READ. Returns len or a negative status; on error nothing is copied.
 */
export function dmaGather(dom: usize, gen: u32, guestBase: usize, guestBytes: u32, segs: usize, n: u32, buf: usize,
  len: u32, res: usize): i32 {
  const st = check(dom, gen, guestBase, guestBytes, segs, n, buf, len, DMA_READ, len, res);
  if (st < 0) return st;
  move(guestBase, segs, n, buf, len, false);
  return <i32>len;
}

/**
 * Device writes guest memory: copies len bytes from buf into the list's first `len` stream
 * bytes, after checking every page for DMA_WRITE. Returns len or a negative status; on error
 * guest RAM is unchanged.
 */
export function dmaScatter(dom: usize, gen: u32, guestBase: usize, guestBytes: u32, segs: usize, n: u32, buf: usize,
  len: u32, res: usize): i32 {
  const st = check(dom, gen, guestBase, guestBytes, segs, n, buf, len, DMA_WRITE, len, res);
  if (st < 0) return st;
  move(guestBase, segs, n, buf, len, true);
  return <i32>len;
}

/**
 * The copies of a batch of device transfers whose pages were already checked (a controller's
 * lane collects them and moves them in one call): `count` entries at `table` of three u32s,
 * destination, source, length. Every entry is checked before anything moves: inside memory, and
 * no destination on the table itself (E_InvalidArgument and nothing copied otherwise). The result is that of copying the entries
 * in order; when no destination overlaps another entry's source or destination, `chunk` > 0 moves
 * them interleaved, `chunk` bytes of each in turn, which keeps more of the random reads of a
 * batch in flight at once than one copy after another does.
 */
export function dmaCopyBatch(table: usize, count: u32, chunk: u32): i32 {
  if (count > 0x1000000 || !inMemory(table, <usize>count * 12)) return E_InvalidArgument;
  const size = memBytes();
  let most: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const e = table + <usize>i * 12;
    const len = load<u32>(e, 8);
    const dst = load<u32>(e);
    if (!within(size, dst, len) || !within(size, load<u32>(e, 4), len)) return E_InvalidArgument;
    // A copy onto the table would change the entries still to be read (P5).
    if (<usize>dst < table + <usize>count * 12 && table < <usize>dst + len) return E_InvalidArgument;
    if (len > most) most = len;
  }
  if (chunk > 0 && count > 1 && count <= 64 && most > chunk && !batchOverlaps(table, count)) {
    for (let off: u32 = 0; off < most; off += chunk) {
      for (let i: u32 = 0; i < count; i++) {
        const e = table + <usize>i * 12;
        const len = load<u32>(e, 8);
        if (off >= len) continue;
        const n = len - off < chunk ? len - off : chunk;
        memory.copy(<usize>load<u32>(e) + off, <usize>load<u32>(e, 4) + off, n);
      }
    }
    return 0;
  }
  for (let i: u32 = 0; i < count; i++) {
    const e = table + <usize>i * 12;
    copyBytes(<usize>load<u32>(e), <usize>load<u32>(e, 4), load<u32>(e, 8));
  }
  return 0;
}

/** True when some entry's destination meets any entry's source or another entry's destination (then only the in-order copy gives the in-order result). */
function batchOverlaps(table: usize, count: u32): bool {
  for (let i: u32 = 0; i < count; i++) {
    const a = table + <usize>i * 12;
    const d = <u64>load<u32>(a);
    const dEnd = d + <u64>load<u32>(a, 8);
    // Its own source too: a chunked copy of a region onto itself shifted is not a memmove.
    for (let j: u32 = 0; j < count; j++) {
      const b = table + <usize>j * 12;
      const len = <u64>load<u32>(b, 8);
      const s = <u64>load<u32>(b, 4);
      const t = <u64>load<u32>(b);
      if (d < s + len && s < dEnd) return true;
      if (j > i && d < t + len && t < dEnd) return true;
    }
  }
  return false;
}
