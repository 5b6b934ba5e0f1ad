// The disk behind a storage device (NVMe namespaces, storvsp targets, the iSCSI and NVMe/TCP
// front ends): fixed-size blocks, moved to and from regions of core memory, synchronously or
// not. A backend checks its own ranges; the device turns a refusal into its protocol's status.

import type { Core } from '../../engine/core';
import { SgringError } from '../../engine/errors';

/** A logical block address: a safe integer or a bigint (the wire carries 64 bits). */
export type Lba = number | bigint;

export interface BlockBackend {
  readonly blockSize: number;
  readonly blockCount: number;
  readonly readOnly: boolean;
  /**
   * True when read, write and flush always finish before they return (never a promise): a
   * device may then move data in place between the disk and guest memory, and complete a
   * command within the call that started it. An asynchronous backend gets a staging region.
   */
  readonly synchronous?: boolean;
  /** Copies `blocks` blocks from `lba` into core memory at `ptr`. */
  read(lba: Lba, blocks: number, ptr: number): void | Promise<void>;
  /** Copies `blocks` blocks from core memory at `ptr` to `lba`. */
  write(lba: Lba, blocks: number, ptr: number): void | Promise<void>;
  /** Makes every completed write durable. */
  flush(): void | Promise<void>;
  /** Forgets the blocks: they read as zeros afterwards. */
  discard?(lba: Lba, blocks: number): void | Promise<void>;
  /**
   * Where `blocks` blocks from `lba` lie in the memory of `core`, one contiguous region, when a
   * read (`write` false) or a write of them would be a plain copy there: a device may then move
   * a batch of transfers itself (one engine call for many commands) instead of calling read or
   * write. -1 when not (another core, blocks not in memory, a request read / write would refuse:
   * the device then calls them, and they report the error).
   */
  inCore?(core: Core, lba: Lba, blocks: number, write: boolean): number;
}

export interface DiskGeometry {
  blockCount: number;
  /** Bytes per block: a power of two from 512 to 65536 (default 512). */
  blockSize?: number;
}

/** Checks a geometry; returns [blockCount, blockSize]. */
export function checkGeometry(g: DiskGeometry | undefined, where: string): [number, number] {
  const blockSize = g?.blockSize ?? 512;
  const blockCount = g?.blockCount;
  if (!Number.isInteger(blockSize) || blockSize < 512 || blockSize > 65536 || (blockSize & (blockSize - 1)) !== 0) {
    throw new SgringError('InvalidArgument', `${where}: blockSize ${String(blockSize)} must be a power of two from 512 to 65536`);
  }
  if (!Number.isSafeInteger(blockCount) || (blockCount as number) < 1 || (blockCount as number) * blockSize > Number.MAX_SAFE_INTEGER) {
    throw new SgringError('InvalidArgument', `${where}: blockCount ${String(blockCount)} must be a positive integer (the disk at most 2^53 bytes)`);
  }
  return [blockCount as number, blockSize];
}

/**
 * Checks one request against a disk and core memory: returns the byte offset on the disk and
 * the byte count. LbaOutOfRange when the blocks pass the end; InvalidArgument for nonsense.
 */
export function checkRequest(d: { blockSize: number; blockCount: number }, lba: Lba, blocks: number, where: string): [number, number] {
  const n = typeof lba === 'bigint' ? (lba <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(lba) : Infinity) : lba;
  if (!(Number.isSafeInteger(n) || n === Infinity) || n < 0 || !Number.isSafeInteger(blocks) || blocks < 0) {
    throw new SgringError('InvalidArgument', `${where}: lba ${String(lba)} and blocks ${String(blocks)} must be non-negative integers`);
  }
  if (n > d.blockCount || blocks > d.blockCount - n) {
    throw new SgringError('LbaOutOfRange', `${where}: blocks [${String(lba)}, +${blocks}) pass the end of the disk (${d.blockCount} blocks)`, { lba: String(lba), blocks });
  }
  return [n * d.blockSize, blocks * d.blockSize];
}

/** The core-memory range a request moves, checked. */
export function checkRegion(core: Core, ptr: number, bytes: number, where: string): void {
  if (!Number.isSafeInteger(ptr) || ptr < 0 || bytes > core.byteLength || ptr > core.byteLength - bytes) {
    throw new SgringError('InvalidArgument', `${where}: core memory [${String(ptr)}, +${bytes}) is outside core memory (${core.byteLength} bytes)`);
  }
}

export function refuseWrite(readOnly: boolean, where: string): void {
  if (readOnly) throw new SgringError('ReadOnlyMedium', `${where}: the disk is read-only`);
}
