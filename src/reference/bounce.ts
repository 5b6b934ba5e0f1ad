// Pure-TypeScript twin of assembly/bounce.ts: the same planner and bounce copies over the same
// memory, with the same results. Addresses are exact JavaScript numbers (guest-physical
// addresses stay below 2^52, see GPA_LIMIT_MAX_*); the algorithm is explained in the Wasm file.

import {
  SEG_SIZE, SEG_OFF_ADDR, SEG_OFF_LEN, RULE_HYPERV, RULE_NVME_PRP, PAGE_SIZE_MIN, PAGE_SIZE_MAX,
  PLAN_BYTE_OFFSET, PLAN_BYTE_COUNT, PLAN_PAGE_COUNT, PLAN_COPY_COUNT, PLAN_BOUNCED_BYTES,
  PLAN_BOUNCE_PAGES, PLAN_PAGE_SIZE, PLAN_NEEDED, PLAN_BAD_INDEX, PLAN_HEADER_SIZE, PAGE_ENTRY_SIZE,
  PAGE_OFF_FRAME, PAGE_OFF_BOUNCE, NOT_BOUNCED, COPY_ENTRY_SIZE, COPY_OFF_SEGMENT,
  COPY_OFF_SEGMENT_OFFSET, COPY_OFF_DEST, COPY_OFF_LENGTH, COPY_OFF_STREAM, GPA_LIMIT_MAX_LO, GPA_LIMIT_MAX_HI,
  E_InvalidArgument, E_BufferTooSmall, E_EmptySegmentList, E_ZeroLengthSegment, E_OutsideGuestRam,
  E_TransferTooLarge, E_TooManyPages, E_BouncePoolTooSmall, E_BadBouncePage, E_InvalidPageSize, E_InvalidPlan,
} from '../generated/constants';
import type { Core } from '../engine/core';
import type { BounceFunctions } from '../engine/types';

const TWO32 = 0x1_0000_0000;
const GPA_LIMIT_MAX = GPA_LIMIT_MAX_HI * TWO32 + GPA_LIMIT_MAX_LO;
const mod = (x: number, p: number) => ((x % p) + p) % p;
const guestRange = (limit: number, gpa: number, len: number) => len <= limit && gpa <= limit - len;

