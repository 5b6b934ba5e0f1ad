import { SgringError } from '../engine/errors';

/** A 64-bit transaction id as a bigint or a non-negative safe integer. */
export type TransactionId = bigint | number;

const TWO32 = 0x1_0000_0000;

/** Splits a transaction id into its low and high u32 halves (the engine boundary is i32 only). */
export function splitTid(tid: TransactionId | undefined, out: { lo: number; hi: number }): void {
  if (tid === undefined || tid === 0 || tid === 0n) {
    out.lo = 0;
    out.hi = 0;
  } else if (typeof tid === 'number') {
    if (!Number.isSafeInteger(tid) || tid < 0) throw new SgringError('InvalidArgument', `transactionId ${tid} is not a u64`);
    out.lo = tid >>> 0; // the low 32 bits (a double's % is a library call)
    out.hi = Math.floor(tid / TWO32);
  } else {
    if (tid < 0n || tid > 0xffff_ffff_ffff_ffffn) throw new SgringError('InvalidArgument', `transactionId ${tid} is not a u64`);
    out.lo = Number(tid & 0xffff_ffffn);
    out.hi = Number(tid >> 32n);
  }
}

/** Joins two u32 halves into the bigint transaction id. */
export function joinTid(lo: number, hi: number): bigint {
  return hi === 0 ? BigInt(lo >>> 0) : (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
