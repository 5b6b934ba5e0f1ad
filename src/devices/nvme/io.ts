// The NVM command set (spec/nvme.md §2.1): Read, Write, Flush, Write Zeroes, Dataset Management
// (deallocate) and Compare, on the namespace's block backend. Data moves between guest memory
// and a staging region of core memory through the controller's DMA domain, never directly.

import { SgringError } from '../../engine/errors';
import type { BlockBackend } from '../block/backend';
import { DONE, fail, isPromise, ok, slba, type Command, type Result } from './command';
import { NVME_SC } from './status';
import type { ControllerContext } from './context';

const OPC = { flush: 0x00, write: 0x01, read: 0x02, compare: 0x05, writeZeroes: 0x08, dsm: 0x09 } as const;

/** What a backend error becomes in a CQE. */
export function backendStatus(e: unknown): number {
  if (e instanceof SgringError) {
    if (e.code === 'LbaOutOfRange') return NVME_SC.lbaOutOfRange;
    if (e.code === 'ReadOnlyMedium') return NVME_SC.namespaceWriteProtected;
  }
  return NVME_SC.internalError;
}

/** Runs `fn` (sync or async) and turns a backend error into its status. */
function guarded(fn: () => void | Promise<void>, then: () => Result | Promise<Result>, release: () => void): Result | Promise<Result> {
  const fault = (e: unknown) => {
    release();
    return fail(backendStatus(e));
  };
  try {
    const r = fn();
    if (isPromise(r)) return r.then(then, fault);
  } catch (e) {
    return fault(e);
  }
  return then();
}

/**
 * Runs one I/O command. `stage` is called with the data before it goes back to the host (execute
 * taps); without one, reads and writes of whole blocks move between the disk and guest memory in
 * place (one copy, no staging region).
 */
export function executeIo(ctrl: ControllerContext, c: Command, stage: ((data: Uint8Array | null) => Result | null) | null): Result | Promise<Result> {
  const disk = ctrl.namespace(c.nsid);
  if (!disk) return fail(NVME_SC.invalidNamespace);
  switch (c.opcode) {
    case OPC.flush: {
      try {
        const r = disk.flush();
        if (isPromise(r)) return r.then(() => ok(), (e) => fail(backendStatus(e)));
      } catch (e) {
        return fail(backendStatus(e));
      }
      return ok();
    }
    case OPC.read:
    case OPC.write:
    case OPC.compare:
      return transfer(ctrl, disk, c, stage);
    case OPC.writeZeroes:
    case OPC.dsm:
      return discard(ctrl, disk, c);
    default:
      return fail(NVME_SC.invalidOpcode);
  }
}

/** True when `blocks` blocks at `lba` lie on the disk (an SLBA past 2^53 is Infinity: never). */
const onDisk = (disk: BlockBackend, lba: number, blocks: number) => lba <= disk.blockCount && blocks <= disk.blockCount - lba;

function range(disk: BlockBackend, c: Command): [number, number] | null {
  const lba = slba(c);
  const blocks = (c.cdw(12) & 0xffff) + 1;
  return onDisk(disk, lba, blocks) ? [lba, blocks] : null;
}

function transfer(ctrl: ControllerContext, disk: BlockBackend, c: Command, stage: ((data: Uint8Array | null) => Result | null) | null): Result | Promise<Result> {
  // MDTS before the range, as QEMU checks them: a transfer too large for the controller is Invalid Field whatever its LBAs.
  const blocks = (c.cdw(12) & 0xffff) + 1;
  if (blocks * disk.blockSize > ctrl.maxTransferBytes) return fail(NVME_SC.invalidField);
  const lba = slba(c);
  if (!onDisk(disk, lba, blocks)) return fail(NVME_SC.lbaOutOfRange);
  const bytes = blocks * disk.blockSize;
  // In place only with a synchronous disk: an asynchronous one would move the data after the
  // DMA check, into pages the host may have taken back meanwhile.
  if (stage === null && c.opcode !== OPC.compare && disk.synchronous === true) {
    const read = c.opcode === OPC.read;
    // The device writes guest memory on a read and reads it on a write.
    const n = ctrl.walkInPlace(c, bytes, read ? 'write' : 'read');
    if (n >= 0 && wholeBlocks(ctrl, n, disk.blockSize)) {
      if (!read && disk.readOnly) return fail(NVME_SC.namespaceWriteProtected);
      return inPlace(ctrl, disk, read, lba, n);
    }
  }
  const segs = ctrl.dataSegments(c, bytes);
  if (typeof segs === 'number') return fail(segs);
  const core = ctrl.core;
  stage ??= () => null;
  const buf = core.allocUninitialized(bytes); // filled whole by the disk (read) or the host (write) before use
  const release = () => core.free(buf);
  const view = () => core.u8.subarray(buf, buf + bytes);
  if (c.opcode === OPC.read) {
    return guarded(() => disk.read(lba, blocks, buf), () => {
      const over = stage(view());
      if (over) return { ...over, release: buf };
      const st = ctrl.toHost(segs, { ptr: buf, len: bytes });
      return { status: st, cdw0: 0, data: view(), release: buf };
    }, release);
  }
  const st = ctrl.fromHost(segs, { ptr: buf, len: bytes });
  if (st !== 0) {
    release();
    return fail(st);
  }
  const over = stage(view());
  if (over) return { ...over, release: buf };
  if (c.opcode === OPC.write) {
    if (disk.readOnly) {
      release();
      return fail(NVME_SC.namespaceWriteProtected);
    }
    return guarded(() => disk.write(lba, blocks, buf), () => ({ status: 0, cdw0: 0, data: view(), release: buf }), release);
  }
  // Compare: read the blocks into a second region and compare.
  const mine = core.alloc(bytes);
  const releaseBoth = () => {
    core.free(mine);
    release();
  };
  return guarded(() => disk.read(lba, blocks, mine), () => {
    const u8 = core.u8;
    let same = true;
    for (let i = 0; i < bytes; i++) {
      if (u8[buf + i] !== u8[mine + i]) {
        same = false;
        break;
      }
    }
    core.free(mine);
    return { status: same ? 0 : NVME_SC.compareFailure, cdw0: 0, data: view(), release: buf };
  }, releaseBoth);
}

