// Channel packets (spec/vmbus.md §2): build the wire image of an in-band, GPA-direct,
// transfer-page or completion packet, and parse one — always a private copy taken out of the
// ring (VmbusRing.readBatch / readPacket copy; hardening P3, L5), never shared memory.
//
// Every check on a received packet and what it leads to (spec/hardening.md §3.2; B = the
// channel is marked broken, E = that packet fails with a typed error and the channel goes on,
// I = counted and ignored). The ring applies 10-12 before a packet is even copied; parsePacket
// applies them again to any image it is given, with the same codes.
//
// | item | condition                                                | code                      | choice |
// |------|----------------------------------------------------------|---------------------------|--------|
// | 10   | offset8 < 2, len8 < offset8, or len8*8 > bytes present    | InvalidDescriptorLengths  | B      |
// | 11   | type not 6, 7, 9 or 11                                   | InvalidDescriptorType     | B      |
// | 12   | a flag other than bit 0 (completion requested)            | InvalidDescriptorFlags    | B      |
// | 13   | GPA-direct / transfer-page with offset8*8 < 24           | PacketHeaderTooShort      | B      |
// | 14   | GPA-direct range_count = 0                               | GpaRangeCountZero         | E      |
// | 14   | ranges (GPA or transfer-page) run past offset8*8         | GpaRangeTooSmall          | E      |
// | 15   | GPA range byte_count = 0                                 | GpaEmptyByteCount         | E      |
// | 15   | GPA range byte_offset > 0xFFF                            | GpaOffsetTooLarge         | E      |
// | 15   | byte_offset + byte_count overflows 32 bits               | GpaOverflow               | E      |
// | 15   | a PFN >= 2^40                                            | GpaPfnTooLarge            | E      |
// | 16   | completion id 0, out of range, not outstanding, repeated | (counters, transactions.ts) | I    |
// | 40   | a peer request reusing an id still in flight             | (counter, channel-end.ts) | I      |
//
// B for 10-13 follows OpenVMM (hardening O1): the header contradicts itself, so nothing after it
// can be trusted. Descriptor bytes between the last range and offset8*8 are allowed (unused);
// the upper-protocol message always starts at offset8*8.

import * as K from '../generated/constants';
import type { Core } from '../engine/core';
import { SgringError } from '../engine/errors';
import { decodeGpaRanges, type GpaDecodeResult } from '../core/gpa-range';
import { joinTid, splitTid, type TransactionId } from '../core/tid';

/** One transfer-page range: bytes [byteOffset, byteOffset + byteCount) of the receive buffer. */
export interface TransferRange { byteCount: number; byteOffset: number }
export interface TransferPages {
  /** xfer_pageset_id (netvsc: the receive buffer id, 0xCAFE). */
  pageSetId: number;
  senderOwns: boolean;
  ranges: TransferRange[];
}
/** Ranges already in wire form (encodeGpaRange / encodeGpaPageList / encodeGpaRanges output). */
export interface GpaDescriptor { rangeBytes: Uint8Array; rangeCount: number }

interface ParsedBase {
  flags: number;
  transactionId: bigint;
  completionRequested: boolean;
  /** offset8 * 8: where the message starts. */
  headerBytes: number;
  /** len8 * 8: the packet without its ring trailer. */
  totalBytes: number;
  /** The upper-protocol message, sender padding included: a view of the image passed in. */
  message: Uint8Array;
}
export type ParsedPacket =
  | (ParsedBase & { kind: 'inband'; type: 6 })
  | (ParsedBase & { kind: 'completion'; type: 11 })
  | (ParsedBase & { kind: 'gpa'; type: 9; gpa: GpaDecodeResult; rangeCount: number })
  | (ParsedBase & { kind: 'transferPages'; type: 7; transferPages: TransferPages });

const tidTmp = { lo: 0, hi: 0 };
const pad8 = (n: number) => (n + 7) & ~7;

