// The Hyper-V VMBus byte ring (spec/vmbus.md §1): one producer, one consumer, both indices
// byte offsets into the data area that follows a 4096-byte header page.
//
// Every function takes `ctl`, the caller's private control block for one endpoint (see
// CTL_* in scripts/constants.mjs). It holds the ring address and data size the caller
// validated once, the sticky error that marks the endpoint broken, and the results of the
// last call that do not fit the i32 return value (signal decision, needed bytes, packet
// header fields). The peer can only reach the ring memory itself, never `ctl`.
//
// Trust: indices, lengths and header fields read from the ring are hostile (checklist
// §3.1, §3.2 items 1-11). They are read once into locals, checked, and only then used.

import {
  RING_HEADER_SIZE, RING_OFF_WRITE_INDEX, RING_OFF_READ_INDEX, RING_OFF_INTERRUPT_MASK,
  RING_OFF_PENDING_SEND_SIZE, RING_OFF_FEATURE_BITS, RING_FEATURE_PENDING_SEND_SIZE,
  RING_MAX_TOTAL_BYTES, PAGE_SIZE, PKT_HEADER_SIZE, PKT_TRAILER_SIZE, PKT_MAX_BYTES,
  PKT_TYPE_INBAND, PKT_TYPE_RXBUF, PKT_TYPE_GPA, PKT_TYPE_COMPLETION, PKT_FLAG_COMPLETION_REQUESTED,
  CTL_RING, CTL_DATA_SIZE, CTL_ERROR, CTL_PENDING_OWNED, CTL_RES_SIGNAL, CTL_RES_BYTES,
  CTL_PKT_TYPE, CTL_PKT_FLAGS, CTL_PKT_TID_LO, CTL_PKT_TID_HI, CTL_PKT_HLEN_BYTES,
  CTL_PKT_TLEN_BYTES, CTL_RES_INDEX, CTL_SIZE, WRITE_WRITTEN, WRITE_SIGNAL, READ_PEEK,
  READ_PAYLOAD_ONLY, READ_NO_COPY, IOV_SIZE, BATCH_DESC_SIZE, BATCH_OFF_SRC, BATCH_OFF_LEN,
  BATCH_OFF_TYPE, BATCH_OFF_FLAGS, BATCH_OFF_TID,
  E_InvalidArgument, E_InvalidRingMemory, E_InvalidMessageLength, E_BufferTooSmall,
  E_InvalidRingPointer, E_InvalidDataAvailable, E_InvalidDescriptorLengths,
  E_InvalidDescriptorType, E_InvalidDescriptorFlags,
} from './generated/constants';
import { ld32, st32, inMemory, copyBytes } from './mem';

/** Internal "no room" result of reserve(); never returned to the host. */
const FULL: i32 = i32.MIN_VALUE;

// ---- ring arithmetic (spec §1.3, §1.6) ------------------------------------------------

/** Advance an index by n bytes modulo the data size; idx < size and n < size. */
// @ts-ignore: decorator
@inline function adv(idx: u32, n: u32, size: u32): u32 {
  const x = idx + n;
  return x >= size ? x - size : x;
}

/** Bytes the producer may still use (the "never completely full" rule lives in the callers). */
// @ts-ignore: decorator
@inline function availWrite(w: u32, r: u32, size: u32): u32 {
  return w >= r ? size - (w - r) : r - w;
}

// @ts-ignore: decorator
@inline function availRead(w: u32, r: u32, size: u32): u32 {
  return w >= r ? w - r : size - r + w;
}

/** Checklist 1: an index must lie in the data area and be 8-byte aligned. */
// @ts-ignore: decorator
@inline function badIndex(idx: u32, size: u32): bool {
  return idx >= size || (idx & 7) != 0;
}

// @ts-ignore: decorator
@inline function validType(type: u32): bool {
  return type == PKT_TYPE_INBAND || type == PKT_TYPE_RXBUF || type == PKT_TYPE_GPA || type == PKT_TYPE_COMPLETION;
}

/** Marks the endpoint broken with `code` and returns it (checklist behaviour B). */
function breakRing(ctl: usize, code: i32): i32 {
  store<i32>(ctl, code, CTL_ERROR);
  return code;
}

