// Guest RAM that is not a window of core memory: an emulator's own memory (v86's cpu.mem8,
// DESIGN "Embedding"). A device model reaches it through an ExternalDmaDomain with the checks an
// IommuDomain makes, in the same order (arguments, then guest RAM bounds, then device windows),
// and one copy per byte between it and core memory. It is also the ExternalGuest the NVMe
// walkers read PRP lists and SGL segments through.

import type { Core, ExternalGuest } from '../engine/core';
import { SgringError } from '../engine/errors';
import type { Segment } from '../core/pagelist';
import type { DmaAccess } from './dma-domain';
import type { DmaBuffer, GatherOptions } from './guest-memory';
import type { DeviceWindow } from './iommu';

export interface ExternalDmaOptions {
  /**
   * The guest's RAM, guest-physical 0 at index 0; its length is the RAM size (below 4 GiB). Or a
   * function returning it, for RAM in a memory that may grow (a grown WebAssembly.Memory detaches
   * old views): called again whenever the last view it gave has become empty.
   */
  ram: Uint8Array | (() => Uint8Array);
  /** Guest-physical ranges the device may not reach (its own BAR, other devices' MMIO). */
  windows?: readonly DeviceWindow[];
  /**
   * Copies a device write into guest RAM, in place of ram.set (v86: cpu.write_blob, which also
   * drops JIT-compiled code for the range, so a guest never runs stale code over DMA'd bytes).
   */
  store?: (bytes: Uint8Array, gpa: number) => void;
}

const hex = (x: number) => `0x${x.toString(16)}`;

export class ExternalDmaDomain implements ExternalGuest {
  readonly core: Core;
  readonly device: string;
  /** Guest RAM size in bytes. */
  readonly bytes: number;
  readonly windows: readonly DeviceWindow[];
  private view: Uint8Array;
  private readonly source: () => Uint8Array;
  private readonly store: (bytes: Uint8Array, gpa: number) => void;

  /** `core` holds the device's own buffers (Regions passed to gather/scatter live there). */
  constructor(core: Core, device: string, opts: ExternalDmaOptions) {
    const given = opts?.ram;
    const first = typeof given === 'function' ? given() : given;
    if (!(first instanceof Uint8Array) || first.length >= 2 ** 32) {
      throw new SgringError('InvalidArgument', 'ExternalDmaDomain needs ram: a Uint8Array of guest RAM below 4 GiB (or a function returning it)');
    }
    const windows = opts.windows ?? [];
    windows.forEach((w, i) => {
      if (!w || !Number.isSafeInteger(w.gpa) || w.gpa < 0 || !Number.isSafeInteger(w.len) || w.len <= 0) {
        throw new SgringError('InvalidArgument', `device window ${i} needs a non-negative safe-integer gpa and a positive len`);
      }
    });
    if (opts.store !== undefined && typeof opts.store !== 'function') throw new SgringError('InvalidArgument', 'store must be a function (bytes, gpa)');
    this.core = core;
    this.device = device;
    this.view = first;
    this.source = typeof given === 'function' ? given : () => first;
    this.bytes = first.length;
    this.windows = Object.freeze(windows.map((w) => ({ gpa: w.gpa, len: w.len })));
    this.store = opts.store ?? ((b, gpa) => this.ram.set(b, gpa));
  }

  /** The guest RAM this domain reaches (a current view). */
  get ram(): Uint8Array {
    if (this.view.length === 0 && this.bytes !== 0) {
      const v = this.source();
      if (!(v instanceof Uint8Array) || v.length !== this.bytes) throw new SgringError('InvalidArgument', `${this.device}: guest RAM changed size`);
      this.view = v;
    }
    return this.view;
  }

  /** Throws unless the device may reach guest [gpa, gpa+len): InvalidArgument, OutsideGuestRam, DmaDeviceWindow. */
  check(gpa: number, len: number, access: DmaAccess): void {
    if (!Number.isSafeInteger(gpa) || gpa < 0 || !Number.isInteger(len) || len < 0 || len >= 2 ** 31 || (access !== 'read' && access !== 'write')) {
      throw new SgringError('InvalidArgument', `${this.device}: DMA ${String(access)} of ${len} bytes at ${gpa} needs a non-negative gpa, a length below 2 GiB and 'read' or 'write'`);
    }
    if (len > this.bytes || gpa > this.bytes - len) {
      throw new SgringError('OutsideGuestRam', `${this.device}: DMA ${access} [${hex(gpa)}, +${len}) is outside guest RAM (${hex(this.bytes)} bytes)`, { address: gpa });
    }
    for (const w of this.windows) {
      if (len > 0 && gpa < w.gpa + w.len && w.gpa < gpa + len) {
        throw new SgringError('DmaDeviceWindow', `${this.device}: DMA ${access} [${hex(gpa)}, +${len}) touches the device window at ${hex(w.gpa)}`, { address: gpa });
      }
    }
  }

