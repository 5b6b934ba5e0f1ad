// One command on its way through the controller: the SQE as fetched, its fields, and the result
// the executors give back (status field, dword 0, and the data a trace shows).

export interface Command {
  readonly sqid: number;
  readonly sqe: Uint8Array;
  readonly dv: DataView;
  readonly opcode: number;
  readonly cid: number;
  readonly nsid: number;
  /** SQ head after this command was fetched (the CQE's SQHD). */
  readonly sqhd: number;
  /** Command dword i (0..15). */
  cdw(i: number): number;
  /** The u64 at byte `at` (PRP1 at 24, PRP2 at 32): a number below 2^53, else a bigint. */
  u64(at: number): number | bigint;
}

export interface Result {
  status: number;
  cdw0: number;
  /** The data the command moved, for taps and traces (a view; valid until the command completes). */
  data?: Uint8Array | null;
  /** Core memory to give back when the command is done. */
  release?: number;
}

export const ok = (cdw0 = 0): Result => ({ status: 0, cdw0 });
/** A success with nothing to give back, shared (the per-command path; never edited). */
export const DONE: Result = Object.freeze({ status: 0, cdw0: 0 });
export const fail = (status: number): Result => ({ status, cdw0: 0 });

/**
 * A command as fetched: a private copy of its SQE (copy before parse) as bytes and as
 * little-endian dwords (every platform JavaScript runs on is little-endian, as guest memory is).
 * A controller may reuse one for the next command once nothing refers to it any more.
 */
export class FetchedCommand implements Command {
  readonly sqe = new Uint8Array(64);
  private readonly words = new Uint32Array(this.sqe.buffer);
  sqid = 0;
  sqhd = 0;
  opcode = 0;
  cid = 0;
  nsid = 0;
  private view: DataView | null = null;

  /** Copies the 64-byte SQE at core offset `at` (4-byte aligned) and parses its header. */
  load(u32: Uint32Array, at: number, sqid: number, sqhd: number): this {
    const w = this.words;
    for (let i = 0, p = at >>> 2; i < 16; i++) w[i] = u32[p + i]!;
    return this.parsed(sqid, sqhd);
  }

  /** Takes a 64-byte SQE copied some other way. */
  from(sqe: Uint8Array, sqid: number, sqhd: number): this {
    this.sqe.set(sqe.subarray(0, 64));
    return this.parsed(sqid, sqhd);
  }

  private parsed(sqid: number, sqhd: number): this {
    this.sqid = sqid;
    this.sqhd = sqhd;
    this.opcode = this.sqe[0]!;
    this.cid = this.words[0]! >>> 16;
    this.nsid = this.words[1]!;
    return this;
  }

  get dv(): DataView {
    return (this.view ??= new DataView(this.sqe.buffer, 0, 64));
  }
  cdw(i: number): number {
    return this.words[i]!;
  }
  u64(at: number): number | bigint {
    const lo = this.words[at >> 2]!;
    const hi = this.words[(at >> 2) + 1]!;
    return hi < 0x200000 ? hi * 0x1_0000_0000 + lo : (BigInt(hi) << 32n) | BigInt(lo);
  }
}

export function makeCommand(sqid: number, sqe: Uint8Array, sqhd: number): Command {
  return new FetchedCommand().from(sqe, sqid, sqhd);
}

/** SLBA (CDW10-11) as a number when it is below 2^53, else Infinity (out of range anyway). */
export function slba(c: Command): number {
  const hi = c.cdw(11);
  return hi < 0x200000 ? hi * 0x1_0000_0000 + c.cdw(10) : Infinity;
}

export const isPromise = <T>(v: T | Promise<T>): v is Promise<T> => typeof (v as { then?: unknown })?.then === 'function';
