// Iommu: per-device DMA domains over guest RAM (DESIGN "Memory model"), like a passthrough
// device behind VT-d. A domain is an image in core memory (scripts/constants/dma.mjs): a header
// (mode, generation, device windows) and, in strict mode, 2 permission bits per 4 KiB guest page.
// Identity mode grants all guest RAM; strict mode only what map() granted. Every DMA runs one
// engine call that checks every page of every segment before a byte moves (assembly/dma.ts).
//
// Threads: the image lives in (possibly shared) core memory, so a device thread can attach to a
// domain by pointer while the guest thread maps pages. Permission words and the generation are
// written with Atomics and read atomically by both engines; map/unmap/reset are single-writer
// (one thread owns them). They are not barriers: a DMA call already past its check completes, as
// a posted write already on the bus does. Unmap or reset while the device is quiescent to know
// that no DMA uses the pages any more.

import {
  DMA_READ, DMA_WRITE, DOM_GENERATION, DOM_HEADER_SIZE, DOM_MAGIC, DOM_MAGIC_VALUE, DOM_MAX_WINDOWS, DOM_MODE,
  DOM_MODE_IDENTITY, DOM_MODE_STRICT, DOM_PAGES, DOM_WINDOW_COUNT, DOM_WINDOWS, DOM_WINDOW_SIZE, PAGE_SIZE,
} from '../generated/constants';
import type { Core } from '../engine/core';
import { SgringError } from '../engine/errors';
import type { DmaAccess, DmaDomain } from './dma-domain';
import {
  accessBits, GuestMemory, runCheck, runCheckAt, runGather, runScatter, toSegments,
  type DmaBuffer, type DmaCaller, type DmaSource, type GatherOptions,
} from './guest-memory';

// The public surface of src/memory, so src/index.ts needs one line for it.
export { GuestMemory, planSegments, type DmaSource, type DmaBuffer, type GatherOptions, type GpaRangeSource } from './guest-memory';
export type { DmaAccess, DmaDomain } from './dma-domain';

export type IommuMode = 'identity' | 'strict';
export interface DmaPermissions { read: boolean; write: boolean }
/** A GPA range that is the device's own register, doorbell or CMB window: never DMA-able (hardening P5). */
export interface DeviceWindow { gpa: number; len: number }
export interface DomainOptions { mode?: IommuMode; windows?: readonly DeviceWindow[] }
/** A request's ticket: DMA under it fails DmaStale once the domain is reset (FLR). */
export interface DmaContext { readonly domainPtr: number; readonly generation: number }
export interface DmaRequestOptions { context?: DmaContext }

const TWO32 = 0x1_0000_0000;

/** One device's view of guest RAM. Implements DmaDomain (translate / read / write) plus whole-list DMA. */
export class IommuDomain implements DmaDomain {
  readonly core: Core;
  readonly device: string;
  /** Core offset of the domain image (hand it to another thread's IommuDomain.attach). */
  readonly ptr: number;
  readonly mode: IommuMode;
  readonly windows: readonly DeviceWindow[];
  // Reentrancy guard (checklist 61): per thread, like QEMU's MemReentrancyGuard.
  private depth = 0;
  /** u32 index of the generation counter. */
  private readonly generationWord: number;
  private deferred: (() => void)[] = [];

  /** Lays out a new domain in core memory: nothing mapped (strict) or all guest RAM (identity). */
  static create(core: Core, device: string, opts: DomainOptions = {}): IommuDomain {
    const mode = opts.mode ?? 'strict';
    if (mode !== 'identity' && mode !== 'strict') throw new SgringError('InvalidArgument', `unknown IOMMU mode '${String(mode)}'`);
    const windows = opts.windows ?? [];
    if (!Array.isArray(windows) || windows.length > DOM_MAX_WINDOWS) {
      throw new SgringError('InvalidArgument', `a domain takes at most ${DOM_MAX_WINDOWS} device windows`);
    }
    windows.forEach((w, i) => {
      if (!w || !Number.isSafeInteger(w.gpa) || w.gpa < 0 || !Number.isSafeInteger(w.len) || w.len <= 0) {
        throw new SgringError('InvalidArgument', `device window ${i} needs a non-negative safe-integer gpa and a positive len`);
      }
    });
    const pages = mode === 'strict' ? Math.ceil(core.guestBytes / PAGE_SIZE) : 0;
    const ptr = core.alloc(DOM_HEADER_SIZE + Math.ceil(pages / 16) * 4, 8);
    const u32 = core.u32;
    const h = ptr >>> 2;
    u32[h + DOM_MODE / 4] = mode === 'strict' ? DOM_MODE_STRICT : DOM_MODE_IDENTITY;
    u32[h + DOM_PAGES / 4] = pages;
    windows.forEach((w, i) => {
      const at = h + (DOM_WINDOWS + i * DOM_WINDOW_SIZE) / 4;
      u32[at] = w.gpa % TWO32;
      u32[at + 1] = Math.floor(w.gpa / TWO32);
      u32[at + 2] = w.len % TWO32;
      u32[at + 3] = Math.floor(w.len / TWO32);
    });
    u32[h + DOM_WINDOW_COUNT / 4] = windows.length;
    // The magic goes last, with a release store: a thread that sees it sees the whole header.
    Atomics.store(u32, h + DOM_MAGIC / 4, DOM_MAGIC_VALUE);
    return new IommuDomain(core, device, ptr);
  }

