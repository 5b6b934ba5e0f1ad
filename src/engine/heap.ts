// The core heap: regions of core memory that are given back. Segregated free lists, one per
// size class (16-byte steps to 128 B, then four classes per doubling up to 2 GiB), so a freed
// block is reused by the next request of its class and internal waste stays under 25% (plus
// the alignment). Every piece of state — the top of the heap, the list heads, the counters, a
// spin lock — lives in the control block of core memory, so every Core over one memory (in one
// thread or several) shares one heap. Blocks are never split or merged: memory use is bounded
// by the peak live bytes of each class, which is what keeps open/close cycles flat.
//
// A block is [padding | 16-byte header | region]. The header sits right before the region:
// next-free link (used while free, at the block start), tag, class, block start.

import {
  CB_ALLOC_TOP, CB_HEAP_FREE_BYTES, CB_HEAP_FREE_HEADS, CB_HEAP_LIVE_BLOCKS, CB_HEAP_LIVE_BYTES, CB_HEAP_LOCK,
  HEAP_CLASSES, MEM_CONTROL_BASE, MEM_HEAP_BASE, MEM_MAX_PAGES,
} from '../generated/constants';
import { SgringError } from './errors';

const WASM_PAGE = 65536;
const MEMORY_LIMIT = MEM_MAX_PAGES * WASM_PAGE;
const HEADER = 16;
const TAG_LIVE = 0x4556494c; // "LIVE"
const TAG_FREE = 0x45455246; // "FREE"
const CB = MEM_CONTROL_BASE >> 2;
const TOP = CB + (CB_ALLOC_TOP >> 2);
const LOCK = CB + (CB_HEAP_LOCK >> 2);
const LIVE_BLOCKS = CB + (CB_HEAP_LIVE_BLOCKS >> 2);
const LIVE_BYTES = CB + (CB_HEAP_LIVE_BYTES >> 2);
const FREE_BYTES = CB + (CB_HEAP_FREE_BYTES >> 2);
const HEADS = CB + (CB_HEAP_FREE_HEADS >> 2);

/** What the heap holds right now (every Core over the memory sees the same figures). */
export interface HeapStats {
  /** Bytes between the heap base and its top: what the heap has taken from core memory. */
  heapBytes: number;
  /** Blocks handed out and not yet freed (the guest RAM window is not one of them). */
  liveBlocks: number;
  /** Bytes of those blocks, headers and class rounding included. */
  liveBytes: number;
  /** Bytes of freed blocks waiting on the free lists for reuse. */
  freeBytes: number;
}

/** The memory operations the heap needs from its Core. */
export interface HeapMemory {
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
  /** Grows core memory until it holds at least `end` bytes. */
  growTo(end: number): void;
}

/** Size of the blocks of class `c`. */
export function classSize(c: number): number {
  if (c < 8) return 16 * (c + 1);
  const k = (c - 8) >> 2;
  return 32 * 2 ** k * (5 + ((c - 8) & 3));
}

/** The smallest class whose blocks hold `n` bytes (n <= 2 GiB). */
export function classOf(n: number): number {
  if (n <= 128) return n <= 16 ? 0 : Math.ceil(n / 16) - 1;
  const top = 31 - Math.clz32(n - 1);
  const base = 2 ** top;
  return 8 + 4 * (top - 7) + Math.ceil((n - base) / (base / 4)) - 1;
}

function lock(i32: Int32Array): void {
  while (Atomics.compareExchange(i32, LOCK, 0, 1) !== 0) { /* one allocating thread: never long */ }
}

function unlock(i32: Int32Array): void {
  Atomics.store(i32, LOCK, 0);
}

/** Lays out an empty heap in a fresh control block. */
export function heapInit(m: HeapMemory): void {
  const u32 = m.u32;
  Atomics.store(u32, TOP, MEM_HEAP_BASE);
  for (let c = 0; c < HEAP_CLASSES; c++) u32[HEADS + c] = 0;
  u32[LIVE_BLOCKS] = 0;
  u32[LIVE_BYTES] = 0;
  u32[FREE_BYTES] = 0;
  Atomics.store(u32, LOCK, 0);
}

function checkAlloc(bytes: number, align: number, what: string): void {
  if (!Number.isSafeInteger(bytes) || bytes < 0 || !Number.isSafeInteger(align) || align <= 0 || (align & (align - 1)) !== 0 || align > 1 << 30) {
    throw new SgringError('InvalidArgument',
      `${what}(${String(bytes)}, ${String(align)}): the size must be a non-negative integer and the alignment a power of two up to 2^30`);
  }
}

