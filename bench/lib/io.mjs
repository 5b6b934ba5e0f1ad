// Shared by the device suites: whole I/Os per second with `depth` in flight, and the copy limit
// (the engine's bulk copy of the same payload) to hold them against.

import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { loadCoreSync } from '../../dist/index.mjs';

/**
 * I/Os per second over `ms`: `depth` workers each awaiting `one(lba)` in turn, `bytes` per I/O,
 * random 4 KiB-aligned LBAs on a disk of `diskBlocks` 512-byte blocks, or sequential ones.
 */
export async function iops(one, { depth, bytes, ms, diskBlocks, sequential = false }) {
  const blocks = bytes / 512;
  let next = 0;
  let done = 0;
  let seed = 12345;
  const lba = () => {
    if (sequential) return (next = (next + blocks) % (diskBlocks - blocks));
    // Small integers throughout: a u32 above 2^31 is a double in V8, and a double's % is a C
    // library call costing as much as a tenth of an I/O.
    seed = (Math.imul(seed, 1103515245) + 12345) | 0;
    return ((seed >>> 8) % (diskBlocks / 8 - 1)) * 8;
  };
  for (let i = 0; i < 200; i++) await one(lba()); // warm up
  const until = performance.now() + ms;
  const t0 = performance.now();
  // The clock is read every 16 I/Os of a worker (a read costs as much as a tenth of an I/O).
  const worker = async () => {
    while (performance.now() < until) {
      for (let i = 0; i < 16; i++) await one(lba());
      done += 16;
    }
  };
  await Promise.all(Array.from({ length: depth }, worker));
  return (done / (performance.now() - t0)) * 1000;
}

/**
 * Heap bytes allocated per I/O in steady state: the growth of V8's used heap over windows of `n`
 * I/Os (`depth` in flight) in which no garbage collection ran (heapPerOp says how); the median of
 * those windows, or undefined when every window met a collection.
 */
export async function heapPerIo(one, { depth, bytes, diskBlocks, n = 250, windows = 40 }) {
  const step = Math.max(1, Math.floor(diskBlocks / 8 / n)) * 8;
  return heapPerOp(async () => {
    let i = 0;
    const worker = async () => {
      while (i < n) await one(((i++ * step) % (diskBlocks - bytes / 512)) & ~7);
    };
    await Promise.all(Array.from({ length: depth }, worker));
    return n;
  }, windows);
}

/**
 * Heap bytes per operation in steady state: `windows` runs of `step()` (which does some
 * operations and returns how many), each the growth of V8's used heap over the run; runs in which
 * a garbage collection ran (a PerformanceObserver says which) are left out. The median, or
 * undefined when every run met a collection.
 */
export async function heapPerOp(step, windows = 40) {
  const gcs = [];
  const obs = new PerformanceObserver((list) => gcs.push(...list.getEntries().map((e) => [e.startTime, e.startTime + e.duration])));
  obs.observe({ entryTypes: ['gc'] });
  const spans = [];
  try {
    for (let w = 0; w < windows; w++) {
      const t0 = performance.now();
      const before = getHeapStatistics().used_heap_size;
      const ops = await step();
      spans.push([t0, performance.now(), (getHeapStatistics().used_heap_size - before) / ops]);
    }
    await new Promise((r) => setTimeout(r, 10)); // the observer hears of the last collections
  } finally {
    obs.disconnect();
  }
  const clean = spans.filter(([a, b]) => !gcs.some(([s, e]) => s <= b && e >= a)).map(([, , per]) => per).sort((x, y) => x - y);
  return clean.length === 0 ? undefined : clean[clean.length >> 1];
}

/** Copies per second of `bytes` between two places of core memory (the engine's bulk copy). */
export function copyLimit(bytes) {
  const core = loadCoreSync({ guestBytes: 4 << 20 });
  const g = core.guestBase;
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < 200) {
    core.fn.copyLimit(g, 0, g + (2 << 20), 0, bytes, 16);
    n += 16;
  }
  return (n / (performance.now() - t0)) * 1000;
}

/**
 * The copy limit of a sequential read of a disk in memory: `bytes` at a time from successive
 * places of a `diskBytes` region (written first, as a disk holding data is) into one buffer, the
 * footprint such a read has (the disk does not fit in the CPU's caches; a copy between two
 * fixed buffers would). `ms` of copies.
 */
export function streamCopyLimit(bytes, diskBytes, ms = 300) {
  const core = (streamCores[diskBytes] ??= loadCoreSync({ guestBytes: diskBytes + (4 << 20) }));
  const g = core.guestBase;
  fillPattern(core.u8, g, diskBytes);
  const times = Math.floor(diskBytes / bytes);
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < ms) {
    core.fn.copyLimit(g + diskBytes, 0, g, bytes, bytes, times);
    n += times;
  }
  return (n / (performance.now() - t0)) * 1000;
}
const streamCores = {};

/**
 * Writes a pattern over `bytes` of `u8` from `at`: the disks the suites read hold data, as a
 * disk image does (never-written memory reads the kernel's shared zero page, which no disk does).
 */
export function fillPattern(u8, at, bytes) {
  for (let i = 0; i < 256; i++) u8[at + i] = (i * 31 + 7) & 0xff;
  for (let done = 256; done < bytes; done *= 2) u8.copyWithin(at + done, at, at + Math.min(done, bytes - done));
}

/**
 * Two rates measured in turn over `rounds` rounds (`a` and `b`, each a function returning one,
 * maybe a promise), so both see the same moments of a machine whose speed drifts: the median of
 * each. A ratio of the two then compares like with like. One round more runs first and is not
 * counted: a path's first few hundred ms run below its steady rate (code being optimised).
 */
export async function alternate(rounds, a, b) {
  const ra = [];
  const rb = [];
  await a();
  await b();
  for (let r = 0; r < rounds; r++) {
    ra.push(await a());
    rb.push(await b());
  }
  const median = (xs) => xs.sort((x, y) => x - y)[xs.length >> 1];
  return [median(ra), median(rb)];
}
