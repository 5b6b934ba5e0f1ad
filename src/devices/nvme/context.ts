// What the command executors (admin.ts, io.ts) may use of the controller: its state and its
// data movers. The controller implements it; the executors never import the controller.

import type { Core } from '../../engine/core';
import type { NvmeSegment } from '../../core/nvme-common';
import type { Region } from '../../core/gpa-range';
import type { BlockBackend } from '../block/backend';
import type { Command, Result } from './command';
import type { ControllerIdentity, HealthCounters } from './identify';
import type { CompletionQueue, SubmissionQueue } from './queues';

export interface ControllerContext {
  readonly core: Core;
  readonly mdts: number;
  /** 4096 * 2^mdts. */
  readonly maxTransferBytes: number;
  readonly maxIoQueues: number;
  readonly maxQueueEntries: number;
  readonly vectors: number;
  readonly sqs: Map<number, SubmissionQueue>;
  readonly cqs: Map<number, CompletionQueue>;
  readonly features: Map<number, number>;
  readonly health: HealthCounters;
  readonly namespaceCount: number;
  namespace(nsid: number): BlockBackend | undefined;
  identity(): ControllerIdentity;
  dataSegments(c: Command, length: number): NvmeSegment[] | number;
  /**
   * The in-place path: walks the PRPs of `c` over core guest RAM and checks every segment for
   * `access`, making no objects. The segment count (walkedAddr / walkedLen until the next walk),
   * or -1: the command takes the staged path (an SGL, an emulator's RAM, any fault, which that
   * path reports).
   */
  walkInPlace(c: Command, length: number, access: 'read' | 'write'): number;
  walkedAddr(i: number): number;
  walkedLen(i: number): number;
  toHost(segs: NvmeSegment[], data: Uint8Array | Region): number;
  fromHost(segs: NvmeSegment[], into: Region): number;
  checkRing(gpa: number, bytes: number): number;
  queueAer(c: Command): Result | null;
  errorLog(): Uint8Array;
}
