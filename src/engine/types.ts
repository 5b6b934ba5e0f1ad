/**
 * The functions every engine provides, with the same numeric signatures: the Wasm exports of
 * assembly/index.ts, and their pure-TypeScript twins in src/reference/. All pointers are byte
 * offsets into the core's one WebAssembly.Memory; 64-bit values stay in memory or cross as
 * lo/hi u32 pairs; negative results are status codes from the generated constants table.
 * The reference twins in src/reference/ implement this contract; it depends on nothing of theirs.
 */

export interface BounceFunctions {
  /** Plans a page list: see assembly/bounce.ts planPages. */
  planPages(segs: number, n: number, pageSize: number, rule: number, maxPages: number, pool: number, poolCount: number,
    limitLo: number, limitHi: number, out: number, outCap: number): number;
  /** Write direction: segments -> bounce pages, zeroing uncovered bounce bytes. Returns bytes copied. */
  bounceCopyOut(segs: number, n: number, plan: number, planBytes: number, guestBase: number, guestBytes: number): number;
  /** Read direction, before the device writes: zero every bounce page. */
  bounceZero(segs: number, n: number, plan: number, planBytes: number, guestBase: number, guestBytes: number): number;
  /** Read direction, afterwards: bounce pages -> segments, at most `actual` stream bytes. Returns bytes copied. */
  bounceCopyBack(segs: number, n: number, plan: number, planBytes: number, guestBase: number, guestBytes: number, actual: number): number;
}

export interface DmaFunctions {
  /** Checks the first `len` stream bytes of a segment list for `access` (DMA_READ | DMA_WRITE). Returns len. */
  dmaCheck(dom: number, gen: number, guestBase: number, guestBytes: number, segs: number, n: number, access: number,
    len: number, res: number): number;
  /** Device reads guest memory: list -> buf, every page checked first. Returns len. */
  dmaGather(dom: number, gen: number, guestBase: number, guestBytes: number, segs: number, n: number, buf: number,
    len: number, res: number): number;
  /** Device writes guest memory: buf -> list, every page checked first. Returns len. */
  dmaScatter(dom: number, gen: number, guestBase: number, guestBytes: number, segs: number, n: number, buf: number,
    len: number, res: number): number;
  /** The copies of a batch of checked transfers: `count` (dst, src, len) u32 triples at `table`, as if in order; `chunk` > 0 may interleave them. */
  dmaCopyBatch(table: number, count: number, chunk: number): number;
}

/** The page-list functions of an engine (assembly/pagelist.ts); all arguments are u32. */
export interface PageListFunctions {
  pageListClassify(segs: number, n: number, pageSize: number, rule: number, classes: number): number;
  gpaEncode(segs: number, n: number, out: number, cap: number, res: number): number;
  gpaEncodeRange(byteOffset: number, byteCount: number, pfns: number, npfn: number, out: number, cap: number, res: number): number;
  gpaEncodePages(segs: number, n: number, out: number, cap: number, res: number): number;
  gpaEncodeMulti(segs: number, n: number, mode: number, out: number, cap: number, res: number): number;
  gpaDecode(src: number, len: number, rangeCount: number, flags: number, out: number, cap: number, res: number): number;
}

export interface PrpFunctions {
  /** Walks PRP1/PRP2 at dptr for len bytes -> segment count at out, or a negative status. */
  prpWalk(cfg: number, dptr: number, len: number, out: number, outCap: number): number;
  /** Walks `count` command records -> commands done (stops early when out fills up). */
  prpWalkBatch(cfg: number, cmds: number, count: number, out: number, outCap: number): number;
  /** Builds PRPs for nsegs segments -> record rec (DPTR, LENGTH); returns pool pages used. */
  prpBuild(cfg: number, segs: number, nsegs: number, pool: number, poolCount: number, rec: number): number;
  /** Builds `count` command records (segments FIRST..FIRST+COUNT) -> pool pages used in total. */
  prpBuildBatch(cfg: number, cmds: number, count: number, segs: number, segCount: number, pool: number, poolCount: number): number;
}

export interface SglFunctions {
  /** Walks SGL1 at dptr for len bytes -> segment count at out, or a negative status. */
  sglWalk(cfg: number, dptr: number, len: number, out: number, outCap: number): number;
  /** Walks `count` command records -> commands done (stops early when out fills up). */
  sglWalkBatch(cfg: number, cmds: number, count: number, out: number, outCap: number): number;
  /** Builds an SGL for nsegs segments -> record rec (SGL1, LENGTH); returns pool pages used. */
  sglBuild(cfg: number, segs: number, nsegs: number, pool: number, poolCount: number, rec: number): number;
  /** Builds `count` command records (segments FIRST..FIRST+COUNT) -> pool pages used in total. */
  sglBuildBatch(cfg: number, cmds: number, count: number, segs: number, segCount: number, pool: number, poolCount: number): number;
}

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
