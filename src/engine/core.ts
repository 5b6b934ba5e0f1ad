import {
  CB_GUEST_BASE, CB_GUEST_BYTES, CB_MAGIC, CB_MAGIC_VALUE, CB_VERSION, CB_VERSION_VALUE, MEM_CONTROL_BASE, PAGE_SIZE,
} from '../generated/constants';
import { SgringError } from './errors';
import { isSharedBuffer, type WasmMemory } from './wasm-types';
import { heapAlloc, heapFree, heapInit, heapReserve, heapStats, type HeapStats } from './heap';
import type { EngineFunctions, EngineName } from './types';

const WASM_PAGE = 65536;

/**
 * One loaded engine over one WebAssembly.Memory. The memory is laid out by the host
 * (DESIGN "Memory model"): a null guard page, a control block (magic, allocation top, guest
 * RAM window), then regions handed out by `alloc`. Several cores, in several threads, may sit
 * on the same shared memory; they agree through the control block.
 */
/**
 * Guest RAM that is not a window of core memory (an emulator's own memory, DESIGN "Embedding"):
 * what the NVMe walkers need to read PRP list pages and SGL segments from it.
 */
export interface ExternalGuest {
  /** Guest RAM size in bytes (at most 4 GiB): every range a walk maps must lie below it. */
  readonly bytes: number;
  /** Copies guest [gpa, gpa + dst.length) into dst; false when the device may not read that range. */
  copyOut(gpa: number, dst: Uint8Array): boolean;
}

export class Core {
  readonly engine: EngineName;
  readonly memory: WasmMemory;
  readonly shared: boolean;
  /** The engine's functions (Wasm exports or their reference twins). */
  readonly fn: EngineFunctions;
  /** Byte offset of guest-physical address 0 in core memory. */
  readonly guestBase: number;
  /** Size of the guest RAM window in bytes. */
  readonly guestBytes: number;
  /** @internal Guest RAM outside core memory that an NVMe walk is reading list pages from (set for the call only). */
  external: ExternalGuest | null = null;

  private buf: ArrayBufferLike;
  private _u8: Uint8Array;
  private _u32: Uint32Array;
  private _i32: Int32Array;
  private _u64: BigUint64Array;
  private _dv: DataView;

  /** @internal The engine's env.guestRead import: copies external guest bytes into core memory at dst; 0 or -1. */
  guestRead(dst: number, gpa: number, len: number): number {
    const g = this.external;
    return g !== null && g.copyOut(gpa, this.u8.subarray(dst, dst + len)) ? 0 : -1;
  }

  /** @internal use loadCore / loadCoreSync */
  constructor(engine: EngineName, memory: WasmMemory, makeFn: (core: Core) => EngineFunctions, guestBytes: number) {
    this.engine = engine;
    this.memory = memory;
    this.buf = memory.buffer;
    this.shared = isSharedBuffer(this.buf);
    this._u8 = new Uint8Array(this.buf);
    this._u32 = new Uint32Array(this.buf);
    this._i32 = new Int32Array(this.buf);
    this._u64 = new BigUint64Array(this.buf);
    this._dv = new DataView(this.buf);
    const cb = MEM_CONTROL_BASE >> 2;
    if (this._u32[cb + (CB_MAGIC >> 2)] === CB_MAGIC_VALUE) {
      if (this._u32[cb + (CB_VERSION >> 2)] !== CB_VERSION_VALUE) {
        throw new SgringError('InvalidArgument', 'memory was laid out by an incompatible sgring version');
      }
    } else {
      // A fresh memory: lay out the control block, then the guest RAM window.
      heapInit(this);
      Atomics.store(this._u32, cb + (CB_VERSION >> 2), CB_VERSION_VALUE);
      Atomics.store(this._u32, cb + (CB_MAGIC >> 2), CB_MAGIC_VALUE);
      const base = guestBytes > 0 ? heapReserve(this, guestBytes, PAGE_SIZE) : 0;
      Atomics.store(this._u32, cb + (CB_GUEST_BASE >> 2), base);
      Atomics.store(this._u32, cb + (CB_GUEST_BYTES >> 2), guestBytes);
    }
    this.guestBase = Atomics.load(this._u32, cb + (CB_GUEST_BASE >> 2));
    this.guestBytes = Atomics.load(this._u32, cb + (CB_GUEST_BYTES >> 2));
    this.fn = makeFn(this);
  }