  /** ExternalGuest: the walkers' list snapshot; false (the command fails) when the range is not readable. */
  copyOut(gpa: number, dst: Uint8Array): boolean {
    try {
      this.check(gpa, dst.length, 'read');
    } catch (e) {
      if (e instanceof SgringError) return false;
      throw e;
    }
    dst.set(this.ram.subarray(gpa, gpa + dst.length));
    return true;
  }

  /** Copies guest [gpa, gpa+len) out (into `dest` when given). */
  read(gpa: number, len: number, dest?: Uint8Array): Uint8Array {
    this.check(gpa, len, 'read');
    const out = dest ?? new Uint8Array(len);
    if (out.length < len) throw new SgringError('BufferTooSmall', `${this.device}: read of ${len} bytes into ${out.length}`);
    out.set(this.ram.subarray(gpa, gpa + len));
    return out;
  }

  /** Copies `data` into guest RAM at gpa (checked first: nothing partial is written). */
  write(gpa: number, data: Uint8Array): void {
    this.check(gpa, data.length, 'write');
    this.store(data, gpa);
  }

  /** Device reads guest memory: the stream the segments describe, every segment checked before any byte moves. */
  gather(segments: readonly Segment[], opts: GatherOptions = {}): Uint8Array {
    const total = this.checkAll(segments, 'read', opts.length);
    if (opts.length !== undefined && total < opts.length) throw this.overrun('read', total, opts.length);
    const into = opts.into === undefined ? new Uint8Array(total) : this.bufferOf(opts.into);
    if (into.length < total) throw new SgringError('BufferTooSmall', `${this.device}: gather of ${total} bytes into ${into.length}`);
    let off = 0;
    for (let i = 0; off < total; i++) {
      const s = segments[i]!;
      const l = Math.min(s.len, total - off);
      into.set(this.ram.subarray(s.addr, s.addr + l), off);
      off += l;
    }
    return into;
  }

  /** Device writes guest memory: `data` into the stream's first data.length bytes; returns bytes written. */
  scatter(segments: readonly Segment[], data: DmaBuffer): number {
    const bytes = this.bufferOf(data);
    const total = this.checkAll(segments, 'write', bytes.length);
    if (total < bytes.length) throw this.overrun('write', total, bytes.length);
    let off = 0;
    for (let i = 0; off < total; i++) {
      const s = segments[i]!;
      const l = Math.min(s.len, total - off);
      this.store(bytes.subarray(off, off + l), s.addr);
      off += l;
    }
    return total;
  }

  /** Checks the first `length` bytes of the stream (default: all of it); returns that many. */
  private checkAll(segments: readonly Segment[], access: DmaAccess, length?: number): number {
    if (!Array.isArray(segments)) throw new SgringError('InvalidArgument', `${this.device}: a DMA source is an array of { addr, len } segments here`);
    let want = length ?? Infinity;
    let total = 0;
    for (let i = 0; i < segments.length && want > 0; i++) {
      const s = segments[i];
      if (!s) throw new SgringError('InvalidArgument', `${this.device}: segment ${i} is missing`);
      const l = Math.min(s.len, want);
      this.check(s.addr, l, access);
      total += l;
      want -= l;
    }
    return total;
  }

  /** A transfer longer than its segment list: DmaOverrun, as an IommuDomain reports it. */
  private overrun(access: DmaAccess, listed: number, wanted: number): SgringError {
    return new SgringError('DmaOverrun', `${this.device}: ${access} DMA, the list holds ${listed} bytes, the transfer is ${wanted}`, { listed, wanted });
  }

  private bufferOf(b: DmaBuffer): Uint8Array {
    return b instanceof Uint8Array ? b : this.core.view(b.ptr, b.len);
  }
}
