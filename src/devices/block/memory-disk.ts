// A disk in memory: in core memory itself (one copy per request, the fastest), or for large
// disks in chunks of its own that exist only once written (a 1 TiB disk costs what was written).

import type { Core } from '../../engine/core';
import { SgringError } from '../../engine/errors';
import { optionNames } from '../../core/args';
import { checkGeometry, checkRegion, checkRequest, refuseWrite, type BlockBackend, type DiskGeometry, type Lba } from './backend';

const CHUNK = 1 << 20; // sparse storage unit
const CORE_LIMIT = 64 << 20; // larger disks are sparse unless asked otherwise

export interface MemoryDiskOptions extends DiskGeometry {
  /** 'core' (a region of core memory) or 'sparse' (1 MiB chunks made on first write). Default: core up to 64 MiB. */
  storage?: 'core' | 'sparse';
  readOnly?: boolean;
}

export class MemoryDisk implements BlockBackend {
  readonly blockSize: number;
  readonly blockCount: number;
  readonly storage: 'core' | 'sparse';
  readOnly: boolean;
  /** Every call finishes before it returns (BlockBackend.synchronous). */
  readonly synchronous = true;
  /** Offset of the disk in core memory ('core' storage; -1 for sparse). */
  readonly ptr: number;
  private readonly chunks = new Map<number, Uint8Array>();
  private disposed = false;

  private constructor(readonly core: Core, o: MemoryDiskOptions) {
    optionNames(o, ['blockCount', 'blockSize', 'storage', 'readOnly'], 'MemoryDisk.create');
    [this.blockCount, this.blockSize] = checkGeometry(o, 'MemoryDisk.create');
    const bytes = this.blockCount * this.blockSize;
    this.storage = o.storage ?? (bytes <= CORE_LIMIT ? 'core' : 'sparse');
    if (this.storage !== 'core' && this.storage !== 'sparse') throw new SgringError('InvalidArgument', `MemoryDisk.create: storage '${String(this.storage)}' is 'core' or 'sparse'`);
    this.readOnly = o.readOnly ?? false;
    this.ptr = this.storage === 'core' ? core.alloc(bytes, 4096) : -1;
  }

  static create(core: Core, opts: MemoryDiskOptions): MemoryDisk {
    return new MemoryDisk(core, opts);
  }

  /** Bytes of memory the disk holds now (all of it for 'core'; the written chunks for 'sparse'). */
  get allocatedBytes(): number {
    return this.storage === 'core' ? this.blockCount * this.blockSize : this.chunks.size * CHUNK;
  }

  read(lba: Lba, blocks: number, ptr: number): void {
    if (this.storage === 'core' && this.inRange(lba, blocks, ptr)) {
      const off = this.ptr + (lba as number) * this.blockSize;
      this.core.u8.copyWithin(ptr, off, off + blocks * this.blockSize);
      return;
    }
    this.readChecked(lba, blocks, ptr);
  }

  /** BlockBackend.inCore: the core offset of the blocks ('core' storage, a request read / write would take), else -1. */
  inCore(core: Core, lba: Lba, blocks: number, write: boolean): number {
    if (core !== this.core || this.storage !== 'core' || (write && this.readOnly) || !this.inRange(lba, blocks, 0)) return -1;
    return this.ptr + (lba as number) * this.blockSize;
  }

  // The general paths live apart from the fast ones: their closures would make every call
  // allocate a context for the variables they capture.
  private readChecked(lba: Lba, blocks: number, ptr: number): void {
    const [off, n] = this.check(lba, blocks, ptr, 'read');
    const u8 = this.core.u8;
    if (this.storage === 'core') {
      u8.copyWithin(ptr, this.ptr + off, this.ptr + off + n);
      return;
    }
    this.walk(off, n, (c, at, len, done) => {
      const chunk = this.chunks.get(c);
      if (chunk) u8.set(chunk.subarray(at, at + len), ptr + done);
      else u8.fill(0, ptr + done, ptr + done + len);
    });
  }

  write(lba: Lba, blocks: number, ptr: number): void {
    if (this.storage === 'core' && !this.readOnly && this.inRange(lba, blocks, ptr)) {
      const off = this.ptr + (lba as number) * this.blockSize;
      this.core.u8.copyWithin(off, ptr, ptr + blocks * this.blockSize);
      return;
    }
    this.writeChecked(lba, blocks, ptr);
  }

  private writeChecked(lba: Lba, blocks: number, ptr: number): void {
    const [off, n] = this.check(lba, blocks, ptr, 'write');
    refuseWrite(this.readOnly, 'MemoryDisk.write');
    const u8 = this.core.u8;
    if (this.storage === 'core') {
      u8.copyWithin(this.ptr + off, ptr, ptr + n);
      return;
    }
    this.walk(off, n, (c, at, len, done) => {
      let chunk = this.chunks.get(c);
      if (!chunk) this.chunks.set(c, (chunk = new Uint8Array(CHUNK)));
      chunk.set(u8.subarray(ptr + done, ptr + done + len), at);
    });
  }

  flush(): void {
    if (this.disposed) throw new SgringError('Disposed', 'MemoryDisk: disposed');
  }

  discard(lba: Lba, blocks: number): void {
    const [off, n] = checkRequest(this, lba, blocks, 'MemoryDisk.discard');
    refuseWrite(this.readOnly, 'MemoryDisk.discard');
    if (this.storage === 'core') {
      this.core.u8.fill(0, this.ptr + off, this.ptr + off + n);
      return;
    }
    this.walk(off, n, (c, at, len) => {
      if (len === CHUNK) this.chunks.delete(c);
      else this.chunks.get(c)?.fill(0, at, at + len);
    });
  }

  /** Gives the disk's memory back; every later request throws Disposed. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.storage === 'core') this.core.free(this.ptr);
    this.chunks.clear();
  }

  /** The common request, checked without building anything: a number LBA, blocks on the disk, core memory for them. Anything else takes check(). */
  private inRange(lba: Lba, blocks: number, ptr: number): boolean {
    if (this.disposed || typeof lba !== 'number' || !(lba >= 0 && blocks >= 0 && ptr >= 0) || !Number.isSafeInteger(lba) || !Number.isSafeInteger(blocks)) return false;
    const bytes = blocks * this.blockSize;
    const size = this.core.u8.length; // the view's length: never more than core memory (check() asks the memory itself)
    return lba <= this.blockCount && blocks <= this.blockCount - lba && Number.isSafeInteger(ptr) && bytes <= size && ptr <= size - bytes;
  }

  private check(lba: Lba, blocks: number, ptr: number, op: string): [number, number] {
    if (this.disposed) throw new SgringError('Disposed', `MemoryDisk.${op}: disposed`);
    const r = checkRequest(this, lba, blocks, `MemoryDisk.${op}`);
    checkRegion(this.core, ptr, r[1], `MemoryDisk.${op}`);
    return r;
  }

  /** Calls fn(chunk, offset in chunk, length, bytes done so far) for each chunk [off, off+n) touches. */
  private walk(off: number, n: number, fn: (c: number, at: number, len: number, done: number) => void): void {
    for (let done = 0; done < n;) {
      const pos = off + done;
      const c = Math.floor(pos / CHUNK);
      const at = pos - c * CHUNK;
      const len = Math.min(CHUNK - at, n - done);
      fn(c, at, len, done);
      done += len;
    }
  }
}