/** Copy n bytes into the ring at data offset pos, splitting at the end of the data area. */
// @ts-ignore: decorator
@inline function copyIn(data: usize, size: u32, pos: u32, src: usize, n: u32): u32 {
  const first = size - pos;
  if (n < first) {
    copyBytes(data + pos, src, n);
    return pos + n;
  }
  copyBytes(data + pos, src, first);
  copyBytes(data, src + first, n - first);
  return n - first;
}

/** Copy n bytes out of the ring from data offset pos, splitting at the end of the data area. */
// @ts-ignore: decorator
@inline function copyOut(data: usize, size: u32, pos: u32, dst: usize, n: u32): void {
  const first = size - pos;
  if (n <= first) {
    copyBytes(dst, data + pos, n);
  } else {
    copyBytes(dst, data + pos, first);
    copyBytes(dst + first, data, n - first);
  }
}

// ---- setup -----------------------------------------------------------------------------

/**
 * Fills `ctl` for the ring at `ring` spanning `totalBytes` (header page + data area).
 * Checklist 3: the size must be whole pages, at least two, below 2^31, inside memory.
 * Does not touch the ring itself: zeroing and feature bits are the creator's job.
 */
export function ringInit(ctl: usize, ring: usize, totalBytes: u32): i32 {
  if (!inMemory(ctl, CTL_SIZE) || (ctl & 7) != 0) return E_InvalidArgument;
  if ((ring & 7) != 0 || (totalBytes & (PAGE_SIZE - 1)) != 0 || totalBytes < 2 * PAGE_SIZE ||
      totalBytes > RING_MAX_TOTAL_BYTES || !inMemory(ring, totalBytes)) {
    return E_InvalidRingMemory;
  }
  memory.fill(ctl, 0, CTL_SIZE);
  store<u32>(ctl, <u32>ring, CTL_RING);
  store<u32>(ctl, totalBytes - RING_HEADER_SIZE, CTL_DATA_SIZE);
  return 0;
}

/** Clears the sticky error of this endpoint (the ring itself is left as it is). */
export function ringClearError(ctl: usize): void {
  store<i32>(ctl, 0, CTL_ERROR);
}

// ---- producer --------------------------------------------------------------------------

/**
 * Finds room for a record of `total` bytes (packet + trailer). Returns the write index, FULL,
 * or an error. Spec §1.5: refuse when avail <= total, so the ring never becomes completely
 * full (which would look empty). Checklist 5 / J6: when full and the ring advertises the
 * pending_send_sz feature, publish the need first and then re-read the read index, so a
 * consumer that drained in between cannot leave us waiting for a signal that never comes.
 */
// @ts-ignore: decorator
@inline function reserve(ctl: usize, ring: usize, size: u32, total: u32): i32 {
  if (total >= size) return E_InvalidMessageLength; // checklist 4: never "full forever"
  const w = ld32(ring + RING_OFF_WRITE_INDEX);
  let r = ld32(ring + RING_OFF_READ_INDEX);
  if (badIndex(w, size) || badIndex(r, size)) return breakRing(ctl, E_InvalidRingPointer);
  if (availWrite(w, r, size) > total) return <i32>w;
  if ((ld32(ring + RING_OFF_FEATURE_BITS) & RING_FEATURE_PENDING_SEND_SIZE) != 0) {
    st32(ring + RING_OFF_PENDING_SEND_SIZE, total);
    store<u32>(ctl, 1, CTL_PENDING_OWNED);
    r = ld32(ring + RING_OFF_READ_INDEX);
    if (badIndex(r, size)) return breakRing(ctl, E_InvalidRingPointer);
    if (availWrite(w, r, size) > total) return <i32>w;
  }
  store<u32>(ctl, total, CTL_RES_BYTES);
  return FULL;
}

/**
 * Publishes the new write index and decides whether to interrupt the consumer (spec §1.9.1):
 * after the (sequentially consistent) index store, no signal while interrupt_mask is set;
 * otherwise signal only if the consumer had read everything up to where this write began,
 * i.e. the ring went from empty to non-empty. Clears our pending_send_sz: space came back.
 */
