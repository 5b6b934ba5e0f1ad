// BouncePool: the pages a driver may bounce through, handed to planPageList and taken back after
// the request. In an isolated (confidential) guest a bounce page must be made shared with the
// host before use and private again afterwards; those transitions can fail, and a page whose
// state is unknown must never be reused or freed (Linux CVE-2024-36909..36913, hardening L19,
// checklist item 30). Such pages are quarantined: kept out of the pool for good.

import { SgringError } from '../engine/errors';
import { planPageList, type PagePlan, type PlanOptions, type Segment } from './pagelist';

export interface BouncePoolOptions {
  /** Page size of the pool's pages (default 4096). */
  pageSize?: number;
  /** Called before a page is exposed to the host; throwing means the transition failed. */
  makeShared?: (gpa: number, bytes: number) => void;
  /** Called when a page returns to the pool; throwing means the transition failed. */
  makePrivate?: (gpa: number, bytes: number) => void;
}

export class BouncePool {
  readonly pageSize: number;
  private readonly freeList: number[];
  private readonly inUse = new Set<number>();
  private readonly bad: number[] = [];
  private readonly opts: BouncePoolOptions;

  constructor(pages: readonly number[], opts: BouncePoolOptions = {}) {
    this.pageSize = opts.pageSize ?? 4096;
    this.opts = opts;
    const seen = new Set<number>();
    for (const p of pages) {
      if (!Number.isSafeInteger(p) || p < 0 || p % this.pageSize !== 0 || seen.has(p)) {
        throw new SgringError('BadBouncePage', `bounce page ${p} is not a distinct ${this.pageSize}-aligned address`);
      }
      seen.add(p);
    }
    this.freeList = [...pages];
  }

  /** Pages ready to be taken. */
  get free(): number {
    return this.freeList.length;
  }

  /** Pages whose shared/private transition failed: never handed out again. */
  get quarantined(): readonly number[] {
    return this.bad;
  }

  /**
   * Takes `count` pages and makes them shared. If a transition fails, that page is quarantined,
   * the pages already taken go back, and the request fails with BounceTransitionFailed.
   */
  take(count: number): number[] {
    if (!Number.isInteger(count) || count < 0) throw new SgringError('InvalidArgument', `cannot take ${count} pages`);
    if (count > this.freeList.length) throw new SgringError('BouncePoolTooSmall', `${count} bounce pages needed, ${this.freeList.length} free`);
    const taken = this.freeList.splice(0, count);
    for (let i = 0; i < taken.length; i++) {
      try {
        this.opts.makeShared?.(taken[i]!, this.pageSize);
      } catch (e) {
        this.bad.push(taken[i]!);
        // The ones before it were shared: they go back through makePrivate (and may be quarantined too).
        this.release(taken.slice(0, i));
        this.freeList.unshift(...taken.slice(i + 1));
        throw new SgringError('BounceTransitionFailed', `making bounce page 0x${taken[i]!.toString(16)} shared failed: ${(e as Error).message}`);
      }
      this.inUse.add(taken[i]!);
    }
    return taken;
  }

  /** Returns pages taken earlier, making them private; a failed transition quarantines the page. */
  release(pages: readonly number[]): void {
    for (const p of pages) {
      if (!this.inUse.delete(p)) throw new SgringError('InvalidArgument', `page 0x${p.toString(16)} was not taken from this pool`);
      try {
        this.opts.makePrivate?.(p, this.pageSize);
        this.freeList.push(p);
      } catch {
        this.bad.push(p);
      }
    }
  }

  /**
   * Plans a request with this pool: offers every free page to planPageList, then takes exactly the
   * ones the plan uses (they are the first ones offered). Release `pages` when the request ends.
   */
  plan(segments: readonly Segment[], opts: Omit<PlanOptions, 'bouncePages'>): { plan: PagePlan; pages: number[] } {
    const plan = planPageList(segments, { ...opts, pageSize: opts.pageSize ?? this.pageSize, bouncePages: this.freeList });
    const pages = this.take(plan.bounceEntries.length);
    return { plan, pages };
  }
}
