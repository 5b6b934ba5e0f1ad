// The packet a channel end hands to its handlers: one reusable object per end, describing a
// packet inside the end's private read buffer (a copy taken out of the ring, P3). Nothing here
// reads shared ring memory, and nothing allocates until a handler asks for a view or a copy.

import type { Core } from '../engine/core';
import { joinTid } from '../core/tid';
import type { GpaDecodeResult } from '../core/gpa-range';
import type { TransferPages } from './packets';
import * as K from '../generated/constants';

export class ReceivedPacket {
  readonly core: Core;
  /** Packet type (6 in-band, 7 transfer pages, 9 GPA direct, 11 completion). */
  type = 0;
  flags = 0;
  transactionIdLo = 0;
  transactionIdHi = 0;
  /** Core-memory offset of the packet image (header first) in the private read buffer. */
  start = 0;
  /** offset8 * 8 and len8 * 8. */
  headerBytes = 0;
  totalBytes = 0;
  /** GPA-direct packets: the decoded, validated ranges (refilled for the next packet, as this object is: copy what must outlive the handler). */
  gpa: GpaDecodeResult | null = null;
  /** Transfer-page packets: page set and ranges (not yet checked against any buffer; refilled for the next packet, as gpa is). */
  transferPages: TransferPages | null = null;

  constructor(core: Core) {
    this.core = core;
  }

  /** @internal */
  set(start: number, type: number, flags: number, lo: number, hi: number, headerBytes: number, totalBytes: number): void {
    this.start = start;
    this.type = type;
    this.flags = flags;
    this.transactionIdLo = lo;
    this.transactionIdHi = hi;
    this.headerBytes = headerBytes;
    this.totalBytes = totalBytes;
    this.gpa = null;
    this.transferPages = null;
  }

  /** The 64-bit transaction id (allocates a bigint). */
  get transactionId(): bigint {
    return joinTid(this.transactionIdLo, this.transactionIdHi);
  }

  get completionRequested(): boolean {
    return (this.flags & K.PKT_FLAG_COMPLETION_REQUESTED) !== 0;
  }

  /** Core-memory offset of the message (the bytes after offset8*8). */
  get offset(): number {
    return this.start + this.headerBytes;
  }

  /** Message length, sender padding included. */
  get length(): number {
    return this.totalBytes - this.headerBytes;
  }

  /** A view of the message, valid only until the handler returns. */
  payload(): Uint8Array {
    return new Uint8Array(this.core.u8.buffer, this.offset, this.length);
  }

  /** A copy of the message that outlives the handler. */
  copy(): Uint8Array {
    return this.core.u8.slice(this.offset, this.offset + this.length);
  }

  /** A copy of the whole packet image (header and descriptors included). */
  image(): Uint8Array {
    return this.core.u8.slice(this.start, this.start + this.totalBytes);
  }
}
