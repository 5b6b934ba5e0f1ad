// Where a guest end gets the pages for its rings and GPADL buffers. GuestBus only needs
// "count contiguous guest pages"; a guest-memory manager supplies that in a real setup. This
// bump allocator over a window of the guest RAM is the stand-in: pages are never reused, which
// is also what spec §3.5 asks of ring memory whose teardown failed (the host may still write it).

import type { Core } from '../engine/core';
import { SgringError } from '../engine/errors';

const PAGE = 4096;

/** Returns the guest-physical address of `count` contiguous, zeroed, page-aligned pages. */
export type PageAllocator = (count: number) => number;

/** Hands out pages of guest RAM from [startGpa, endGpa) (default: the whole guest RAM window), lowest first. */
export function bumpPageAllocator(core: Core, opts: { startGpa?: number; endGpa?: number } = {}): PageAllocator {
  const start = opts.startGpa ?? 0;
  const end = opts.endGpa ?? core.guestBytes;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start % PAGE !== 0 || start < 0 || end > core.guestBytes || end < start) {
    throw new SgringError('InvalidArgument', `page window [${start}, ${end}) must be page aligned and inside guest RAM (${core.guestBytes} bytes)`);
  }
  let next = start;
  return (count: number) => {
    if (!Number.isInteger(count) || count < 1) throw new SgringError('InvalidArgument', `page count ${count}`);
    if (count > (end - next) / PAGE) throw new SgringError('OutOfMemory', `${count} guest pages requested, ${Math.floor((end - next) / PAGE)} left`);
    const gpa = next;
    next += count * PAGE;
    core.u8.fill(0, core.guestBase + gpa, core.guestBase + next);
    return gpa;
  };
}
