// NVMe PRP façade (spec/nvme.md §3): buildPrp for the guest-driver side, walkPrp for the
// controller side. The engine (Wasm or reference) does every check; this file only lays out
// arguments and decodes results. Errors of the caller are SgringErrors; a hostile data pointer
// is not an error of the caller but an NVMe status in the result ({ ok: false, status }).

import { NVME_CMD_LENGTH, NVME_CMD_PRP1, NVME_CMD_PRP2, SEG_SIZE } from '../generated/constants';
import type { Core } from '../engine/core';
import { SgringError } from '../engine/errors';
import {
  checkLength, ensure, readU64, resolveOptions, splitAddress, toBigAddress, walkPrpWords, workspace, writeConfig, writePool, writeSegments,
  type NvmeAddress, type NvmeWalkOptions, type NvmeWalkResult,
} from './nvme-common';

export { decodeNvmeStatus, isNvmeStatus } from './nvme-common';
export type { NvmeAddress, NvmeSegment, NvmeStatus, NvmeWalkOptions, NvmeWalkResult } from './nvme-common';


/** §3.1 rule 10: PRP entries of a transfer of `length` bytes whose PRP1 sits at `offset`. */
export function prpEntryCount(length: number, offset: number, mps = 4096): number {
  if (length === 0) return 0;
  const first = mps - (offset % mps);
  return 1 + Math.ceil(Math.max(0, length - first) / mps);
}

// ---- PRP ----

export interface BuildPrpInput extends Pick<NvmeWalkOptions, 'mps' | 'mdts' | 'maxTransferBytes'> {
  /** The transfer as segments obeying the PRP rule (first dword aligned; the rest page aligned,
   *  every segment but the last ending on a page boundary). */
  segments?: readonly { addr: NvmeAddress; len: number }[];
  /** Or: first address + length + the page addresses after the first page. */
  addr?: NvmeAddress;
  length?: number;
  pages?: readonly NvmeAddress[];
  /** Guest pages the builder may use for PRP lists, in order; the first may carry a qword
   *  aligned in-page offset (as Linux's 256-byte pool produces). */
  listPages?: readonly NvmeAddress[];
}

/** A built data pointer. Bus addresses are bigints: exact over the whole 64-bit range. */
export interface BuiltPrp {
  prp1: bigint;
  prp2: bigint;
  length: number;
  /** PRP entries (data pointers) of the transfer, §3.1 rule 10. */
  entries: number;
  /** The list pages used, in chain order (a prefix of listPages). */
  listPages: bigint[];
}

function prpSegments(input: BuildPrpInput, mps: number): readonly { addr: NvmeAddress; len: number }[] {
  if (input.segments) return input.segments;
  if (input.addr === undefined || input.length === undefined) {
    throw new SgringError('InvalidArgument', 'buildPrp needs segments, or addr + length (+ pages)');
  }
  const length = checkLength(input.length);
  if (length === 0) return [];
  const [lo] = splitAddress(input.addr, 'addr');
  const first = Math.min(length, mps - (lo % mps));
  const segs: { addr: NvmeAddress; len: number }[] = [{ addr: input.addr, len: first }];
  let rest = length - first;
  const pages = input.pages ?? [];
  for (let i = 0; rest > 0; i++) {
    if (i >= pages.length) throw new SgringError('InvalidArgument', `length ${length} needs more than ${pages.length} pages after the first`);
    const n = Math.min(rest, mps);
    segs.push({ addr: pages[i]!, len: n });
    rest -= n;
  }
  return segs;
}

/** Builds PRP1/PRP2 and any PRP lists (written into guest memory) for a transfer (§3.1-3.2). */
export function buildPrp(core: Core, input: BuildPrpInput): BuiltPrp {
  const r = resolveOptions(input);
  const ws = workspace(core);
  const segs = prpSegments(input, r.mps);
  const listPages = input.listPages ?? [];
  const segPtr = ensure(core, ws, 'segs', segs.length, SEG_SIZE);
  writeSegments(core, segPtr, segs);
  const pool = writePool(core, ws, listPages);
  writeConfig(core, ws, r);
  const st = core.fn.prpBuild(ws.cfg, segPtr, segs.length, pool, listPages.length, ws.rec);
  if (st < 0) throw SgringError.fromStatus(st, 'buildPrp');
  const length = core.u32[(ws.rec + NVME_CMD_LENGTH) >> 2]!;
  const prp1Low = core.u32[(ws.rec + NVME_CMD_PRP1) >> 2]!; // mps divides 2^32: the low word has the offset
  return {
    prp1: readU64(core, ws.rec + NVME_CMD_PRP1), prp2: readU64(core, ws.rec + NVME_CMD_PRP2), length,
    entries: prpEntryCount(length, prp1Low % r.mps, r.mps),
    listPages: listPages.slice(0, st).map(toBigAddress),
  };
}

export interface WalkPrpInput extends NvmeWalkOptions {
  prp1: NvmeAddress;
  prp2: NvmeAddress;
  length: number;
}

/** Walks PRP1/PRP2 as a controller would (§3.3): segments, or the NVMe status to complete with. */
export function walkPrp(core: Core, input: WalkPrpInput): NvmeWalkResult {
  const r = resolveOptions(input);
  const length = checkLength(input.length);
  const [p1lo, p1hi] = splitAddress(input.prp1, 'prp1');
  const [p2lo, p2hi] = splitAddress(input.prp2, 'prp2');
  return walkPrpWords(core, r, p1lo, p1hi, p2lo, p2hi, length);
}
