// NVMe PRP lists (spec/nvme.md §3): the builder a guest driver runs (segments -> PRP1, PRP2
// and list pages in guest memory) and the walker a controller runs (PRP1, PRP2, length ->
// segments or an NVMe status), each as one call and as a batch of command records.
//
// Trust: on the walk side PRP1, PRP2 and every list page are hostile (checklist §3.3 items
// 20-27). Each list page is copied once into the private scratch area and only the copy is
// parsed (item 27); every list read and data range is checked against the guest window before
// use; the loop is bounded by the entry count that the length fixes in advance (§3.1 rule 10),
// and a chain back to a list page already read fails instead of looping (item 22).
//
// Choices where the sources differ (spec §3.3): PRP1 bits 1:0 set -> PRP Offset Invalid + DNR
// (NVME_WALK_MASK_PRP1 masks them as bhyve does); a list pointer must be qword aligned (QEMU
// reads from any offset); a chain to a list page already read -> Invalid Field + DNR; the
// mapping cap is decided from the length before any read (QEMU finds it while mapping);
// contiguous entries merge only with NVME_WALK_MERGE, and never the first segment backwards.

import {
  NVME_CFG_MPS, NVME_CFG_MAX_BYTES, NVME_CFG_FLAGS, NVME_CFG_GUEST_BASE, NVME_CFG_GUEST_BYTES,
  NVME_CFG_MAX_MAPPINGS, NVME_CFG_SCRATCH, NVME_CFG_SCRATCH_BYTES, NVME_WALK_MERGE, NVME_WALK_MASK_PRP1, NVME_WALK_EXTERNAL,
  NVME_CMD_PRP1, NVME_CMD_PRP2, NVME_CMD_LENGTH, NVME_CMD_STATUS, NVME_CMD_FIRST, NVME_CMD_COUNT, NVME_CMD_SIZE,
  NVME_SC_INVALID_FIELD, NVME_SC_DATA_TRANSFER_ERROR, NVME_SC_INTERNAL_ERROR, NVME_SC_PRP_OFFSET_INVALID,
  NVME_WHY_MDTS, NVME_WHY_PRP1_ALIGN, NVME_WHY_PRP2_ALIGN, NVME_WHY_LIST_PTR_ALIGN, NVME_WHY_ENTRY_ALIGN,
  NVME_WHY_CHAIN_ALIGN, NVME_WHY_CHAIN_LOOP, NVME_WHY_LIST_OUTSIDE, NVME_WHY_DATA_OUTSIDE,
  NVME_WHY_TOO_MANY_MAPPINGS, NVME_WHY_TOO_MANY_LIST_PAGES, SEG_SIZE, SEG_OFF_LEN, SEG_OFF_FLAGS,
  E_InvalidArgument, E_BufferTooSmall, E_NvmeNotDwordAligned, E_NvmeNotPageAligned, E_NvmeNotPageEnd,
  E_NvmeEmptySegment, E_NvmeTransferTooLarge, E_NvmeListPoolTooSmall, E_NvmeBadListPage,
} from './generated/constants';
import { guestRange, guestSnapshot } from './guest';
import { checkCfg, hostArray, nvmeStatus, reserveListPages } from './nvme';

/** ceil(bytes / page) without overflowing u32. */
// @ts-ignore: decorator
@inline function pagesOf(bytes: u32, shift: u32): u32 {
  return (bytes >> shift) + ((bytes & ((<u32>1 << shift) - 1)) != 0 ? 1 : 0);
}

// @ts-ignore: decorator
@inline function putSeg(p: usize, addr: u64, len: u32): void {
  store<u64>(p, addr);
  store<u32>(p, len, SEG_OFF_LEN);
  store<u32>(p, 0, SEG_OFF_FLAGS);
}

// ---- walker (controller side, §3.3) -------------------------------------------------------

/**
 * Walks one command's PRPs into segments at `out` (room for outCap). Returns the segment
 * count, E_BufferTooSmall, or an NVMe status. Check order: length 0 (success, nothing read),
 * MDTS, PRP1 bits 1:0, mapping cap (all before memory is read), then entries in walk order.
 */
