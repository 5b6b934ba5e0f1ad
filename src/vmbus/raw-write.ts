// Writes a complete packet image — header included, with its own offset8 — as one ring record.
//
// Why this exists: VmbusRing frames every packet with offset8 = 2 (a 16-byte header), which is
// right for in-band and completion packets but not for GPA-direct (§2.5) and transfer-page
// (§2.6) packets, whose offset8 must cover their range descriptors. Until VmbusRing can write a
// caller-built header (reported to the lead), this module follows the writer algorithm of spec
// §1.7 and the signal rule of §1.9.1 exactly as the engine does, over the same header fields:
// validate both indices (checklist 1), refuse a record that leaves the ring exactly full (§1.5),
// set pending_send_sz and re-check when full (§1.9.3, L20), copy in two pieces across the wrap,
// write the trailer, publish the write index with an Atomics store (release), then decide the
// signal from interrupt_mask and read_index. Only the producer endpoint of a ring may call it,
// from the thread that owns that endpoint.

import * as K from '../generated/constants';
import { SgringError } from '../engine/errors';
import type { VmbusRing } from '../core/vmbus-ring';

const bad = (idx: number, size: number) => idx >= size || (idx & 7) !== 0;

/**
 * Writes the `bytes`-byte packet image at core offset `src` (bytes a multiple of 8, equal to
 * the image's len8*8) into `ring`. Returns WRITE_WRITTEN | WRITE_SIGNAL bits, or 0 when the
 * ring is full (nothing written). Throws InvalidMessageLength for a record that can never fit
 * and InvalidRingPointer (broken) for corrupt indices.
 */
export function writeRawPacket(ring: VmbusRing, src: number, bytes: number): number {
  const core = ring.core;
  const size = ring.dataSize;
  const total = bytes + K.PKT_TRAILER_SIZE;
  if ((bytes & 7) !== 0 || bytes < K.PKT_HEADER_SIZE || bytes > K.PKT_MAX_BYTES) throw new SgringError('InvalidArgument', `packet image of ${bytes} bytes`);
  if (total >= size) throw new SgringError('InvalidMessageLength', `a ${total}-byte record never fits a ${size}-byte ring`, { needed: total });
  const u32 = core.u32;
  const h = ring.ptr >> 2;
  const w = Atomics.load(u32, h + (K.RING_OFF_WRITE_INDEX >> 2));
  let r = Atomics.load(u32, h + (K.RING_OFF_READ_INDEX >> 2));
  if (bad(w, size) || bad(r, size)) throw new SgringError('InvalidRingPointer', `ring indices w=${w} r=${r} (data size ${size})`);
  const avail = (rr: number) => (w >= rr ? size - (w - rr) : rr - w);
  if (avail(r) <= total) {
    if ((Atomics.load(u32, h + (K.RING_OFF_FEATURE_BITS >> 2)) & K.RING_FEATURE_PENDING_SEND_SIZE) === 0) return 0;
    Atomics.store(u32, h + (K.RING_OFF_PENDING_SEND_SIZE >> 2), total);
    r = Atomics.load(u32, h + (K.RING_OFF_READ_INDEX >> 2));
    if (bad(r, size)) throw new SgringError('InvalidRingPointer', `ring read index ${r} (data size ${size})`);
    if (avail(r) <= total) return 0;
  }
  const data = ring.ptr + K.RING_HEADER_SIZE;
  const u8 = core.u8;
  const first = size - w;
  if (bytes <= first) u8.copyWithin(data + w, src, src + bytes);
  else {
    u8.copyWithin(data + w, src, src + first);
    u8.copyWithin(data, src + first, src + bytes);
  }
  const t = (w + bytes) % size; // 8-aligned, so the trailer never straddles the wrap
  u32[(data + t) >> 2] = 0;
  u32[(data + t + 4) >> 2] = w;
  const nw = (w + total) % size;
  Atomics.store(u32, h + (K.RING_OFF_WRITE_INDEX >> 2), nw);
  // The producer owns pending_send_sz: we are no longer waiting for room.
  if (Atomics.load(u32, h + (K.RING_OFF_PENDING_SEND_SIZE >> 2)) !== 0) Atomics.store(u32, h + (K.RING_OFF_PENDING_SEND_SIZE >> 2), 0);
  const signal = Atomics.load(u32, h + (K.RING_OFF_INTERRUPT_MASK >> 2)) === 0 && Atomics.load(u32, h + (K.RING_OFF_READ_INDEX >> 2)) === w;
  return K.WRITE_WRITTEN | (signal ? K.WRITE_SIGNAL : 0);
}