export function createReferenceBounce(core: Core): BounceFunctions {
  const inMemory = (ptr: number, len: number) => {
    const size = core.byteLength;
    return len <= size && ptr <= size - len;
  };
  const u32 = (at: number) => core.u32[at >>> 2]!;
  const setU32 = (at: number, v: number) => void (core.u32[at >>> 2] = v >>> 0);
  /** u64 as a number (exact below 2^53; larger values only ever fail range checks). */
  const u64 = (at: number) => core.u32[at >>> 2]! + core.u32[(at >>> 2) + 1]! * TWO32;
  const setU64 = (at: number, v: number) => {
    core.u32[at >>> 2] = v % TWO32;
    core.u32[(at >>> 2) + 1] = Math.floor(v / TWO32);
  };
  const segAddr = (segs: number, i: number) => u64(segs + i * SEG_SIZE + SEG_OFF_ADDR);
  const segLen = (segs: number, i: number) => u32(segs + i * SEG_SIZE + SEG_OFF_LEN);
  const windowLen = (j: number, o: number, total: number, p: number) =>
    Math.min((j + 1) * p - o, total) - (j === 0 ? 0 : j * p - o);

  /** Bytes copied and bounce pages used when byteOffset is o (one pass, as in the Wasm file). */
  function evaluate(segs: number, n: number, p: number, o: number, total: number): { cost: number; pages: number } {
    let cost = 0;
    let pages = 0;
    let cur = 0;
    let curOwn = true;
    let curHas = false;
    let curDelta = 0;
    let s = 0;
    const close = (j: number) => {
      if (!curOwn) {
        cost += windowLen(j, o, total, p);
        pages++;
      }
    };
    for (let i = 0; i < n; i++) {
      const e = s + segLen(segs, i);
      const delta = segAddr(segs, i) - s;
      const ok = mod(delta - o, p) === 0;
      const js = Math.floor((s + o) / p);
      const je = Math.floor((e - 1 + o) / p);
      if (js !== cur) {
        close(cur);
        cur = js;
        curHas = false;
      }
      curOwn = curHas ? curOwn && ok && delta === curDelta : ok;
      curDelta = delta;
      curHas = true;
      if (je > js) {
        close(js);
        if (!ok) {
          cost += (je - js - 1) * p;
          pages += je - js - 1;
        }
        cur = je;
        curOwn = ok;
      }
      s = e;
    }
    close(cur);
    return { cost, pages };
  }

  function writePlan(segs: number, n: number, p: number, o: number, total: number, pageCount: number, pool: number, out: number): number {
    const pagesAt = out + PLAN_HEADER_SIZE;
    const setEntry = (j: number, own: boolean, delta: number) => {
      const ent = pagesAt + j * PAGE_ENTRY_SIZE;
      if (own) {
        const k0 = j === 0 ? 0 : j * p - o;
        setU64(ent + PAGE_OFF_FRAME, (delta + k0 - ((o + k0) % p)) / p);
        setU32(ent + PAGE_OFF_BOUNCE, NOT_BOUNCED);
      } else {
        setU64(ent + PAGE_OFF_FRAME, 0);
        setU32(ent + PAGE_OFF_BOUNCE, 0);
      }
      setU32(ent + PAGE_OFF_BOUNCE + 4, 0);
    };
    let s = 0;
    let cur = 0;
    let curOwn = true;
    let curHas = false;
    let curDelta = 0;
    for (let i = 0; i < n; i++) {
      const e = s + segLen(segs, i);
      const delta = segAddr(segs, i) - s;
      const ok = mod(delta - o, p) === 0;
      const js = Math.floor((s + o) / p);
      const je = Math.floor((e - 1 + o) / p);
      if (js !== cur) {
        setEntry(cur, curOwn, curDelta);
        cur = js;
        curHas = false;
      }
      curOwn = curHas ? curOwn && ok && delta === curDelta : ok;
      if (!curHas) curDelta = delta;
      curHas = true;
      if (je > js) {
        setEntry(js, curOwn, curDelta);
        for (let j = js + 1; j < je; j++) setEntry(j, ok, delta);
        cur = je;
        curOwn = ok;
        curDelta = delta;
      }
      s = e;
    }
    setEntry(cur, curOwn, curDelta);

    let used = 0;
    for (let j = 0; j < pageCount; j++) {
      const ent = pagesAt + j * PAGE_ENTRY_SIZE;
      if (u32(ent + PAGE_OFF_BOUNCE) !== NOT_BOUNCED) {
        setU32(ent + PAGE_OFF_BOUNCE, used);
        setU64(ent + PAGE_OFF_FRAME, u64(pool + used * 8) / p);
        used++;
      }
    }

    const copiesAt = pagesAt + pageCount * PAGE_ENTRY_SIZE;
    let copies = 0;
    let bounced = 0;
    s = 0;
    for (let i = 0; i < n; i++) {
      const e = s + segLen(segs, i);
      for (let k = s; k < e;) {
        const j = Math.floor((k + o) / p);
        const end = Math.min((j + 1) * p - o, e);
        const b = u32(pagesAt + j * PAGE_ENTRY_SIZE + PAGE_OFF_BOUNCE);
        if (b !== NOT_BOUNCED) {
          const c = copiesAt + copies * COPY_ENTRY_SIZE;
          setU32(c + COPY_OFF_SEGMENT, i);
          setU32(c + COPY_OFF_SEGMENT_OFFSET, k - s);
          setU64(c + COPY_OFF_DEST, u64(pool + b * 8) + ((k + o) % p));
          setU32(c + COPY_OFF_LENGTH, end - k);
          setU32(c + COPY_OFF_STREAM, k);
          copies++;
          bounced += end - k;
        }
        k = end;
      }
      s = e;
    }
    setU32(out + PLAN_BYTE_OFFSET, o);
    setU32(out + PLAN_BYTE_COUNT, total);
    setU32(out + PLAN_PAGE_COUNT, pageCount);
    setU32(out + PLAN_COPY_COUNT, copies);
    setU32(out + PLAN_BOUNCED_BYTES, bounced);
    setU32(out + PLAN_BOUNCE_PAGES, used);
    setU32(out + PLAN_PAGE_SIZE, p);
    setU32(out + PLAN_NEEDED, PLAN_HEADER_SIZE + pageCount * PAGE_ENTRY_SIZE + copies * COPY_ENTRY_SIZE);
    return 0;
  }

  /** Same checks as the Wasm checkPlan; returns the copy count or a status. */
  function checkPlan(segs: number, n: number, plan: number, planBytes: number, guestBytes: number): number {
    if (!inMemory(plan, planBytes) || planBytes < PLAN_HEADER_SIZE || !inMemory(segs, n * SEG_SIZE)) return E_InvalidArgument;
    const pages = u32(plan + PLAN_PAGE_COUNT);
    const copies = u32(plan + PLAN_COPY_COUNT);
    const p = u32(plan + PLAN_PAGE_SIZE);
    if (PLAN_HEADER_SIZE + pages * PAGE_ENTRY_SIZE + copies * COPY_ENTRY_SIZE > planBytes) return E_InvalidPlan;
    if (p < PAGE_SIZE_MIN || p > PAGE_SIZE_MAX || (p & (p - 1)) !== 0) return E_InvalidPlan;
    const copiesAt = plan + PLAN_HEADER_SIZE + pages * PAGE_ENTRY_SIZE;
    for (let c = 0; c < copies; c++) {
      const e = copiesAt + c * COPY_ENTRY_SIZE;
      const i = u32(e + COPY_OFF_SEGMENT);
      if (i >= n) return E_InvalidPlan;
      const off = u32(e + COPY_OFF_SEGMENT_OFFSET);
      const len = u32(e + COPY_OFF_LENGTH);
      const sl = segLen(segs, i);
      if (len > sl || off > sl - len) return E_InvalidPlan;
      if (!guestRange(guestBytes, segAddr(segs, i) + off, len) || !guestRange(guestBytes, u64(e + COPY_OFF_DEST), len)) return E_OutsideGuestRam;
    }
    for (let j = 0; j < pages; j++) {
      const ent = plan + PLAN_HEADER_SIZE + j * PAGE_ENTRY_SIZE;
      if (u32(ent + PAGE_OFF_BOUNCE) !== NOT_BOUNCED) {
        const f = u64(ent + PAGE_OFF_FRAME);
        if (f > Math.floor(guestBytes / p) || !guestRange(guestBytes, f * p, p)) return E_OutsideGuestRam;
      }
    }
    return copies;
  }

  const copy = (dst: number, src: number, n: number) => void core.u8.copyWithin(dst, src, src + n);

  const slotOf = (key: number, bits: number) => Math.imul(((key % TWO32) ^ Math.floor(key / TWO32)) >>> 0, 0x9e3779b9) >>> (32 - bits);

  /**
   * The pool pages used must be distinct and outside the caller's data: the Wasm engine's hash
   * set of frame numbers, the same table in the same bytes of the output area (see there).
   */
  const checkPool = (segs: number, n: number, p: number, pool: number, count: number, out: number, outCap: number): number => {
    setU32(out + PLAN_BAD_INDEX, 0);
    if (count === 0) return 0;
    const room = Math.floor((outCap - PLAN_HEADER_SIZE) / 12);
    let slots = 2;
    while (slots < count * 2 && slots <= Math.floor(room / 2)) slots *= 2;
    const bits = 31 - Math.clz32(slots);
    const keys = out + PLAN_HEADER_SIZE;
    const idx = keys + slots * 8;
    core.u8.fill(0, keys, keys + slots * 8);
    let bad = count;
    for (let k = 0; k < count; k++) {
      const key = Math.floor(u64(pool + k * 8) / p) + 1;
      for (let h = slotOf(key, bits); ; h = (h + 1) & (slots - 1)) {
        const v = u64(keys + h * 8);
        if (v === 0) {
          setU64(keys + h * 8, key);
          setU32(idx + h * 4, k);
          break;
        }
        if (v === key) {
          bad = Math.min(bad, k);
          break;
        }
      }
    }
    for (let i = 0; i < n; i++) {
      const f0 = Math.floor(segAddr(segs, i) / p);
      const f1 = Math.floor((segAddr(segs, i) + segLen(segs, i) - 1) / p);
      if (f1 - f0 >= count) {
        for (let k = 0; k < count && k < bad; k++) {
          const f = Math.floor(u64(pool + k * 8) / p);
          if (f >= f0 && f <= f1) bad = k;
        }
        continue;
      }
      for (let f = f0; f <= f1; f++) {
        for (let h = slotOf(f + 1, bits); ; h = (h + 1) & (slots - 1)) {
          const v = u64(keys + h * 8);
          if (v === 0) break;
          if (v === f + 1) {
            bad = Math.min(bad, u32(idx + h * 4));
            break;
          }
        }
      }
    }
    if (bad === count) return 0;
    setU32(out + PLAN_BAD_INDEX, bad);
    return E_BadBouncePage;
  };

  return {
    planPages(segs, n, pageSize, rule, maxPages, pool, poolCount, limitLo, limitHi, out, outCap): number {
      n >>>= 0;
      poolCount >>>= 0;
      maxPages >>>= 0;
      outCap >>>= 0;
      if (!inMemory(out, outCap) || outCap < PLAN_HEADER_SIZE || (out & 7) !== 0) return E_InvalidArgument;
      core.u8.fill(0, out, out + PLAN_HEADER_SIZE);
      if (rule !== RULE_HYPERV && rule !== RULE_NVME_PRP) return E_InvalidArgument;
      pageSize >>>= 0;
      if (pageSize < PAGE_SIZE_MIN || pageSize > PAGE_SIZE_MAX || (pageSize & (pageSize - 1)) !== 0 ||
          (rule === RULE_HYPERV && pageSize !== PAGE_SIZE_MIN)) return E_InvalidPageSize;
      if (n === 0) return E_EmptySegmentList;
      if (n > Math.floor(0x7fffffff / SEG_SIZE) || !inMemory(segs, n * SEG_SIZE) || poolCount > Math.floor(0x7fffffff / 8) ||
          !inMemory(pool, poolCount * 8)) return E_InvalidArgument;
      const p = pageSize;
      const limit = (limitHi >>> 0) * TWO32 + (limitLo >>> 0);
      if (limit > GPA_LIMIT_MAX) return E_InvalidArgument;
      let total = 0;
      for (let i = 0; i < n; i++) {
        const len = segLen(segs, i);
        setU32(out + PLAN_BAD_INDEX, i);
        if (len === 0) return E_ZeroLengthSegment;
        if (!guestRange(limit, segAddr(segs, i), len)) return E_OutsideGuestRam;
        total += len;
        if (total > 0xffffffff) return E_TransferTooLarge;
      }
      for (let k = 0; k < poolCount; k++) {
        const b = u64(pool + k * 8);
        setU32(out + PLAN_BAD_INDEX, k);
        if (mod(b, p) !== 0) return E_BadBouncePage;
        if (!guestRange(limit, b, p)) return E_OutsideGuestRam;
      }
      setU32(out + PLAN_BAD_INDEX, 0);

      const first = mod(segAddr(segs, 0), p);
      let best: { o: number; cost: number; pages: number; bounce: number } | null = null;
      let blocked = 0;
      let poolNeed = 0xffffffff;
      const seenMap = out + PLAN_HEADER_SIZE; // as the Wasm engine: a bit per phase, or a scan
      const useMap = n > 32 && outCap >= PLAN_HEADER_SIZE + (p >>> 3); // PHASE_SCAN_MAX in assembly/bounce.ts
      if (useMap) core.u8.fill(0, seenMap, seenMap + (p >>> 3));
      let s = 0;
      for (let c = 0; c <= n; c++) {
        let o = 0;
        if (c < n) {
          o = mod(segAddr(segs, c) - s, p);
          s += segLen(segs, c);
          if (rule === RULE_NVME_PRP && (o & 3) !== 0) continue;
          if (useMap) {
            const u8 = core.u8;
            const at = seenMap + (o >>> 3);
            const bit = 1 << (o & 7);
            if ((u8[at]! & bit) !== 0) continue;
            u8[at] = u8[at]! | bit;
          } else {
            let seen = false;
            for (let d = 0, s2 = 0; d < c; s2 += segLen(segs, d), d++) {
              if (mod(segAddr(segs, d) - s2, p) === o) {
                seen = true;
                break;
              }
            }
            if (seen) continue;
          }
        }
        const pages = Math.ceil((o + total) / p);
        if (pages > maxPages) {
          blocked = E_TooManyPages;
          continue;
        }
        const { cost, pages: bounce } = evaluate(segs, n, p, o, total);
        if (bounce > poolCount) {
          blocked = E_BouncePoolTooSmall;
          poolNeed = Math.min(poolNeed, bounce);
          continue;
        }
        const better = best === null ||
          (cost !== best.cost ? cost < best.cost
            : pages !== best.pages ? pages < best.pages
              : (o === first) !== (best.o === first) ? o === first
                : o < best.o);
        if (better) best = { o, cost, pages, bounce };
      }
      if (best === null) {
        if (blocked === E_BouncePoolTooSmall) setU32(out + PLAN_NEEDED, poolNeed);
        return blocked;
      }

      const needed = PLAN_HEADER_SIZE + best.pages * PAGE_ENTRY_SIZE + (best.bounce + n) * COPY_ENTRY_SIZE;
      setU32(out + PLAN_NEEDED, Math.min(needed, 0xffffffff));
      if (needed > outCap) return E_BufferTooSmall;
      const st = checkPool(segs, n, p, pool, best.bounce, out, outCap);
      if (st < 0) return st;
      return writePlan(segs, n, p, best.o, total, best.pages, pool, out);
    },

    bounceCopyOut(segs, n, plan, planBytes, guestBase, guestBytes): number {
      if (!inMemory(guestBase, guestBytes)) return E_InvalidArgument;
      const copies = checkPlan(segs, n, plan, planBytes, guestBytes);
      if (copies < 0) return copies;
      const pages = u32(plan + PLAN_PAGE_COUNT);
      const p = u32(plan + PLAN_PAGE_SIZE);
      const o = u32(plan + PLAN_BYTE_OFFSET);
      const endOff = ((o + u32(plan + PLAN_BYTE_COUNT)) >>> 0) & (p - 1);
      if (pages > 0) {
        const first = plan + PLAN_HEADER_SIZE;
        if (u32(first + PAGE_OFF_BOUNCE) !== NOT_BOUNCED && o !== 0) {
          const at = guestBase + u64(first + PAGE_OFF_FRAME) * p;
          core.u8.fill(0, at, at + o);
        }
        const last = plan + PLAN_HEADER_SIZE + (pages - 1) * PAGE_ENTRY_SIZE;
        if (u32(last + PAGE_OFF_BOUNCE) !== NOT_BOUNCED && endOff !== 0) {
          const at = guestBase + u64(last + PAGE_OFF_FRAME) * p;
          core.u8.fill(0, at + endOff, at + p);
        }
      }
      const copiesAt = plan + PLAN_HEADER_SIZE + pages * PAGE_ENTRY_SIZE;
      let moved = 0;
      for (let c = 0; c < copies; c++) {
        const e = copiesAt + c * COPY_ENTRY_SIZE;
        const len = u32(e + COPY_OFF_LENGTH);
        const src = segAddr(segs, u32(e + COPY_OFF_SEGMENT)) + u32(e + COPY_OFF_SEGMENT_OFFSET);
        copy(guestBase + u64(e + COPY_OFF_DEST), guestBase + src, len);
        moved += len;
      }
      return Math.min(moved, 0x7fffffff);
    },

    bounceZero(segs, n, plan, planBytes, guestBase, guestBytes): number {
      if (!inMemory(guestBase, guestBytes)) return E_InvalidArgument;
      const copies = checkPlan(segs, n, plan, planBytes, guestBytes);
      if (copies < 0) return copies;
      const pages = u32(plan + PLAN_PAGE_COUNT);
      const p = u32(plan + PLAN_PAGE_SIZE);
      for (let j = 0; j < pages; j++) {
        const ent = plan + PLAN_HEADER_SIZE + j * PAGE_ENTRY_SIZE;
        if (u32(ent + PAGE_OFF_BOUNCE) !== NOT_BOUNCED) {
          const at = guestBase + u64(ent + PAGE_OFF_FRAME) * p;
          core.u8.fill(0, at, at + p);
        }
      }
      return 0;
    },

    bounceCopyBack(segs, n, plan, planBytes, guestBase, guestBytes, actual): number {
      if (!inMemory(guestBase, guestBytes)) return E_InvalidArgument;
      const copies = checkPlan(segs, n, plan, planBytes, guestBytes);
      if (copies < 0) return copies;
      actual >>>= 0;
      const pages = u32(plan + PLAN_PAGE_COUNT);
      const copiesAt = plan + PLAN_HEADER_SIZE + pages * PAGE_ENTRY_SIZE;
      let moved = 0;
      for (let c = 0; c < copies; c++) {
        const e = copiesAt + c * COPY_ENTRY_SIZE;
        const stream = u32(e + COPY_OFF_STREAM);
        if (stream >= actual) continue;
        const len = Math.min(u32(e + COPY_OFF_LENGTH), actual - stream);
        const dst = segAddr(segs, u32(e + COPY_OFF_SEGMENT)) + u32(e + COPY_OFF_SEGMENT_OFFSET);
        copy(guestBase + dst, guestBase + u64(e + COPY_OFF_DEST), len);
        moved += len;
      }
      return Math.min(moved, 0x7fffffff);
    },
  };
}