// @ts-ignore: decorator
@inline function walkOne(prp1: u64, prp2: u64, len: u32, out: usize, outCap: u32, mps: u32, maxBytes: u32, flags: u32,
  maxMaps: u32, gbase: usize, gbytes: u64, scratch: usize, scratchBytes: u32): i32 {
  if (len == 0) return 0; // checklist 25: no memory touched
  if (maxBytes != 0 && len > maxBytes) return nvmeStatus(NVME_WHY_MDTS, NVME_SC_INVALID_FIELD, true);
  if ((prp1 & 3) != 0) {
    // §3.1 rule 1: strict by default; bhyve-compatible masking on request.
    if ((flags & NVME_WALK_MASK_PRP1) == 0) return nvmeStatus(NVME_WHY_PRP1_ALIGN, NVME_SC_PRP_OFFSET_INVALID, true);
    prp1 &= ~(<u64>3);
  }
  const shift = ctz<u32>(mps);
  const mask = <u64>(mps - 1);
  const first = min<u32>(len, mps - <u32>(prp1 & mask));
  let rest = len - first;
  const entries: u32 = 1 + pagesOf(rest, shift); // §3.1 rule 10
  if (entries > maxMaps) return nvmeStatus(NVME_WHY_TOO_MANY_MAPPINGS, NVME_SC_INTERNAL_ERROR, true);
  const merge = (flags & NVME_WALK_MERGE) != 0;

  if (!guestRange(gbytes, prp1, first)) return nvmeStatus(NVME_WHY_DATA_OUTSIDE, NVME_SC_DATA_TRANSFER_ERROR, false);
  if (outCap == 0) return E_BufferTooSmall;
  putSeg(out, prp1, first);
  // The first segment has no predecessor, so merging starts after it (item 23, bhyve PR 264177).
  let n: u32 = 1;
  let lastLen = first;
  let end = prp1 + first;
  if (rest == 0) return 1;

  if (rest <= mps) {
    // §3.1 rule 3: PRP2 is the second data pointer and must be page aligned (QEMU: 0x13 + DNR).
    if ((prp2 & mask) != 0) return nvmeStatus(NVME_WHY_PRP2_ALIGN, NVME_SC_PRP_OFFSET_INVALID, true);
    if (!guestRange(gbytes, prp2, rest)) return nvmeStatus(NVME_WHY_DATA_OUTSIDE, NVME_SC_DATA_TRANSFER_ERROR, false);
    if (merge && prp2 == end) {
      store<u32>(out, first + rest, SEG_OFF_LEN);
      return 1;
    }
    if (outCap < 2) return E_BufferTooSmall;
    putSeg(out + SEG_SIZE, prp2, rest);
    return 2;
  }

  // PRP2 is a list pointer; entries are qwords, so it must be qword aligned (our choice: QEMU
  // reads from any offset). The first list holds (MPS - offset)/8 slots (§3.1 rule 4).
  if ((prp2 & 7) != 0) return nvmeStatus(NVME_WHY_LIST_PTR_ALIGN, NVME_SC_PRP_OFFSET_INVALID, true);
  const visited = scratch + mps;
  const visitedCap = (scratchBytes - mps) >> 3;
  store<u64>(visited, prp2 & ~mask);
  let nVisited: u32 = 1;
  let list = prp2;
  let slots = (mps - <u32>(prp2 & mask)) >> 3;
  let left = entries - 1;
  while (true) {
    // §3.1 rule 6: the last slot chains only when more than the slots left remain
    // (exactly as many: all data, example F; one more: chain, example G).
    const chain = left > slots;
    const data = chain ? slots - 1 : left;
    const bytes = (chain ? slots : left) << 3;
    if (!guestRange(gbytes, list, bytes)) return nvmeStatus(NVME_WHY_LIST_OUTSIDE, NVME_SC_DATA_TRANSFER_ERROR, false);
    if (!guestSnapshot((flags & NVME_WALK_EXTERNAL) != 0, scratch, gbase, list, bytes)) {
      return nvmeStatus(NVME_WHY_LIST_OUTSIDE, NVME_SC_DATA_TRANSFER_ERROR, false);
    }
    for (let i: u32 = 0; i < data; i++) {
      const e = load<u64>(scratch + (<usize>i << 3));
      if ((e & mask) != 0) return nvmeStatus(NVME_WHY_ENTRY_ALIGN, NVME_SC_PRP_OFFSET_INVALID, true);
      const l = min<u32>(rest, mps);
      if (!guestRange(gbytes, e, l)) return nvmeStatus(NVME_WHY_DATA_OUTSIDE, NVME_SC_DATA_TRANSFER_ERROR, false);
      if (merge && e == end) {
        lastLen += l;
        store<u32>(out + (<usize>(n - 1) << 4), lastLen, SEG_OFF_LEN);
      } else {
        if (n >= outCap) return E_BufferTooSmall;
        putSeg(out + (<usize>n << 4), e, l);
        n++;
        lastLen = l;
      }
      end = e + l;
      rest -= l;
    }
    left -= data;
    if (!chain) return <i32>n;
    const next = load<u64>(scratch + (<usize>(slots - 1) << 3));
    if ((next & mask) != 0) return nvmeStatus(NVME_WHY_CHAIN_ALIGN, NVME_SC_PRP_OFFSET_INVALID, true);
    for (let v: u32 = 0; v < nVisited; v++) {
      if (load<u64>(visited + (<usize>v << 3)) == next) return nvmeStatus(NVME_WHY_CHAIN_LOOP, NVME_SC_INVALID_FIELD, true);
    }
    if (nVisited >= visitedCap) return nvmeStatus(NVME_WHY_TOO_MANY_LIST_PAGES, NVME_SC_INTERNAL_ERROR, true);
    store<u64>(visited + (<usize>nVisited << 3), next);
    nVisited++;
    list = next;
    slots = mps >> 3;
  }
  return <i32>n; // not reached
}

