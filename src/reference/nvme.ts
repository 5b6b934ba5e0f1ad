// Helpers shared by the reference PRP and SGL engines (twins of assembly/nvme.ts and
// assembly/guest.ts). 64-bit wire values are handled as lo/hi u32 pairs, never BigInt.

import {
  E_InvalidArgument, E_NvmeInvalidConfig, NVME_CFG_FLAGS, NVME_CFG_GUEST_BASE, NVME_CFG_GUEST_BYTES, NVME_CFG_MAX_BYTES,
  NVME_CFG_MAX_DESCRIPTORS, NVME_CFG_MAX_MAPPINGS, NVME_CFG_MPS, NVME_CFG_SCRATCH, NVME_CFG_SCRATCH_BYTES, NVME_CFG_SIZE, NVME_WALK_EXTERNAL,
  NVME_DNR, NVME_MPS_MAX, NVME_MPS_MIN, NVME_REASON_SHIFT, NVME_SCT_GENERIC, NVME_SCT_SHIFT,
  NVME_CMD_COUNT, NVME_CMD_FIRST, NVME_CMD_SIZE, NVME_CMD_STATUS, SEG_SIZE, E_NvmeBadListPage, E_NvmeListPoolTooSmall,
} from '../generated/constants';
import type { Core } from '../engine/core';

export const TWO32 = 0x1_0000_0000;
export const U32_MAX = 0xffff_ffff;

/** Same value as the Wasm nvmeStatus: -(reason << 16 | DNR | SCT << 8 | SC). */
export function nvmeStatus(reason: number, sc: number, dnr: boolean): number {
  return -(reason * (1 << NVME_REASON_SHIFT) + (dnr ? NVME_DNR : 0) + (NVME_SCT_GENERIC << NVME_SCT_SHIFT) + sc);
}

/** [lo + hi * 2^32, + len) inside a guest window of `bytes` bytes (guestRange of guest.ts). */
export function guestRange(bytes: number, lo: number, hi: number, len: number): boolean {
  return hi === 0 && len <= bytes && lo <= bytes - len;
}

/** True when the 64-bit address (lo, hi) + len passes 2^64 - 1 (the Wasm `a > MAX - len`). */
export function overflows64(lo: number, hi: number, len: number): boolean {
  return hi === U32_MAX && lo + len > U32_MAX;
}

/** Number of pages of `1 << shift` bytes covering `bytes` (< 2^32). */
export function pagesOf(bytes: number, shift: number): number {
  return Math.floor(bytes / 2 ** shift) + ((bytes & ((1 << shift) - 1)) !== 0 ? 1 : 0);
}

/** The configuration block's fields, read once per engine call as the Wasm engine does. */
export interface NvmeConfig {
  mps: number;
  maxBytes: number;
  flags: number;
  gbase: number;
  gbytes: number;
  maxMaps: number;
  scratch: number;
  scratchBytes: number;
  maxDescs: number;
}

/** Memory accessors over a core; re-read the views on every call (memory may grow). */
export function memoryOps(core: Core) {
  const inMemory = (ptr: number, len: number) => {
    const size = core.byteLength;
    return len <= size && ptr <= size - len;
  };
  return {
    inMemory,
    /** The Wasm hostArray: 8-aligned, at most 2^31 - 1 bytes, inside memory. */
    hostArray(ptr: number, count: number, size: number): boolean {
      const bytes = count * size;
      return (ptr & 7) === 0 && bytes <= 0x7fffffff && inMemory(ptr, bytes);
    },
    ld32: (p: number) => core.u32[p >>> 2]!,
    st32: (p: number, v: number) => void (core.u32[p >>> 2] = v >>> 0),
    ld8: (p: number) => core.u8[p]!,
    /** memory.copy (memmove semantics). */
    copy: (dst: number, src: number, n: number) => void core.u8.copyWithin(dst, src, src + n),
    /** guestSnapshot of assembly/guest.ts: from the guest window, or through the host's guestRead. */
    guestSnapshot(external: boolean, dst: number, gbase: number, gpa: number, n: number): boolean {
      if (external) return core.guestRead(dst, gpa, n) === 0;
      core.u8.copyWithin(dst, gbase + gpa, gbase + gpa + n);
      return true;
    },
    readCfg(cfg: number): NvmeConfig {
      const u32 = core.u32;
      const f = (off: number) => u32[(cfg + off) >>> 2]!;
      return {
        mps: f(NVME_CFG_MPS), maxBytes: f(NVME_CFG_MAX_BYTES), flags: f(NVME_CFG_FLAGS), gbase: f(NVME_CFG_GUEST_BASE),
        gbytes: f(NVME_CFG_GUEST_BYTES), maxMaps: f(NVME_CFG_MAX_MAPPINGS), scratch: f(NVME_CFG_SCRATCH),
        scratchBytes: f(NVME_CFG_SCRATCH_BYTES), maxDescs: f(NVME_CFG_MAX_DESCRIPTORS),
      };
    },
    /** checkCfg of assembly/nvme.ts: 0 or a negative engine status. */
    checkCfg(cfg: number, scratchPages: number, scratchBytes: number): number {
      if ((cfg & 7) !== 0 || !inMemory(cfg, NVME_CFG_SIZE)) return E_InvalidArgument;
      const u32 = core.u32;
      const mps = u32[(cfg + NVME_CFG_MPS) >>> 2]!;
      if (mps < NVME_MPS_MIN || mps > NVME_MPS_MAX || (mps & (mps - 1)) !== 0) return E_NvmeInvalidConfig;
      const need = scratchPages * mps + scratchBytes;
      if ((u32[(cfg + NVME_CFG_FLAGS) >>> 2]! & NVME_WALK_EXTERNAL) !== 0) {
        if (need === 0) return E_NvmeInvalidConfig;
      } else {
        const gbase = u32[(cfg + NVME_CFG_GUEST_BASE) >>> 2]!;
        if ((gbase & 7) !== 0 || !inMemory(gbase, u32[(cfg + NVME_CFG_GUEST_BYTES) >>> 2]!)) return E_NvmeInvalidConfig;
      }
      if (need > 0) {
        const scratch = u32[(cfg + NVME_CFG_SCRATCH) >>> 2]!;
        const bytes = u32[(cfg + NVME_CFG_SCRATCH_BYTES) >>> 2]!;
        if ((scratch & 7) !== 0 || bytes < need || !inMemory(scratch, bytes)) return E_NvmeInvalidConfig;
      }
      return 0;
    },
  };
}

