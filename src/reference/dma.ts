// Pure-TypeScript twin of assembly/dma.ts: the same checks in the same order, the same result
// block and the same copies over the same memory. Written for clarity: the permission table is
// read page by page (the Wasm engine tests 16 pages per word); both report the lowest faulting
// page. u64 fields are read as numbers, exact below 2^53; larger values only ever fail checks,
// and they are compared here in BigInt where the answer could depend on the low bits.

import {
  SEG_SIZE, SEG_OFF_ADDR, SEG_OFF_LEN, DOM_MAGIC, DOM_MODE, DOM_GENERATION, DOM_PAGES, DOM_WINDOW_COUNT,
  DOM_WINDOWS, DOM_WINDOW_SIZE, DOM_MAX_WINDOWS, DOM_HEADER_SIZE, DOM_MAGIC_VALUE, DOM_MODE_IDENTITY,
  DOM_MODE_STRICT, DOM_PAGE_SHIFT, DMA_READ, DMA_WRITE, DMA_RES_INDEX, DMA_RES_ADDR_LO, DMA_RES_ADDR_HI,
  DMA_RES_DETAIL, DMA_RES_SIZE, E_InvalidArgument, E_OutsideGuestRam, E_IommuFault, E_DmaStale,
  E_DmaDeviceWindow, E_InvalidDomain, E_DmaOverrun,
} from '../generated/constants';
import type { Core } from '../engine/core';
import type { DmaFunctions } from '../engine/types';

const MAX_LEN = 0x7fffffff;
const PAGE = 2 ** DOM_PAGE_SHIFT;
type U9 = [number, number, number, number, number, number, number, number, number];
const overlaps = (a: number, alen: number, b: number, blen: number) => alen !== 0 && blen !== 0 && a < b + blen && b < a + alen;

