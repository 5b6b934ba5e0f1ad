// Pure-TypeScript twin of assembly/ring.ts: the same functions, over the same memory, with the
// same results. It is the oracle of the differential tests and a fallback engine; it is written
// for clarity (one copy routine, header words as two u32 halves), not for speed.

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
} from '../generated/constants';
import type { Core } from '../engine/core';

const MAX_PAYLOAD = PKT_MAX_BYTES - PKT_HEADER_SIZE;

const padTo8 = (n: number) => (n + 7) & ~7;
const recordBytes = (len: number) => padTo8(len + PKT_HEADER_SIZE) + PKT_TRAILER_SIZE;
const validType = (t: number) => t === PKT_TYPE_INBAND || t === PKT_TYPE_RXBUF || t === PKT_TYPE_GPA || t === PKT_TYPE_COMPLETION;
const badIndex = (idx: number, size: number) => idx >= size || (idx & 7) !== 0;
const availWrite = (w: number, r: number, size: number) => (w >= r ? size - (w - r) : r - w);
const availRead = (w: number, r: number, size: number) => (w >= r ? w - r : size - r + w);

export function createReferenceRing(core: Core) {
  const inMemory = (ptr: number, len: number) => {
    const size = core.byteLength;
    return len <= size && ptr <= size - len;
  };
  // Ring fields that the peer may touch go through Atomics (index publication, checklist 68);
  // the control block is private and uses plain access.
  const ld = (p: number) => Atomics.load(core.u32, p >>> 2);
  const st = (p: number, v: number) => void Atomics.store(core.u32, p >>> 2, v >>> 0);
  const ctlGet = (ctl: number, off: number) => core.u32[(ctl + off) >>> 2];
  const ctlSet = (ctl: number, off: number, v: number) => void (core.u32[(ctl + off) >>> 2] = v >>> 0);
  const ctlErr = (ctl: number) => core.i32[(ctl + CTL_ERROR) >>> 2];
  const breakRing = (ctl: number, code: number) => {
    core.i32[(ctl + CTL_ERROR) >>> 2] = code;
    return code;
  };
  // The transaction id is the one 64-bit header field used as it is: read it with a single
  // 64-bit atomic load, which cannot tear (J1), rather than as two 32-bit halves.
  const loadTid = (p: number): bigint => Atomics.load(core.u64, p / 8);
  const copy = (dst: number, src: number, n: number) => void core.u8.copyWithin(dst, src, src + n);
  const ringCopyIn = (data: number, size: number, pos: number, src: number, n: number): number => {
    const first = size - pos;
    if (n < first) {
      copy(data + pos, src, n);
      return pos + n;
    }
    copy(data + pos, src, first);
    copy(data, src + first, n - first);
    return n - first;
  };
  const ringCopyOut = (data: number, size: number, pos: number, dst: number, n: number) => {
    const first = size - pos;
    if (n <= first) copy(dst, data + pos, n);
    else {
      copy(dst, data + pos, first);
      copy(dst + first, data, n - first);
    }
  };
  const adv = (idx: number, n: number, size: number) => (idx + n >= size ? idx + n - size : idx + n);
  const featurePending = (ring: number) => (ld(ring + RING_OFF_FEATURE_BITS) & RING_FEATURE_PENDING_SEND_SIZE) !== 0;

  /** Writes header words, zero padding and trailer of a record at w (same placement as the Wasm `frame`). */
  const frame = (data: number, size: number, w: number, type: number, flags: number, tidLo: number, tidHi: number, len: number) => {
    const dv = core.dv;
    const padded = padTo8(len + PKT_HEADER_SIZE);
    dv.setUint16(data + w, type, true);
    dv.setUint16(data + w + 2, 2, true);
    dv.setUint16(data + w + 4, padded >>> 3, true);
    dv.setUint16(data + w + 6, flags, true);
    const t = data + adv(w, 8, size);
    dv.setUint32(t, tidLo, true);
    dv.setUint32(t + 4, tidHi, true);
    if ((len & 7) !== 0) core.u8.fill(0, data + adv(w, padded - 8, size), data + adv(w, padded - 8, size) + 8);
    const tr = data + adv(w, padded, size);
    dv.setUint32(tr, 0, true);
    dv.setUint32(tr + 4, w, true);
  };

  /** Same contract as the Wasm `reserve`: a write index, null when full, or an error. */
  const reserve = (ctl: number, ring: number, size: number, total: number): number | null => {
    if (total >= size) return E_InvalidMessageLength;
    const w = ld(ring + RING_OFF_WRITE_INDEX);
    let r = ld(ring + RING_OFF_READ_INDEX);
    if (badIndex(w, size) || badIndex(r, size)) return breakRing(ctl, E_InvalidRingPointer);
    if (availWrite(w, r, size) > total) return w;
    if (featurePending(ring)) {
      st(ring + RING_OFF_PENDING_SEND_SIZE, total);
      ctlSet(ctl, CTL_PENDING_OWNED, 1);
      r = ld(ring + RING_OFF_READ_INDEX);
      if (badIndex(r, size)) return breakRing(ctl, E_InvalidRingPointer);
      if (availWrite(w, r, size) > total) return w;
    }
    ctlSet(ctl, CTL_RES_BYTES, total);
    return null;
  };

  const publish = (ctl: number, ring: number, newW: number, startW: number): number => {
    st(ring + RING_OFF_WRITE_INDEX, newW);
    if (ctlGet(ctl, CTL_PENDING_OWNED) !== 0) {
      st(ring + RING_OFF_PENDING_SEND_SIZE, 0);
      ctlSet(ctl, CTL_PENDING_OWNED, 0);
    }
    const signal = ld(ring + RING_OFF_INTERRUPT_MASK) === 0 && ld(ring + RING_OFF_READ_INDEX) === startW ? 1 : 0;
    ctlSet(ctl, CTL_RES_SIGNAL, signal);
    return signal;
  };

  /** Header word 0 as read once from the ring: type | hlen << 16 (lo), tlen | flags << 16 (hi). */
  const checkRecord = (lo: number, hi: number, avail: number): number => {
    const hlen = lo >>> 16;
    const bytes = (hi & 0xffff) * 8;
    if (hlen < 2 || bytes < hlen * 8 || bytes > avail - PKT_TRAILER_SIZE) return E_InvalidDescriptorLengths;
    if (!validType(lo & 0xffff)) return E_InvalidDescriptorType;
    if (((hi >>> 16) & ~PKT_FLAG_COMPLETION_REQUESTED) !== 0) return E_InvalidDescriptorFlags;
    return bytes;
  };

  const readSignal = (ring: number, size: number, r: number, consumed: number): number => {
    if (!featurePending(ring)) return 0;
    let p = ld(ring + RING_OFF_PENDING_SEND_SIZE);
    if (p === 0) return 0;
    if (p > size) p = size;
    const w = ld(ring + RING_OFF_WRITE_INDEX);
    if (badIndex(w, size)) return 0;
    const cur = availWrite(w, r, size);
    if ((cur - consumed) >>> 0 > p) return 0; // unsigned, as the Wasm engine and Linux compute it
    if (cur <= p) return 0;
    return 1;
  };

  return {
    ringInit(ctl: number, ring: number, totalBytes: number): number {
      if (!inMemory(ctl, CTL_SIZE) || (ctl & 7) !== 0) return E_InvalidArgument;
      totalBytes >>>= 0;
      if ((ring & 7) !== 0 || (totalBytes & (PAGE_SIZE - 1)) !== 0 || totalBytes < 2 * PAGE_SIZE ||
          totalBytes > RING_MAX_TOTAL_BYTES || !inMemory(ring, totalBytes)) {
        return E_InvalidRingMemory;
      }
      core.u8.fill(0, ctl, ctl + CTL_SIZE);
      ctlSet(ctl, CTL_RING, ring);
      ctlSet(ctl, CTL_DATA_SIZE, totalBytes - RING_HEADER_SIZE);
      return 0;
    },

    ringClearError(ctl: number): void {
      core.i32[(ctl + CTL_ERROR) >>> 2] = 0;
    },

    ringWrite(ctl: number, src: number, len: number, type: number, flags: number, tidLo: number, tidHi: number): number {
      const err = ctlErr(ctl);
      if (err !== 0) return err;
      len >>>= 0;
      if (!validType(type) || (flags & ~PKT_FLAG_COMPLETION_REQUESTED) !== 0 || !inMemory(src, len)) return E_InvalidArgument;
      if (len > MAX_PAYLOAD) return E_InvalidMessageLength;
      const ring = ctlGet(ctl, CTL_RING);
      const size = ctlGet(ctl, CTL_DATA_SIZE);
      const total = recordBytes(len);
      const w = reserve(ctl, ring, size, total);
      if (w === null) return 0;
      if (w < 0) return w;
      const data = ring + RING_HEADER_SIZE;
      frame(data, size, w, type, flags, tidLo >>> 0, tidHi >>> 0, len);
      ringCopyIn(data, size, adv(w, PKT_HEADER_SIZE, size), src, len);
      return WRITE_WRITTEN | (publish(ctl, ring, adv(w, total, size), w) ? WRITE_SIGNAL : 0);
    },

    ringWritev(ctl: number, iov: number, count: number, type: number, flags: number, tidLo: number, tidHi: number): number {
      const err = ctlErr(ctl);
      if (err !== 0) return err;
      count >>>= 0;
      if (!validType(type) || (flags & ~PKT_FLAG_COMPLETION_REQUESTED) !== 0 || count > 0xffff || !inMemory(iov, count * IOV_SIZE)) return E_InvalidArgument;
      let len = 0;
      for (let i = 0; i < count; i++) {
        const n = core.u32[(iov + i * IOV_SIZE + 4) >>> 2];
        if (!inMemory(core.u32[(iov + i * IOV_SIZE) >>> 2], n)) return E_InvalidArgument;
        if (n > MAX_PAYLOAD - len) return E_InvalidMessageLength;
        len += n;
      }
      const ring = ctlGet(ctl, CTL_RING);
      const size = ctlGet(ctl, CTL_DATA_SIZE);
      const total = recordBytes(len);
      const w = reserve(ctl, ring, size, total);
      if (w === null) return 0;
      if (w < 0) return w;
      const data = ring + RING_HEADER_SIZE;
      frame(data, size, w, type, flags, tidLo >>> 0, tidHi >>> 0, len);
      let pos = adv(w, PKT_HEADER_SIZE, size);
      for (let i = 0; i < count; i++) {
        pos = ringCopyIn(data, size, pos, core.u32[(iov + i * IOV_SIZE) >>> 2], core.u32[(iov + i * IOV_SIZE + 4) >>> 2]);
      }
      return WRITE_WRITTEN | (publish(ctl, ring, adv(w, total, size), w) ? WRITE_SIGNAL : 0);
    },

    ringWriteRaw(ctl: number, src: number, len: number): number {
      const err = ctlErr(ctl);
      if (err !== 0) return err;
      len >>>= 0;
      if ((len & 7) !== 0 || len < PKT_HEADER_SIZE || len > PKT_MAX_BYTES || !inMemory(src, len)) return E_InvalidArgument;
      const dv = core.dv;
      const type = dv.getUint16(src, true);
      const hlen = dv.getUint16(src + 2, true);
      const flags = dv.getUint16(src + 6, true);
      if (!validType(type) || hlen < 2 || hlen > len >>> 3 || (flags & ~PKT_FLAG_COMPLETION_REQUESTED) !== 0) return E_InvalidArgument;
      const ring = ctlGet(ctl, CTL_RING);
      const size = ctlGet(ctl, CTL_DATA_SIZE);
      const total = len + PKT_TRAILER_SIZE;
      const w = reserve(ctl, ring, size, total);
      if (w === null) return 0;
      if (w < 0) return w;
      const data = ring + RING_HEADER_SIZE;
      ringCopyIn(data, size, w, src, len);
      dv.setUint16(data + w + 4, len >>> 3, true); // the header word never straddles the wrap
      const tr = data + adv(w, len, size);
      dv.setUint32(tr, 0, true);
      dv.setUint32(tr + 4, w, true);
      return WRITE_WRITTEN | (publish(ctl, ring, adv(w, total, size), w) ? WRITE_SIGNAL : 0);
    },

    ringWriteBatch(ctl: number, desc: number, count: number): number {
      const err = ctlErr(ctl);
      if (err !== 0) return err;
      ctlSet(ctl, CTL_RES_SIGNAL, 0);
      count >>>= 0;
      if (count > Math.floor(0x7fffffff / BATCH_DESC_SIZE) || !inMemory(desc, count * BATCH_DESC_SIZE)) return E_InvalidArgument;
      const ring = ctlGet(ctl, CTL_RING);
      const size = ctlGet(ctl, CTL_DATA_SIZE);
      const dv = core.dv;
      const lenOf = (i: number) => dv.getUint32(desc + i * BATCH_DESC_SIZE + BATCH_OFF_LEN, true);
      for (let i = 0; i < count; i++) {
        const d = desc + i * BATCH_DESC_SIZE;
        const len = lenOf(i);
        let s = 0;
        if (!validType(dv.getUint16(d + BATCH_OFF_TYPE, true)) || (dv.getUint16(d + BATCH_OFF_FLAGS, true) & ~PKT_FLAG_COMPLETION_REQUESTED) !== 0 || !inMemory(dv.getUint32(d + BATCH_OFF_SRC, true), len)) s = E_InvalidArgument;
        else if (len > MAX_PAYLOAD || recordBytes(len) >= size) s = E_InvalidMessageLength;
        if (s !== 0) {
          ctlSet(ctl, CTL_RES_INDEX, i);
          return s;
        }
      }
      const data = ring + RING_HEADER_SIZE;
      let w = ld(ring + RING_OFF_WRITE_INDEX);
      let r = ld(ring + RING_OFF_READ_INDEX);
      if (badIndex(w, size) || badIndex(r, size)) return breakRing(ctl, E_InvalidRingPointer);
      let avail = availWrite(w, r, size);
      let segStart = w;
      let signal = 0;
      let n = 0;
      for (;;) {
        while (n < count) {
          const d = desc + n * BATCH_DESC_SIZE;
          const len = lenOf(n);
          const total = recordBytes(len);
          if (avail <= total) {
            r = ld(ring + RING_OFF_READ_INDEX);
            if (badIndex(r, size)) return breakRing(ctl, E_InvalidRingPointer);
            avail = availWrite(w, r, size);
            if (avail <= total) break;
          }
          frame(data, size, w, dv.getUint16(d + BATCH_OFF_TYPE, true), dv.getUint16(d + BATCH_OFF_FLAGS, true),
            dv.getUint32(d + BATCH_OFF_TID, true), dv.getUint32(d + BATCH_OFF_TID + 4, true), len);
          ringCopyIn(data, size, adv(w, PKT_HEADER_SIZE, size), dv.getUint32(d + BATCH_OFF_SRC, true), len);
          w = adv(w, total, size);
          avail -= total;
          n++;
        }
        if (w !== segStart) {
          signal |= publish(ctl, ring, w, segStart);
          segStart = w;
        }
        if (n === count) break;
        const total = recordBytes(lenOf(n));
        ctlSet(ctl, CTL_RES_BYTES, total);
        if (!featurePending(ring)) break;
        st(ring + RING_OFF_PENDING_SEND_SIZE, total);
        ctlSet(ctl, CTL_PENDING_OWNED, 1);
        r = ld(ring + RING_OFF_READ_INDEX);
        if (badIndex(r, size)) return breakRing(ctl, E_InvalidRingPointer);
        avail = availWrite(w, r, size);
        if (avail <= total) break;
      }
      ctlSet(ctl, CTL_RES_SIGNAL, signal);
      return n;
    },

    ringRead(ctl: number, out: number, cap: number, mode: number): number {
      const err = ctlErr(ctl);
      if (err !== 0) return err;
      ctlSet(ctl, CTL_RES_SIGNAL, 0);
      cap >>>= 0;
      if ((mode & READ_NO_COPY) === 0 && !inMemory(out, cap)) return E_InvalidArgument;
      const ring = ctlGet(ctl, CTL_RING);
      const size = ctlGet(ctl, CTL_DATA_SIZE);
      const w = ld(ring + RING_OFF_WRITE_INDEX);
      const r = ld(ring + RING_OFF_READ_INDEX);
      if (badIndex(w, size) || badIndex(r, size)) return breakRing(ctl, E_InvalidRingPointer);
      const avail = availRead(w, r, size);
      if (avail === 0) return 0;
      if (avail < PKT_HEADER_SIZE) return breakRing(ctl, E_InvalidDataAvailable);
      const data = ring + RING_HEADER_SIZE;
      const dv = core.dv;
      const lo = dv.getUint32(data + r, true);
      const hi = dv.getUint32(data + r + 4, true);
      const s = checkRecord(lo, hi, avail);
      if (s < 0) return breakRing(ctl, s);
      const bytes = s;
      const hbytes = (lo >>> 16) * 8;
      const tid = loadTid(data + adv(r, 8, size));
      const tidLo = Number(tid & 0xffffffffn);
      const tidHi = Number(tid >> 32n);
      if ((mode & READ_NO_COPY) === 0) {
        const from = (mode & READ_PAYLOAD_ONLY) !== 0 ? hbytes : 0;
        const n = bytes - from;
        if (n > cap) {
          ctlSet(ctl, CTL_RES_BYTES, n);
          return E_BufferTooSmall;
        }
        if (from === 0) {
          dv.setUint32(out, lo, true);
          dv.setUint32(out + 4, hi, true);
          dv.setUint32(out + 8, tidLo, true);
          dv.setUint32(out + 12, tidHi, true);
          ringCopyOut(data, size, adv(r, PKT_HEADER_SIZE, size), out + PKT_HEADER_SIZE, bytes - PKT_HEADER_SIZE);
        } else {
          ringCopyOut(data, size, adv(r, from, size), out, n);
        }
      }
      ctlSet(ctl, CTL_PKT_TYPE, lo & 0xffff);
      ctlSet(ctl, CTL_PKT_FLAGS, hi >>> 16);
      ctlSet(ctl, CTL_PKT_TID_LO, tidLo);
      ctlSet(ctl, CTL_PKT_TID_HI, tidHi);
      ctlSet(ctl, CTL_PKT_HLEN_BYTES, hbytes);
      ctlSet(ctl, CTL_PKT_TLEN_BYTES, bytes);
      if ((mode & READ_PEEK) === 0) {
        const consumed = bytes + PKT_TRAILER_SIZE;
        const nr = adv(r, consumed, size);
        st(ring + RING_OFF_READ_INDEX, nr);
        ctlSet(ctl, CTL_RES_SIGNAL, readSignal(ring, size, nr, consumed));
      }
      return bytes;
    },

    ringReadBatch(ctl: number, out: number, cap: number, max: number): number {
      const err = ctlErr(ctl);
      if (err !== 0) return err;
      ctlSet(ctl, CTL_RES_SIGNAL, 0);
      ctlSet(ctl, CTL_RES_BYTES, 0);
      cap >>>= 0;
      max >>>= 0;
      if (!inMemory(out, cap)) return E_InvalidArgument;
      const ring = ctlGet(ctl, CTL_RING);
      const size = ctlGet(ctl, CTL_DATA_SIZE);
      const w = ld(ring + RING_OFF_WRITE_INDEX);
      const r = ld(ring + RING_OFF_READ_INDEX);
      if (badIndex(w, size) || badIndex(r, size)) return breakRing(ctl, E_InvalidRingPointer);
      const data = ring + RING_HEADER_SIZE;
      let avail = availRead(w, r, size);
      let pos = r;
      let used = 0;
      let consumed = 0;
      let n = 0;
      let bad = 0;
      while (n < max && avail !== 0) {
        if (avail < PKT_HEADER_SIZE) {
          bad = E_InvalidDataAvailable;
          break;
        }
        const lo = core.dv.getUint32(data + pos, true);
        const hi = core.dv.getUint32(data + pos + 4, true);
        const s = checkRecord(lo, hi, avail);
        if (s < 0) {
          bad = s;
          break;
        }
        const bytes = s;
        if (bytes > cap - used) {
          if (n === 0) {
            ctlSet(ctl, CTL_RES_BYTES, bytes);
            return E_BufferTooSmall;
          }
          break;
        }
        const dst = out + used;
        core.dv.setUint32(dst, lo, true);
        core.dv.setUint32(dst + 4, hi, true);
        core.u64[(dst + 8) / 8] = loadTid(data + adv(pos, 8, size));
        ringCopyOut(data, size, adv(pos, PKT_HEADER_SIZE, size), dst + PKT_HEADER_SIZE, bytes - PKT_HEADER_SIZE);
        const rec = bytes + PKT_TRAILER_SIZE;
        used += bytes;
        pos = adv(pos, rec, size);
        avail -= rec;
        consumed += rec;
        n++;
      }
      if (n > 0) {
        st(ring + RING_OFF_READ_INDEX, pos);
        ctlSet(ctl, CTL_RES_BYTES, used);
        ctlSet(ctl, CTL_RES_SIGNAL, readSignal(ring, size, pos, consumed));
      }
      if (bad !== 0) {
        breakRing(ctl, bad);
        if (n === 0) return bad;
      }
      return n;
    },
  };
}
