// Helpers shared by the PRP (prp.ts) and SGL (sgl.ts) engines: the configuration block check,
// the encoding of an NVMe status as a return value, and the host-region checks. Not part of
// the export surface (assembly/index.ts does not re-export this file).

import {
  NVME_CFG_MPS, NVME_CFG_FLAGS, NVME_WALK_EXTERNAL, NVME_CFG_GUEST_BASE, NVME_CFG_GUEST_BYTES, NVME_CFG_SCRATCH, NVME_CFG_SCRATCH_BYTES,
  NVME_CFG_SIZE, NVME_MPS_MIN, NVME_MPS_MAX, NVME_REASON_SHIFT, NVME_DNR, NVME_SCT_GENERIC, NVME_SCT_SHIFT,
  E_InvalidArgument, E_NvmeInvalidConfig, E_NvmeListPoolTooSmall, E_NvmeBadListPage,
} from './generated/constants';
import { inMemory } from './mem';
import { guestRange } from './guest';

/**
 * An NVMe completion status as an engine result (scripts/constants/nvme.mjs): always
 * <= -65536, so it cannot be mistaken for an engine status (-1 .. -99) or a count.
 */
// @ts-ignore: decorator
@inline export function nvmeStatus(reason: u32, sc: u32, dnr: bool): i32 {
  return -<i32>((reason << NVME_REASON_SHIFT) | (dnr ? NVME_DNR : 0) | (NVME_SCT_GENERIC << NVME_SCT_SHIFT) | sc);
}

/** True when `count` records of `size` bytes at ptr lie in memory and ptr is 8-aligned. */
// @ts-ignore: decorator
@inline export function hostArray(ptr: usize, count: u32, size: u32): bool {
  const bytes = <u64>count * size;
  return (ptr & 7) == 0 && bytes <= 0x7fffffff && inMemory(ptr, <usize>bytes);
}

/**
 * Checks the configuration block: 8-aligned and in memory (else InvalidArgument); page size a
 * power of two in [4 KiB, 64 KiB], guest window in memory and 8-aligned, and, when the need
 * (pages * page size + bytes) is not 0, a scratch area at least that large (else
 * NvmeInvalidConfig). Cheap enough to run on every call, so a rewritten block cannot skip it.
 */
export function checkCfg(cfg: usize, scratchPages: u32, scratchBytes: u32): i32 {
  if ((cfg & 7) != 0 || !inMemory(cfg, NVME_CFG_SIZE)) return E_InvalidArgument;
  const mps = load<u32>(cfg, NVME_CFG_MPS);
  if (mps < NVME_MPS_MIN || mps > NVME_MPS_MAX || (mps & (mps - 1)) != 0) return E_NvmeInvalidConfig;
  const need = scratchPages * mps + scratchBytes;
  // An external guest is only read, through the host, by walks (need > 0); builders write the window.
  if ((load<u32>(cfg, NVME_CFG_FLAGS) & NVME_WALK_EXTERNAL) != 0) {
    if (need == 0) return E_NvmeInvalidConfig;
  } else {
    const gbase = <usize>load<u32>(cfg, NVME_CFG_GUEST_BASE);
    if ((gbase & 7) != 0 || !inMemory(gbase, <usize>load<u32>(cfg, NVME_CFG_GUEST_BYTES))) return E_NvmeInvalidConfig;
  }
  if (need > 0) {
    const scratch = <usize>load<u32>(cfg, NVME_CFG_SCRATCH);
    const bytes = load<u32>(cfg, NVME_CFG_SCRATCH_BYTES);
    if ((scratch & 7) != 0 || bytes < need || !inMemory(scratch, <usize>bytes)) return E_NvmeInvalidConfig;
  }
  return 0;
}

/**
 * How many pool pages a chained list of `items` entries needs when the first page holds `cap0`
 * slots and every further page `full`: the last slot of a page that is not the last page is a
 * pointer to the next one (PRP §3.1 rule 6, SGL Segment descriptors). Checks that the pool has
 * them, that every page after the first is aligned and that each lies in guest RAM. Returns the
 * page count or a negative status. Shared by the PRP and SGL builders.
 */
// @ts-ignore: decorator
@inline export function reserveListPages(pool: usize, poolCount: u32, items: u32, cap0: u32, full: u32, mps: u32, gbytes: u64): i32 {
  const mask = <u64>(mps - 1);
  let pages: u32 = 1;
  let left = items;
  let cap = cap0;
  while (left > cap) {
    left -= cap - 1;
    cap = full;
    pages++;
  }
  if (pages > poolCount) return E_NvmeListPoolTooSmall;
  for (let j: u32 = 0; j < pages; j++) {
    const p = load<u64>(pool + (<usize>j << 3));
    if (j > 0 && (p & mask) != 0) return E_NvmeBadListPage;
    if (!guestRange(gbytes, p, mps - <u32>(p & mask))) return E_NvmeBadListPage;
  }
  return <i32>pages;
}