// @ts-ignore: decorator
@inline function publish(ctl: usize, ring: usize, newW: u32, startW: u32): u32 {
  st32(ring + RING_OFF_WRITE_INDEX, newW);
  if (load<u32>(ctl, CTL_PENDING_OWNED) != 0) {
    st32(ring + RING_OFF_PENDING_SEND_SIZE, 0);
    store<u32>(ctl, 0, CTL_PENDING_OWNED);
  }
  const signal: u32 = ld32(ring + RING_OFF_INTERRUPT_MASK) == 0 && ld32(ring + RING_OFF_READ_INDEX) == startW ? 1 : 0;
  store<u32>(ctl, signal, CTL_RES_SIGNAL);
  return signal;
}

/** First header word: type, hlen = 2 (in-band header only), tlen, flags. */
// @ts-ignore: decorator
@inline function headerWord(type: u32, flags: u32, tlen: u32): u64 {
  return <u64>type | (<u64>2 << 16) | (<u64>tlen << 32) | (<u64>flags << 48);
}

/**
 * Writes header, zero padding and trailer of a packet of `len` payload bytes starting at w;
 * the caller copies the payload to data offset w+16 (mod size). Each 8-byte word sits at an
 * 8-aligned offset of a data area whose size is a multiple of 8, so no word straddles the wrap.
 */
// @ts-ignore: decorator
@inline function frame(data: usize, size: u32, w: u32, hdr: u64, tid: u64, len: u32, padded: u32): void {
  store<u64>(data + w, hdr);
  store<u64>(data + adv(w, 8, size), tid);
  if ((len & 7) != 0) store<u64>(data + adv(w, padded - 8, size), 0);
  store<u64>(data + adv(w, padded, size), <u64>w << 32);
}

/**
 * Writes one packet whose payload is `len` bytes at `src`. Returns WRITE_WRITTEN|WRITE_SIGNAL
 * bits, 0 when the ring is full (CTL_RES_BYTES = bytes needed), or a negative status.
 */
export function ringWrite(ctl: usize, src: usize, len: u32, type: u32, flags: u32, tidLo: u32, tidHi: u32): i32 {
  const err = load<i32>(ctl, CTL_ERROR);
  if (err != 0) return err;
  if (!validType(type) || (flags & ~PKT_FLAG_COMPLETION_REQUESTED) != 0 || !inMemory(src, len)) return E_InvalidArgument;
  if (len > PKT_MAX_BYTES - PKT_HEADER_SIZE) return E_InvalidMessageLength;
  const ring = <usize>load<u32>(ctl, CTL_RING);
  const size = load<u32>(ctl, CTL_DATA_SIZE);
  const padded = (len + PKT_HEADER_SIZE + 7) & ~7;
  const total = padded + PKT_TRAILER_SIZE;
  const at = reserve(ctl, ring, size, total);
  if (at < 0) return at == FULL ? 0 : at;
  const w = <u32>at;
  const data = ring + RING_HEADER_SIZE;
  frame(data, size, w, headerWord(type, flags, padded >> 3), (<u64>tidHi << 32) | tidLo, len, padded);
  copyIn(data, size, adv(w, PKT_HEADER_SIZE, size), src, len);
  return WRITE_WRITTEN | (publish(ctl, ring, adv(w, total, size), w) != 0 ? WRITE_SIGNAL : 0);
}

/**
 * Gather write: the payload is the concatenation of `count` pieces described by
 * { ptr u32, len u32 } entries at `iov`. Same results as ringWrite.
 */
export function ringWritev(ctl: usize, iov: usize, count: u32, type: u32, flags: u32, tidLo: u32, tidHi: u32): i32 {
  const err = load<i32>(ctl, CTL_ERROR);
  if (err != 0) return err;
  if (!validType(type) || (flags & ~PKT_FLAG_COMPLETION_REQUESTED) != 0 || count > 0xffff || !inMemory(iov, count * IOV_SIZE)) return E_InvalidArgument;
  let len: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const e = iov + i * IOV_SIZE;
    const n = load<u32>(e, 4);
    if (!inMemory(<usize>load<u32>(e), n)) return E_InvalidArgument;
    if (n > PKT_MAX_BYTES - PKT_HEADER_SIZE - len) return E_InvalidMessageLength;
    len += n;
  }
  const ring = <usize>load<u32>(ctl, CTL_RING);
  const size = load<u32>(ctl, CTL_DATA_SIZE);
  const padded = (len + PKT_HEADER_SIZE + 7) & ~7;
  const total = padded + PKT_TRAILER_SIZE;
  const at = reserve(ctl, ring, size, total);
  if (at < 0) return at == FULL ? 0 : at;
  const w = <u32>at;
  const data = ring + RING_HEADER_SIZE;
  frame(data, size, w, headerWord(type, flags, padded >> 3), (<u64>tidHi << 32) | tidLo, len, padded);
  let pos = adv(w, PKT_HEADER_SIZE, size);
  for (let i: u32 = 0; i < count; i++) {
    const e = iov + i * IOV_SIZE;
    pos = copyIn(data, size, pos, <usize>load<u32>(e), load<u32>(e, 4));
  }
  return WRITE_WRITTEN | (publish(ctl, ring, adv(w, total, size), w) != 0 ? WRITE_SIGNAL : 0);
}

