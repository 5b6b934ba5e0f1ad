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

class FetchedCommand implements Command {
  readonly dv: DataView;
  readonly opcode: number;
  readonly cid: number;
  readonly nsid: number;
  constructor(readonly sqid: number, readonly sqe: Uint8Array, readonly sqhd: number) {
    this.dv = new DataView(sqe.buffer, sqe.byteOffset, 64);
    this.opcode = sqe[0]!;
    this.cid = this.dv.getUint16(2, true);
    this.nsid = this.dv.getUint32(4, true);
  }
  cdw(i: number): number {
    return this.dv.getUint32(4 * i, true);
  }
}

export function makeCommand(sqid: number, sqe: Uint8Array, sqhd: number): Command {
  return new FetchedCommand(sqid, sqe, sqhd);
}

/** SLBA (CDW10-11) as a number when it is below 2^53, else Infinity (out of range anyway). */
export function slba(c: Command): number {
  const v = (BigInt(c.cdw(11)) << 32n) | BigInt(c.cdw(10));
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : Infinity;
}

export const isPromise = <T>(v: T | Promise<T>): v is Promise<T> => typeof (v as { then?: unknown })?.then === 'function';