/** True when each of the `n` walked segments holds whole blocks. */
function wholeBlocks(ctrl: ControllerContext, n: number, blockSize: number): boolean {
  for (let i = 0; i < n; i++) if (ctrl.walkedLen(i) % blockSize !== 0) return false;
  return true;
}

/**
 * The blocks straight between the disk and guest memory (the `n` walked segments), one backend
 * call per run of adjacent segments (a PRP list names every page of a contiguous buffer).
 */
function inPlace(ctrl: ControllerContext, disk: BlockBackend, read: boolean, lba: number, n: number): Result | Promise<Result> {
  const base = ctrl.core.guestBase;
  let waits: Promise<void>[] | null = null;
  try {
    for (let i = 0, at = lba; i < n;) {
      const addr = ctrl.walkedAddr(i);
      let len = ctrl.walkedLen(i);
      for (i++; i < n && ctrl.walkedAddr(i) === addr + len; i++) len += ctrl.walkedLen(i);
      const blocks = len / disk.blockSize;
      const r = read ? disk.read(at, blocks, base + addr) : disk.write(at, blocks, base + addr);
      if (isPromise(r)) (waits ??= []).push(r);
      at += blocks;
    }
  } catch (e) {
    if (waits) void Promise.allSettled(waits);
    return fail(backendStatus(e));
  }
  if (waits) return Promise.all(waits).then(() => ok(), (e) => fail(backendStatus(e)));
  return DONE;
}

function discard(ctrl: ControllerContext, disk: BlockBackend, c: Command): Result | Promise<Result> {
  if (disk.readOnly) return fail(NVME_SC.namespaceWriteProtected);
  const ranges: [number, number][] = [];
  if (c.opcode === OPC.writeZeroes) {
    const r = range(disk, c);
    if (!r) return fail(NVME_SC.lbaOutOfRange);
    ranges.push(r);
  } else {
    if ((c.cdw(11) & 0x4) === 0) return ok(); // only deallocate (AD) does anything
    const n = (c.cdw(10) & 0xff) + 1;
    const segs = ctrl.dataSegments(c, n * 16);
    if (typeof segs === 'number') return fail(segs);
    const list = ctrl.core.alloc(n * 16);
    const st = ctrl.fromHost(segs, { ptr: list, len: n * 16 });
    const dv = ctrl.core.dv;
    for (let i = 0; st === 0 && i < n; i++) {
      const blocks = dv.getUint32(list + 16 * i + 4, true);
      const start = dv.getBigUint64(list + 16 * i + 8, true);
      if (start > BigInt(disk.blockCount) || BigInt(blocks) > BigInt(disk.blockCount) - start) {
        ctrl.core.free(list);
        return fail(NVME_SC.lbaOutOfRange);
      }
      if (blocks > 0) ranges.push([Number(start), blocks]);
    }
    ctrl.core.free(list);
    if (st !== 0) return fail(st);
  }
  const zero = (lba: number, blocks: number): void | Promise<void> => {
    if (disk.discard) return disk.discard(lba, blocks);
    // Without discard: write zeros through a staging region.
    const bytes = blocks * disk.blockSize;
    const z = ctrl.core.alloc(bytes);
    try {
      const r = disk.write(lba, blocks, z);
      if (isPromise(r)) return r.finally(() => ctrl.core.free(z));
    } catch (e) {
      ctrl.core.free(z);
      throw e;
    }
    ctrl.core.free(z);
  };
  let chain: Result | Promise<Result> = ok();
  for (const [lba, blocks] of ranges) {
    chain = isPromise(chain)
      ? chain.then((prev) => (prev.status !== 0 ? prev : guarded(() => zero(lba, blocks), () => ok(), () => {})))
      : chain.status !== 0 ? chain : guarded(() => zero(lba, blocks), () => ok(), () => {});
  }
  return chain;
}
