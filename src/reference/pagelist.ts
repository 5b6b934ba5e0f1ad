// Pure-TypeScript twin of assembly/pagelist.ts: the same functions, over the same memory, with
// the same results and the same bytes written (in the same order). 64-bit guest addresses are
// handled as lo/hi u32 halves and as plain numbers once they are known to be below 2^52 (exact
// in a double), so no BigInt is needed. Written for clarity; see the Wasm module for the why.

import {
  SEG_SIZE, GPA_RANGE_HEADER_SIZE, GPA_MAX_BYTE_OFFSET, GPA_COUNT_LIMIT, GPA_PFN_BITS, GPA_ADDR_BITS,
  GPA_PAGE_ENTRY_SIZE, GPA_MULTI_MERGE, GPA_MULTI_PER_SEGMENT, GPA_DECODE_PER_PAGE, PL_RES_SIZE,
  PL_RULE_HYPERV, PL_RULE_NVME_PRP, PL_MIN_PAGE_SIZE, PL_MAX_PAGE_SIZE, CLS_ONLY, CLS_FIRST, CLS_MIDDLE,
  CLS_LAST, CLS_VIOLATION, PAGE_SIZE, E_InvalidArgument, E_BufferTooSmall, E_PageListRule,
  E_GpaRangeCountZero, E_GpaRangeTooSmall, E_GpaEmptyByteCount, E_GpaOffsetTooLarge, E_GpaOverflow,
  E_GpaPfnTooLarge, E_GpaPfnCountMismatch,
} from '../generated/constants';
import type { Core } from '../engine/core';
import type { PageListFunctions } from '../engine/types';

const TWO32 = 0x1_0000_0000;
const PAGE_MASK = PAGE_SIZE - 1;
const ADDR_LIMIT = 2 ** GPA_ADDR_BITS;
const PFN_HI_SHIFT = GPA_PFN_BITS - 32; // a PFN is below 2^40 when its high half is below 2^8
const ADDR_HI_SHIFT = GPA_ADDR_BITS - 32;
const U32_MAX = 0xffffffff;

/** Class byte of one segment (same rule and bits as the Wasm classOf). */
function classOf(lo: number, hi: number, len: number, mask: number, pos: number, rule: number): number {
  const sum = lo + len;
  const endLo = sum >>> 0;
  const so = lo & mask;
  const eo = endLo & mask;
  const empty = len === 0 ? 1 : 0;
  const ovf = sum > U32_MAX && hi === U32_MAX && endLo !== 0 ? 1 : 0;
  const odd = (lo & 3) !== 0 ? 1 : 0;
  let bad = empty | ovf;
  if (pos >= CLS_MIDDLE && so !== 0) bad = 1;
  if ((pos === CLS_FIRST || pos === CLS_MIDDLE) && eo !== 0) bad = 1;
  if (rule === PL_RULE_NVME_PRP && pos <= CLS_FIRST) bad |= odd;
  return pos | ((so === 0 ? 1 : 0) << 2) | ((eo === 0 ? 1 : 0) << 3) | (bad << 4) | (empty << 5) | (odd << 6) | (ovf << 7);
}

const positionOf = (i: number, n: number) => (i === 0 ? (n === 1 ? CLS_ONLY : CLS_FIRST) : i === n - 1 ? CLS_LAST : CLS_MIDDLE);
const sat32 = (x: number) => (x > U32_MAX ? U32_MAX : x);

