// Packets a channel end has accepted but the ring has not taken yet: those sent from inside a
// handler (written together, with one index publication and one signal decision, like DPDK's
// per-burst signal, spec §1.11) and those that found the ring full. Order is kept.
//
// Staged packets live in a WriteBatch whose payloads sit in an arena of core memory; after a
// partial write the unwritten tail moves to the front, so a ring that never quite drains cannot
// exhaust the arena. A packet that must not be refused (a completion: the peer is owed exactly
// one, checklist 40) spills into an overflow list when the arena is full; the overflow is bounded
// by the caller's own limit on owed completions (P4), and drains into the arena in order.

import * as K from '../generated/constants';
import type { Core } from '../engine/core';
import { WriteBatch } from '../core/ring-batch';

// The descriptor layout stage() writes (type and flags share one word, as in WriteBatch.addRef).
if (K.BATCH_OFF_FLAGS !== K.BATCH_OFF_TYPE + 2 || (K.BATCH_OFF_TID & 3) !== 0) throw new Error('batch descriptor layout changed: update Outbox.stage');
import type { VmbusRing } from '../core/vmbus-ring';

const pad8 = (n: number) => (n + 7) & ~7;

interface Spilled { payload: Uint8Array; type: number; flags: number; lo: number; hi: number }

export class Outbox {
  private readonly core: Core;
  private readonly batch: WriteBatch;
  private readonly arena: number;
  private readonly arenaBytes: number;
  private used = 0;
  private readonly spill: Spilled[] = [];
  private spillHead = 0;
  /** Signal decision of the last flush (any of its writes said signal). */
  signal = false;

  constructor(core: Core, opts: { packets: number; bytes: number }) {
    this.core = core;
    this.batch = new WriteBatch(core, { capacity: opts.packets, arenaBytes: 0 });
    this.arenaBytes = opts.bytes;
    this.arena = core.alloc(opts.bytes, 8);
  }

  /** Gives the staging memory back; the outbox is unusable after. */
  dispose(): void {
    this.clear();
    this.batch.dispose();
    this.core.free(this.arena);
  }

  /** Packets waiting (staged and spilled). */
  get size(): number {
    return this.batch.remaining + this.spill.length - this.spillHead;
  }

  /** Record bytes the first waiting packet needs, after a flush that stopped on a full ring. */
  get needed(): number {
    return this.batch.needed;
  }

  /** Stages a packet; false when the arena or descriptor table is full (unless `mustKeep`: then it spills). */
  add(payload: Uint8Array, type: number, flags: number, lo: number, hi: number, mustKeep: boolean): boolean {
    if (this.spill.length === this.spillHead && this.stage(payload, type, flags, lo, hi)) return true;
    if (!mustKeep) return false;
    this.spill.push({ payload: payload.slice(), type, flags, lo, hi });
    return true;
  }

  private stage(payload: Uint8Array, type: number, flags: number, lo: number, hi: number): boolean {
    const n = payload.length;
    const b = this.batch;
    if (b.length === b.capacity || n > this.arenaBytes - this.used) return false;
    const at = this.arena + this.used;
    this.core.u8.set(payload, at);
    this.used = Math.min(this.arenaBytes, this.used + pad8(n));
    // WriteBatch.addRef's descriptor, written here with one view (this is the per-completion path).
    const u32 = this.core.u32;
    const d = (b.desc + b.length * K.BATCH_DESC_SIZE) >> 2;
    u32[d + (K.BATCH_OFF_SRC >> 2)] = at;
    u32[d + (K.BATCH_OFF_LEN >> 2)] = n;
    u32[d + (K.BATCH_OFF_TYPE >> 2)] = (type & 0xffff) | ((flags & 0xffff) << 16);
    u32[d + (K.BATCH_OFF_TID >> 2)] = lo;
    u32[d + (K.BATCH_OFF_TID >> 2) + 1] = hi;
    b.length++;
    return true;
  }

  /** Writes what fits into `ring` in order; returns how many packets it wrote. Ring errors propagate. */
  flush(ring: VmbusRing): number {
    const b = this.batch;
    let written = 0;
    this.signal = false;
    for (;;) {
      if (b.remaining > 0) {
        written += ring.writeBatch(b);
        this.signal ||= b.signal;
        if (b.remaining > 0) {
          this.compact();
          return written;
        }
      }
      b.clear();
      this.used = 0;
      if (this.spill.length === this.spillHead) return written;
      while (this.spillHead < this.spill.length) {
        const s = this.spill[this.spillHead]!;
        if (!this.stage(s.payload, s.type, s.flags, s.lo, s.hi)) break;
        this.spillHead++;
      }
      if (this.spillHead === this.spill.length) {
        this.spill.length = 0;
        this.spillHead = 0;
      }
    }
  }

  /** Moves the unwritten descriptors and their payload bytes to the front. */
  private compact(): void {
    const b = this.batch;
    const c = b.cursor;
    if (c === 0) return;
    const u32 = this.core.u32;
    const D = K.BATCH_DESC_SIZE;
    const first = u32[(b.desc + c * D + K.BATCH_OFF_SRC) >> 2]!;
    const delta = first - this.arena;
    if (delta > 0) {
      this.core.u8.copyWithin(this.arena, first, this.arena + this.used);
      this.used -= delta;
      for (let i = c; i < b.length; i++) u32[(b.desc + i * D + K.BATCH_OFF_SRC) >> 2] -= delta;
    }
    this.core.u8.copyWithin(b.desc, b.desc + c * D, b.desc + b.length * D);
    b.length -= c;
    b.cursor = 0;
  }

  /** Forgets everything waiting (the channel closed). */
  clear(): void {
    this.batch.clear();
    this.used = 0;
    this.spill.length = 0;
    this.spillHead = 0;
  }
}