  /**
   * Re-creates the views over the memory's current buffer. Growth detaches a non-shared buffer
   * (every view then has length 0, which the getters test: reading memory.buffer costs ~15 ns,
   * too much for a per-packet path). A shared buffer is never detached; another thread's growth
   * only makes it shorter than the memory, which byteLength and checkRange pick up.
   */
  private refresh(): void {
    const b = this.memory.buffer;
    if (b !== this.buf) {
      this.buf = b;
      this._u8 = new Uint8Array(b);
      this._u32 = new Uint32Array(b);
      this._i32 = new Int32Array(b);
      this._u64 = new BigUint64Array(b);
      this._dv = new DataView(b);
    }
  }

  /** A byte view of all of core memory, valid until the next growth. */
  get u8(): Uint8Array {
    if (this._u8.length === 0) this.refresh();
    return this._u8;
  }
  get u32(): Uint32Array {
    if (this._u8.length === 0) this.refresh();
    return this._u32;
  }
  get i32(): Int32Array {
    if (this._u8.length === 0) this.refresh();
    return this._i32;
  }
  get u64(): BigUint64Array {
    if (this._u8.length === 0) this.refresh();
    return this._u64;
  }
  get dv(): DataView {
    if (this._u8.length === 0) this.refresh();
    return this._dv;
  }

  /** Bytes of core memory right now (also brings the views up to date). */
  get byteLength(): number {
    this.refresh();
    return this.buf.byteLength;
  }

  /** A Uint8Array over [ptr, ptr+len) of core memory (re-create it after memory grows). */
  view(ptr: number, len: number): Uint8Array {
    this.checkRange(ptr, len);
    return new Uint8Array(this.u8.buffer, ptr, len);
  }

  /** Throws InvalidArgument unless [ptr, ptr+len) lies inside core memory. */
  checkRange(ptr: number, len: number): void {
    // The views' length first (never more than the memory): only a range past it asks the memory.
    const known = this._u8.length;
    if (Number.isSafeInteger(ptr) && Number.isSafeInteger(len) && ptr >= 0 && len >= 0 && len <= known && ptr <= known - len) return;
    const size = this.byteLength;
    if (!(Number.isInteger(ptr) && Number.isInteger(len) && ptr >= 0 && len >= 0 && len <= size && ptr <= size - len)) {
      throw new SgringError('InvalidArgument', `range [${ptr}, +${len}) is outside core memory (${size} bytes)`);
    }
  }

  /**
   * Reserves `bytes` of zeroed core memory aligned to `align` (a power of two) and returns its
   * byte offset. A region lives until `free(ptr)` gives it back; the next request of its size
   * class reuses it. Every Core over one memory shares the heap (its state is in the control
   * block), so a region may be freed through any of them, in any thread. Grows the memory when
   * needed; views taken before may then need re-creating.
   */
  alloc(bytes: number, align = 8): number {
    return heapAlloc(this, bytes, align);
  }

  /**
   * Like alloc, but the region is not zeroed: for staging buffers the caller fills completely
   * before anything reads them (a fresh region holds zeros; a reused one, old bytes).
   */
  allocUninitialized(bytes: number, align = 8): number {
    return heapAlloc(this, bytes, align, false);
  }

  /** Gives back a region from `alloc`. Freeing anything else, or twice, throws InvalidArgument. */
  free(ptr: number): void {
    heapFree(this, ptr);
  }

  /** What the heap holds now: its size, the live blocks and bytes, the bytes waiting for reuse. */
  heapStats(): HeapStats {
    return heapStats(this);
  }

  /** @internal Grows the memory until it holds at least `end` bytes. */
  growTo(end: number): void {
    while (this.memory.buffer.byteLength < end) {
      const need = Math.ceil((end - this.memory.buffer.byteLength) / WASM_PAGE);
      try {
        this.memory.grow(need);
      } catch (e) {
        throw new SgringError('OutOfMemory', `core memory cannot grow by ${need} pages: ${(e as Error).message}`);
      }
    }
    this.refresh();
  }
}