/** One command's builder, as prp.ts and sgl.ts define it: returns list pages used or a status. */
type BuildOne = (k: NvmeConfig, segs: number, nsegs: number, pool: number, poolCount: number, rec: number) => number;

/**
 * The build entry points PRP and SGL share: one command (`build`), and a batch of command records
 * each naming its slice of the segment array, taking list pages from the pool in order (`batch`).
 */
export function builders(m: ReturnType<typeof memoryOps>, buildOne: BuildOne) {
  return {
    build(cfg: number, segs: number, nsegs: number, pool: number, poolCount: number, rec: number): number {
      [cfg, segs, nsegs, pool, poolCount, rec] = [cfg >>> 0, segs >>> 0, nsegs >>> 0, pool >>> 0, poolCount >>> 0, rec >>> 0];
      const st = m.checkCfg(cfg, 0, 0);
      if (st !== 0) return st;
      if (!m.hostArray(segs, nsegs, SEG_SIZE) || !m.hostArray(pool, poolCount, 8) || !m.hostArray(rec, 1, NVME_CMD_SIZE)) return E_InvalidArgument;
      return buildOne(m.readCfg(cfg), segs, nsegs, pool, poolCount, rec);
    },
    batch(cfg: number, cmds: number, count: number, segs: number, segCount: number, pool: number, poolCount: number): number {
      [cfg, cmds, count, segs, segCount, pool, poolCount] =
        [cfg >>> 0, cmds >>> 0, count >>> 0, segs >>> 0, segCount >>> 0, pool >>> 0, poolCount >>> 0];
      const st = m.checkCfg(cfg, 0, 0);
      if (st !== 0) return st;
      if (!m.hostArray(cmds, count, NVME_CMD_SIZE) || !m.hostArray(segs, segCount, SEG_SIZE) || !m.hostArray(pool, poolCount, 8)) return E_InvalidArgument;
      const k = m.readCfg(cfg);
      let used = 0;
      for (let i = 0; i < count; i++) {
        const c = cmds + i * NVME_CMD_SIZE;
        const first = m.ld32(c + NVME_CMD_FIRST);
        const n = m.ld32(c + NVME_CMD_COUNT);
        let r = E_InvalidArgument;
        if (first <= segCount && n <= segCount - first) r = buildOne(k, segs + first * SEG_SIZE, n, pool + used * 8, poolCount - used, c);
        m.st32(c + NVME_CMD_STATUS, r);
        if (r > 0) used += r;
      }
      return used;
    },
  };
}

/** reserveListPages of assembly/nvme.ts: pool pages a chained list needs, checked, or a status. */
export function reserveListPages(m: ReturnType<typeof memoryOps>, pool: number, poolCount: number, items: number, cap0: number,
  full: number, mps: number, gbytes: number): number {
  const mask = mps - 1;
  let pages = 1;
  let left = items;
  let cap = cap0;
  while (left > cap) {
    left -= cap - 1;
    cap = full;
    pages++;
  }
  if (pages > poolCount) return E_NvmeListPoolTooSmall;
  for (let j = 0; j < pages; j++) {
    const lo = m.ld32(pool + j * 8);
    if (j > 0 && (lo & mask) !== 0) return E_NvmeBadListPage;
    if (!guestRange(gbytes, lo, m.ld32(pool + j * 8 + 4), mps - (lo & mask))) return E_NvmeBadListPage;
  }
  return pages;
}
