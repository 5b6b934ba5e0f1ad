// Scratch regions that grow: a per-core or per-object work area in core memory, doubled when a
// call needs more, with the region it replaces given back to the heap.

import type { Core } from './core';

export interface ScratchRegion {
  ptr: number;
  cap: number;
}

export function emptyRegion(): ScratchRegion {
  return { ptr: 0, cap: 0 };
}

/** Makes `r` hold at least `bytes` (doubling, at least `min`) and returns its offset; old contents are not kept. */
export function fit(core: Core, r: ScratchRegion, bytes: number, min = 64): number {
  if (bytes > r.cap) {
    const cap = Math.max(bytes, 2 * r.cap, min);
    const ptr = core.alloc(cap, 8);
    if (r.cap > 0) core.free(r.ptr);
    r.ptr = ptr;
    r.cap = cap;
  }
  return r.ptr;
}

/** Gives `r` back to the heap and leaves it empty. */
export function release(core: Core, r: ScratchRegion): void {
  if (r.cap > 0) core.free(r.ptr);
  r.ptr = 0;
  r.cap = 0;
}

/** A new zeroed region of `bytes`, after which `old` (0 for none) is given back. */
export function replace(core: Core, old: number, bytes: number): number {
  const ptr = core.alloc(bytes, 8);
  if (old !== 0) core.free(old);
  return ptr;
}
