// Shared helpers of the PRP / SGL tests: cores with a guest window, guest-memory pokes, and
// the plain models the properties compare against.
import { expect } from 'vitest';
import { loadCoreSync, type Core, type EngineName, type NvmeWalkResult, type NvmeSegment as Segment } from '../../src/index';

export const ENGINES: EngineName[] = ['wasm', 'reference'];
export const MiB = 1 << 20;

/** A core with `guestBytes` of guest RAM (default 16 MiB). */
export function guestCore(engine: EngineName, guestBytes = 16 * MiB): Core {
  return loadCoreSync({ engine, guestBytes, initialBytes: guestBytes + 4 * MiB });
}

/** Writes little-endian u64 values at guest-physical address gpa. */
export function putU64(c: Core, gpa: number, values: readonly (number | bigint)[]): void {
  const dv = new DataView(c.u8.buffer, c.guestBase);
  values.forEach((v, i) => dv.setBigUint64(gpa + 8 * i, BigInt(v), true));
}

export function getU64(c: Core, gpa: number, n: number): bigint[] {
  const dv = new DataView(c.u8.buffer, c.guestBase);
  return Array.from({ length: n }, (_, i) => dv.getBigUint64(gpa + 8 * i, true));
}

/** Writes an SGL descriptor (addr, len, id) at guest address gpa. */
export function putDesc(c: Core, gpa: number, addr: number | bigint, len: number, id: number): void {
  const dv = new DataView(c.u8.buffer, c.guestBase);
  dv.setBigUint64(gpa, BigInt(addr), true);
  dv.setUint32(gpa + 8, len, true);
  dv.setUint32(gpa + 12, id * 0x1000000, true);
}

/** The segments of an ok result (fails the test otherwise). */
export function segmentsOf(r: NvmeWalkResult): Segment[] {
  if (!r.ok) expect.fail(`walk failed: ${JSON.stringify(r.status)}`);
  return r.segments;
}

/** The status of a failed result (fails the test otherwise). */
export function statusOf(r: NvmeWalkResult) {
  if (r.ok) expect.fail(`walk succeeded: ${JSON.stringify(r.segments)}`);
  return r.status;
}

/** Merges physically contiguous neighbours, never the first with anything before it. */
export function mergeModel(segs: readonly Segment[]): Segment[] {
  const out: Segment[] = [];
  for (const s of segs) {
    const last = out[out.length - 1];
    if (last && last.addr + last.len === s.addr) last.len += s.len;
    else out.push({ ...s });
  }
  return out;
}

/** The PRP entries of a transfer given as segments: one per page touched (§3.1). */
export function prpEntriesModel(segs: readonly Segment[], mps: number): Segment[] {
  const out: Segment[] = [];
  for (const s of segs) {
    let a = s.addr;
    let left = s.len;
    while (left > 0) {
      const n = Math.min(left, mps - (a % mps));
      out.push({ addr: a, len: n });
      a += n;
      left -= n;
    }
  }
  return out;
}

/**
 * The PRP list layout a builder must write for `entries` (addresses after PRP1), with list
 * pages from `pool` (the first may carry an offset): page address -> [slot index, value] pairs.
 */
export function prpListModel(entries: readonly number[], pool: readonly number[], mps: number): { page: number; words: number[] }[] {
  const pages: { page: number; words: number[] }[] = [];
  let j = 0;
  let cap = (mps - (pool[0]! % mps)) / 8;
  let cur: number[] = [];
  for (let i = 0; i < entries.length; i++) {
    const remaining = entries.length - i;
    if (cur.length === cap - 1 && remaining > 1) {
      cur.push(pool[j + 1]!);
      pages.push({ page: pool[j]!, words: cur });
      j++;
      cur = [];
      cap = mps / 8;
    }
    cur.push(entries[i]!);
  }
  pages.push({ page: pool[j]!, words: cur });
  return pages;
}

/** Fills guest memory with a byte pattern (so stale zeros never pass for written data). */
export function scribble(c: Core, seed = 0x5a): void {
  const g = c.u8.subarray(c.guestBase, c.guestBase + c.guestBytes);
  for (let i = 0; i < g.length; i += 4096) g.fill((seed + (i >> 12)) & 0xff, i, i + 4096);
}