/**
 * Walks the data pointer at `dptr` (PRP1, PRP2: the SQE bytes 24..39 as the host copied them)
 * for a transfer of `len` bytes. Returns the number of segments written to `out`, or a
 * negative engine status (bad arguments, BufferTooSmall) or NVMe status (<= -65536).
 * The scratch area must hold one page plus 8 bytes per list page the walk may visit.
 */
export function prpWalk(cfg: usize, dptr: usize, len: u32, out: usize, outCap: u32): i32 {
  const st = checkCfg(cfg, 1, 8);
  if (st != 0) return st;
  if (!hostArray(dptr, 1, 16) || !hostArray(out, outCap, SEG_SIZE)) return E_InvalidArgument;
  return walkOne(load<u64>(dptr), load<u64>(dptr, 8), len, out, outCap, load<u32>(cfg, NVME_CFG_MPS),
    load<u32>(cfg, NVME_CFG_MAX_BYTES), load<u32>(cfg, NVME_CFG_FLAGS), load<u32>(cfg, NVME_CFG_MAX_MAPPINGS),
    <usize>load<u32>(cfg, NVME_CFG_GUEST_BASE), <u64>load<u32>(cfg, NVME_CFG_GUEST_BYTES),
    <usize>load<u32>(cfg, NVME_CFG_SCRATCH), load<u32>(cfg, NVME_CFG_SCRATCH_BYTES));
}

/**
 * Walks `count` command records. Each gets STATUS (0 or an NVMe status), FIRST and COUNT (its
 * segments in `out`, in command order; a command's first segment never merges with the
 * previous command's). Returns how many commands were done: fewer than count when `out` filled
 * up (the next command is untouched; call again from it with more room), or a negative status.
 */