  /** Attaches to a domain image made elsewhere (another thread on the same shared memory). */
  static attach(core: Core, ptr: number, device = `domain@${ptr}`): IommuDomain {
    if (!Number.isInteger(ptr) || ptr <= 0 || (ptr & 7) !== 0 || ptr + DOM_HEADER_SIZE > core.byteLength ||
        Atomics.load(core.u32, (ptr + DOM_MAGIC) >>> 2) !== DOM_MAGIC_VALUE) {
      throw new SgringError('InvalidDomain', `no IOMMU domain at ${ptr}`);
    }
    return new IommuDomain(core, device, ptr);
  }

  private constructor(core: Core, device: string, ptr: number) {
    const u32 = core.u32;
    const h = ptr >>> 2;
    const mode = u32[h + DOM_MODE / 4];
    const count = u32[h + DOM_WINDOW_COUNT / 4]!;
    const tableEnd = ptr + DOM_HEADER_SIZE + Math.ceil(u32[h + DOM_PAGES / 4]! / 16) * 4;
    if ((mode !== DOM_MODE_STRICT && mode !== DOM_MODE_IDENTITY) || count > DOM_MAX_WINDOWS ||
        (mode === DOM_MODE_STRICT && tableEnd > core.byteLength)) {
      throw new SgringError('InvalidDomain', `the domain image at ${ptr} is corrupt`);
    }
    this.core = core;
    this.device = device;
    this.ptr = ptr;
    this.generationWord = (ptr + DOM_GENERATION) >>> 2;
    this.mode = mode === DOM_MODE_STRICT ? 'strict' : 'identity';
    const windows: DeviceWindow[] = [];
    for (let i = 0; i < count; i++) {
      const at = h + (DOM_WINDOWS + i * DOM_WINDOW_SIZE) / 4;
      windows.push({ gpa: u32[at + 1]! * TWO32 + u32[at]!, len: u32[at + 3]! * TWO32 + u32[at + 2]! });
    }
    this.windows = Object.freeze(windows);
  }

  /** Bumped by every reset; even while usable, odd while a reset runs. */
  get generation(): number {
    return Atomics.load(this.core.u32, this.generationWord);
  }

  /** True while a visit() callback runs on this thread. */
  get busy(): boolean {
    return this.depth > 0;
  }

  /**
   * Grants the device `perms` (default read and write) on every 4 KiB page that [gpa, gpa+len)
   * touches: IOMMUs work in whole pages, so a grant exposes the rest of a partial page too.
   * Replaces the pages' earlier permissions. Strict mode only.
   */
  map(gpa: number, len: number, perms: Partial<DmaPermissions> = { read: true, write: true }): void {
    this.guard('map');
    const bits = (perms.read ? DMA_READ : 0) | (perms.write ? DMA_WRITE : 0);
    this.checkMapRange(gpa, len, 'map');
    if (bits !== 0) {
      const w = this.windowAt(gpa, len);
      if (w >= 0) throw new SgringError('DmaDeviceWindow', `${this.device}: map [0x${gpa.toString(16)}, +${len}) covers device window ${w}`, { window: w });
    }
    this.setBits(gpa, len, bits);
  }

