// The copies of many transfers moved in one engine call: a device whose disk lies in core memory
// (BlockBackend.inCore) adds each checked transfer here instead of copying it at once, and flushes
// before anything may look at the data (its completions, another command on the same blocks).
// Copies run as if one after another, in the order they were added (dmaCopyBatch).

import type { Core } from '../../engine/core';
import { SgringError } from '../../engine/errors';
import { emptyRegion, fit } from '../../engine/region';

export class CopyBatch {
  private readonly table = emptyRegion();
  private n = 0;

  /** `capacity` copies at most between flushes; `chunk`: the interleaving step (bytes) where copies are disjoint, 0 for none. */
  constructor(readonly core: Core, readonly capacity = 1024, readonly chunk = 1024) {}

  /** Copies waiting. */
  get size(): number {
    return this.n;
  }

  /** Adds a copy of `len` bytes of core memory from `src` to `dst` (both already checked); flushes first when full. */
  add(dst: number, src: number, len: number): void {
    if (this.n === this.capacity) this.flush();
    const w = (fit(this.core, this.table, this.capacity * 12) >>> 2) + 3 * this.n++;
    const u32 = this.core.u32;
    u32[w] = dst;
    u32[w + 1] = src;
    u32[w + 2] = len;
  }

  /** Moves every waiting copy. */
  flush(): void {
    if (this.n === 0) return;
    const st = this.core.fn.dmaCopyBatch(this.table.ptr, this.n, this.chunk);
    this.n = 0;
    if (st < 0) throw SgringError.fromStatus(st, 'batched copies'); // the regions were checked when added: never
  }
}
