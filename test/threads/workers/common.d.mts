export declare const recordBytes: (len: number) => number;
export declare function mix32(x: number): number;
export declare function lenOf(seed: number, seq: number, maxLen: number): number;
export declare function offOf(seed: number, seq: number, poolBytes: number, maxLen: number): number;
export declare function fnv1a(u8: Uint8Array, off: number, len: number): number;
export declare const TIE: number;
export declare const tiedHi: (lo: number) => number;
export declare function xorshift(seed: number): () => number;
export declare const CANARY: number;
export declare function fillRandom(u8: Uint8Array, off: number, len: number, seed: number): void;
export declare const H_WRITE: number;
export declare const H_READ: number;
export declare const H_MASK: number;
export declare const H_PENDING: number;
export interface WorkerErrorInfo {
  name?: string;
  message: string;
  code?: string;
  broken?: boolean;
  isRuntimeError?: boolean;
  stack?: string;
}
export declare function describeError(e: unknown): WorkerErrorInfo;
export declare function packetProblem(seed: number, maxLen: number, seq: number, hi: number, u8: Uint8Array, off: number, n: number): string | null;
export declare function waitMailbox(mailbox: Int32Array, index: number, waitMs: number, who: string): void;
export declare function runPhasesAndReport(d: unknown, mailbox: Int32Array | null, stats: object, runPhase: (ph: unknown, seq: number) => void, parentPort: unknown, who: string): void;
