// NVMe SGLs (spec/nvme.md §4): the builder a host driver runs (segments -> SGL1 and descriptor
// segments in pool pages) and the walker a controller runs (SGL1, length -> segments or an
// NVMe status), each as one call and as a batch of command records.
//
// The walker follows the controller table of §4 (QEMU nvme_map_sgl): segments are read in
// chunks of 256 descriptors, each chunk copied into the private scratch area before it is
// parsed (checklist 27); every read and data range is checked against the guest window; loops
// are bounded by the mapping cap, a descriptor budget and the rule that every chained segment
// must map data (checklist 26, P4).
//
// Descriptor identifiers: only sub-type 0 (Address) is meaningful over PCIe, so an identifier
// other than exactly 0x00 (Data Block), 0x20 (Segment) or 0x30 (Last Segment) is treated as an
// unsupported type (Bit Bucket included, as QEMU does; QEMU looks at the type nibble only).
// As in QEMU, only the part of a data descriptor the transfer uses must lie in guest RAM, and
// with "excess length" the rest of a chunk is not examined. Our additions: the descriptor
// budget (NVME_CFG_MAX_DESCRIPTORS, Internal Error + DNR) bounds the reads of a walk whose
// segments are long runs of zero-length descriptors.

import {
  NVME_CFG_MPS, NVME_CFG_MAX_BYTES, NVME_CFG_FLAGS, NVME_CFG_GUEST_BASE, NVME_CFG_GUEST_BYTES,
  NVME_CFG_MAX_MAPPINGS, NVME_CFG_SCRATCH, NVME_CFG_MAX_DESCRIPTORS, NVME_WALK_MERGE, NVME_WALK_SGL_EXCESS, NVME_WALK_EXTERNAL,
  NVME_CMD_DPTR, NVME_CMD_LENGTH, NVME_CMD_STATUS, NVME_CMD_FIRST, NVME_CMD_COUNT, NVME_CMD_SIZE,
  NVME_SC_INVALID_FIELD, NVME_SC_DATA_TRANSFER_ERROR, NVME_SC_INTERNAL_ERROR,
  NVME_SC_INVALID_SGL_SEGMENT_DESCRIPTOR, NVME_SC_INVALID_NUMBER_OF_SGL_DESCRIPTORS,
  NVME_SC_DATA_SGL_LENGTH_INVALID, NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID,
  NVME_WHY_MDTS, NVME_WHY_LIST_OUTSIDE, NVME_WHY_DATA_OUTSIDE, NVME_WHY_TOO_MANY_MAPPINGS, NVME_WHY_SGL1_TYPE,
  NVME_WHY_SEGMENT_LENGTH, NVME_WHY_ADDRESS_OVERFLOW, NVME_WHY_SEGMENT_NOT_LAST, NVME_WHY_DESCRIPTOR_TYPE,
  NVME_WHY_LAST_ENDS_IN_POINTER, NVME_WHY_NO_PROGRESS, NVME_WHY_EXCESS, NVME_WHY_SHORT, NVME_WHY_POINTER_TYPE,
  NVME_WHY_TOO_MANY_DESCRIPTORS, SGL_DESC_SIZE, SGL_OFF_LEN, SGL_OFF_ID, SGL_TYPE_SEGMENT, SGL_TYPE_LAST_SEGMENT,
  SGL_CHUNK_DESCRIPTORS, SEG_SIZE, SEG_OFF_LEN, SEG_OFF_FLAGS,
  E_InvalidArgument, E_BufferTooSmall, E_NvmeEmptySegment, E_NvmeTransferTooLarge, E_NvmeListPoolTooSmall,
  E_NvmeBadListPage,
} from './generated/constants';
import { guestRange, guestSnapshot } from './guest';
import { checkCfg, hostArray, nvmeStatus, reserveListPages } from './nvme';

const ID_DATA: u32 = 0x00;
const ID_SEGMENT: u32 = SGL_TYPE_SEGMENT << 4;
const ID_LAST: u32 = SGL_TYPE_LAST_SEGMENT << 4;
const CHUNK_BYTES: u32 = SGL_CHUNK_DESCRIPTORS * SGL_DESC_SIZE;

// @ts-ignore: decorator
@inline function isPointer(id: u32): bool {
  return id == ID_SEGMENT || id == ID_LAST;
}

// ---- walker (controller side, §4 table) ---------------------------------------------------

/**
 * Walks one command's SGL (SGL1 at `dptr`, a host copy) into segments at `out`. Returns the
 * segment count, E_BufferTooSmall, or an NVMe status. Same check order as QEMU: the chunks of a
 * segment in order; in the last chunk the last descriptor decides (data: the SGL ends here;
 * pointer: next segment, not allowed in a Last Segment); each data descriptor: type, zero
 * length skipped, excess, 64-bit overflow, guest window, mapping cap.
 */
