// Batch containers for VmbusRing.writeBatch / readBatch. Both live in core memory and are
// allocated once; adding, writing, reading and iterating allocate nothing per packet (only
// the convenience iterator and payload() views allocate, and say so).

import {
  BATCH_DESC_SIZE, BATCH_OFF_FLAGS, BATCH_OFF_LEN, BATCH_OFF_SRC, BATCH_OFF_TID, BATCH_OFF_TYPE,
  PKT_TYPE_INBAND,
} from '../generated/constants';
import type { Core } from '../engine/core';
import { SgringError } from '../engine/errors';
import { joinTid, splitTid, type TransactionId } from './tid';
import { bytesArg, coreArg, explainHeader, isU32, optionNames, u32Arg } from './args';
import type { RingPacket } from './ring-packet';

const tidTmp = { lo: 0, hi: 0 };

/**
 * Packets queued for one `ring.writeBatch` call: a descriptor table plus a staging arena for
 * payloads that are not already in core memory. `writeBatch` writes from `cursor` on and
 * advances it; when `remaining` is 0, `clear()` makes the batch reusable.
 */
export class WriteBatch {
  readonly core: Core;
  readonly capacity: number;
  readonly arenaBytes: number;
  /** @internal */ readonly desc: number;
  private readonly arena: number;
  private arenaUsed = 0;
  /** Descriptors added. */
  length = 0;
  /** Index of the first descriptor not yet written. */
  cursor = 0;
  /** Signal decision of the last writeBatch that used this batch. */
  signal = false;
  /** Bytes (packet + trailer) the first unwritten packet needs, after a writeBatch that stopped on a full ring. */
  needed = 0;

  constructor(core: Core, opts: { capacity?: number; arenaBytes?: number } = {}) {
    coreArg(core, 'WriteBatch');
    optionNames(opts, ['capacity', 'arenaBytes'], 'WriteBatch');
    this.core = core;
    this.capacity = opts.capacity ?? 256;
    this.arenaBytes = opts.arenaBytes ?? 64 * 1024;
    if (!Number.isInteger(this.capacity) || this.capacity <= 0 || !Number.isInteger(this.arenaBytes) || this.arenaBytes < 0) {
      throw new SgringError('InvalidArgument', 'WriteBatch capacity must be a positive integer and arenaBytes a non-negative one');
    }
    this.desc = core.alloc(this.capacity * BATCH_DESC_SIZE, 8);
    this.arena = core.alloc(this.arenaBytes, 8);
  }

  /** True after dispose(). */
  disposed = false;

  /** Gives the descriptor table and the arena back to core memory; the batch is unusable after. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.core.free(this.desc);
    this.core.free(this.arena);
    this.clear();
    this.length = this.cursor = this.capacity; // add() then reaches full(), which throws
  }

  private full(): false {
    if (this.disposed) throw new SgringError('Disposed', 'the WriteBatch was disposed');
    return false;
  }

  /** Descriptors added but not yet written. */
  get remaining(): number {
    return this.length - this.cursor;
  }

  /** Forgets every descriptor and staged payload. */
  clear(): void {
    this.length = 0;
    this.cursor = 0;
    this.arenaUsed = 0;
    this.signal = false;
    this.needed = 0;
  }

  /**
   * Queues a packet whose payload is `len` bytes already in core memory at `ptr` (no copy now;
   * the bytes are read when writeBatch runs). Returns false when the table is full.
   */
  addRef(ptr: number, len: number, type = PKT_TYPE_INBAND, flags = 0, tidLo = 0, tidHi = 0): boolean {
    if (this.length === this.capacity) return this.full();
    if (!(isU32(ptr) && isU32(len) && isU32(tidLo) && isU32(tidHi) && isU32(type) && isU32(flags) && type <= 0xffff && flags <= 1)) {
      u32Arg(ptr, 'ptr', 'WriteBatch.add');
      u32Arg(len, 'len', 'WriteBatch.add');
      throw explainHeader(type, flags, tidLo, tidHi, 'WriteBatch.add') ?? new SgringError('InvalidArgument', 'WriteBatch.add: type is a u16 field');
    }
    const d = this.desc + this.length * BATCH_DESC_SIZE;
    const u32 = this.core.u32;
    u32[(d + BATCH_OFF_SRC) >> 2] = ptr;
    u32[(d + BATCH_OFF_LEN) >> 2] = len;
    u32[(d + BATCH_OFF_TYPE) >> 2] = (type & 0xffff) | ((flags & 0xffff) << 16); // type and flags share one word
    u32[(d + BATCH_OFF_TID) >> 2] = tidLo;
    u32[(d + BATCH_OFF_TID + 4) >> 2] = tidHi;
    this.length++;
    return true;
  }