/** Fills a packet header (spec §2.1) into `dv` at `at`. */
export function writePacketHeader(dv: DataView, at: number, type: number, headerBytes: number, totalBytes: number,
  flags: number, tidLo: number, tidHi: number): void {
  dv.setUint16(at, type, true);
  dv.setUint16(at + 2, headerBytes >>> 3, true);
  dv.setUint16(at + 4, totalBytes >>> 3, true);
  dv.setUint16(at + 6, flags, true);
  dv.setUint32(at + 8, tidLo >>> 0, true);
  dv.setUint32(at + 12, tidHi >>> 0, true);
}

function checkFlags(flags: number | undefined, dflt: number): number {
  const f = flags ?? dflt;
  if (f !== 0 && f !== K.PKT_FLAG_COMPLETION_REQUESTED) throw new SgringError('InvalidArgument', `packet flags must be 0 or 1 (got ${String(f)})`);
  return f;
}

function frame(type: number, headerBytes: number, message: Uint8Array, flags: number, tid: TransactionId | undefined): { out: Uint8Array; dv: DataView } {
  if (!(message instanceof Uint8Array)) throw new SgringError('InvalidArgument', 'message must be a Uint8Array');
  const total = pad8(headerBytes + message.length);
  if (total > K.PKT_MAX_BYTES) throw new SgringError('InvalidMessageLength', `a ${total}-byte packet exceeds len8's u16 (${K.PKT_MAX_BYTES} bytes)`);
  splitTid(tid, tidTmp);
  const out = new Uint8Array(total); // zeroed: reserved fields and padding (P10)
  const dv = new DataView(out.buffer);
  writePacketHeader(dv, 0, type, headerBytes, total, flags, tidTmp.lo, tidTmp.hi);
  out.set(message, headerBytes);
  return { out, dv };
}

/** In-band packet (spec §2.4): header + payload + zero pad to 8. flags default 0. */
export function encodeInbandPacket(p: { payload: Uint8Array; flags?: number; transactionId?: TransactionId }): Uint8Array {
  return frame(K.PKT_TYPE_INBAND, K.PKT_HEADER_SIZE, p.payload, checkFlags(p.flags, 0), p.transactionId).out;
}

/** Completion packet (spec §2.7): flags 0, the completed packet's transaction id, optional payload. */
export function encodeCompletionPacket(p: { transactionId: TransactionId; payload?: Uint8Array }): Uint8Array {
  return frame(K.PKT_TYPE_COMPLETION, K.PKT_HEADER_SIZE, p.payload ?? new Uint8Array(0), 0, p.transactionId).out;
}

function checkGpa(d: GpaDescriptor): void {
  if (!(d?.rangeBytes instanceof Uint8Array) || d.rangeBytes.length % 8 !== 0 || !Number.isInteger(d.rangeCount) || d.rangeCount < 1 || d.rangeCount > 0xffffffff) {
    throw new SgringError('InvalidArgument', 'GPA descriptor: rangeBytes must be a range image (a multiple of 8 bytes) and rangeCount a u32 >= 1');
  }
}

/**
 * GPA-direct packet (spec §2.5): header, reserved u32, range_count u32, the ranges, then the
 * message at offset8*8 = 24 + range bytes. flags default 1 (completion requested).
 */
export function encodeGpaDirectPacket(p: { gpa: GpaDescriptor; message: Uint8Array; flags?: number; transactionId?: TransactionId }): Uint8Array {
  checkGpa(p.gpa);
  const hb = K.GPA_DIRECT_PREFIX_SIZE + p.gpa.rangeBytes.length;
  const { out, dv } = frame(K.PKT_TYPE_GPA, hb, p.message, checkFlags(p.flags, 1), p.transactionId);
  dv.setUint32(K.GPA_DIRECT_OFF_RANGE_COUNT, p.gpa.rangeCount, true);
  out.set(p.gpa.rangeBytes, K.GPA_DIRECT_PREFIX_SIZE);
  return out;
}

