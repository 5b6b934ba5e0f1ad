import { E_InvalidArgument } from './generated/constants';

// Memory helpers shared by every hot path: index loads/stores that become atomics in the
// shared-memory build, bounds checks that survive --noAssert, and the small-copy routine.

// Index publication (checklist 68): in the threads build every index and signal field is an
// atomic (sequentially consistent) access, which gives both the release/acquire pairing around
// payload bytes and the full barrier the signalling rules of spec §1.9 ask for. The plain build
// runs on non-shared memory, where only one thread exists.
// @ts-ignore: decorator
@inline export function ld32(p: usize): u32 {
  if (ASC_FEATURE_THREADS) return atomic.load<u32>(p);
  return load<u32>(p);
}

// @ts-ignore: decorator
@inline export function st32(p: usize, v: u32): void {
  if (ASC_FEATURE_THREADS) atomic.store<u32>(p, v);
  else store<u32>(p, v);
}

/** Bytes of linear memory right now (memory is capped at 2 GiB, so this fits a u32). */
// @ts-ignore: decorator
@inline export function memBytes(): usize {
  return (<usize>memory.size()) << 16;
}

/** True when [ptr, ptr+len) lies inside linear memory. Written so it cannot overflow (P2). */
// @ts-ignore: decorator
@inline export function inMemory(ptr: usize, len: usize): bool {
  const size = memBytes();
  return len <= size && ptr <= size - len;
}

/**
 * Copy n bytes. Small copies use 8-byte loads and stores (a `memory.copy` costs more than the
 * copy itself below a few hundred bytes); large ones use the bulk instruction.
 */
// @ts-ignore: decorator
@inline export function copyBytes(dst: usize, src: usize, n: usize): void {
  if (n >= 256) {
    memory.copy(dst, src, n);
    return;
  }
  let i: usize = 0;
  while (i + 32 <= n) {
    const a = load<u64>(src + i);
    const b = load<u64>(src + i, 8);
    const c = load<u64>(src + i, 16);
    const d = load<u64>(src + i, 24);
    store<u64>(dst + i, a);
    store<u64>(dst + i, b, 8);
    store<u64>(dst + i, c, 16);
    store<u64>(dst + i, d, 24);
    i += 32;
  }
  while (i + 8 <= n) {
    store<u64>(dst + i, load<u64>(src + i));
    i += 8;
  }
  while (i < n) {
    store<u8>(dst + i, load<u8>(src + i));
    i++;
  }
}

/**
 * The copy limit the benchmarks compare against: `times` bulk copies of len bytes, the i-th from
 * src + i*srcStride to dst + i*dstStride, in one call (strides let it walk the same buffers as
 * the operation it bounds, so both see the same cache footprint).
 */
export function copyLimit(dst: usize, dstStride: u32, src: usize, srcStride: u32, len: u32, times: u32): i32 {
  if (times == 0) return 0;
  const last = <u64>(times - 1);
  const dstEnd = <u64>dst + last * dstStride + len;
  const srcEnd = <u64>src + last * srcStride + len;
  if (dstEnd > <u64>memBytes() || srcEnd > <u64>memBytes()) return E_InvalidArgument;
  for (let i: u32 = 0; i < times; i++) memory.copy(dst + i * dstStride, src + i * srcStride, len);
  return 0;
}
