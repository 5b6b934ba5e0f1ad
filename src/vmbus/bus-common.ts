// Pieces both bus ends share: the counters of dropped messages, the decoding of received
// messages, the table of operations waiting for an answer from the other end, and the poll loop.

import * as K from '../generated/constants';
import { SgringError } from '../engine/errors';
import type { ChannelEnd } from './channel-end';
import { decodeMessage, MESSAGE_TYPES, type ChannelMessage } from './messages';
import { synicPayload, type MessageEnd } from './transport';

/** Every protocol version of spec §3.3, newest first: what a guest tries and a host accepts by default. */
export const VMBUS_VERSIONS: readonly number[] = [
  K.VMBUS_VERSION_WIN10_V5_3, K.VMBUS_VERSION_WIN10_V5_2, K.VMBUS_VERSION_WIN10_V5_1, K.VMBUS_VERSION_WIN10_V5,
  K.VMBUS_VERSION_WIN10_RS3, K.VMBUS_VERSION_WIN10, K.VMBUS_VERSION_WIN8_1, K.VMBUS_VERSION_WIN8, K.VMBUS_VERSION_WIN7,
  K.VMBUS_VERSION_WS2008,
];

/** Messages dropped without a handler running (checklist 17, spec §6.3 items 16-19). */
export interface DropCounters {
  /** Shorter than the fixed size of their type (or than the 8-byte header). */
  tooShort: number;
  /** payload_size above 240. */
  tooLong: number;
  /** A type nobody handles, or a SynIC message that is not a channel message. */
  unknownType: number;
  /** A type this end sends rather than receives. */
  wrongDirection: number;
  /** Not acceptable in the current state (before contact, for a channel in the wrong state). */
  outOfState: number;
  /** An answer nobody waits for, or a request naming something that does not exist. */
  unmatched: number;
}

/** Which counter a decode error goes to. */
export function dropReason(e: unknown): 'tooShort' | 'tooLong' | 'unknownType' {
  if (e instanceof SgringError) {
    if (e.code === 'MessageTooShort') return 'tooShort';
    if (e.code === 'MessageTooLong') return 'tooLong';
    if (e.code === 'UnknownMessageType') return 'unknownType';
  }
  throw e;
}

export interface Waiter<T = unknown> {
  kind: string;
  key: number;
  relid: number;
  done: boolean;
  value?: T;
  error?: SgringError;
}

/** Operations waiting for a message, by kind and key (a relid, a GPADL handle, or 0). */
export class Waiters {
  private readonly list: Waiter[] = [];

  add<T>(kind: string, key: number, relid = -1): Waiter<T> {
    const w: Waiter<T> = { kind, key, relid, done: false };
    this.list.push(w as Waiter);
    return w;
  }

  /** Completes the oldest matching waiter with `value`; false when none matches. */
  settle(kind: string, key: number, value: unknown, accept: (v: unknown) => boolean = () => true): boolean {
    const i = this.list.findIndex((w) => w.kind === kind && w.key === key && accept(value));
    if (i < 0) return false;
    const [w] = this.list.splice(i, 1);
    w!.done = true;
    w!.value = value;
    return true;
  }

  /** Fails every waiter of (kind, key). */
  fail(kind: string, key: number, error: SgringError): void {
    this.failWhere((w) => w.kind === kind && w.key === key, error);
  }

  /** Fails every waiter about channel `relid`. */
  failRelid(relid: number, error: SgringError): void {
    this.failWhere((w) => w.relid === relid, error);
  }

  failAll(error: SgringError): void {
    this.failWhere(() => true, error);
  }

  private failWhere(pred: (w: Waiter) => boolean, error: SgringError): void {
    for (let i = this.list.length - 1; i >= 0; i--) {
      const w = this.list[i]!;
      if (!pred(w)) continue;
      this.list.splice(i, 1);
      w.done = true;
      w.error = error;
    }
  }

  cancel(w: Waiter<any>): void { // eslint-disable-line @typescript-eslint/no-explicit-any
    const i = this.list.indexOf(w as Waiter);
    if (i >= 0) this.list.splice(i, 1);
  }

  get size(): number {
    return this.list.length;
  }
}

/**
 * Decodes one SynIC slot and checks that it travels in direction `dir` (copy before parse: the
 * slot is already a private copy). Malformed or misdirected messages are counted in `dropped`
 * and give null (checklist 17).
 */
export function receivedMessage(slot: Uint8Array, dir: 'h2g' | 'g2h', dropped: DropCounters): ChannelMessage | null {
  let m: ChannelMessage;
  try {
    m = decodeMessage(synicPayload(slot));
  } catch (e) {
    dropped[dropReason(e)]++;
    return null;
  }
  if (MESSAGE_TYPES[m.type].dir !== dir) {
    dropped.wrongDirection++;
    return null;
  }
  return m;
}

/**
 * The poll loop both bus ends share: control messages first (at most one queue's worth, so a
 * flooding peer cannot keep us here, P4), then every open channel that has work. A channel that
 * throws does not stop the others; a broken one stays broken and is not reported again.
 */
export function pollBus(end: MessageEnd, flushOutbox: () => void, handle: (slot: Uint8Array) => void,
  channels: Iterable<ChannelEnd<unknown>>): number {
  flushOutbox();
  let n = 0;
  for (let i = 0; i < end.slots; i++) {
    const slot = end.receive();
    if (slot === null) break;
    handle(slot);
    n++;
  }
  flushOutbox();
  end.takeEvents(() => {});
  let first: unknown = null;
  for (const ch of channels) {
    if (ch.state !== 'open' || !ch.hasWork()) continue;
    try {
      n += ch.poll();
    } catch (e) {
      if (!(e instanceof SgringError && e.broken)) first ??= e;
    }
  }
  if (first !== null) throw first;
  return n;
}

/** Spins while `waiting()` holds, at most `micros` µs; true when it stopped holding. */
export function spinWhile(waiting: () => boolean, micros: number): boolean {
  if (micros <= 0) return !waiting();
  const end = performance.now() + micros / 1000;
  for (let i = 0; waiting(); i++) if ((i & 63) === 63 && performance.now() > end) return false;
  return true;
}
