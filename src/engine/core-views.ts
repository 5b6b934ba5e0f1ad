// Views of core memory kept by offset: a driver that copies out of the same staging runs again
// and again takes the same view each time instead of a new one per copy (a view is an object on
// the JavaScript heap; a steady stream of I/O should make none).

import type { Core } from './core';

export class CoreViews {
  private readonly views = new Map<number, Uint8Array>();
  /** The view of core memory the kept views were taken from (a new one after growth; comparing views costs less than `.buffer`). */
  private over: Uint8Array | null = null;

  /** At most `max` views are kept (default 1024); past that, views are made and not kept. */
  constructor(private readonly max = 1024) {}

  /** A view of [at, at + bytes) of core memory: the one kept for `at` when its length matches. */
  get(core: Core, at: number, bytes: number): Uint8Array {
    const u8 = core.u8;
    if (this.over !== u8) {
      this.views.clear(); // core memory grew: the kept views see the old buffer
      this.over = u8;
    }
    const v = this.views.get(at);
    if (v !== undefined && v.length === bytes) return v;
    const fresh = u8.subarray(at, at + bytes);
    if (this.views.size < this.max || v !== undefined) this.views.set(at, fresh);
    return fresh;
  }
}
