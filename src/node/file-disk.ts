// A disk in a file (Node): positional reads and writes straight between the file and core
// memory, no staging copy. The file is created at the given size, or its size gives the block
// count. Read-only opens it O_RDONLY and refuses writes.

import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import type { Core } from '../engine/core';
import { SgringError } from '../engine/errors';
import { coreArg, optionNames } from '../core/args';
import { checkGeometry, checkRegion, checkRequest, refuseWrite, type BlockBackend, type Lba } from '../devices/block/backend';

export interface FileDiskOptions {
  /** The core whose memory requests move through (ptr arguments are offsets in it). */
  core: Core;
  readOnly?: boolean;
  blockSize?: number;
  /** Create (or truncate) the file with this many blocks; without it the file must exist. */
  createBlocks?: number;
}

export class FileDisk implements BlockBackend {
  readonly blockSize: number;
  readonly blockCount: number;
  readonly readOnly: boolean;
  /** Every call finishes before it returns (BlockBackend.synchronous). */
  readonly synchronous = true;
  private fd: number | null;

  readonly core: Core;

  private constructor(readonly path: string, o: FileDiskOptions) {
    optionNames(o, ['core', 'readOnly', 'blockSize', 'createBlocks'], 'FileDisk.open');
    this.core = coreArg(o?.core, 'FileDisk.open: opts.core');
    this.readOnly = o.readOnly ?? false;
    if (o.createBlocks !== undefined && this.readOnly) throw new SgringError('InvalidArgument', 'FileDisk.open: a read-only disk cannot be created');
    this.fd = openSync(path, this.readOnly ? 'r' : o.createBlocks !== undefined ? 'w+' : 'r+');
    try {
      const blockSize = o.blockSize ?? 512;
      if (o.createBlocks !== undefined) {
        [this.blockCount, this.blockSize] = checkGeometry({ blockCount: o.createBlocks, blockSize }, 'FileDisk.open');
        ftruncateSync(this.fd, this.blockCount * this.blockSize);
      } else {
        const size = fstatSync(this.fd).size;
        [this.blockCount, this.blockSize] = checkGeometry({ blockCount: Math.floor(size / blockSize), blockSize }, `FileDisk.open (${path}, ${size} bytes)`);
      }
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
  }

  /** Opens (or with createBlocks, creates) a disk file; `opts.core` is the memory requests move through. */
  static open(path: string, opts: FileDiskOptions): FileDisk {
    return new FileDisk(path, opts);
  }

  read(lba: Lba, blocks: number, ptr: number): void {
    const [off, n] = this.check(lba, blocks, ptr, 'read');
    const u8 = this.core.u8;
    for (let done = 0; done < n;) {
      const got = readSync(this.fd!, u8, ptr + done, n - done, off + done);
      if (got === 0) throw new SgringError('MediumError', `FileDisk.read: ${this.path} ended at byte ${off + done}`);
      done += got;
    }
  }

  write(lba: Lba, blocks: number, ptr: number): void {
    const [off, n] = this.check(lba, blocks, ptr, 'write');
    refuseWrite(this.readOnly, 'FileDisk.write');
    const u8 = this.core.u8;
    for (let done = 0; done < n;) done += writeSync(this.fd!, u8, ptr + done, n - done, off + done);
  }

  flush(): void {
    this.open('flush');
    if (!this.readOnly) fsyncSync(this.fd!);
  }

  discard(lba: Lba, blocks: number): void {
    const [off, n] = checkRequest(this, lba, blocks, 'FileDisk.discard');
    this.open('discard');
    refuseWrite(this.readOnly, 'FileDisk.discard');
    const zeros = new Uint8Array(Math.min(n, 1 << 20));
    for (let done = 0; done < n;) done += writeSync(this.fd!, zeros, 0, Math.min(zeros.length, n - done), off + done);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private open(op: string): void {
    if (this.fd === null) throw new SgringError('Disposed', `FileDisk.${op}: ${this.path} is closed`);
  }

  private check(lba: Lba, blocks: number, ptr: number, op: string): [number, number] {
    this.open(op);
    const r = checkRequest(this, lba, blocks, `FileDisk.${op}`);
    checkRegion(this.core, ptr, r[1], `FileDisk.${op}`);
    return r;
  }
}
