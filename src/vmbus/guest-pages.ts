// Where a guest end gets the pages for its rings and GPADL buffers. GuestBus only needs
// "count contiguous, zeroed guest pages" and, to give them back on close and rescind, a free.
// pageAllocator is that manager over a window of guest RAM (first fit, freed runs merged);
// bumpPageAllocator hands pages out once and never takes them back (handy in tests that want
// fixed addresses). Pages whose GPADL teardown failed are never given back (spec §3.5: the host
// may still write them): GuestBus counts them as leakedPages instead.

import type { Core } from '../engine/core';
import { SgringError } from '../engine/errors';
import { optionNames } from '../core/args';

const PAGE = 4096;

/** Returns the guest-physical address of `count` contiguous, zeroed, page-aligned pages. */
export interface PageAllocator {
  (count: number): number;
  /** Gives back a run this allocator returned (absent on allocators that never reuse pages). */
  free?: (gpa: number) => void;
}

export interface PageStats {
  /** Pages handed out and not given back. */
  usedPages: number;
  /** Highest page count the window has had in use at once: what the allocator has touched. */
  peakPages: number;
  /** Pages of the window not in use. */
  freePages: number;
  /** Free runs (1 when nothing is fragmented). */
  freeRuns: number;
}

export interface FreeingPageAllocator extends PageAllocator {
  free: (gpa: number) => void;
  stats(): PageStats;
}

function windowOf(core: Core, opts: { startGpa?: number; endGpa?: number }): [number, number] {
  optionNames(opts, ['startGpa', 'endGpa'], 'page allocator');
  const start = opts.startGpa ?? 0;
  const end = opts.endGpa ?? core.guestBytes;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start % PAGE !== 0 || start < 0 || end > core.guestBytes || end < start) {
    throw new SgringError('InvalidArgument',
      `page window [${start}, ${end}) must be page aligned and inside guest RAM (${core.guestBytes} bytes; loadCore's guestBytes sets it)`);
  }
  return [start, start + Math.floor((end - start) / PAGE) * PAGE];
}

function checkCount(count: number): void {
  if (!Number.isSafeInteger(count) || count < 1) throw new SgringError('InvalidArgument', `page count ${String(count)} must be a positive integer`);
}

/**
 * Pages of guest RAM from [startGpa, endGpa) (default: the whole window) that can be given back:
 * the lowest run that fits is used first, and a freed run merges with its free neighbours, so a
 * cycle of allocations and frees keeps using the same pages.
 */
export function pageAllocator(core: Core, opts: { startGpa?: number; endGpa?: number } = {}): FreeingPageAllocator {
  const [start, end] = windowOf(core, opts);
  const runs: { at: number; pages: number }[] = [{ at: start, pages: (end - start) / PAGE }]; // free, sorted by address
  const live = new Map<number, number>(); // gpa -> pages
  let used = 0;
  let peak = 0;
  const alloc = ((count: number) => {
    checkCount(count);
    const i = runs.findIndex((r) => r.pages >= count);
    if (i < 0) {
      const largest = runs.reduce((m, r) => Math.max(m, r.pages), 0);
      throw new SgringError('OutOfMemory', `${count} contiguous guest pages requested; ${used} of ${(end - start) / PAGE} in use, largest free run ${largest}`);
    }
    const r = runs[i];
    const gpa = r.at;
    r.at += count * PAGE;
    r.pages -= count;
    if (r.pages === 0) runs.splice(i, 1);
    live.set(gpa, count);
    used += count;
    peak = Math.max(peak, used);
    core.u8.fill(0, core.guestBase + gpa, core.guestBase + gpa + count * PAGE);
    return gpa;
  }) as FreeingPageAllocator;
  alloc.free = (gpa: number) => {
    const pages = live.get(gpa);
    if (pages === undefined) throw new SgringError('InvalidArgument', `guest page ${String(gpa)} is not the start of a run this allocator handed out (or it was freed already)`);
    live.delete(gpa);
    used -= pages;
    let i = runs.findIndex((r) => r.at > gpa);
    if (i < 0) i = runs.length;
    runs.splice(i, 0, { at: gpa, pages });
    const next = runs[i + 1];
    if (next && gpa + pages * PAGE === next.at) {
      runs[i].pages += next.pages;
      runs.splice(i + 1, 1);
    }
    const prev = runs[i - 1];
    if (prev && prev.at + prev.pages * PAGE === gpa) {
      prev.pages += runs[i].pages;
      runs.splice(i, 1);
    }
  };
  alloc.stats = () => ({ usedPages: used, peakPages: peak, freePages: (end - start) / PAGE - used, freeRuns: runs.length });
  return alloc;
}

/** Hands out pages of guest RAM from [startGpa, endGpa) (default: the whole window), lowest first, never reused. */
export function bumpPageAllocator(core: Core, opts: { startGpa?: number; endGpa?: number } = {}): PageAllocator {
  const [start, end] = windowOf(core, opts);
  let next = start;
  return (count: number) => {
    checkCount(count);
    if (count > (end - next) / PAGE) throw new SgringError('OutOfMemory', `${count} guest pages requested, ${Math.floor((end - next) / PAGE)} left (this allocator never reuses pages: pageAllocator does)`);
    const gpa = next;
    next += count * PAGE;
    core.u8.fill(0, core.guestBase + gpa, core.guestBase + next);
    return gpa;
  };
}
