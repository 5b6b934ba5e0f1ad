// What a tap sees and may do: one TapContext per event at a stage (spec/nvme.md §7.3, §7.5).
// A device builds the event (its stage, the command or packet, the completion being formed, the
// data where the stage has it); the taps attached there run in attach order; the outcome says
// whether the device goes on, finishes the request with the completion as the taps left it, or
// drops it, and whether it must wait first.

import { SgringError } from '../engine/errors';
import type { TraceEncoder } from '../trace/encoder';
import type { DeviceStatuses, TapCompletion, TapEvent } from './event';

export type { DeviceStatuses, IoKind, TapCompletion, TapEvent } from './event';

export type TapAction = 'continue' | 'complete' | 'drop';

/** One event as a tap sees it: the device's event plus the actions. */
export interface TapContext extends Readonly<Omit<TapEvent, 'completion'>> {
  readonly stage: string;
  readonly completion: TapCompletion;
  /** Finish the request here with `status` (default: the completion's status), skipping execution. */
  complete(status?: number): void;
  /** The request never completes (a lost command: the driver's timeout has to find it). */
  drop(): void;
  /** Hold the request for `ms` milliseconds, or until the promise settles, before it goes on. */
  delay(wait: number | PromiseLike<unknown>): void;
  /** XOR `mask` (a byte) into the request's data at byte `offset` of its stream. */
  corrupt(offset: number, mask: number): void;
  /** A remark written into the trace beside this event. */
  note(text: string): void;
  /** The action the taps so far have chosen. */
  readonly action: TapAction;
}

/** What the taps decided for one event. */
export interface TapOutcome {
  action: TapAction;
  /** Resolves when the request may go on (null: at once). */
  wait: Promise<void> | null;
  /** A tap threw: the request fails with this (TapFailed), and only this request. */
  error: SgringError | null;
  notes: string[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** @internal The context object for one event; the registry fills `outcome` as taps act. */
export class EventContext implements TapContext {
  readonly stage: string;
  readonly device: string;
  readonly queue: number;
  readonly io: TapEvent['io'];
  readonly command: Uint8Array | null;
  readonly completion: TapCompletion;
  readonly data: Uint8Array[] | null;
  readonly statuses: DeviceStatuses;
  readonly request: string;
  readonly timeNs: bigint;
  readonly detail: Record<string, unknown> | undefined;
  readonly outcome: TapOutcome = { action: 'continue', wait: null, error: null, notes: [] };
  /** Faults the taps injected, for the trace ("complete 0x8304", "corrupt 12^0x10"...). */
  readonly faults: string[] = [];
  /** The device's trace encoder (from its declare), for trace taps. */
  readonly encoder: TraceEncoder | undefined;
  private readonly waits: Promise<unknown>[] = [];
  private readonly after: (() => void)[] = [];

  constructor(stage: string, e: TapEvent, encoder?: TraceEncoder) {
    this.stage = stage;
    this.encoder = encoder;
    this.device = e.device;
    this.queue = e.queue;
    this.io = e.io;
    this.command = e.command;
    this.completion = e.completion;
    this.data = e.data;
    this.statuses = e.statuses;
    this.request = e.request;
    this.timeNs = e.timeNs;
    this.detail = e.detail;
  }

  get action(): TapAction {
    return this.outcome.action;
  }

  complete(status?: number): void {
    if (status !== undefined) {
      if (!Number.isInteger(status) || status < 0 || status > 0xffffffff) throw new SgringError('InvalidArgument', `complete(${status}): a status is a u32`);
      this.completion.status = status;
    }
    this.outcome.action = 'complete';
    this.faults.push(`complete status=0x${this.completion.status.toString(16)}`);
  }

  drop(): void {
    this.outcome.action = 'drop';
    this.faults.push('drop');
  }

  delay(wait: number | PromiseLike<unknown>): void {
    if (typeof wait === 'number') {
      if (!Number.isFinite(wait) || wait < 0) throw new SgringError('InvalidArgument', `delay(${wait}): milliseconds must be finite and >= 0`);
      this.waits.push(sleep(wait));
      this.faults.push(`delay ${wait} ms`);
    } else {
      this.waits.push(Promise.resolve(wait).then(() => undefined, () => undefined));
      this.faults.push('delay until a promise settles');
    }
    this.outcome.wait = Promise.all(this.waits).then(() => undefined);
  }

  corrupt(offset: number, mask: number): void {
    if (!Number.isInteger(mask) || mask < 0 || mask > 0xff) throw new SgringError('InvalidArgument', `corrupt(${offset}, ${mask}): the mask is a byte`);
    if (!Number.isInteger(offset) || offset < 0) throw new SgringError('InvalidArgument', `corrupt(${offset}): the offset is a non-negative integer`);
    let at = offset;
    for (const seg of this.data ?? []) {
      if (at < seg.length) {
        seg[at] = seg[at]! ^ mask;
        this.faults.push(`corrupt byte ${offset} ^ 0x${mask.toString(16)}`);
        return;
      }
      at -= seg.length;
    }
    throw new SgringError('InvalidArgument', `corrupt(${offset}): the request's data at this stage holds fewer bytes`);
  }

  note(text: string): void {
    this.outcome.notes.push(String(text));
  }

  /** Runs `fn` once every tap of this event has run (a trace tap records the final state this way). */
  afterTaps(fn: () => void): void {
    this.after.push(fn);
  }

  /** @internal */
  runAfter(): void {
    for (const fn of this.after.splice(0)) fn();
  }

  /** Bytes of data this event carries. */
  get dataBytes(): number {
    let n = 0;
    for (const seg of this.data ?? []) n += seg.length;
    return n;
  }
}