  /**
   * Queues a packet, copying its payload into the batch's arena. Returns false when the table
   * or arena is full.
   */
  add(payload: Uint8Array, type = PKT_TYPE_INBAND, flags = 0, transactionId?: TransactionId): boolean {
    if (this.length === this.capacity) return this.full();
    if (!(payload instanceof Uint8Array)) bytesArg(payload, 'payload', 'WriteBatch.add');
    splitTid(transactionId, tidTmp);
    const u8 = this.core.u8;
    const at = this.arena + this.arenaUsed;
    const n = payload.length;
    if (n > this.arenaBytes - this.arenaUsed) return false;
    u8.set(payload, at);
    this.arenaUsed = (this.arenaUsed + n + 7) & ~7;
    if (this.arenaUsed > this.arenaBytes) this.arenaUsed = this.arenaBytes;
    return this.addRef(at, n, type, flags, tidTmp.lo, tidTmp.hi);
  }
}

// The batch flags field shares the type's 32-bit word (type u16 at +8, flags u16 at +10).
if (BATCH_OFF_FLAGS !== BATCH_OFF_TYPE + 2) throw new Error('batch descriptor layout changed: update WriteBatch.addRef');

/**
 * Packets taken by one `ring.readBatch` call, copied back to back into a private buffer in core
 * memory (copy before parse). Walk them with `next()` and the current-packet fields, which
 * allocates nothing, or with `for (const p of batch)`, which builds RingPacket objects.
 */
export class ReadBatch {
  readonly core: Core;
  /**
   * Core offset of the buffer. After readBatch it holds `count` packet images back to back, each
   * tlen*8 bytes starting with its 16-byte header (with the lengths that were checked).
   */
  readonly buf: number;
  readonly bytes: number;
  /** Packets in the buffer after the last readBatch. */
  count = 0;
  /** Bytes of the buffer in use. */
  used = 0;
  /** Flow-control signal decision of the last readBatch (spec §1.9.2). */
  signal = false;
  private pos = 0;
  private seen = 0;
  /** Current packet (after next()): type, flags, transaction id halves, payload location. */
  type = 0;
  flags = 0;
  transactionIdLo = 0;
  transactionIdHi = 0;
  /** Byte offset of the current payload in core memory; its length includes sender padding. */
  payloadOffset = 0;
  payloadLength = 0;
  /** Core offset and length (tlen*8) of the current packet's whole image, header included. */
  packetOffset = 0;
  packetBytes = 0;

  constructor(core: Core, opts: { bytes?: number } = {}) {
    coreArg(core, 'ReadBatch');
    optionNames(opts, ['bytes'], 'ReadBatch');
    this.core = core;
    this.bytes = opts.bytes ?? 256 * 1024;
    if (!Number.isInteger(this.bytes) || this.bytes < 16) throw new SgringError('InvalidArgument', 'ReadBatch bytes must be an integer >= 16');
    this.buf = core.alloc(this.bytes, 8);
  }

  /** True after dispose(). */
  disposed = false;

  /** Gives the buffer back to core memory; the batch is unusable after. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.core.free(this.buf);
    this.fill(0, 0, false);
  }

  /** @internal called by VmbusRing.readBatch */
  fill(count: number, used: number, signal: boolean): void {
    this.count = count;
    this.used = used;
    this.signal = signal;
    this.pos = 0;
    this.seen = 0;
  }

  /** Moves to the next packet; false when all have been visited. */
  next(): boolean {
    if (this.seen === this.count) return false;
    const u32 = this.core.u32;
    const at = this.buf + this.pos;
    const w0 = u32[at >> 2];
    const w1 = u32[(at >> 2) + 1];
    const hbytes = (w0 >>> 16) * 8;
    const bytes = (w1 & 0xffff) * 8;
    this.type = w0 & 0xffff;
    this.flags = w1 >>> 16;
    this.transactionIdLo = u32[(at >> 2) + 2];
    this.transactionIdHi = u32[(at >> 2) + 3];
    this.payloadOffset = at + hbytes;
    this.payloadLength = bytes - hbytes;
    this.packetOffset = at;
    this.packetBytes = bytes;
    this.pos += bytes;
    this.seen++;
    return true;
  }

  /** The current packet's transaction id (allocates a bigint). */
  get transactionId(): bigint {
    return joinTid(this.transactionIdLo, this.transactionIdHi);
  }

  /** A view of the current payload inside the batch buffer (valid until the next readBatch). */
  payload(): Uint8Array {
    return this.core.view(this.payloadOffset, this.payloadLength);
  }

  /** Iterates the packets as RingPacket objects with copied payloads (allocates per packet). */
  *[Symbol.iterator](): IterableIterator<RingPacket> {
    this.pos = 0;
    this.seen = 0;
    while (this.next()) {
      yield {
        type: this.type, flags: this.flags, transactionId: this.transactionId,
        payload: this.payload().slice(), signal: false,
      };
    }
  }
}
