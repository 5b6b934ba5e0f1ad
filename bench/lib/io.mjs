// Shared by the device suites: whole I/Os per second with `depth` in flight, and the copy limit
// (the engine's bulk copy of the same payload) to hold them against.

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
    seed = (seed * 1103515245 + 12345) >>> 0;
    return (seed % (diskBlocks / 8 - 1)) * 8;
  };
  for (let i = 0; i < 200; i++) await one(lba()); // warm up
  const until = performance.now() + ms;
  const t0 = performance.now();
  const worker = async () => {
    while (performance.now() < until) {
      await one(lba());
      done++;
    }
  };
  await Promise.all(Array.from({ length: depth }, worker));
  return (done / (performance.now() - t0)) * 1000;
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
