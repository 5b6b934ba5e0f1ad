// Pure-TypeScript twin of assembly/sgl.ts: the same four functions, over the same memory, with
// the same results and the same bytes written (segments, command records, descriptor pages and
// the scratch snapshots). 64-bit values are lo/hi pairs.

import {
  E_BufferTooSmall, E_InvalidArgument, E_NvmeBadListPage, E_NvmeEmptySegment, E_NvmeListPoolTooSmall,
  E_NvmeTransferTooLarge, NVME_CMD_COUNT, NVME_CMD_DPTR,
  NVME_CMD_FIRST, NVME_CMD_LENGTH, NVME_CMD_SIZE, NVME_CMD_STATUS, NVME_SC_DATA_SGL_LENGTH_INVALID,
  NVME_SC_DATA_TRANSFER_ERROR, NVME_SC_INTERNAL_ERROR, NVME_SC_INVALID_FIELD, NVME_SC_INVALID_NUMBER_OF_SGL_DESCRIPTORS,
  NVME_SC_INVALID_SGL_SEGMENT_DESCRIPTOR, NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID, NVME_WALK_MERGE, NVME_WALK_SGL_EXCESS, NVME_WALK_EXTERNAL,
  NVME_WHY_ADDRESS_OVERFLOW, NVME_WHY_DATA_OUTSIDE, NVME_WHY_DESCRIPTOR_TYPE, NVME_WHY_EXCESS,
  NVME_WHY_LAST_ENDS_IN_POINTER, NVME_WHY_LIST_OUTSIDE, NVME_WHY_MDTS, NVME_WHY_NO_PROGRESS, NVME_WHY_POINTER_TYPE,
  NVME_WHY_SEGMENT_LENGTH, NVME_WHY_SEGMENT_NOT_LAST, NVME_WHY_SGL1_TYPE, NVME_WHY_SHORT,
  NVME_WHY_TOO_MANY_DESCRIPTORS, NVME_WHY_TOO_MANY_MAPPINGS, SEG_OFF_FLAGS, SEG_OFF_LEN, SEG_SIZE,
  SGL_CHUNK_DESCRIPTORS, SGL_DESC_SIZE, SGL_OFF_ID, SGL_OFF_LEN, SGL_TYPE_LAST_SEGMENT, SGL_TYPE_SEGMENT,
} from '../generated/constants';
import type { Core } from '../engine/core';
import type { SglFunctions } from '../engine/types';
import { guestRange, memoryOps, nvmeStatus, overflows64, type NvmeConfig, builders, reserveListPages } from './nvme';

const ID_DATA = 0x00;
const ID_SEGMENT = SGL_TYPE_SEGMENT << 4;
const ID_LAST = SGL_TYPE_LAST_SEGMENT << 4;
const CHUNK_BYTES = SGL_CHUNK_DESCRIPTORS * SGL_DESC_SIZE;
const isPointer = (id: number) => id === ID_SEGMENT || id === ID_LAST;

