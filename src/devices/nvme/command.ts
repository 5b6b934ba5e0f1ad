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
export const fail = (status: number): Result => ({ status, cdw0: 0 });

/** Little-endian u32 at byte `at` (no DataView: one per command costs more than the command's parsing). */
const le32 = (b: Uint8Array, at: number) => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;

class FetchedCommand implements Command {
  readonly opcode: number;
  readonly cid: number;
  readonly nsid: number;
  private view: DataView | null = null;
  constructor(readonly sqid: number, readonly sqe: Uint8Array, readonly sqhd: number) {
    this.opcode = sqe[0]!;
    this.cid = sqe[2]! | (sqe[3]! << 8);
    this.nsid = le32(sqe, 4);
  }
  get dv(): DataView {
    return (this.view ??= new DataView(this.sqe.buffer, this.sqe.byteOffset, 64));
  }
  cdw(i: number): number {
    return le32(this.sqe, 4 * i);
  }
  u64(at: number): number | bigint {
    const lo = le32(this.sqe, at);
    const hi = le32(this.sqe, at + 4);
    return hi < 0x200000 ? hi * 0x1_0000_0000 + lo : (BigInt(hi) << 32n) | BigInt(lo);
  }
}

export function makeCommand(sqid: number, sqe: Uint8Array, sqhd: number): Command {
  return new FetchedCommand(sqid, sqe, sqhd);
}

/** SLBA (CDW10-11) as a number when it is below 2^53, else Infinity (out of range anyway). */
export function slba(c: Command): number {
  const hi = c.cdw(11);
  return hi < 0x200000 ? hi * 0x1_0000_0000 + c.cdw(10) : Infinity;
}

export const isPromise = <T>(v: T | Promise<T>): v is Promise<T> => typeof (v as { then?: unknown })?.then === 'function';
