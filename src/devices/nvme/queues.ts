// Submission and completion queues as the controller sees them (spec/nvme.md §1.2): rings of
// 64- and 16-byte slots in guest memory, reached only through the controller's DMA domain.
// Empty when head == tail, full when tail + 1 == head; the controller's CQ phase starts at 1
// and flips each time its tail wraps.

import type { IommuDomain } from '../../memory/iommu';
import { ExternalDmaDomain } from '../../memory/external';
import type { FetchedCommand } from './command';

/** A controller's queues by id; `version` changes whenever the set of queues does. */
export class QueueTable<T> extends Map<number, T> {
  version = 0;
  override set(id: number, q: T): this {
    this.version++;
    return super.set(id, q);
  }
  override delete(id: number): boolean {
    this.version++;
    return super.delete(id);
  }
  override clear(): void {
    this.version++;
    super.clear();
  }
}

/** How a controller reaches guest memory: a domain over the core's guest window, or an emulator's own RAM. */
export type NvmeDma = IommuDomain | ExternalDmaDomain;

export interface SubmissionQueue {
  readonly id: number;
  readonly gpa: number;
  readonly size: number;
  readonly cqid: number;
  /** Next slot the controller fetches. */
  head: number;
  /** Last tail the host wrote to the doorbell. */
  tail: number;
}

export interface CompletionQueue {
  readonly id: number;
  readonly gpa: number;
  readonly size: number;
  readonly ien: boolean;
  readonly vector: number;
  /** Next slot the controller writes. */
  tail: number;
  /** Last head the host wrote to the doorbell. */
  head: number;
  phase: number;
  /** SQs bound to this CQ. */
  sqs: number;
  /** Completions waiting for room (the host has not freed slots): posted on its next head doorbell. */
  held: HeldCqe[];
  /** Completions the controller's fast lane holds until its batch of copies has moved (within one process() call). */
  laneWaiting: number;
}

/** A completion waiting for room: the fields writeSlot takes. */
export interface HeldCqe { cdw0: number; dw2: number; cid: number; status: number }

export const cqFull = (cq: CompletionQueue) => (cq.tail + 1) % cq.size === cq.head;
export const sqEmpty = (sq: SubmissionQueue) => sq.head === sq.tail;

/** Reads the SQE at the head through the DMA domain into `into` (a private copy: copy before parse) and advances the head. */
export function fetchSqe(dma: NvmeDma, sq: SubmissionQueue, into: FetchedCommand): FetchedCommand {
  const gpa = sq.gpa + sq.head * 64;
  const sqhd = (sq.head + 1) % sq.size;
  // Slots are 64-byte aligned in guest RAM, and guest RAM is page aligned in core memory.
  if (dma instanceof ExternalDmaDomain) into.from(dma.read(gpa, 64), sq.id, sqhd);
  else into.load(dma.core.u32, dma.translateSmall(gpa, 64, 'read'), sq.id, sqhd);
  sq.head = sqhd;
  return into;
}

/**
 * Writes a CQE at the tail with the current phase, or holds it when the queue is full. The
 * status word goes last, so a host that sees the new phase sees the whole entry. Returns true
 * when it was posted.
 */
export function postCqe(dma: NvmeDma, cq: CompletionQueue, cdw0: number, sqhd: number, sqid: number, cid: number, status: number): boolean {
  const dw2 = (sqhd & 0xffff) | ((sqid & 0xffff) << 16);
  if (cqFull(cq) || cq.held.length > 0) {
    cq.held.push({ cdw0, dw2, cid, status });
    return false;
  }
  writeSlot(dma, cq, cdw0, dw2, cid, status);
  return true;
}

/** dw2 is SQHD | SQID << 16; dw3 is built here from the CID, the status and the phase. */
function writeSlot(dma: NvmeDma, cq: CompletionQueue, cdw0: number, dw2: number, cid: number, status: number): void {
  const gpa = cq.gpa + cq.tail * 16;
  const dw3 = (cid & 0xffff) | ((((status & 0x7fff) << 1) | cq.phase) << 16);
  if (dma instanceof ExternalDmaDomain) {
    // An emulator's guest runs on this thread: one copy of the whole entry with its phase.
    const e = new Uint8Array(16);
    const v = new DataView(e.buffer);
    v.setUint32(0, cdw0 >>> 0, true);
    v.setUint32(8, dw2 >>> 0, true);
    v.setUint32(12, dw3 >>> 0, true);
    dma.write(gpa, e);
  } else {
    // Slots are 16-byte aligned in guest RAM and guest RAM is page aligned in core memory.
    const w = dma.translateSmall(gpa, 16, 'write') >>> 2;
    const u32 = dma.core.u32;
    u32[w] = cdw0;
    u32[w + 1] = 0;
    u32[w + 2] = dw2;
    // CID and status (with the phase) last, as one 32-bit release store: a host thread that sees
    // the new phase sees the whole entry.
    if (dma.core.shared) Atomics.store(u32, w + 3, dw3 >>> 0);
    else u32[w + 3] = dw3; // one thread: a plain store (Atomics.store is a call)
  }
  cq.tail = (cq.tail + 1) % cq.size;
  if (cq.tail === 0) cq.phase ^= 1;
}

/** After a head doorbell: posts held completions while there is room; returns how many. */
export function drainHeld(dma: NvmeDma, cq: CompletionQueue): number {
  let n = 0;
  while (cq.held.length > 0 && !cqFull(cq)) {
    const e = cq.held.shift()!;
    writeSlot(dma, cq, e.cdw0, e.dw2, e.cid, e.status);
    n++;
  }
  return n;
}

/** A queue pair as its host keeps it (a driver, a fabric front end): the ring addresses, the SQ tail it writes, the CQ head and phase it reads by. */
export interface HostQueuePair {
  readonly qid: number;
  readonly sq: number;
  readonly cq: number;
  readonly size: number;
  tail: number;
  head: number;
  phase: number;
}

/** Host side: writes `sqe` into the slot at the SQ tail and advances the tail (the caller rings). */
export function putSqe(u8: Uint8Array, guestBase: number, q: HostQueuePair, sqe: Uint8Array): void {
  u8.set(sqe, guestBase + q.sq + q.tail * 64);
  q.tail = (q.tail + 1) % q.size;
}

/** Host side: the core offset of the next CQE whose phase tag says it is new, advancing head and phase; -1 when none. */
export function takeCqe(u8: Uint8Array, guestBase: number, q: HostQueuePair): number {
  const at = guestBase + q.cq + q.head * 16;
  if ((u8[at + 14]! & 1) !== q.phase) return -1;
  q.head = (q.head + 1) % q.size;
  if (q.head === 0) q.phase ^= 1;
  return at;
}