export function prpWalkBatch(cfg: usize, cmds: usize, count: u32, out: usize, outCap: u32): i32 {
  const st = checkCfg(cfg, 1, 8);
  if (st != 0) return st;
  if (!hostArray(cmds, count, NVME_CMD_SIZE) || !hostArray(out, outCap, SEG_SIZE)) return E_InvalidArgument;
  // The configuration is read once per call: a batch sees one configuration throughout.
  const mps = load<u32>(cfg, NVME_CFG_MPS);
  const maxBytes = load<u32>(cfg, NVME_CFG_MAX_BYTES);
  const flags = load<u32>(cfg, NVME_CFG_FLAGS);
  const maxMaps = load<u32>(cfg, NVME_CFG_MAX_MAPPINGS);
  const gbase = <usize>load<u32>(cfg, NVME_CFG_GUEST_BASE);
  const gbytes = <u64>load<u32>(cfg, NVME_CFG_GUEST_BYTES);
  const scratch = <usize>load<u32>(cfg, NVME_CFG_SCRATCH);
  const scratchBytes = load<u32>(cfg, NVME_CFG_SCRATCH_BYTES);
  let used: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const c = cmds + <usize>i * NVME_CMD_SIZE;
    const r = walkOne(load<u64>(c, NVME_CMD_PRP1), load<u64>(c, NVME_CMD_PRP2), load<u32>(c, NVME_CMD_LENGTH),
      out + (<usize>used << 4), outCap - used, mps, maxBytes, flags, maxMaps, gbase, gbytes, scratch, scratchBytes);
    if (r == E_BufferTooSmall) return <i32>i;
    store<u32>(c, used, NVME_CMD_FIRST);
    if (r < 0) {
      store<i32>(c, r, NVME_CMD_STATUS);
      store<u32>(c, 0, NVME_CMD_COUNT);
    } else {
      store<i32>(c, 0, NVME_CMD_STATUS);
      store<u32>(c, r, NVME_CMD_COUNT);
      used += <u32>r;
    }
  }
  return <i32>count;
}

// ---- builder (guest-driver side, §3.1-3.2) ------------------------------------------------

/**
 * Builds the PRPs of `nsegs` segments (shared segment format) into record `rec` (DPTR and
 * LENGTH), writing list pages taken in order from the pool (u64 guest addresses; the first
 * may carry a qword-aligned in-page offset, later ones are page aligned). Everything is
 * checked before anything is written, so an error leaves memory as it was (checklist 19).
 * Returns the number of pool pages used.
 */
// @ts-ignore: decorator
@inline function buildOne(segs: usize, nsegs: u32, pool: usize, poolCount: u32, rec: usize, mps: u32, maxBytes: u32,
  gbase: usize, gbytes: u64): i32 {
  const shift = ctz<u32>(mps);
  const mask = <u64>(mps - 1);
  let total: u64 = 0;
  for (let i: u32 = 0; i < nsegs; i++) {
    const s = segs + (<usize>i << 4);
    const a = load<u64>(s);
    const l = load<u32>(s, SEG_OFF_LEN);
    if (l == 0) return E_NvmeEmptySegment;
    if (a > u64.MAX_VALUE - <u64>l) return E_InvalidArgument;
    if (i == 0) {
      if ((a & 3) != 0) return E_NvmeNotDwordAligned;
    } else if ((a & mask) != 0) return E_NvmeNotPageAligned;
    if (i + 1 < nsegs && ((a + l) & mask) != 0) return E_NvmeNotPageEnd;
    total += l;
    if (total > 0xffffffff) return E_NvmeTransferTooLarge;
  }
  if (maxBytes != 0 && total > maxBytes) return E_NvmeTransferTooLarge;
  if (nsegs == 0) {
    store<u64>(rec, 0, NVME_CMD_PRP1);
    store<u64>(rec, 0, NVME_CMD_PRP2);
    store<u32>(rec, 0, NVME_CMD_LENGTH);
    return 0;
  }
  const len = <u32>total;
  const a0 = load<u64>(segs);
  const l0 = load<u32>(segs, SEG_OFF_LEN);
  const first0 = min<u32>(l0, mps - <u32>(a0 & mask));
  const rest = len - min<u32>(len, mps - <u32>(a0 & mask));
  const entries: u32 = 1 + pagesOf(rest, shift);
  if (entries <= 2) {
    // §3.2: one entry -> PRP2 = 0; two -> PRP2 is the second page itself.
    let prp2: u64 = 0;
    if (entries == 2) prp2 = l0 > first0 ? (a0 & ~mask) + mps : load<u64>(segs + SEG_SIZE);
    store<u64>(rec, a0, NVME_CMD_PRP1);
    store<u64>(rec, prp2, NVME_CMD_PRP2);
    store<u32>(rec, len, NVME_CMD_LENGTH);
    return 0;
  }

  if (poolCount == 0) return E_NvmeListPoolTooSmall;
  const p0 = load<u64>(pool);
  if ((p0 & 7) != 0) return E_NvmeBadListPage;
  const full = mps >> 3;
  const slots0 = (mps - <u32>(p0 & mask)) >> 3;
  const reserved = reserveListPages(pool, poolCount, entries - 1, slots0, full, mps, gbytes);
  if (reserved < 0) return reserved;
  const pages = <u32>reserved;

  // Fill: entries after PRP1 in order; the last slot of a page becomes the chain pointer only
  // when more than one entry is still to be written (§3.1 rule 6).
  let page: u32 = 0;
  let at = gbase + <usize>p0;
  let slot: u32 = 0;
  let cap = slots0;
  let left = entries - 1;
  for (let i: u32 = 0; i < nsegs; i++) {
    const s = segs + (<usize>i << 4);
    const l = load<u32>(s, SEG_OFF_LEN);
    let a = load<u64>(s);
    let k = pagesOf(l, shift);
    if (i == 0) {
      k = pagesOf(l0 - first0, shift);
      a = (a0 & ~mask) + mps;
    }
    for (; k > 0; k--) {
      if (slot == cap - 1 && left > 1) {
        page++;
        const next = load<u64>(pool + (<usize>page << 3));
        store<u64>(at + (<usize>slot << 3), next);
        at = gbase + <usize>next;
        slot = 0;
        cap = full;
      }
      store<u64>(at + (<usize>slot << 3), a);
      slot++;
      left--;
      a += mps;
    }
  }
  store<u64>(rec, a0, NVME_CMD_PRP1);
  store<u64>(rec, p0, NVME_CMD_PRP2);
  store<u32>(rec, len, NVME_CMD_LENGTH);
  return <i32>pages;
}

