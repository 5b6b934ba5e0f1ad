// A disk in the browser's Origin Private File System: a FileSystemSyncAccessHandle, which
// browsers give only to dedicated Workers, so the device that uses it runs in a Worker too
// (over shared memory with the guest side). Reads and writes go straight between the file and
// core memory. The types are named here so the library compiles without the DOM lib.

import type { Core } from '../../engine/core';
import { SgringError } from '../../engine/errors';
import { coreArg, optionNames } from '../../core/args';
import { checkGeometry, checkRegion, checkRequest, refuseWrite, type BlockBackend, type Lba } from './backend';

interface SyncAccessHandle {
  read(buffer: Uint8Array, opts: { at: number }): number;
  write(buffer: Uint8Array, opts: { at: number }): number;
  flush(): void;
  getSize(): number;
  truncate(size: number): void;
  close(): void;
}

interface OpfsGlobal {
  navigator?: { storage?: { getDirectory?(): Promise<{ getFileHandle(name: string, o: { create: boolean }): Promise<{ createSyncAccessHandle?(): Promise<SyncAccessHandle> }> }> } };
}

export interface OpfsDiskOptions {
  core: Core;
  readOnly?: boolean;
  blockSize?: number;
  /** Size the file to this many blocks (creating it if needed); without it the file's size counts. */
  createBlocks?: number;
}

/** The part of a view of core memory a sync access handle reads into: no copies, a fresh view per call. */
const view = (core: Core, ptr: number, n: number) => new Uint8Array(core.u8.buffer, ptr, n);

export class OpfsDisk implements BlockBackend {
  readonly blockSize: number;
  readonly blockCount: number;
  readonly readOnly: boolean;
  /** Every call finishes before it returns (BlockBackend.synchronous). */
  readonly synchronous = true;
  readonly core: Core;
  private handle: SyncAccessHandle | null;

  private constructor(readonly name: string, handle: SyncAccessHandle, o: OpfsDiskOptions) {
    this.core = o.core;
    this.handle = handle;
    this.readOnly = o.readOnly ?? false;
    const blockSize = o.blockSize ?? 512;
    if (o.createBlocks !== undefined) {
      [this.blockCount, this.blockSize] = checkGeometry({ blockCount: o.createBlocks, blockSize }, 'OpfsDisk.open');
      handle.truncate(this.blockCount * this.blockSize);
    } else {
      [this.blockCount, this.blockSize] = checkGeometry({ blockCount: Math.floor(handle.getSize() / blockSize), blockSize }, `OpfsDisk.open (${name})`);
    }
  }

  /** Opens (creating it if needed) the OPFS file `name`. Only in a dedicated Worker. */
  static async open(name: string, opts: OpfsDiskOptions): Promise<OpfsDisk> {
    optionNames(opts, ['core', 'readOnly', 'blockSize', 'createBlocks'], 'OpfsDisk.open');
    coreArg(opts?.core, 'OpfsDisk.open: opts.core');
    const storage = (globalThis as OpfsGlobal).navigator?.storage;
    if (!storage?.getDirectory) throw new SgringError('InvalidArgument', 'OpfsDisk: this runtime has no Origin Private File System (navigator.storage.getDirectory)');
    const file = await (await storage.getDirectory()).getFileHandle(name, { create: opts.createBlocks !== undefined });
    if (typeof file.createSyncAccessHandle !== 'function') {
      throw new SgringError('InvalidArgument', 'OpfsDisk: createSyncAccessHandle exists only in a dedicated Worker; open the disk there');
    }
    const handle = await file.createSyncAccessHandle();
    try {
      return new OpfsDisk(name, handle, opts);
    } catch (e) {
      handle.close();
      throw e;
    }
  }

  read(lba: Lba, blocks: number, ptr: number): void {
    const [off, n] = this.check(lba, blocks, ptr, 'read');
    for (let done = 0; done < n;) {
      const got = this.handle!.read(view(this.core, ptr + done, n - done), { at: off + done });
      if (got === 0) throw new SgringError('MediumError', `OpfsDisk.read: ${this.name} ended at byte ${off + done}`);
      done += got;
    }
  }

  write(lba: Lba, blocks: number, ptr: number): void {
    const [off, n] = this.check(lba, blocks, ptr, 'write');
    refuseWrite(this.readOnly, 'OpfsDisk.write');
    for (let done = 0; done < n;) done += this.handle!.write(view(this.core, ptr + done, n - done), { at: off + done });
  }

  flush(): void {
    this.open('flush');
    if (!this.readOnly) this.handle!.flush();
  }

  discard(lba: Lba, blocks: number): void {
    const [off, n] = checkRequest(this, lba, blocks, 'OpfsDisk.discard');
    this.open('discard');
    refuseWrite(this.readOnly, 'OpfsDisk.discard');
    const zeros = new Uint8Array(Math.min(n, 1 << 20));
    for (let done = 0; done < n;) done += this.handle!.write(zeros.subarray(0, Math.min(zeros.length, n - done)), { at: off + done });
  }

  close(): void {
    this.handle?.close();
    this.handle = null;
  }

  private open(op: string): void {
    if (this.handle === null) throw new SgringError('Disposed', `OpfsDisk.${op}: ${this.name} is closed`);
  }

  private check(lba: Lba, blocks: number, ptr: number, op: string): [number, number] {
    this.open(op);
    const r = checkRequest(this, lba, blocks, `OpfsDisk.${op}`);
    checkRegion(this.core, ptr, r[1], `OpfsDisk.${op}`);
    return r;
  }
}