/**
 * Writes a complete packet image of `len` bytes at `src`, header included, for packets whose
 * header is longer than 16 bytes (GPA-direct §2.5, transfer pages §2.6: offset8 covers their
 * descriptors). The image's type, offset8 and flags are checked as a reader would check them;
 * len8 is set from `len`, which must be a multiple of 8. Same results as ringWrite.
 */
export function ringWriteRaw(ctl: usize, src: usize, len: u32): i32 {
  const err = load<i32>(ctl, CTL_ERROR);
  if (err != 0) return err;
  if ((len & 7) != 0 || len < PKT_HEADER_SIZE || len > PKT_MAX_BYTES || !inMemory(src, len)) return E_InvalidArgument;
  const h0 = load<u64>(src);
  const hlen = <u32>(h0 >> 16) & 0xffff;
  if (!validType(<u32>h0 & 0xffff) || hlen < 2 || hlen > len >> 3 || ((<u32>(h0 >> 48)) & ~PKT_FLAG_COMPLETION_REQUESTED) != 0) return E_InvalidArgument;
  const ring = <usize>load<u32>(ctl, CTL_RING);
  const size = load<u32>(ctl, CTL_DATA_SIZE);
  const total = len + PKT_TRAILER_SIZE;
  const at = reserve(ctl, ring, size, total);
  if (at < 0) return at == FULL ? 0 : at;
  const w = <u32>at;
  const data = ring + RING_HEADER_SIZE;
  store<u64>(data + w, (h0 & ~(<u64>0xffff << 32)) | (<u64>(len >> 3) << 32));
  copyIn(data, size, adv(w, 8, size), src + 8, len - 8);
  store<u64>(data + adv(w, len, size), <u64>w << 32);
  return WRITE_WRITTEN | (publish(ctl, ring, adv(w, total, size), w) != 0 ? WRITE_SIGNAL : 0);
}

/**
 * Writes up to `count` packets described by BATCH_DESC_SIZE-byte descriptors at `desc`,
 * in order, and publishes the write index once. Returns how many were written (the rest did
 * not fit: CTL_RES_BYTES = bytes the next one needs) or a negative status. Descriptors are
 * checked before anything is written, so an error writes nothing (CTL_RES_INDEX = bad entry).
 * CTL_RES_SIGNAL: one signal decision for the whole batch, as DPDK's burst does.
 */