// @ts-ignore: decorator
@inline function walkOne(dptr: usize, len: u32, out: usize, outCap: u32, maxBytes: u32, flags: u32, gbase: usize,
  gbytes: u64, maxMaps: u32, maxDescs: u32, scratch: usize): i32 {
  if (len == 0) return 0; // checklist 25: no memory touched
  if (maxBytes != 0 && len > maxBytes) return nvmeStatus(NVME_WHY_MDTS, NVME_SC_INVALID_FIELD, true);
  const merge = (flags & NVME_WALK_MERGE) != 0;
  const excessOk = (flags & NVME_WALK_SGL_EXCESS) != 0;

  // A Data Block in SGL1 is a one-descriptor SGL read from the command itself.
  const single = <u32>load<u8>(dptr, SGL_OFF_ID) == ID_DATA;
  let segId = <u32>load<u8>(dptr, SGL_OFF_ID);
  let segAddr = load<u64>(dptr);
  let segLen = load<u32>(dptr, SGL_OFF_LEN);
  let n: u32 = 0;
  let lastLen: u32 = 0;
  let end: u64 = 0;
  let maps: u32 = 0;
  let descs: u32 = 0;
  let firstSegment = true;
  while (true) {
    let total: u32 = 1;
    if (!single) {
      if (!isPointer(segId)) {
        return nvmeStatus(firstSegment ? NVME_WHY_SGL1_TYPE : NVME_WHY_POINTER_TYPE, NVME_SC_INVALID_SGL_SEGMENT_DESCRIPTOR, true);
      }
      if (segLen == 0 || (segLen & 15) != 0) return nvmeStatus(NVME_WHY_SEGMENT_LENGTH, NVME_SC_INVALID_SGL_SEGMENT_DESCRIPTOR, true);
      if (segAddr > u64.MAX_VALUE - <u64>segLen) return nvmeStatus(NVME_WHY_ADDRESS_OVERFLOW, NVME_SC_DATA_SGL_LENGTH_INVALID, true);
      total = segLen >> 4;
      if (total > maxDescs - descs) return nvmeStatus(NVME_WHY_TOO_MANY_DESCRIPTORS, NVME_SC_INTERNAL_ERROR, true);
      descs += total;
    }
    firstSegment = false;
    const prevLen = len;
    let done: u32 = 0;
    let final = false;
    let nextId: u32 = 0;
    let nextAddr: u64 = 0;
    let nextLen: u32 = 0;
    while (done < total) {
      const c = min<u32>(total - done, SGL_CHUNK_DESCRIPTORS);
      if (single) {
        memory.copy(scratch, dptr, SGL_DESC_SIZE);
      } else {
        const at = segAddr + (<u64>done << 4);
        if (!guestRange(gbytes, at, <u64>c << 4)) return nvmeStatus(NVME_WHY_LIST_OUTSIDE, NVME_SC_DATA_TRANSFER_ERROR, false);
        if (!guestSnapshot((flags & NVME_WALK_EXTERNAL) != 0, scratch, gbase, at, c << 4)) {
          return nvmeStatus(NVME_WHY_LIST_OUTSIDE, NVME_SC_DATA_TRANSFER_ERROR, false);
        }
      }
      let nData = c;
      if (done + c == total) {
        const last = scratch + (<usize>(c - 1) << 4);
        if (<u32>load<u8>(last, SGL_OFF_ID) == ID_DATA) {
          final = true;
        } else {
          if (segId == ID_LAST) return nvmeStatus(NVME_WHY_LAST_ENDS_IN_POINTER, NVME_SC_INVALID_SGL_SEGMENT_DESCRIPTOR, true);
          nextId = <u32>load<u8>(last, SGL_OFF_ID);
          nextAddr = load<u64>(last);
          nextLen = load<u32>(last, SGL_OFF_LEN);
          nData = c - 1;
        }
      }
      for (let i: u32 = 0; i < nData; i++) {
        const d = scratch + (<usize>i << 4);
        const id = <u32>load<u8>(d, SGL_OFF_ID);
        if (id != ID_DATA) {
          if (isPointer(id)) return nvmeStatus(NVME_WHY_SEGMENT_NOT_LAST, NVME_SC_INVALID_NUMBER_OF_SGL_DESCRIPTORS, true);
          return nvmeStatus(NVME_WHY_DESCRIPTOR_TYPE, NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID, true);
        }
        const dlen = load<u32>(d, SGL_OFF_LEN);
        if (dlen == 0) continue;
        if (len == 0) {
          // All data mapped: further data is allowed only with SGLS "excess length"; then the
          // rest of this group is not examined (QEMU).
          if (excessOk) break;
          return nvmeStatus(NVME_WHY_EXCESS, NVME_SC_DATA_SGL_LENGTH_INVALID, true);
        }
        const a = load<u64>(d);
        const t = min<u32>(len, dlen);
        if (a > u64.MAX_VALUE - <u64>dlen) return nvmeStatus(NVME_WHY_ADDRESS_OVERFLOW, NVME_SC_DATA_SGL_LENGTH_INVALID, true);
        if (!guestRange(gbytes, a, t)) return nvmeStatus(NVME_WHY_DATA_OUTSIDE, NVME_SC_DATA_TRANSFER_ERROR, false);
        if (maps >= maxMaps) return nvmeStatus(NVME_WHY_TOO_MANY_MAPPINGS, NVME_SC_INTERNAL_ERROR, true);
        maps++;
        // The first segment of a command has no predecessor (item 23).
        if (merge && n > 0 && a == end) {
          lastLen += t;
          store<u32>(out + (<usize>(n - 1) << 4), lastLen, SEG_OFF_LEN);
        } else {
          if (n >= outCap) return E_BufferTooSmall;
          const p = out + (<usize>n << 4);
          store<u64>(p, a);
          store<u32>(p, t, SEG_OFF_LEN);
          store<u32>(p, 0, SEG_OFF_FLAGS);
          n++;
          lastLen = t;
        }
        end = a + t;
        len -= t;
      }
      done += c;
    }
    if (final) break;
    // QEMU's loop guard: a chained segment that mapped nothing could repeat forever.
    if (len == prevLen) return nvmeStatus(NVME_WHY_NO_PROGRESS, NVME_SC_INVALID_SGL_SEGMENT_DESCRIPTOR, true);
    segId = nextId;
    segAddr = nextAddr;
    segLen = nextLen;
  }
  if (len != 0) return nvmeStatus(NVME_WHY_SHORT, NVME_SC_DATA_SGL_LENGTH_INVALID, true);
  return <i32>n;
}

