/**
 * The functions every engine provides, with the same numeric signatures: the Wasm exports of
 * assembly/index.ts, and their pure-TypeScript twins in src/reference/. All pointers are byte
 * offsets into the core's one WebAssembly.Memory; 64-bit values stay in memory or cross as
 * lo/hi u32 pairs; negative results are status codes from the generated constants table.
 * Each engine module declares its functions next to its reference twin.
 */
import type { BounceFunctions } from '../reference/bounce';
import type { DmaFunctions } from '../reference/dma';
import type { PageListFunctions } from '../reference/pagelist';
import type { PrpFunctions } from '../reference/prp';
import type { SglFunctions } from '../reference/sgl';

export interface RingFunctions {
  ringInit(ctl: number, ring: number, totalBytes: number): number;
  ringClearError(ctl: number): void;
  ringWrite(ctl: number, src: number, len: number, type: number, flags: number, tidLo: number, tidHi: number): number;
  ringWritev(ctl: number, iov: number, count: number, type: number, flags: number, tidLo: number, tidHi: number): number;
  ringWriteRaw(ctl: number, src: number, len: number): number;
  ringWriteBatch(ctl: number, desc: number, count: number): number;
  ringRead(ctl: number, out: number, cap: number, mode: number): number;
  ringReadBatch(ctl: number, out: number, cap: number, max: number): number;
}

export interface BenchFunctions {
  /** `times` memory copies of len bytes, the i-th from src + i*srcStride to dst + i*dstStride. */
  copyLimit(dst: number, dstStride: number, src: number, srcStride: number, len: number, times: number): number;
}

export type EngineFunctions = RingFunctions & BounceFunctions & PageListFunctions & PrpFunctions & SglFunctions & DmaFunctions &
  BenchFunctions;

export type EngineName = 'wasm' | 'reference';