export function ringWriteBatch(ctl: usize, desc: usize, count: u32): i32 {
  const err = load<i32>(ctl, CTL_ERROR);
  if (err != 0) return err;
  store<u32>(ctl, 0, CTL_RES_SIGNAL);
  if (count > 0x7fffffff / BATCH_DESC_SIZE || !inMemory(desc, count * BATCH_DESC_SIZE)) return E_InvalidArgument;
  const ring = <usize>load<u32>(ctl, CTL_RING);
  const size = load<u32>(ctl, CTL_DATA_SIZE);
  for (let i: u32 = 0; i < count; i++) {
    const d = desc + i * BATCH_DESC_SIZE;
    const len = load<u32>(d, BATCH_OFF_LEN);
    let st: i32 = 0;
    if (!validType(load<u16>(d, BATCH_OFF_TYPE)) || (load<u16>(d, BATCH_OFF_FLAGS) & ~PKT_FLAG_COMPLETION_REQUESTED) != 0 || !inMemory(<usize>load<u32>(d, BATCH_OFF_SRC), len)) st = E_InvalidArgument;
    else if (len > PKT_MAX_BYTES - PKT_HEADER_SIZE || ((len + PKT_HEADER_SIZE + 7) & ~7) + PKT_TRAILER_SIZE >= size) st = E_InvalidMessageLength;
    if (st != 0) {
      store<u32>(ctl, i, CTL_RES_INDEX);
      return st;
    }
  }
  const data = ring + RING_HEADER_SIZE;
  let w = ld32(ring + RING_OFF_WRITE_INDEX);
  let r = ld32(ring + RING_OFF_READ_INDEX);
  if (badIndex(w, size) || badIndex(r, size)) return breakRing(ctl, E_InvalidRingPointer);
  let avail = availWrite(w, r, size);
  let segStart = w; // first write index not yet published
  let signal: u32 = 0;
  let n: u32 = 0;
  while (true) {
    while (n < count) {
      const d = desc + n * BATCH_DESC_SIZE;
      const len = load<u32>(d, BATCH_OFF_LEN);
      const padded = (len + PKT_HEADER_SIZE + 7) & ~7;
      const total = padded + PKT_TRAILER_SIZE;
      if (avail <= total) {
        // Look at the consumer's progress once more before calling the ring full.
        r = ld32(ring + RING_OFF_READ_INDEX);
        if (badIndex(r, size)) return breakRing(ctl, E_InvalidRingPointer);
        avail = availWrite(w, r, size);
        if (avail <= total) break;
      }
      const src = <usize>load<u32>(d, BATCH_OFF_SRC);
      const hdr = headerWord(load<u16>(d, BATCH_OFF_TYPE), load<u16>(d, BATCH_OFF_FLAGS), padded >> 3);
      const tid = load<u64>(d, BATCH_OFF_TID);
      if (w + total <= size) {
        // No-wrap fast path: the whole record is one stretch of the data area.
        const p = data + w;
        store<u64>(p, hdr);
        store<u64>(p, tid, 8);
        if ((len & 7) != 0) store<u64>(p + padded - 8, 0);
        copyBytes(p + PKT_HEADER_SIZE, src, len);
        store<u64>(p + padded, <u64>w << 32);
      } else {
        frame(data, size, w, hdr, tid, len, padded);
        copyIn(data, size, adv(w, PKT_HEADER_SIZE, size), src, len);
      }
      w = adv(w, total, size);
      avail -= total;
      n++;
    }
    // Records always leave free space behind, so w moved iff something was written.
    if (w != segStart) {
      signal |= publish(ctl, ring, w, segStart);
      segStart = w;
    }
    if (n == count) break;
    // Full: advertise what the next packet needs, then re-check (checklist 5, J6).
    const len = load<u32>(desc + n * BATCH_DESC_SIZE, BATCH_OFF_LEN);
    const total = ((len + PKT_HEADER_SIZE + 7) & ~7) + PKT_TRAILER_SIZE;
    store<u32>(ctl, total, CTL_RES_BYTES);
    if ((ld32(ring + RING_OFF_FEATURE_BITS) & RING_FEATURE_PENDING_SEND_SIZE) == 0) break;
    st32(ring + RING_OFF_PENDING_SEND_SIZE, total);
    store<u32>(ctl, 1, CTL_PENDING_OWNED);
    r = ld32(ring + RING_OFF_READ_INDEX);
    if (badIndex(r, size)) return breakRing(ctl, E_InvalidRingPointer);
    avail = availWrite(w, r, size);
    if (avail <= total) break;
  }
  store<u32>(ctl, signal, CTL_RES_SIGNAL);
  return <i32>n;
}

// ---- consumer --------------------------------------------------------------------------

/**
 * Checks the record whose first header word is h0, with `avail` (>= 16) bytes readable.
 * Returns the packet length in bytes (tlen*8, trailer excluded) or the status that breaks
 * the ring: checklist 10 (lengths), 11 (type) and 12 (flags).
 */