function checkXfer(x: TransferPages): void {
  let ok = !!x && Number.isInteger(x.pageSetId) && x.pageSetId >= 0 && x.pageSetId <= 0xffff && Array.isArray(x.ranges);
  // An indexed loop: a device sends one of these per batch of frames, and a callback costs per range.
  for (let i = 0; ok && i < x.ranges.length; i++) {
    const r = x.ranges[i];
    ok = Number.isInteger(r?.byteCount) && Number.isInteger(r?.byteOffset) && r!.byteCount >= 0 && r!.byteCount <= 0xffffffff && r!.byteOffset >= 0 && r!.byteOffset <= 0xffffffff;
  }
  if (!ok) throw new SgringError('InvalidArgument', 'transfer pages: pageSetId must be a u16 and every range { byteCount, byteOffset } a pair of u32');
}

/** Writes the transfer-page fields after the header (range images at `at + 24`). */
export function writeTransferFields(dv: DataView, at: number, x: TransferPages): void {
  dv.setUint16(at + K.XFER_OFF_PAGESET_ID, x.pageSetId, true);
  dv.setUint8(at + K.XFER_OFF_SENDER_OWNS, x.senderOwns ? 1 : 0);
  dv.setUint32(at + K.XFER_OFF_RANGE_COUNT, x.ranges.length, true);
  for (let i = 0; i < x.ranges.length; i++) {
    const r = x.ranges[i]!;
    dv.setUint32(at + K.XFER_PREFIX_SIZE + i * K.XFER_RANGE_SIZE, r.byteCount, true);
    dv.setUint32(at + K.XFER_PREFIX_SIZE + i * K.XFER_RANGE_SIZE + 4, r.byteOffset, true);
  }
}

/** Transfer-page packet (spec §2.6, "RXBUF"): ranges into the receiver's buffer, then the message. flags default 1. */
export function encodeTransferPagePacket(p: { transferPages: TransferPages; message: Uint8Array; flags?: number; transactionId?: TransactionId }): Uint8Array {
  checkXfer(p.transferPages);
  const hb = K.XFER_PREFIX_SIZE + K.XFER_RANGE_SIZE * p.transferPages.ranges.length;
  const { out, dv } = frame(K.PKT_TYPE_RXBUF, hb, p.message, checkFlags(p.flags, 1), p.transactionId);
  writeTransferFields(dv, 0, p.transferPages);
  return out;
}

/** Bytes of the GPA-direct or transfer-page header a descriptor needs (for sizing send buffers). */
export function descriptorBytes(d: { gpa?: GpaDescriptor; transferPages?: TransferPages }): number {
  if (d.gpa) {
    checkGpa(d.gpa);
    return K.GPA_DIRECT_PREFIX_SIZE + d.gpa.rangeBytes.length;
  }
  if (d.transferPages) return transferDescriptorBytes(d.transferPages);
  return K.PKT_HEADER_SIZE;
}

/** descriptorBytes of a transfer-page packet (checked). */
export function transferDescriptorBytes(x: TransferPages): number {
  checkXfer(x);
  return K.XFER_PREFIX_SIZE + K.XFER_RANGE_SIZE * x.ranges.length;
}

/**
 * Checks a packet header read once from a private copy: items 10-13 above. Returns the packet's
 * byte length (len8*8) or throws the B error. `available` is how many bytes the copy holds.
 */
export function checkPacketHeader(type: number, headerBytes: number, totalBytes: number, flags: number, available: number): number {
  if (headerBytes < K.PKT_HEADER_SIZE || totalBytes < headerBytes || totalBytes > available) {
    throw new SgringError('InvalidDescriptorLengths', `packet offset8*8 = ${headerBytes}, len8*8 = ${totalBytes}, ${available} bytes present`);
  }
  if (type !== K.PKT_TYPE_INBAND && type !== K.PKT_TYPE_RXBUF && type !== K.PKT_TYPE_GPA && type !== K.PKT_TYPE_COMPLETION) {
    throw new SgringError('InvalidDescriptorType', `packet type ${type}`);
  }
  if ((flags & ~K.PKT_FLAG_COMPLETION_REQUESTED) !== 0) throw new SgringError('InvalidDescriptorFlags', `packet flags 0x${flags.toString(16)}`);
  if ((type === K.PKT_TYPE_GPA || type === K.PKT_TYPE_RXBUF) && headerBytes < K.GPA_DIRECT_PREFIX_SIZE) {
    throw new SgringError('PacketHeaderTooShort', `type ${type} packet with offset8*8 = ${headerBytes}`);
  }
  return totalBytes;
}