  /** Revokes every page [gpa, gpa+len) touches. Strict mode only. */
  unmap(gpa: number, len: number): void {
    this.guard('unmap');
    this.checkMapRange(gpa, len, 'unmap');
    this.setBits(gpa, len, 0);
  }

  /** What the device may do on the page holding gpa. */
  permissions(gpa: number): DmaPermissions {
    if (!Number.isSafeInteger(gpa) || gpa < 0 || gpa >= this.core.guestBytes || this.windowAt(gpa, 1) >= 0) return { read: false, write: false };
    if (this.mode === 'identity') return { read: true, write: true };
    const pg = Math.floor(gpa / PAGE_SIZE);
    const b = (Atomics.load(this.core.u32, this.tableWord(pg)) >>> (2 * (pg & 15))) & 3;
    return { read: (b & DMA_READ) !== 0, write: (b & DMA_WRITE) !== 0 };
  }

  /**
   * Function-level reset (FLR): drops every mapping (strict mode) and bumps the generation, so
   * any DMA of a request begun before it fails DmaStale and writes nothing. Identity mode keeps
   * all guest RAM mapped (that is what the mode means) but still drops in-flight requests.
   */
  reset(): void {
    this.guard('reset');
    const u32 = this.core.u32;
    const g = this.generationWord;
    const odd = (Atomics.load(u32, g) | 1) >>> 0;
    Atomics.store(u32, g, odd);
    if (this.mode === 'strict') {
      const t = this.tableWord(0);
      u32.fill(0, t, t + Math.ceil(u32[(this.ptr + DOM_PAGES) >>> 2]! / 16));
    }
    Atomics.store(u32, g, (odd + 1) >>> 0);
  }

  /** Starts a request: its DMA (pass { context }) fails DmaStale after a reset. */
  begin(): DmaContext {
    const generation = this.generation;
    if (generation & 1) throw new SgringError('DmaStale', `${this.device}: a reset is in progress`, { device: this.device });
    return Object.freeze({ domainPtr: this.ptr, generation });
  }

  /** Core offset of [gpa, gpa+len) after checking every page for `access` (zero-copy). */
  translate(gpa: number, len: number, access: DmaAccess, opts: DmaRequestOptions = {}): number {
    const bits = accessBits(access);
    // Errors come in one order (DmaDomain): arguments, then bounds, then permissions. A valid
    // length (below the engine's 2 GiB) longer than guest RAM is a bounds fault.
    if (Number.isSafeInteger(len) && len > this.core.guestBytes && len < 2 ** 31 && Number.isSafeInteger(gpa) && gpa >= 0) {
      throw new SgringError('OutsideGuestRam', `${this.device}: translate of ${len} bytes is larger than guest RAM`, { address: gpa });
    }
    runCheck(this.core, this.caller(opts.context), [{ addr: gpa, len }], bits, len);
    if (gpa > this.core.guestBytes) throw new SgringError('OutsideGuestRam', `${this.device}: translate of ${gpa} is outside guest RAM`, { address: gpa });
    return this.core.guestBase + gpa;
  }

  /**
   * @internal translate()'s check over `n` segments already in core memory at `segs` in the
   * engine's SEG format (a walk's output), in one engine call: throws as translate() would.
   */
  checkAt(segs: number, n: number, access: DmaAccess, len: number): void {
    runCheckAt(this.core, this.caller(undefined), segs, n, accessBits(access), len);
  }

  /**
   * translate() for a small range (a queue entry, a data buffer of up to 32 pages): granted
   * pages are answered from the permission table without an engine call; anything else takes
   * translate() and its errors.
   */
  translateSmall(gpa: number, len: number, access: DmaAccess): number {
    const at = this.grantedOffset(gpa, len, access === 'write' ? DMA_WRITE : access === 'read' ? DMA_READ : 0);
    return at >= 0 ? at : this.translate(gpa, len, access);
  }

