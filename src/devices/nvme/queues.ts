// Submission and completion queues as the controller sees them (spec/nvme.md §1.2): rings of
// 64- and 16-byte slots in guest memory, reached only through the controller's DMA domain.
// Empty when head == tail, full when tail + 1 == head; the controller's CQ phase starts at 1
// and flips each time its tail wraps.

import type { IommuDomain } from '../../memory/iommu';

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
  held: Uint8Array[];
}

export const cqFull = (cq: CompletionQueue) => (cq.tail + 1) % cq.size === cq.head;
export const sqEmpty = (sq: SubmissionQueue) => sq.head === sq.tail;

/** Reads the SQE at the head through the DMA domain and advances the head. */
export function fetchSqe(dma: IommuDomain, sq: SubmissionQueue): Uint8Array {
  const sqe = dma.read(sq.gpa + sq.head * 64, 64);
  sq.head = (sq.head + 1) % sq.size;
  return sqe;
}

/** A CQE image without its phase bit. */
export function cqeImage(cdw0: number, sqhd: number, sqid: number, cid: number, status: number): Uint8Array {
  const c = new Uint8Array(16);
  const dv = new DataView(c.buffer);
  dv.setUint32(0, cdw0 >>> 0, true);
  dv.setUint16(8, sqhd, true);
  dv.setUint16(10, sqid, true);
  dv.setUint16(12, cid, true);
  dv.setUint16(14, (status & 0x7fff) << 1, true);
  return c;
}

/**
 * Writes a CQE at the tail with the current phase, or holds it when the queue is full.
 * The status word goes last, so a host that sees the new phase sees the whole entry.
 * Returns true when it was posted.
 */
export function postCqe(dma: IommuDomain, cq: CompletionQueue, cqe: Uint8Array): boolean {
  if (cqFull(cq) || cq.held.length > 0) {
    cq.held.push(cqe);
    return false;
  }
  writeSlot(dma, cq, cqe);
  return true;
}

function writeSlot(dma: IommuDomain, cq: CompletionQueue, cqe: Uint8Array): void {
  const at = cq.gpa + cq.tail * 16;
  dma.write(at, cqe.subarray(0, 14));
  const status = new Uint8Array(2);
  status[0] = (cqe[14]! & 0xfe) | cq.phase;
  status[1] = cqe[15]!;
  dma.write(at + 14, status);
  cq.tail = (cq.tail + 1) % cq.size;
  if (cq.tail === 0) cq.phase ^= 1;
}

/** After a head doorbell: posts held completions while there is room; returns how many. */
export function drainHeld(dma: IommuDomain, cq: CompletionQueue): number {
  let n = 0;
  while (cq.held.length > 0 && !cqFull(cq)) {
    writeSlot(dma, cq, cq.held.shift()!);
    n++;
  }
  return n;
}
