// Pure-TypeScript twin of assembly/prp.ts: the same four functions, over the same memory, with
// the same results and the same bytes written (segments, command records, list pages, and the
// scratch snapshot / visited table). Written for clarity; 64-bit values are lo/hi pairs.

import {
  E_BufferTooSmall, E_InvalidArgument, E_NvmeBadListPage, E_NvmeEmptySegment, E_NvmeListPoolTooSmall,
  E_NvmeNotDwordAligned, E_NvmeNotPageAligned, E_NvmeNotPageEnd, E_NvmeTransferTooLarge,
  NVME_CMD_COUNT, NVME_CMD_FIRST, NVME_CMD_LENGTH, NVME_CMD_PRP1,
  NVME_CMD_PRP2, NVME_CMD_SIZE, NVME_CMD_STATUS, NVME_SC_DATA_TRANSFER_ERROR, NVME_SC_INTERNAL_ERROR,
  NVME_SC_INVALID_FIELD, NVME_SC_PRP_OFFSET_INVALID, NVME_WALK_MASK_PRP1, NVME_WALK_EXTERNAL, NVME_WALK_MERGE, NVME_WHY_CHAIN_ALIGN,
  NVME_WHY_CHAIN_LOOP, NVME_WHY_DATA_OUTSIDE, NVME_WHY_ENTRY_ALIGN, NVME_WHY_LIST_OUTSIDE, NVME_WHY_LIST_PTR_ALIGN,
  NVME_WHY_MDTS, NVME_WHY_PRP1_ALIGN, NVME_WHY_PRP2_ALIGN, NVME_WHY_TOO_MANY_LIST_PAGES, NVME_WHY_TOO_MANY_MAPPINGS,
  SEG_OFF_FLAGS, SEG_OFF_LEN, SEG_SIZE,
} from '../generated/constants';
import type { Core } from '../engine/core';
import type { PrpFunctions } from '../engine/types';
import { guestRange, memoryOps, nvmeStatus, overflows64, pagesOf, TWO32, type NvmeConfig, builders, reserveListPages } from './nvme';