  /**
   * @internal The core offset of [gpa, gpa+len) when the permission table grants it `bits`
   * (DMA_READ, DMA_WRITE) and it is small (up to 32 pages); -1 otherwise, with no error: a
   * device's fast path then leaves the request to its general path, which says what is wrong.
   */
  grantedOffset(gpa: number, len: number, bits: number): number {
    // Guest RAM is below 4 GiB: an in-range gpa is a u32, and so is every page index here.
    if (bits === 0 || len <= 0 || len > 32 * PAGE_SIZE || gpa >>> 0 !== gpa || gpa + len > this.core.guestBytes) return -1;
    const u32 = this.core.u32;
    if ((u32[this.generationWord]! & 1) !== 0) return -1;
    if (this.mode === 'strict') {
      // map() refuses device windows, so granted pages are never in one. Plain loads: a
      // word is never torn, and a grant racing with this check is the engine's race too.
      const table = this.tableWord(0);
      let pg = gpa >>> 12;
      const last = (gpa + len - 1) >>> 12;
      while (pg <= last && ((u32[table + (pg >>> 4)]! >>> ((pg & 15) << 1)) & bits) === bits) pg++;
      return pg > last ? this.core.guestBase + gpa : -1;
    }
    const ws = this.windows;
    for (let i = 0; i < ws.length; i++) {
      const w = ws[i]!; // an indexed loop: for-of would allocate an iterator per call
      if (gpa >= w.gpa ? gpa - w.gpa < w.len : w.gpa - gpa < len) return -1;
    }
    return this.core.guestBase + gpa;
  }

  /** translate() without the offset: throws unless [gpa, gpa+len) is reachable for `access`. */
  check(gpa: number, len: number, access: DmaAccess, opts: DmaRequestOptions = {}): void {
    this.translate(gpa, len, access, opts);
  }

  read(gpa: number, len: number, dest?: Uint8Array, opts: DmaRequestOptions = {}): Uint8Array {
    return runGather(this.core, this.caller(opts.context), [{ addr: gpa, len }], { into: dest, length: len });
  }

  write(gpa: number, data: Uint8Array, opts: DmaRequestOptions = {}): void {
    runScatter(this.core, this.caller(opts.context), [{ addr: gpa, len: data.length }], data);
  }

  /** Device reads guest memory: the stream a source describes, every page checked first. */
  gather(source: DmaSource, opts: GatherOptions & DmaRequestOptions = {}): Uint8Array {
    return runGather(this.core, this.caller(opts.context), source, opts);
  }

  /** Device writes guest memory: `data` into the stream's first data.length bytes. Returns bytes written. */
  scatter(source: DmaSource, data: DmaBuffer, opts: DmaRequestOptions = {}): number {
    return runScatter(this.core, this.caller(opts.context), source, data);
  }

  /**
   * Zero-copy DMA: checks the whole stream for `access` first, then calls fn with a view of
   * each segment's guest bytes, in order. Inside fn this domain refuses map, unmap, reset and a
   * nested visit (DmaReentrant), so the check stays true while fn runs; use whenIdle() to
   * defer such work until the visit returns. A view must not be kept past its callback.
   */
  visit(source: DmaSource, access: DmaAccess, fn: (bytes: Uint8Array, segment: number, streamOffset: number) => void,
    opts: DmaRequestOptions & { length?: number } = {}): number {
    this.guard('visit');
    // A private snapshot: fn could rewrite the caller's array after the check (P3).
    const segments = toSegments(this.core, source).map((s) => ({ addr: s.addr, len: s.len }));
    const len = opts.length ?? segments.reduce((t, s) => t + s.len, 0);
    runCheck(this.core, this.caller(opts.context), segments, accessBits(access), len);
    this.depth++;
    try {
      let off = 0;
      for (let i = 0; i < segments.length && off < len; i++) {
        const l = Math.min(segments[i]!.len, len - off);
        if (l === 0) continue;
        fn(this.core.view(this.core.guestBase + segments[i]!.addr, l), i, off);
        off += l;
      }
      return len;
    } finally {
      this.depth--;
      if (this.depth === 0) this.runDeferred();
    }
  }

  /** Runs fn now, or right after the running visit() returns (the "deferred" answer to checklist 61). */
  whenIdle(fn: () => void): void {
    if (this.depth === 0) fn();
    else this.deferred.push(fn);
  }