// @ts-ignore: decorator
@inline function checkRecord(h0: u64, avail: u32): i32 {
  const hlen = <u32>(h0 >> 16) & 0xffff;
  const bytes = (<u32>(h0 >> 32) & 0xffff) << 3;
  if (hlen < 2 || bytes < hlen << 3 || bytes > avail - PKT_TRAILER_SIZE) return E_InvalidDescriptorLengths;
  if (!validType(<u32>h0 & 0xffff)) return E_InvalidDescriptorType;
  if (((<u32>(h0 >> 48)) & ~PKT_FLAG_COMPLETION_REQUESTED) != 0) return E_InvalidDescriptorFlags;
  return <i32>bytes;
}

/**
 * The consumer's flow-control decision after consuming `consumed` bytes (spec §1.9.2):
 * only if the ring advertises pending_send_sz, the producer asked for p > 0 bytes, the free
 * space before this read was not already above p, and the free space now is above p.
 * p is clamped to the data size (checklist 6: never size anything from the raw value).
 */
// @ts-ignore: decorator
@inline function readSignal(ring: usize, size: u32, r: u32, consumed: u32): u32 {
  if ((ld32(ring + RING_OFF_FEATURE_BITS) & RING_FEATURE_PENDING_SEND_SIZE) == 0) return 0;
  let p = ld32(ring + RING_OFF_PENDING_SEND_SIZE);
  if (p == 0) return 0;
  if (p > size) p = size;
  const w = ld32(ring + RING_OFF_WRITE_INDEX);
  if (badIndex(w, size)) return 0; // reported by the next read
  const cur = availWrite(w, r, size);
  if (cur - consumed > p) return 0;
  if (cur <= p) return 0;
  return 1;
}

/**
 * Reads (or peeks at, or skips) one packet. Returns the packet's length in bytes (tlen*8,
 * always >= 16), 0 when the ring is empty, or a negative status. The header fields are left
 * in ctl (CTL_PKT_*) and the signal decision in CTL_RES_SIGNAL. Modes:
 *  - default: copies the whole packet, header included, to out;
 *  - READ_PAYLOAD_ONLY: copies bytes [hlen*8, tlen*8) to out;
 *  - READ_NO_COPY: copies nothing (skip, or a header-only peek);
 *  - READ_PEEK: leaves the read index where it was.
 * The copy is private: its header holds the lengths that were checked, whatever the peer
 * writes into the ring afterwards (copy before parse, P3). An out buffer that is too small
 * gives BufferTooSmall with CTL_RES_BYTES = bytes needed and consumes nothing.
 */
export function ringRead(ctl: usize, out: usize, cap: u32, mode: u32): i32 {
  const err = load<i32>(ctl, CTL_ERROR);
  if (err != 0) return err;
  store<u32>(ctl, 0, CTL_RES_SIGNAL);
  if ((mode & READ_NO_COPY) == 0 && !inMemory(out, cap)) return E_InvalidArgument;
  const ring = <usize>load<u32>(ctl, CTL_RING);
  const size = load<u32>(ctl, CTL_DATA_SIZE);
  const w = ld32(ring + RING_OFF_WRITE_INDEX);
  const r = ld32(ring + RING_OFF_READ_INDEX);
  if (badIndex(w, size) || badIndex(r, size)) return breakRing(ctl, E_InvalidRingPointer);
  const avail = availRead(w, r, size);
  if (avail == 0) return 0;
  if (avail < PKT_HEADER_SIZE) return breakRing(ctl, E_InvalidDataAvailable);
  const data = ring + RING_HEADER_SIZE;
  const h0 = load<u64>(data + r);
  const st = checkRecord(h0, avail);
  if (st < 0) return breakRing(ctl, st);
  const bytes = <u32>st;
  const hbytes = (<u32>(h0 >> 16) & 0xffff) << 3;
  const h1 = load<u64>(data + adv(r, 8, size));
  if ((mode & READ_NO_COPY) == 0) {
    if ((mode & READ_PAYLOAD_ONLY) != 0) {
      const n = bytes - hbytes;
      if (n > cap) {
        store<u32>(ctl, n, CTL_RES_BYTES);
        return E_BufferTooSmall;
      }
      copyOut(data, size, adv(r, hbytes, size), out, n);
    } else {
      if (bytes > cap) {
        store<u32>(ctl, bytes, CTL_RES_BYTES);
        return E_BufferTooSmall;
      }
      store<u64>(out, h0);
      store<u64>(out, h1, 8);
      copyOut(data, size, adv(r, PKT_HEADER_SIZE, size), out + PKT_HEADER_SIZE, bytes - PKT_HEADER_SIZE);
    }
  }
  store<u32>(ctl, <u32>h0 & 0xffff, CTL_PKT_TYPE);
  store<u32>(ctl, <u32>(h0 >> 48), CTL_PKT_FLAGS);
  store<u32>(ctl, <u32>h1, CTL_PKT_TID_LO);
  store<u32>(ctl, <u32>(h1 >> 32), CTL_PKT_TID_HI);
  store<u32>(ctl, hbytes, CTL_PKT_HLEN_BYTES);
  store<u32>(ctl, bytes, CTL_PKT_TLEN_BYTES);
  if ((mode & READ_PEEK) == 0) {
    const consumed = bytes + PKT_TRAILER_SIZE;
    const nr = adv(r, consumed, size);
    st32(ring + RING_OFF_READ_INDEX, nr);
    store<u32>(ctl, readSignal(ring, size, nr, consumed), CTL_RES_SIGNAL);
  }
  return <i32>bytes;
}