/**
 * Walks SGL1 at `dptr` (16 bytes, the SQE bytes 24..39 as the host copied them) for `len`
 * bytes. Returns the number of segments written to `out`, a negative engine status, or an NVMe
 * status (<= -65536). The scratch area must hold 4096 bytes (one chunk of descriptors).
 */
export function sglWalk(cfg: usize, dptr: usize, len: u32, out: usize, outCap: u32): i32 {
  const st = checkCfg(cfg, 0, CHUNK_BYTES);
  if (st != 0) return st;
  if (!hostArray(dptr, 1, SGL_DESC_SIZE) || !hostArray(out, outCap, SEG_SIZE)) return E_InvalidArgument;
  return walkOne(dptr, len, out, outCap, load<u32>(cfg, NVME_CFG_MAX_BYTES), load<u32>(cfg, NVME_CFG_FLAGS),
    <usize>load<u32>(cfg, NVME_CFG_GUEST_BASE), <u64>load<u32>(cfg, NVME_CFG_GUEST_BYTES), load<u32>(cfg, NVME_CFG_MAX_MAPPINGS),
    load<u32>(cfg, NVME_CFG_MAX_DESCRIPTORS), <usize>load<u32>(cfg, NVME_CFG_SCRATCH));
}

/** Batch form of sglWalk over command records; same contract as prpWalkBatch. */
export function sglWalkBatch(cfg: usize, cmds: usize, count: u32, out: usize, outCap: u32): i32 {
  const st = checkCfg(cfg, 0, CHUNK_BYTES);
  if (st != 0) return st;
  if (!hostArray(cmds, count, NVME_CMD_SIZE) || !hostArray(out, outCap, SEG_SIZE)) return E_InvalidArgument;
  // The configuration is read once per call: a batch sees one configuration throughout.
  const maxBytes = load<u32>(cfg, NVME_CFG_MAX_BYTES);
  const flags = load<u32>(cfg, NVME_CFG_FLAGS);
  const gbase = <usize>load<u32>(cfg, NVME_CFG_GUEST_BASE);
  const gbytes = <u64>load<u32>(cfg, NVME_CFG_GUEST_BYTES);
  const maxMaps = load<u32>(cfg, NVME_CFG_MAX_MAPPINGS);
  const maxDescs = load<u32>(cfg, NVME_CFG_MAX_DESCRIPTORS);
  const scratch = <usize>load<u32>(cfg, NVME_CFG_SCRATCH);
  let used: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const c = cmds + <usize>i * NVME_CMD_SIZE;
    const r = walkOne(c + NVME_CMD_DPTR, load<u32>(c, NVME_CMD_LENGTH), out + (<usize>used << 4), outCap - used,
      maxBytes, flags, gbase, gbytes, maxMaps, maxDescs, scratch);
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

// ---- builder (host-driver side, §4 "Host construction patterns") ------------------------

// @ts-ignore: decorator
@inline function putDesc(p: usize, addr: u64, len: u32, id: u32): void {
  store<u64>(p, addr);
  store<u32>(p, len, SGL_OFF_LEN);
  store<u32>(p, id << 24, 12);
}

/**
 * One segment -> a Data Block inline in SGL1. More -> SGL1 is a Last Segment over a descriptor
 * array in the first pool page, or, when more descriptors remain than fit, a Segment whose last
 * slot points to the next page (Segment, or Last Segment for the final one), as older Linux
 * did. The last slot is a pointer only when more than one descriptor remains, like PRP rule 6.
 * Pool pages: the first may carry a 16-byte-aligned offset leaving room for at least two
 * descriptors; later ones are page aligned; all lie in guest RAM. Checked before any write.
 */
// @ts-ignore: decorator
@inline function buildOne(segs: usize, nsegs: u32, pool: usize, poolCount: u32, rec: usize, mps: u32, maxBytes: u32,
  gbase: usize, gbytes: u64): i32 {
  const mask = <u64>(mps - 1);
  let total: u64 = 0;
  for (let i: u32 = 0; i < nsegs; i++) {
    const s = segs + (<usize>i << 4);
    const l = load<u32>(s, SEG_OFF_LEN);
    if (l == 0) return E_NvmeEmptySegment;
    if (load<u64>(s) > u64.MAX_VALUE - <u64>l) return E_InvalidArgument;
    total += l;
    if (total > 0xffffffff) return E_NvmeTransferTooLarge;
  }
  if (maxBytes != 0 && total > maxBytes) return E_NvmeTransferTooLarge;
  if (nsegs <= 1) {
    if (nsegs == 0) putDesc(rec + NVME_CMD_DPTR, 0, 0, ID_DATA);
    else putDesc(rec + NVME_CMD_DPTR, load<u64>(segs), load<u32>(segs, SEG_OFF_LEN), ID_DATA);
    store<u32>(rec, <u32>total, NVME_CMD_LENGTH);
    return 0;
  }
  if (poolCount == 0) return E_NvmeListPoolTooSmall;
  const p0 = load<u64>(pool);
  const full = mps >> 4;
  const cap0 = (mps - <u32>(p0 & mask)) >> 4;
  if ((p0 & 15) != 0 || cap0 < 2) return E_NvmeBadListPage;
  const reserved = reserveListPages(pool, poolCount, nsegs, cap0, full, mps, gbytes);
  if (reserved < 0) return reserved;
  const pages = <u32>reserved;

  // Each pointer's length is the size of the segment it points to.
  let left = nsegs;
  let cap = cap0;
  putDesc(rec + NVME_CMD_DPTR, p0, (left > cap ? cap : left) << 4, left > cap ? ID_SEGMENT : ID_LAST);
  let page: u32 = 0;
  let at = gbase + <usize>p0;
  let slot: u32 = 0;
  for (let i: u32 = 0; i < nsegs; i++) {
    if (slot == cap - 1 && left > 1) {
      page++;
      const next = load<u64>(pool + (<usize>page << 3));
      putDesc(at + (<usize>slot << 4), next, (left > full ? full : left) << 4, left > full ? ID_SEGMENT : ID_LAST);
      at = gbase + <usize>next;
      slot = 0;
      cap = full;
    }
    const s = segs + (<usize>i << 4);
    putDesc(at + (<usize>slot << 4), load<u64>(s), load<u32>(s, SEG_OFF_LEN), ID_DATA);
    slot++;
    left--;
  }
  store<u32>(rec, <u32>total, NVME_CMD_LENGTH);
  return <i32>pages;
}

/** Builds one SGL: segments -> SGL1 and LENGTH in record `rec`. Returns pool pages used. */
export function sglBuild(cfg: usize, segs: usize, nsegs: u32, pool: usize, poolCount: u32, rec: usize): i32 {
  const st = checkCfg(cfg, 0, 0);
  if (st != 0) return st;
  if (!hostArray(segs, nsegs, SEG_SIZE) || !hostArray(pool, poolCount, 8) || !hostArray(rec, 1, NVME_CMD_SIZE)) return E_InvalidArgument;
  return buildOne(segs, nsegs, pool, poolCount, rec, load<u32>(cfg, NVME_CFG_MPS), load<u32>(cfg, NVME_CFG_MAX_BYTES),
    <usize>load<u32>(cfg, NVME_CFG_GUEST_BASE), <u64>load<u32>(cfg, NVME_CFG_GUEST_BYTES));
}

/**
 * Batch form of sglBuild over command records; same contract as prpBuildBatch. The loop is the
 * same as prp.ts's on purpose: a shared loop would call the builder through a function table
 * once per command, and a 4 KiB transfer is one entry per command; here the builder inlines.
 */
export function sglBuildBatch(cfg: usize, cmds: usize, count: u32, segs: usize, segCount: u32, pool: usize, poolCount: u32): i32 {
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