export function createReferenceDma(core: Core): DmaFunctions {
  const inMemory = (ptr: number, len: number) => {
    const size = core.byteLength;
    return len <= size && ptr <= size - len;
  };
  const u32 = (at: number) => core.u32[at >>> 2]!;
  // Words a peer thread may change while a DMA runs (generation, permission table): Atomics.
  const ld = (at: number) => Atomics.load(core.u32, at >>> 2);
  const u64 = (at: number) => BigInt(u32(at)) + (BigInt(u32(at + 4)) << 32n);
  const segAddr = (segs: number, i: number) => u64(segs + i * SEG_SIZE + SEG_OFF_ADDR);
  const segLen = (segs: number, i: number) => u32(segs + i * SEG_SIZE + SEG_OFF_LEN);
  const bits = (table: number, pg: number) => (ld(table + 4 * (pg >>> 4)) >>> (2 * (pg & 15))) & 3;

  function domainBytes(dom: number): number {
    if ((dom & 3) !== 0 || !inMemory(dom, DOM_HEADER_SIZE)) return 0;
    if (u32(dom + DOM_MAGIC) !== DOM_MAGIC_VALUE) return 0;
    const mode = u32(dom + DOM_MODE);
    if (mode !== DOM_MODE_IDENTITY && mode !== DOM_MODE_STRICT) return 0;
    if (u32(dom + DOM_WINDOW_COUNT) > DOM_MAX_WINDOWS) return 0;
    if (mode === DOM_MODE_IDENTITY) return DOM_HEADER_SIZE;
    const bytes = DOM_HEADER_SIZE + Math.floor((u32(dom + DOM_PAGES) + 15) / 16) * 4;
    return bytes > MAX_LEN || !inMemory(dom, bytes) ? 0 : bytes;
  }

  function fail(res: number, status: number, index: number, addr: bigint, detail: number): number {
    const w = res >>> 2;
    core.u32[w + DMA_RES_INDEX / 4] = index;
    core.u32[w + DMA_RES_ADDR_LO / 4] = Number(addr & 0xffffffffn);
    core.u32[w + DMA_RES_ADDR_HI / 4] = Number(addr >> 32n);
    core.u32[w + DMA_RES_DETAIL / 4] = detail >>> 0;
    return status;
  }

  /** The Wasm engine's check(), step for step (see assembly/dma.ts for the reasons). */
  function check(dom: number, gen: number, guestBase: number, guestBytes: number, segs: number, n: number, buf: number,
    bufLen: number, need: number, len: number, res: number): number {
    if ((res & 3) !== 0 || !inMemory(res, DMA_RES_SIZE) || !inMemory(guestBase, guestBytes)) return E_InvalidArgument;
    if ((segs & 7) !== 0 || n > Math.floor(MAX_LEN / SEG_SIZE) || !inMemory(segs, n * SEG_SIZE)) return E_InvalidArgument;
    if (len > MAX_LEN || !inMemory(buf, bufLen)) return E_InvalidArgument;
    const segBytes = n * SEG_SIZE;
    if (overlaps(segs, segBytes, guestBase, guestBytes) || overlaps(res, DMA_RES_SIZE, guestBase, guestBytes) ||
        overlaps(res, DMA_RES_SIZE, segs, segBytes) || overlaps(buf, bufLen, segs, segBytes) || overlaps(buf, bufLen, res, DMA_RES_SIZE)) {
      return E_InvalidArgument;
    }
    let strict = false;
    let windows = 0;
    if (dom !== 0) {
      if (overlaps(buf, bufLen, guestBase, guestBytes)) return E_InvalidArgument;
      const db = domainBytes(dom);
      if (db === 0 || overlaps(dom, db, guestBase, guestBytes) || overlaps(dom, db, buf, bufLen) ||
          overlaps(dom, db, segs, segBytes) || overlaps(dom, db, res, DMA_RES_SIZE)) return E_InvalidDomain;
      strict = u32(dom + DOM_MODE) === DOM_MODE_STRICT;
      windows = u32(dom + DOM_WINDOW_COUNT);
    }
    core.u8.fill(0, res, res + DMA_RES_SIZE);
    if (dom !== 0) {
      const now = ld(dom + DOM_GENERATION);
      if (now !== gen || (now & 1) !== 0) return fail(res, E_DmaStale, 0, 0n, now);
    }
    const g = BigInt(guestBytes);
    const pages = strict ? u32(dom + DOM_PAGES) : 0;
    const table = dom + DOM_HEADER_SIZE;
    let remaining = len;
    for (let i = 0; i < n && remaining !== 0; i++) {
      const l = Math.min(segLen(segs, i), remaining);
      if (l === 0) continue;
      const a = segAddr(segs, i);
      const bl = BigInt(l);
      for (let w = 0; w < windows; w++) {
        const ws = u64(dom + DOM_WINDOWS + w * DOM_WINDOW_SIZE);
        const wl = u64(dom + DOM_WINDOWS + w * DOM_WINDOW_SIZE + 8);
        if (a >= ws ? a - ws < wl : ws - a < bl) return fail(res, E_DmaDeviceWindow, i, a > ws ? a : ws, w);
      }
      if (!(bl <= g && a <= g - bl)) return fail(res, E_OutsideGuestRam, i, a > g ? a : g, 0);
      if (strict) {
        const start = Number(a);
        const p0 = Math.floor(start / PAGE);
        const p1 = Math.floor((start + l - 1) / PAGE);
        for (let pg = p0; pg <= p1; pg++) {
          if (pg >= pages || (bits(table, pg) & need) !== need) {
            const at = pg * PAGE;
            return fail(res, E_IommuFault, i, BigInt(Math.max(start, at)), pg < pages ? bits(table, pg) : 0);
          }
        }
      }
      remaining -= l;
    }
    if (remaining !== 0) return fail(res, E_DmaOverrun, n, 0n, len - remaining);
    return 0;
  }

  function move(guestBase: number, segs: number, n: number, buf: number, len: number, toGuest: boolean): void {
    const u8 = core.u8;
    let off = 0;
    let remaining = len;
    for (let i = 0; i < n && remaining !== 0; i++) {
      const l = Math.min(segLen(segs, i), remaining);
      if (l === 0) continue;
      const g = guestBase + Number(segAddr(segs, i));
      if (toGuest) u8.copyWithin(g, buf + off, buf + off + l);
      else u8.copyWithin(buf + off, g, g + l);
      off += l;
      remaining -= l;
    }
  }

  return {
    // Arguments are coerced the way a Wasm i32/u32 parameter is (ToUint32), so hostile numbers
    // from JS mean the same thing to both engines.
    dmaCheck(dom, gen, guestBase, guestBytes, segs, n, access, len, res) {
      [dom, gen, guestBase, guestBytes, segs, n, access, len, res] = [dom, gen, guestBase, guestBytes, segs, n, access, len, res].map((x) => x >>> 0) as U9;
      if (access === 0 || (access & ~(DMA_READ | DMA_WRITE)) !== 0) return E_InvalidArgument;
      const st = check(dom, gen, guestBase, guestBytes, segs, n, 0, 0, access, len, res);
      return st < 0 ? st : len;
    },
    dmaGather(dom, gen, guestBase, guestBytes, segs, n, buf, len, res) {
      [dom, gen, guestBase, guestBytes, segs, n, buf, len, res] = [dom, gen, guestBase, guestBytes, segs, n, buf, len, res].map((x) => x >>> 0) as U9;
      const st = check(dom, gen, guestBase, guestBytes, segs, n, buf, len, DMA_READ, len, res);
      if (st < 0) return st;
      move(guestBase, segs, n, buf, len, false);
      return len;
    },
    dmaScatter(dom, gen, guestBase, guestBytes, segs, n, buf, len, res) {
      [dom, gen, guestBase, guestBytes, segs, n, buf, len, res] = [dom, gen, guestBase, guestBytes, segs, n, buf, len, res].map((x) => x >>> 0) as U9;
      const st = check(dom, gen, guestBase, guestBytes, segs, n, buf, len, DMA_WRITE, len, res);
      if (st < 0) return st;
      move(guestBase, segs, n, buf, len, true);
      return len;
    },
    // Always in order: the Wasm engine interleaves only where that gives the same bytes.
    dmaCopyBatch(table, count) {
      [table, count] = [table >>> 0, count >>> 0];
      if (count > 0x1000000 || !inMemory(table, count * 12)) return E_InvalidArgument;
      for (let i = 0; i < count; i++) {
        const e = table + i * 12;
        const dst = u32(e);
        if (!inMemory(dst, u32(e + 8)) || !inMemory(u32(e + 4), u32(e + 8))) return E_InvalidArgument;
        if (dst < table + count * 12 && table < dst + u32(e + 8)) return E_InvalidArgument; // onto the table (P5)
      }
      const u8 = core.u8;
      for (let i = 0; i < count; i++) {
        const e = table + i * 12;
        const src = u32(e + 4);
        u8.copyWithin(u32(e), src, src + u32(e + 8));
      }
      return 0;
    },
  };
}