export function createReferenceSgl(core: Core): SglFunctions {
  const m = memoryOps(core);
  const { ld32, st32, ld8 } = m;

  /** walkOne of assembly/sgl.ts, step for step. */
  function walkOne(k: NvmeConfig, dptr: number, len: number, out: number, outCap: number): number {
    if (len === 0) return 0;
    const { maxBytes, flags, gbase, gbytes, maxMaps, maxDescs, scratch } = k;
    if (maxBytes !== 0 && len > maxBytes) return nvmeStatus(NVME_WHY_MDTS, NVME_SC_INVALID_FIELD, true);
    const merge = (flags & NVME_WALK_MERGE) !== 0;
    const excessOk = (flags & NVME_WALK_SGL_EXCESS) !== 0;

    const single = ld8(dptr + SGL_OFF_ID) === ID_DATA;
    let segId = ld8(dptr + SGL_OFF_ID);
    let segLo = ld32(dptr);
    let segHi = ld32(dptr + 4);
    let segLen = ld32(dptr + SGL_OFF_LEN);
    let n = 0;
    let lastLen = 0;
    let end = 0;
    let maps = 0;
    let descs = 0;
    let firstSegment = true;
    for (;;) {
      let total = 1;
      if (!single) {
        if (!isPointer(segId)) {
          return nvmeStatus(firstSegment ? NVME_WHY_SGL1_TYPE : NVME_WHY_POINTER_TYPE, NVME_SC_INVALID_SGL_SEGMENT_DESCRIPTOR, true);
        }
        if (segLen === 0 || (segLen & 15) !== 0) return nvmeStatus(NVME_WHY_SEGMENT_LENGTH, NVME_SC_INVALID_SGL_SEGMENT_DESCRIPTOR, true);
        if (overflows64(segLo, segHi, segLen)) return nvmeStatus(NVME_WHY_ADDRESS_OVERFLOW, NVME_SC_DATA_SGL_LENGTH_INVALID, true);
        total = segLen / 16;
        if (total > maxDescs - descs) return nvmeStatus(NVME_WHY_TOO_MANY_DESCRIPTORS, NVME_SC_INTERNAL_ERROR, true);
        descs += total;
      }
      firstSegment = false;
      const prevLen = len;
      let done = 0;
      let final = false;
      let nextId = 0;
      let nextLo = 0;
      let nextHi = 0;
      let nextLen = 0;
      while (done < total) {
        const c = Math.min(total - done, SGL_CHUNK_DESCRIPTORS);
        if (single) {
          m.copy(scratch, dptr, SGL_DESC_SIZE);
        } else {
          // segLo + done*16 cannot carry: the segment end was checked not to pass 2^64 - 1, and
          // a range outside the guest window fails below whatever its exact value.
          let atLo = segLo + done * 16;
          let atHi = segHi;
          if (atLo >= 0x1_0000_0000) {
            atLo -= 0x1_0000_0000;
            atHi = (atHi + 1) >>> 0;
          }
          if (!guestRange(gbytes, atLo, atHi, c * 16)) return nvmeStatus(NVME_WHY_LIST_OUTSIDE, NVME_SC_DATA_TRANSFER_ERROR, false);
          // Checklist 27: parse only this private copy of the chunk.
          if (!m.guestSnapshot((flags & NVME_WALK_EXTERNAL) !== 0, scratch, gbase, atLo, c * 16)) {
            return nvmeStatus(NVME_WHY_LIST_OUTSIDE, NVME_SC_DATA_TRANSFER_ERROR, false);
          }
        }
        let nData = c;
        if (done + c === total) {
          const last = scratch + (c - 1) * 16;
          if (ld8(last + SGL_OFF_ID) === ID_DATA) {
            final = true;
          } else {
            if (segId === ID_LAST) return nvmeStatus(NVME_WHY_LAST_ENDS_IN_POINTER, NVME_SC_INVALID_SGL_SEGMENT_DESCRIPTOR, true);
            nextId = ld8(last + SGL_OFF_ID);
            nextLo = ld32(last);
            nextHi = ld32(last + 4);
            nextLen = ld32(last + SGL_OFF_LEN);
            nData = c - 1;
          }
        }
        for (let i = 0; i < nData; i++) {
          const d = scratch + i * 16;
          const id = ld8(d + SGL_OFF_ID);
          if (id !== ID_DATA) {
            if (isPointer(id)) return nvmeStatus(NVME_WHY_SEGMENT_NOT_LAST, NVME_SC_INVALID_NUMBER_OF_SGL_DESCRIPTORS, true);
            return nvmeStatus(NVME_WHY_DESCRIPTOR_TYPE, NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID, true);
          }
          const dlen = ld32(d + SGL_OFF_LEN);
          if (dlen === 0) continue;
          if (len === 0) {
            if (excessOk) break;
            return nvmeStatus(NVME_WHY_EXCESS, NVME_SC_DATA_SGL_LENGTH_INVALID, true);
          }
          const aLo = ld32(d);
          const aHi = ld32(d + 4);
          const t = Math.min(len, dlen);
          if (overflows64(aLo, aHi, dlen)) return nvmeStatus(NVME_WHY_ADDRESS_OVERFLOW, NVME_SC_DATA_SGL_LENGTH_INVALID, true);
          if (!guestRange(gbytes, aLo, aHi, t)) return nvmeStatus(NVME_WHY_DATA_OUTSIDE, NVME_SC_DATA_TRANSFER_ERROR, false);
          if (maps >= maxMaps) return nvmeStatus(NVME_WHY_TOO_MANY_MAPPINGS, NVME_SC_INTERNAL_ERROR, true);
          maps++;
          if (merge && n > 0 && aLo === end) {
            lastLen += t;
            st32(out + (n - 1) * SEG_SIZE + SEG_OFF_LEN, lastLen);
          } else {
            if (n >= outCap) return E_BufferTooSmall;
            const p = out + n * SEG_SIZE;
            st32(p, aLo);
            st32(p + 4, 0);
            st32(p + SEG_OFF_LEN, t);
            st32(p + SEG_OFF_FLAGS, 0);
            n++;
            lastLen = t;
          }
          end = aLo + t;
          len -= t;
        }
        done += c;
      }
      if (final) break;
      if (len === prevLen) return nvmeStatus(NVME_WHY_NO_PROGRESS, NVME_SC_INVALID_SGL_SEGMENT_DESCRIPTOR, true);
      segId = nextId;
      segLo = nextLo;
      segHi = nextHi;
      segLen = nextLen;
    }
    if (len !== 0) return nvmeStatus(NVME_WHY_SHORT, NVME_SC_DATA_SGL_LENGTH_INVALID, true);
    return n;
  }

  const putDesc = (p: number, lo: number, hi: number, len: number, id: number) => {
    st32(p, lo);
    st32(p + 4, hi);
    st32(p + SGL_OFF_LEN, len);
    st32(p + 12, id * 0x100_0000);
  };

  /** buildOne of assembly/sgl.ts, step for step. */
  function buildOne(k: NvmeConfig, segs: number, nsegs: number, pool: number, poolCount: number, rec: number): number {
    const { mps, maxBytes, gbase, gbytes } = k;
    const mask = mps - 1;
    let total = 0;
    for (let i = 0; i < nsegs; i++) {
      const s = segs + i * SEG_SIZE;
      const l = ld32(s + SEG_OFF_LEN);
      if (l === 0) return E_NvmeEmptySegment;
      if (overflows64(ld32(s), ld32(s + 4), l)) return E_InvalidArgument;
      total += l;
      if (total > 0xffffffff) return E_NvmeTransferTooLarge;
    }
    if (maxBytes !== 0 && total > maxBytes) return E_NvmeTransferTooLarge;
    if (nsegs <= 1) {
      if (nsegs === 0) putDesc(rec + NVME_CMD_DPTR, 0, 0, 0, ID_DATA);
      else putDesc(rec + NVME_CMD_DPTR, ld32(segs), ld32(segs + 4), ld32(segs + SEG_OFF_LEN), ID_DATA);
      st32(rec + NVME_CMD_LENGTH, total);
      return 0;
    }
    if (poolCount === 0) return E_NvmeListPoolTooSmall;
    const p0lo = ld32(pool);
    const p0hi = ld32(pool + 4);
    const full = mps / 16;
    const cap0 = Math.floor((mps - (p0lo & mask)) / 16);
    if ((p0lo & 15) !== 0 || cap0 < 2) return E_NvmeBadListPage;
    const pages = reserveListPages(m, pool, poolCount, nsegs, cap0, full, mps, gbytes);
    if (pages < 0) return pages;

    let left = nsegs;
    let cap = cap0;
    putDesc(rec + NVME_CMD_DPTR, p0lo, p0hi, (left > cap ? cap : left) * 16, left > cap ? ID_SEGMENT : ID_LAST);
    let page = 0;
    let at = gbase + p0lo;
    let slot = 0;
    for (let i = 0; i < nsegs; i++) {
      if (slot === cap - 1 && left > 1) {
        page++;
        const next = ld32(pool + page * 8);
        putDesc(at + slot * 16, next, 0, (left > full ? full : left) * 16, left > full ? ID_SEGMENT : ID_LAST);
        at = gbase + next;
        slot = 0;
        cap = full;
      }
      const s = segs + i * SEG_SIZE;
      putDesc(at + slot * 16, ld32(s), ld32(s + 4), ld32(s + SEG_OFF_LEN), ID_DATA);
      slot++;
      left--;
    }
    st32(rec + NVME_CMD_LENGTH, total);
    return pages;
  }

  function walkBatch(cfg: number, cmds: number, count: number, out: number, outCap: number): number {
    const k = m.readCfg(cfg);
    let used = 0;
    for (let i = 0; i < count; i++) {
      const c = cmds + i * NVME_CMD_SIZE;
      const r = walkOne(k, c + NVME_CMD_DPTR, ld32(c + NVME_CMD_LENGTH), out + used * SEG_SIZE, outCap - used);
      if (r === E_BufferTooSmall) return i;
      st32(c + NVME_CMD_FIRST, used);
      st32(c + NVME_CMD_STATUS, r < 0 ? r : 0);
      st32(c + NVME_CMD_COUNT, r < 0 ? 0 : r);
      if (r > 0) used += r;
    }
    return count | 0;
  }

  const build = builders(m, buildOne);

  return {
    sglWalk(cfg, dptr, len, out, outCap) {
      [cfg, dptr, len, out, outCap] = [cfg >>> 0, dptr >>> 0, len >>> 0, out >>> 0, outCap >>> 0];
      const st = m.checkCfg(cfg, 0, CHUNK_BYTES);
      if (st !== 0) return st;
      if (!m.hostArray(dptr, 1, SGL_DESC_SIZE) || !m.hostArray(out, outCap, SEG_SIZE)) return E_InvalidArgument;
      return walkOne(m.readCfg(cfg), dptr, len, out, outCap);
    },

    sglWalkBatch(cfg, cmds, count, out, outCap) {
      [cfg, cmds, count, out, outCap] = [cfg >>> 0, cmds >>> 0, count >>> 0, out >>> 0, outCap >>> 0];
      const st = m.checkCfg(cfg, 0, CHUNK_BYTES);
      if (st !== 0) return st;
      if (!m.hostArray(cmds, count, NVME_CMD_SIZE) || !m.hostArray(out, outCap, SEG_SIZE)) return E_InvalidArgument;
      return walkBatch(cfg, cmds, count, out, outCap);
    },

    sglBuild: build.build,
    sglBuildBatch: build.batch,
  };
}