export function createReferencePrp(core: Core): PrpFunctions {
  const m = memoryOps(core);
  const { ld32, st32 } = m;
  const putSeg = (p: number, lo: number, hi: number, len: number) => {
    st32(p, lo);
    st32(p + 4, hi);
    st32(p + SEG_OFF_LEN, len);
    st32(p + SEG_OFF_FLAGS, 0);
  };

  /** walkOne of assembly/prp.ts, step for step. */
  function walkOne(k: NvmeConfig, p1lo: number, p1hi: number, p2lo: number, p2hi: number, len: number, out: number, outCap: number): number {
    if (len === 0) return 0;
    const { maxBytes, flags, mps, gbase, gbytes } = k;
    if (maxBytes !== 0 && len > maxBytes) return nvmeStatus(NVME_WHY_MDTS, NVME_SC_INVALID_FIELD, true);
    if ((p1lo & 3) !== 0) {
      if ((flags & NVME_WALK_MASK_PRP1) === 0) return nvmeStatus(NVME_WHY_PRP1_ALIGN, NVME_SC_PRP_OFFSET_INVALID, true);
      p1lo = (p1lo & ~3) >>> 0;
    }
    const shift = 31 - Math.clz32(mps);
    const mask = mps - 1;
    const first = Math.min(len, mps - (p1lo & mask));
    let rest = len - first;
    const entries = 1 + pagesOf(rest, shift);
    if (entries > k.maxMaps) return nvmeStatus(NVME_WHY_TOO_MANY_MAPPINGS, NVME_SC_INTERNAL_ERROR, true);
    const merge = (flags & NVME_WALK_MERGE) !== 0;

    if (!guestRange(gbytes, p1lo, p1hi, first)) return nvmeStatus(NVME_WHY_DATA_OUTSIDE, NVME_SC_DATA_TRANSFER_ERROR, false);
    if (outCap === 0) return E_BufferTooSmall;
    putSeg(out, p1lo, 0, first);
    // Past the range check every address is below 2^31, so plain numbers are exact from here.
    let n = 1;
    let lastLen = first;
    let end = p1lo + first;
    if (rest === 0) return 1;

    if (rest <= mps) {
      if ((p2lo & mask) !== 0) return nvmeStatus(NVME_WHY_PRP2_ALIGN, NVME_SC_PRP_OFFSET_INVALID, true);
      if (!guestRange(gbytes, p2lo, p2hi, rest)) return nvmeStatus(NVME_WHY_DATA_OUTSIDE, NVME_SC_DATA_TRANSFER_ERROR, false);
      if (merge && p2lo === end) {
        st32(out + SEG_OFF_LEN, first + rest);
        return 1;
      }
      if (outCap < 2) return E_BufferTooSmall;
      putSeg(out + SEG_SIZE, p2lo, 0, rest);
      return 2;
    }

    if ((p2lo & 7) !== 0) return nvmeStatus(NVME_WHY_LIST_PTR_ALIGN, NVME_SC_PRP_OFFSET_INVALID, true);
    const scratch = k.scratch;
    const visited = scratch + mps;
    const visitedCap = Math.floor((k.scratchBytes - mps) / 8);
    st32(visited, (p2lo & ~mask) >>> 0);
    st32(visited + 4, p2hi);
    let nVisited = 1;
    let listLo = p2lo;
    let listHi = p2hi;
    let slots = (mps - (p2lo & mask)) / 8;
    let left = entries - 1;
    for (;;) {
      const chain = left > slots;
      const data = chain ? slots - 1 : left;
      const bytes = (chain ? slots : left) * 8;
      if (!guestRange(gbytes, listLo, listHi, bytes)) return nvmeStatus(NVME_WHY_LIST_OUTSIDE, NVME_SC_DATA_TRANSFER_ERROR, false);
      // Checklist 27: one private snapshot of the entries, then only the snapshot is parsed.
      if (!m.guestSnapshot((flags & NVME_WALK_EXTERNAL) !== 0, scratch, gbase, listLo, bytes)) {
        return nvmeStatus(NVME_WHY_LIST_OUTSIDE, NVME_SC_DATA_TRANSFER_ERROR, false);
      }
      for (let i = 0; i < data; i++) {
        const eLo = ld32(scratch + i * 8);
        const eHi = ld32(scratch + i * 8 + 4);
        if ((eLo & mask) !== 0) return nvmeStatus(NVME_WHY_ENTRY_ALIGN, NVME_SC_PRP_OFFSET_INVALID, true);
        const l = Math.min(rest, mps);
        if (!guestRange(gbytes, eLo, eHi, l)) return nvmeStatus(NVME_WHY_DATA_OUTSIDE, NVME_SC_DATA_TRANSFER_ERROR, false);
        if (merge && eLo === end) {
          lastLen += l;
          st32(out + (n - 1) * SEG_SIZE + SEG_OFF_LEN, lastLen);
        } else {
          if (n >= outCap) return E_BufferTooSmall;
          putSeg(out + n * SEG_SIZE, eLo, 0, l);
          n++;
          lastLen = l;
        }
        end = eLo + l;
        rest -= l;
      }
      left -= data;
      if (!chain) return n;
      const nextLo = ld32(scratch + (slots - 1) * 8);
      const nextHi = ld32(scratch + (slots - 1) * 8 + 4);
      if ((nextLo & mask) !== 0) return nvmeStatus(NVME_WHY_CHAIN_ALIGN, NVME_SC_PRP_OFFSET_INVALID, true);
      for (let v = 0; v < nVisited; v++) {
        if (ld32(visited + v * 8) === nextLo && ld32(visited + v * 8 + 4) === nextHi) {
          return nvmeStatus(NVME_WHY_CHAIN_LOOP, NVME_SC_INVALID_FIELD, true);
        }
      }
      if (nVisited >= visitedCap) return nvmeStatus(NVME_WHY_TOO_MANY_LIST_PAGES, NVME_SC_INTERNAL_ERROR, true);
      st32(visited + nVisited * 8, nextLo);
      st32(visited + nVisited * 8 + 4, nextHi);
      nVisited++;
      listLo = nextLo;
      listHi = nextHi;
      slots = mps / 8;
    }
  }

  /** buildOne of assembly/prp.ts, step for step. */
  function buildOne(k: NvmeConfig, segs: number, nsegs: number, pool: number, poolCount: number, rec: number): number {
    const { mps, maxBytes, gbase, gbytes } = k;
    const shift = 31 - Math.clz32(mps);
    const mask = mps - 1;
    let total = 0;
    for (let i = 0; i < nsegs; i++) {
      const s = segs + i * SEG_SIZE;
      const lo = ld32(s);
      const hi = ld32(s + 4);
      const l = ld32(s + SEG_OFF_LEN);
      if (l === 0) return E_NvmeEmptySegment;
      if (overflows64(lo, hi, l)) return E_InvalidArgument;
      if (i === 0) {
        if ((lo & 3) !== 0) return E_NvmeNotDwordAligned;
      } else if ((lo & mask) !== 0) return E_NvmeNotPageAligned;
      if (i + 1 < nsegs && ((lo + l) & mask) !== 0) return E_NvmeNotPageEnd;
      total += l;
      if (total > 0xffffffff) return E_NvmeTransferTooLarge;
    }
    if (maxBytes !== 0 && total > maxBytes) return E_NvmeTransferTooLarge;
    const putDptr = (p1lo: number, p1hi: number, p2lo: number, p2hi: number, len: number) => {
      st32(rec + NVME_CMD_PRP1, p1lo);
      st32(rec + NVME_CMD_PRP1 + 4, p1hi);
      st32(rec + NVME_CMD_PRP2, p2lo);
      st32(rec + NVME_CMD_PRP2 + 4, p2hi);
      st32(rec + NVME_CMD_LENGTH, len);
    };
    if (nsegs === 0) {
      putDptr(0, 0, 0, 0, 0);
      return 0;
    }
    const len = total;
    const a0lo = ld32(segs);
    const a0hi = ld32(segs + 4);
    const l0 = ld32(segs + SEG_OFF_LEN);
    const first0 = Math.min(l0, mps - (a0lo & mask));
    const rest = len - Math.min(len, mps - (a0lo & mask));
    const entries = 1 + pagesOf(rest, shift);
    // The page after the first segment's first page: (a0 & ~mask) + mps, with carry.
    let nextLo = ((a0lo & ~mask) >>> 0) + mps;
    let nextHi = a0hi;
    if (nextLo >= TWO32) {
      nextLo -= TWO32;
      nextHi = (nextHi + 1) >>> 0;
    }
    if (entries <= 2) {
      let p2lo = 0;
      let p2hi = 0;
      if (entries === 2) {
        if (l0 > first0) [p2lo, p2hi] = [nextLo, nextHi];
        else [p2lo, p2hi] = [ld32(segs + SEG_SIZE), ld32(segs + SEG_SIZE + 4)];
      }
      putDptr(a0lo, a0hi, p2lo, p2hi, len);
      return 0;
    }

    if (poolCount === 0) return E_NvmeListPoolTooSmall;
    const p0lo = ld32(pool);
    const p0hi = ld32(pool + 4);
    if ((p0lo & 7) !== 0) return E_NvmeBadListPage;
    const full = mps / 8;
    const slots0 = (mps - (p0lo & mask)) / 8;
    const pages = reserveListPages(m, pool, poolCount, entries - 1, slots0, full, mps, gbytes);
    if (pages < 0) return pages;

    let page = 0;
    let at = gbase + p0lo;
    let slot = 0;
    let cap = slots0;
    let left = entries - 1;
    for (let i = 0; i < nsegs; i++) {
      const s = segs + i * SEG_SIZE;
      let aLo = ld32(s);
      let aHi = ld32(s + 4);
      let k = pagesOf(ld32(s + SEG_OFF_LEN), shift);
      if (i === 0) {
        k = pagesOf(l0 - first0, shift);
        aLo = nextLo;
        aHi = nextHi;
      }
      for (; k > 0; k--) {
        if (slot === cap - 1 && left > 1) {
          page++;
          const next = ld32(pool + page * 8);
          st32(at + slot * 8, next);
          st32(at + slot * 8 + 4, 0);
          at = gbase + next;
          slot = 0;
          cap = full;
        }
        st32(at + slot * 8, aLo);
        st32(at + slot * 8 + 4, aHi);
        slot++;
        left--;
        aLo += mps;
        if (aLo >= TWO32) {
          aLo -= TWO32;
          aHi = (aHi + 1) >>> 0;
        }
      }
    }
    putDptr(a0lo, a0hi, p0lo, p0hi, len);
    return pages;
  }

  const build = builders(m, buildOne);

  return {
    prpWalk(cfg, dptr, len, out, outCap) {
      [cfg, dptr, len, out, outCap] = [cfg >>> 0, dptr >>> 0, len >>> 0, out >>> 0, outCap >>> 0];
      const st = m.checkCfg(cfg, 1, 8);
      if (st !== 0) return st;
      if (!m.hostArray(dptr, 1, 16) || !m.hostArray(out, outCap, SEG_SIZE)) return E_InvalidArgument;
      return walkOne(m.readCfg(cfg), ld32(dptr), ld32(dptr + 4), ld32(dptr + 8), ld32(dptr + 12), len, out, outCap);
    },

    prpWalkBatch(cfg, cmds, count, out, outCap) {
      [cfg, cmds, count, out, outCap] = [cfg >>> 0, cmds >>> 0, count >>> 0, out >>> 0, outCap >>> 0];
      const st = m.checkCfg(cfg, 1, 8);
      if (st !== 0) return st;
      if (!m.hostArray(cmds, count, NVME_CMD_SIZE) || !m.hostArray(out, outCap, SEG_SIZE)) return E_InvalidArgument;
      const k = m.readCfg(cfg);
      let used = 0;
      for (let i = 0; i < count; i++) {
        const c = cmds + i * NVME_CMD_SIZE;
        const r = walkOne(k, ld32(c + NVME_CMD_PRP1), ld32(c + NVME_CMD_PRP1 + 4), ld32(c + NVME_CMD_PRP2),
          ld32(c + NVME_CMD_PRP2 + 4), ld32(c + NVME_CMD_LENGTH), out + used * SEG_SIZE, outCap - used);
        if (r === E_BufferTooSmall) return i;
        st32(c + NVME_CMD_FIRST, used);
        st32(c + NVME_CMD_STATUS, r < 0 ? r : 0);
        st32(c + NVME_CMD_COUNT, r < 0 ? 0 : r);
        if (r > 0) used += r;
      }
      return count | 0;
    },

    prpBuild: build.build,
    prpBuildBatch: build.batch,
  };
}