/**
 * Transfer-page fields of a packet whose header bytes are [at, at + headerBytes) of `dv`
 * (a private copy). Throws GpaRangeTooSmall (E) when range_count ranges do not fit before offset8*8.
 */
export function parseTransferFields(dv: DataView, at: number, headerBytes: number, into?: TransferPages): TransferPages {
  const count = dv.getUint32(at + K.XFER_OFF_RANGE_COUNT, true);
  // Bounded by headerBytes (a u16 of q-words), not by the peer's count (P4).
  if (count > (headerBytes - K.XFER_PREFIX_SIZE) / K.XFER_RANGE_SIZE) {
    throw new SgringError('GpaRangeTooSmall', `transfer-page packet claims ${count} ranges but its header holds ${(headerBytes - K.XFER_PREFIX_SIZE) >>> 3}`, { rangeCount: count });
  }
  // `into` (a channel end's, refilled per packet) keeps its range objects for the next packet.
  const out = into ?? { pageSetId: 0, senderOwns: false, ranges: new Array<TransferRange>(count) };
  const ranges = out.ranges;
  for (let i = 0; i < count; i++) {
    const r = at + K.XFER_PREFIX_SIZE + i * K.XFER_RANGE_SIZE;
    const byteCount = dv.getUint32(r, true);
    const byteOffset = dv.getUint32(r + 4, true);
    const x = ranges[i];
    if (x === undefined) ranges[i] = { byteCount, byteOffset };
    else {
      x.byteCount = byteCount;
      x.byteOffset = byteOffset;
    }
  }
  ranges.length = count;
  out.pageSetId = dv.getUint16(at + K.XFER_OFF_PAGESET_ID, true);
  out.senderOwns = dv.getUint8(at + K.XFER_OFF_SENDER_OWNS) !== 0;
  return out;
}

/**
 * Parses a whole packet image (header through len8*8; a ring trailer or slack after it is
 * ignored). The image must be a private copy: the message is returned as a view of it. `core`
 * decodes GPA ranges (its engine validates them, spec §2.5 and hardening O2). Throws the codes
 * of the table above; nothing outside `image` is read.
 */
export function parsePacket(core: Core, image: Uint8Array): ParsedPacket {
  if (!(image instanceof Uint8Array)) throw new SgringError('InvalidArgument', 'image must be a Uint8Array');
  if (image.length < K.PKT_HEADER_SIZE) throw new SgringError('InvalidDescriptorLengths', `${image.length} bytes cannot hold a 16-byte packet header`);
  const dv = new DataView(image.buffer, image.byteOffset, image.length);
  // Each header field is read exactly once (Linux hv_pkt_iter_first, spec §6.1 item 7).
  const type = dv.getUint16(0, true);
  const headerBytes = dv.getUint16(2, true) * 8;
  const totalBytes = dv.getUint16(4, true) * 8;
  const flags = dv.getUint16(6, true);
  const tid = joinTid(dv.getUint32(8, true), dv.getUint32(12, true));
  checkPacketHeader(type, headerBytes, totalBytes, flags, image.length);
  const base = {
    flags, transactionId: tid, completionRequested: (flags & K.PKT_FLAG_COMPLETION_REQUESTED) !== 0,
    headerBytes, totalBytes, message: image.subarray(headerBytes, totalBytes),
  };
  switch (type) {
    case K.PKT_TYPE_INBAND: return { ...base, kind: 'inband', type: 6 };
    case K.PKT_TYPE_COMPLETION: return { ...base, kind: 'completion', type: 11 };
    case K.PKT_TYPE_RXBUF: return { ...base, kind: 'transferPages', type: 7, transferPages: parseTransferFields(dv, 0, headerBytes) };
    default: {
      const rangeCount = dv.getUint32(K.GPA_DIRECT_OFF_RANGE_COUNT, true);
      const gpa = decodeGpaRanges(core, image.subarray(K.GPA_DIRECT_PREFIX_SIZE, headerBytes), rangeCount);
      return { ...base, kind: 'gpa', type: 9, gpa, rangeCount };
    }
  }
}