export function createReferencePageList(core: Core): PageListFunctions {
  const inMemory = (ptr: number, len: number) => {
    const size = core.byteLength;
    return len <= size && ptr <= size - len;
  };
  const segList = (ptr: number, n: number) => (ptr & 7) === 0 && n <= Math.floor(0x7fffffff / SEG_SIZE) && inMemory(ptr, n * SEG_SIZE);
  const resOk = (res: number) => (res & 3) === 0 && inMemory(res, PL_RES_SIZE);
  const finish = (res: number, ret: number, index: number, bytes: number, count: number, detail: number) => {
    const u32 = core.u32;
    u32[res >>> 2] = index;
    u32[(res >>> 2) + 1] = sat32(bytes);
    u32[(res >>> 2) + 2] = sat32(count);
    u32[(res >>> 2) + 3] = detail;
    return ret;
  };
  /** Segment i of an 8-aligned list: [lo, hi, len]. */
  const seg = (segs: number, i: number): [number, number, number] => {
    const u32 = core.u32;
    const w = (segs >>> 2) + i * 4;
    return [u32[w]!, u32[w + 1]!, u32[w + 2]!];
  };
  const put64 = (dv: DataView, at: number, v: number) => {
    dv.setUint32(at, v >>> 0, true);
    dv.setUint32(at + 4, Math.floor(v / TWO32), true);
  };
  /** Same as the Wasm emitPfns: PFNs first..last at out+at while they fit; returns the new size. */
  const emitPfns = (out: number, cap: number, at: number, first: number, last: number) => {
    const pages = last - first + 1;
    if (at < cap) {
      const k = Math.min(pages, Math.floor((cap - at) / 8));
      const dv = core.dv;
      for (let j = 0; j < k; j++) put64(dv, out + at + j * 8, first + j);
    }
    return at + pages * 8;
  };
  /** Empty segment, or any byte at or above 2^52 (the Wasm wireCheck). */
  const wireCheck = (lo: number, hi: number, len: number) => {
    if (len === 0) return E_GpaEmptyByteCount;
    if (hi >>> ADDR_HI_SHIFT !== 0 || hi * TWO32 + lo + len - 1 >= ADDR_LIMIT) return E_GpaPfnTooLarge;
    return 0;
  };

  return {
    pageListClassify(segs, n, pageSize, rule, classes) {
      [segs, n, pageSize, rule, classes] = [segs >>> 0, n >>> 0, pageSize >>> 0, rule >>> 0, classes >>> 0];
      if (pageSize < PL_MIN_PAGE_SIZE || pageSize > PL_MAX_PAGE_SIZE || (pageSize & (pageSize - 1)) !== 0 ||
          rule > PL_RULE_NVME_PRP || !segList(segs, n) || !inMemory(classes, n)) {
        return E_InvalidArgument;
      }
      if (n === 0) return 0;
      const mask = pageSize - 1;
      const u32 = core.u32;
      const u8 = core.u8;
      let first = n;
      for (let i = 0; i < n; i++) {
        const w = (segs >>> 2) + i * 4;
        const c = classOf(u32[w]!, u32[w + 1]!, u32[w + 2]!, mask, positionOf(i, n), rule);
        u8[classes + i] = c;
        if ((c & CLS_VIOLATION) !== 0 && first === n) first = i;
      }
      return first;
    },

    gpaEncode(segs, n, out, cap, res) {
      [segs, n, out, cap, res] = [segs >>> 0, n >>> 0, out >>> 0, cap >>> 0, res >>> 0];
      if (!segList(segs, n) || !inMemory(out, cap) || !resOk(res)) return E_InvalidArgument;
      if (n === 0) return finish(res, E_GpaEmptyByteCount, 0, 0, 0, 0);
      const offset = seg(segs, 0)[0] & GPA_MAX_BYTE_OFFSET;
      let total = 0;
      let at = GPA_RANGE_HEADER_SIZE;
      for (let i = 0; i < n; i++) {
        const [lo, hi, len] = seg(segs, i);
        const cls = classOf(lo, hi, len, PAGE_MASK, positionOf(i, n), PL_RULE_HYPERV);
        if ((cls & CLS_VIOLATION) !== 0) return finish(res, E_PageListRule, i, 0, 0, cls);
        if (hi >>> ADDR_HI_SHIFT !== 0) return finish(res, E_GpaPfnTooLarge, i, 0, 0, 0);
        const addr = hi * TWO32 + lo;
        const lastByte = addr + len - 1;
        if (lastByte >= ADDR_LIMIT) return finish(res, E_GpaPfnTooLarge, i, 0, 0, 0);
        total += len;
        if (total > GPA_COUNT_LIMIT - offset) return finish(res, E_GpaOverflow, i, 0, 0, 0);
        at = emitPfns(out, cap, at, Math.floor(addr / PAGE_SIZE), Math.floor(lastByte / PAGE_SIZE));
      }
      if (at > cap) return finish(res, E_BufferTooSmall, 0, at, 1, 0);
      const dv = core.dv;
      dv.setUint32(out, total, true);
      dv.setUint32(out + 4, offset, true);
      return finish(res, at, 0, at, 1, 0);
    },

    gpaEncodeRange(byteOffset, byteCount, pfns, npfn, out, cap, res) {
      [byteOffset, byteCount, pfns, npfn, out, cap, res] =
        [byteOffset >>> 0, byteCount >>> 0, pfns >>> 0, npfn >>> 0, out >>> 0, cap >>> 0, res >>> 0];
      if ((pfns & 7) !== 0 || npfn > Math.floor(0x7fffffff / 8) || !inMemory(pfns, npfn * 8) || !inMemory(out, cap) || !resOk(res)) {
        return E_InvalidArgument;
      }
      if (byteCount === 0) return finish(res, E_GpaEmptyByteCount, 0, 0, 0, 0);
      if (byteOffset > GPA_MAX_BYTE_OFFSET) return finish(res, E_GpaOffsetTooLarge, 0, 0, 0, 0);
      if (byteCount > GPA_COUNT_LIMIT - byteOffset) return finish(res, E_GpaOverflow, 0, 0, 0, 0);
      const pages = Math.floor((byteOffset + byteCount + PAGE_MASK) / PAGE_SIZE);
      if (npfn !== pages) return finish(res, E_GpaPfnCountMismatch, 0, 0, pages, 0);
      const u32 = core.u32;
      for (let i = 0; i < npfn; i++) {
        if (u32[(pfns >>> 2) + 2 * i + 1]! >>> PFN_HI_SHIFT !== 0) return finish(res, E_GpaPfnTooLarge, i, 0, 0, 0);
      }
      const needed = GPA_RANGE_HEADER_SIZE + pages * 8;
      if (needed > cap) return finish(res, E_BufferTooSmall, 0, needed, 1, 0);
      const dv = core.dv;
      dv.setUint32(out, byteCount, true);
      dv.setUint32(out + 4, byteOffset, true);
      core.u8.copyWithin(out + GPA_RANGE_HEADER_SIZE, pfns, pfns + pages * 8);
      return finish(res, needed, 0, needed, 1, 0);
    },

    gpaEncodePages(segs, n, out, cap, res) {
      [segs, n, out, cap, res] = [segs >>> 0, n >>> 0, out >>> 0, cap >>> 0, res >>> 0];
      if (!segList(segs, n) || !inMemory(out, cap) || !resOk(res)) return E_InvalidArgument;
      if (n === 0) return finish(res, E_GpaRangeCountZero, 0, 0, 0, 0);
      let at = 0;
      let entries = 0;
      for (let i = 0; i < n; i++) {
        const [lo, hi, len] = seg(segs, i);
        const bad = wireCheck(lo, hi, len);
        if (bad !== 0) return finish(res, bad, i, 0, 0, 0);
        const addr = hi * TWO32 + lo;
        const lastByte = addr + len - 1;
        const firstPfn = Math.floor(addr / PAGE_SIZE);
        const pieces = Math.floor(lastByte / PAGE_SIZE) - firstPfn + 1;
        if (at < cap) {
          const k = Math.min(pieces, Math.floor((cap - at) / GPA_PAGE_ENTRY_SIZE));
          const dv = core.dv;
          for (let j = 0; j < k; j++) {
            const start = j === 0 ? lo & PAGE_MASK : 0;
            const end = j === pieces - 1 ? (lastByte % PAGE_SIZE) + 1 : PAGE_SIZE;
            const d = out + at + j * GPA_PAGE_ENTRY_SIZE;
            dv.setUint32(d, end - start, true);
            dv.setUint32(d + 4, start, true);
            put64(dv, d + 8, firstPfn + j);
          }
        }
        at += pieces * GPA_PAGE_ENTRY_SIZE;
        entries += pieces;
      }
      if (at > cap) return finish(res, E_BufferTooSmall, 0, at, entries, 0);
      return finish(res, at, 0, at, entries, 0);
    },

    gpaEncodeMulti(segs, n, mode, out, cap, res) {
      [segs, n, mode, out, cap, res] = [segs >>> 0, n >>> 0, mode >>> 0, out >>> 0, cap >>> 0, res >>> 0];
      if (mode > GPA_MULTI_PER_SEGMENT || !segList(segs, n) || !inMemory(out, cap) || !resOk(res)) return E_InvalidArgument;
      if (n === 0) return finish(res, E_GpaRangeCountZero, 0, 0, 0, 0);
      let at = 0;
      let ranges = 0;
      let hdr = 0;
      let count = 0;
      let offset = 0;
      const putHeader = () => {
        if (hdr + GPA_RANGE_HEADER_SIZE <= cap) {
          core.dv.setUint32(out + hdr, count, true);
          core.dv.setUint32(out + hdr + 4, offset, true);
        }
      };
      for (let i = 0; i < n; i++) {
        const [lo, hi, len] = seg(segs, i);
        const bad = wireCheck(lo, hi, len);
        if (bad !== 0) return finish(res, bad, i, 0, 0, 0);
        const so = lo & PAGE_MASK;
        const join = ranges !== 0 && mode === GPA_MULTI_MERGE && so === 0 && ((offset + count) & PAGE_MASK) === 0 &&
          len <= GPA_COUNT_LIMIT - offset - count;
        if (!join) {
          if (ranges !== 0) putHeader();
          if (len > GPA_COUNT_LIMIT - so) return finish(res, E_GpaOverflow, i, 0, 0, 0);
          hdr = at;
          at += GPA_RANGE_HEADER_SIZE;
          ranges++;
          offset = so;
          count = 0;
        }
        count += len;
        const addr = hi * TWO32 + lo;
        at = emitPfns(out, cap, at, Math.floor(addr / PAGE_SIZE), Math.floor((addr + len - 1) / PAGE_SIZE));
      }
      putHeader();
      if (at > cap) return finish(res, E_BufferTooSmall, 0, at, ranges, 0);
      return finish(res, at, 0, at, ranges, 0);
    },

    gpaDecode(src, len, rangeCount, flags, out, cap, res) {
      [src, len, rangeCount, flags, out, cap, res] =
        [src >>> 0, len >>> 0, rangeCount >>> 0, flags >>> 0, out >>> 0, cap >>> 0, res >>> 0];
      if (flags > GPA_DECODE_PER_PAGE || !inMemory(src, len) || !segList(out, cap) || !resOk(res)) return E_InvalidArgument;
      if (rangeCount === 0) return finish(res, E_GpaRangeCountZero, 0, 0, 0, 0);
      const perPage = flags === GPA_DECODE_PER_PAGE;
      const dv = core.dv;
      const u32 = core.u32;
      let at = 0;
      let k = 0;
      const putSeg = (addr: number, segLen: number, r: number) => {
        if (k < cap) {
          const w = (out >>> 2) + k * 4;
          u32[w] = addr >>> 0;
          u32[w + 1] = Math.floor(addr / TWO32);
          u32[w + 2] = segLen;
          u32[w + 3] = r;
        }
        k++;
      };
      for (let r = 0; r < rangeCount; r++) {
        if (len - at < GPA_RANGE_HEADER_SIZE) return finish(res, E_GpaRangeTooSmall, r, at, 0, 0);
        const h = src + at;
        const count = dv.getUint32(h, true);
        const offset = dv.getUint32(h + 4, true);
        if (count === 0) return finish(res, E_GpaEmptyByteCount, r, at, 0, 0);
        if (offset > GPA_MAX_BYTE_OFFSET) return finish(res, E_GpaOffsetTooLarge, r, at, 0, 0);
        if (count > GPA_COUNT_LIMIT - offset) return finish(res, E_GpaOverflow, r, at, 0, 0);
        const pages = Math.floor((offset + count + PAGE_MASK) / PAGE_SIZE);
        if (pages > Math.floor((len - at - GPA_RANGE_HEADER_SIZE) / 8)) return finish(res, E_GpaRangeTooSmall, r, at, 0, pages);
        const lastLen = offset + count - (pages - 1) * PAGE_SIZE;
        let segAddr = 0;
        let segLen = 0;
        let prev = 0;
        for (let p = 0; p < pages; p++) {
          const e = h + GPA_RANGE_HEADER_SIZE + p * 8;
          const pfnHi = dv.getUint32(e + 4, true);
          if (pfnHi >>> PFN_HI_SHIFT !== 0) return finish(res, E_GpaPfnTooLarge, r, at, 0, p);
          const pfn = pfnHi * TWO32 + dv.getUint32(e, true);
          const start = p === 0 ? offset : 0;
          const end = p === pages - 1 ? lastLen : PAGE_SIZE;
          if (p !== 0 && !perPage && pfn === prev + 1) {
            segLen += end - start;
          } else {
            if (p !== 0) putSeg(segAddr, segLen, r);
            segAddr = pfn * PAGE_SIZE + start;
            segLen = end - start;
          }
          prev = pfn;
        }
        putSeg(segAddr, segLen, r);
        at += GPA_RANGE_HEADER_SIZE + pages * 8;
      }
      if (k > cap) return finish(res, E_BufferTooSmall, 0, at, k, 0);
      return finish(res, k, 0, at, k, 0);
    },
  };
}