/**
 * A region of `bytes` aligned to `align`, reusing a freed block of its class when one waits;
 * zeroed unless `zero` is false (for staging a caller overwrites whole before reading).
 */
export function heapAlloc(m: HeapMemory, bytes: number, align: number, zero = true): number {
  checkAlloc(bytes, align, 'alloc');
  const need = bytes + Math.max(align, HEADER);
  if (need > MEMORY_LIMIT) throw new SgringError('OutOfMemory', `alloc(${bytes}) is larger than the 2 GiB core memory`);
  const c = classOf(need);
  const size = classSize(c);
  lock(m.i32);
  let block: number;
  try {
    const u32 = m.u32;
    block = u32[HEADS + c];
    if (block !== 0) {
      u32[HEADS + c] = u32[block >> 2];
      u32[FREE_BYTES] -= size;
    } else {
      block = (u32[TOP] + 15) & ~15;
      const end = block + size;
      if (end > MEMORY_LIMIT) {
        throw new SgringError('OutOfMemory', `alloc(${bytes}) would pass the 2 GiB core memory limit ` +
          `(heap ${u32[TOP] - MEM_HEAP_BASE} bytes, ${u32[LIVE_BYTES]} of them live)`);
      }
      m.growTo(end);
      m.u32[TOP] = end;
    }
    const w = m.u32;
    const user = align > HEADER ? Math.ceil((block + HEADER) / align) * align : block + HEADER;
    const h = (user - HEADER) >> 2;
    w[h] = 0;
    w[h + 1] = TAG_LIVE;
    w[h + 2] = c;
    w[h + 3] = block;
    w[LIVE_BLOCKS] += 1;
    w[LIVE_BYTES] += size;
    if (zero) m.u8.fill(0, user, user + bytes);
    return user;
  } finally {
    unlock(m.i32);
  }
}

/** Bytes that stay reserved as long as the memory: no header, no class (the guest RAM window). */
export function heapReserve(m: HeapMemory, bytes: number, align: number): number {
  checkAlloc(bytes, align, 'reserve');
  lock(m.i32);
  try {
    const top = m.u32[TOP];
    const start = Math.ceil(top / align) * align;
    if (start + bytes > MEMORY_LIMIT) throw new SgringError('OutOfMemory', `reserving ${bytes} bytes would pass the 2 GiB core memory limit`);
    m.growTo(start + bytes);
    m.u32[TOP] = start + bytes;
    m.u8.fill(0, start, start + bytes);
    return start;
  } finally {
    unlock(m.i32);
  }
}

/** Gives a region from heapAlloc back. Freeing anything else, or twice, is an InvalidArgument. */
export function heapFree(m: HeapMemory, ptr: number): void {
  lock(m.i32);
  try {
    const u32 = m.u32;
    const top = u32[TOP];
    const ok = Number.isSafeInteger(ptr) && ptr % HEADER === 0 && ptr >= MEM_HEAP_BASE + HEADER && ptr <= top;
    const h = (ptr - HEADER) >> 2;
    const tag = ok ? u32[h + 1] : 0;
    const c = ok ? u32[h + 2] : 0;
    const block = ok ? u32[h + 3] : 0;
    if (!ok || tag !== TAG_LIVE || c >= HEAP_CLASSES || block < MEM_HEAP_BASE || block > ptr - HEADER || block + classSize(c) > top) {
      throw new SgringError('InvalidArgument', tag === TAG_FREE
        ? `free(${ptr}): the region was freed already`
        : `free(${String(ptr)}): not a region returned by core.alloc`);
    }
    const size = classSize(c);
    u32[h + 1] = TAG_FREE;
    u32[block >> 2] = u32[HEADS + c];
    u32[HEADS + c] = block;
    u32[LIVE_BLOCKS] -= 1;
    u32[LIVE_BYTES] -= size;
    u32[FREE_BYTES] += size;
  } finally {
    unlock(m.i32);
  }
}

export function heapStats(m: HeapMemory): HeapStats {
  const u32 = m.u32;
  return {
    heapBytes: u32[TOP] - MEM_HEAP_BASE,
    liveBlocks: u32[LIVE_BLOCKS],
    liveBytes: u32[LIVE_BYTES],
    freeBytes: u32[FREE_BYTES],
  };
}