  /** Runs every deferred action (including ones they queue), then rethrows the first failure. */
  private runDeferred(): void {
    let failure: { error: unknown } | null = null;
    for (let fn = this.deferred.shift(); fn; fn = this.deferred.shift()) {
      try {
        fn();
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure) throw failure.error;
  }

  private guard(op: string): void {
    if (this.depth > 0) {
      throw new SgringError('DmaReentrant', `${this.device}: ${op} from inside a DMA callback (defer it with whenIdle)`, { device: this.device, op });
    }
  }

  private current: DmaCaller = { dom: 0, gen: -1, who: '' };
  private caller(ctx: DmaContext | undefined): DmaCaller {
    if (ctx === undefined) {
      const gen = this.generation;
      if (this.current.gen !== gen) this.current = { dom: this.ptr, gen, who: this.device };
      return this.current;
    }
    if (!ctx || ctx.domainPtr !== this.ptr || !Number.isInteger(ctx.generation)) {
      throw new SgringError('InvalidArgument', `${this.device}: the DMA context belongs to another domain`);
    }
    return { dom: this.ptr, gen: ctx.generation >>> 0, who: this.device };
  }

  private checkMapRange(gpa: number, len: number, op: string): void {
    if (this.mode !== 'strict') throw new SgringError('InvalidArgument', `${this.device}: ${op} on an identity domain (it maps all guest RAM)`);
    if (!Number.isSafeInteger(gpa) || gpa < 0 || !Number.isSafeInteger(len) || len < 0) {
      throw new SgringError('InvalidArgument', `${this.device}: ${op} needs a non-negative safe-integer gpa and len`);
    }
    const size = this.core.guestBytes;
    if (!(len <= size && gpa <= size - len)) {
      throw new SgringError('OutsideGuestRam', `${this.device}: ${op} [0x${gpa.toString(16)}, +${len}) passes the end of guest RAM (0x${size.toString(16)})`, { address: gpa });
    }
  }

  /** Index of the first device window [gpa, gpa+len) meets, or -1. */
  private windowAt(gpa: number, len: number): number {
    if (len === 0) return -1;
    return this.windows.findIndex((w) => (gpa >= w.gpa ? gpa - w.gpa < w.len : w.gpa - gpa < len));
  }

  private tableWord(pg: number): number {
    return ((this.ptr + DOM_HEADER_SIZE) >>> 2) + (pg >>> 4);
  }

  /** Sets the 2-bit entries of every page [gpa, gpa+len) touches; word-atomic for a peer that reads them. */
  private setBits(gpa: number, len: number, bits: number): void {
    if (len === 0) return;
    const u32 = this.core.u32;
    const pattern = (0x55555555 * bits) >>> 0;
    const p1 = Math.floor((gpa + len - 1) / PAGE_SIZE);
    for (let pg = Math.floor(gpa / PAGE_SIZE); pg <= p1;) {
      const top = Math.min(p1, (pg | 15));
      const span = top - pg + 1;
      const at = this.tableWord(pg);
      if (span === 16) Atomics.store(u32, at, pattern);
      else {
        const mask = ((2 ** (2 * span) - 1) * 2 ** (2 * (pg & 15))) >>> 0;
        for (;;) {
          const old = Atomics.load(u32, at);
          if (Atomics.compareExchange(u32, at, old, ((old & ~mask) | (pattern & mask)) >>> 0) === old) break;
        }
      }
      pg = top + 1;
    }
  }
}

/** The IOMMU: one domain per device, over one core's guest RAM. */
export class Iommu {
  readonly core: Core;
  /** The guest's own, unchecked view of its RAM. */
  readonly guest: GuestMemory;
  readonly defaultMode: IommuMode;
  private readonly byDevice = new Map<string, IommuDomain>();

  constructor(core: Core, opts: { mode?: IommuMode } = {}) {
    this.core = core;
    this.guest = new GuestMemory(core);
    this.defaultMode = opts.mode ?? 'strict';
  }

  /** The device's domain, created on first use (mode and windows apply only then). */
  domain(device: string, opts: DomainOptions = {}): IommuDomain {
    const have = this.byDevice.get(device);
    if (have) {
      if (opts.mode !== undefined && opts.mode !== have.mode) {
        throw new SgringError('InvalidArgument', `device ${device} already has a ${have.mode} domain`);
      }
      return have;
    }
    const d = IommuDomain.create(this.core, device, { ...opts, mode: opts.mode ?? this.defaultMode });
    this.byDevice.set(device, d);
    return d;
  }

  get(device: string): IommuDomain | undefined {
    return this.byDevice.get(device);
  }

  get devices(): string[] {
    return [...this.byDevice.keys()];
  }

  /** Resets the device's domain (in-flight DMA fails, mappings dropped) and forgets it. */
  remove(device: string): boolean {
    const d = this.byDevice.get(device);
    if (!d) return false;
    d.reset();
    this.byDevice.delete(device);
    return true;
  }
}