/**
 * Builds one transfer: `nsegs` segments at `segs` -> PRP1/PRP2 and LENGTH in the command
 * record at `rec`, lists in pool pages. Returns the pool pages used or a negative status.
 */
export function prpBuild(cfg: usize, segs: usize, nsegs: u32, pool: usize, poolCount: u32, rec: usize): i32 {
  const st = checkCfg(cfg, 0, 0);
  if (st != 0) return st;
  if (!hostArray(segs, nsegs, SEG_SIZE) || !hostArray(pool, poolCount, 8) || !hostArray(rec, 1, NVME_CMD_SIZE)) return E_InvalidArgument;
  return buildOne(segs, nsegs, pool, poolCount, rec, load<u32>(cfg, NVME_CFG_MPS), load<u32>(cfg, NVME_CFG_MAX_BYTES),
    <usize>load<u32>(cfg, NVME_CFG_GUEST_BASE), <u64>load<u32>(cfg, NVME_CFG_GUEST_BYTES));
}

/**
 * Builds `count` command records, each from segments [FIRST, FIRST+COUNT) of `segs`, taking
 * list pages from the pool in order. STATUS gets the pool pages that command used or its error
 * (which uses none). Returns the pool pages used in total, or a negative status.
 */
export function prpBuildBatch(cfg: usize, cmds: usize, count: u32, segs: usize, segCount: u32, pool: usize, poolCount: u32): i32 {
  const st = checkCfg(cfg, 0, 0);
  if (st != 0) return st;
  if (!hostArray(cmds, count, NVME_CMD_SIZE) || !hostArray(segs, segCount, SEG_SIZE) || !hostArray(pool, poolCount, 8)) return E_InvalidArgument;
  const mps = load<u32>(cfg, NVME_CFG_MPS);
  const maxBytes = load<u32>(cfg, NVME_CFG_MAX_BYTES);
  const gbase = <usize>load<u32>(cfg, NVME_CFG_GUEST_BASE);
  const gbytes = <u64>load<u32>(cfg, NVME_CFG_GUEST_BYTES);
  let used: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const c = cmds + <usize>i * NVME_CMD_SIZE;
    const first = load<u32>(c, NVME_CMD_FIRST);
    const n = load<u32>(c, NVME_CMD_COUNT);
    let r: i32 = E_InvalidArgument;
    if (first <= segCount && n <= segCount - first) {
      r = buildOne(segs + (<usize>first << 4), n, pool + (<usize>used << 3), poolCount - used, c, mps, maxBytes, gbase, gbytes);
    }
    store<i32>(c, r, NVME_CMD_STATUS);
    if (r > 0) used += <u32>r;
  }
  return <i32>used;
}