/**
 * Reads up to `max` packets into out, back to back, each as its whole tlen*8-byte image (the
 * 16-byte header with checked lengths, then the payload), and publishes the read index once.
 * Returns the number of packets; CTL_RES_BYTES = bytes used in out; CTL_RES_SIGNAL = the flow
 * control decision for everything consumed. Stops early when out is full. If a corrupt record
 * follows good ones, the good ones are returned and the endpoint is marked broken, so the
 * next call reports the error.
 */
export function ringReadBatch(ctl: usize, out: usize, cap: u32, max: u32): i32 {
  const err = load<i32>(ctl, CTL_ERROR);
  if (err != 0) return err;
  store<u32>(ctl, 0, CTL_RES_SIGNAL);
  store<u32>(ctl, 0, CTL_RES_BYTES);
  if (!inMemory(out, cap)) return E_InvalidArgument;
  const ring = <usize>load<u32>(ctl, CTL_RING);
  const size = load<u32>(ctl, CTL_DATA_SIZE);
  const w = ld32(ring + RING_OFF_WRITE_INDEX);
  const r = ld32(ring + RING_OFF_READ_INDEX);
  if (badIndex(w, size) || badIndex(r, size)) return breakRing(ctl, E_InvalidRingPointer);
  const data = ring + RING_HEADER_SIZE;
  let avail = availRead(w, r, size);
  let pos = r;
  let used: u32 = 0;
  let consumed: u32 = 0;
  let n: u32 = 0;
  let bad: i32 = 0;
  while (n < max && avail != 0) {
    if (avail < PKT_HEADER_SIZE) {
      bad = E_InvalidDataAvailable;
      break;
    }
    const h0 = load<u64>(data + pos);
    const st = checkRecord(h0, avail);
    if (st < 0) {
      bad = st;
      break;
    }
    const bytes = <u32>st;
    if (bytes > cap - used) {
      if (n == 0) {
        store<u32>(ctl, bytes, CTL_RES_BYTES);
        return E_BufferTooSmall;
      }
      break;
    }
    const dst = out + used;
    const rec = bytes + PKT_TRAILER_SIZE;
    if (pos + rec <= size) {
      // No-wrap fast path. The header word with the checked lengths is stored from h0.
      const p = data + pos;
      store<u64>(dst, h0);
      copyBytes(dst + 8, p + 8, bytes - 8);
    } else {
      store<u64>(dst, h0);
      store<u64>(dst, load<u64>(data + adv(pos, 8, size)), 8);
      copyOut(data, size, adv(pos, PKT_HEADER_SIZE, size), dst + PKT_HEADER_SIZE, bytes - PKT_HEADER_SIZE);
    }
    used += bytes;
    pos = adv(pos, rec, size);
    avail -= rec;
    consumed += rec;
    n++;
  }
  if (n > 0) {
    st32(ring + RING_OFF_READ_INDEX, pos);
    store<u32>(ctl, used, CTL_RES_BYTES);
    store<u32>(ctl, readSignal(ring, size, pos, consumed), CTL_RES_SIGNAL);
  }
  if (bad != 0) {
    breakRing(ctl, bad);
    if (n == 0) return bad;
  }
  return <i32>n;
}
