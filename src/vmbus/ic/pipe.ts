// The transport the IC endpoints run over: a "pipe" that sends and receives in-band packet
// payloads with a VMBus transaction id. The channel layer (offers, GPADL, open, signalling)
// will provide one per opened util channel; RingPipe runs one over two VmbusRing endpoints
// (TX: we write, RX: we read) so tests move real bytes through real rings.

import { PKT_TYPE_INBAND } from '../../generated/constants';
import type { Core } from '../../engine/core';
import { SgringError } from '../../engine/errors';
import { VmbusRing } from '../../core/vmbus-ring';

export interface IcPipeMessage {
  /** The in-band payload (a private copy; sender padding included). */
  payload: Uint8Array;
  /** The channel packet's trans_id, echoed in the answer. */
  transactionId: bigint;
  /** Channel packet flags (bit 0 = completion requested; IC traffic uses 0). */
  flags: number;
}

export interface IcPipe {
  /** Sends one in-band packet. Returns false when the transport is full (nothing was sent). */
  send(payload: Uint8Array, transactionId: bigint, flags?: number): boolean;
  /** The next in-band payload, or null when none is waiting. */
  receive(): IcPipeMessage | null;
}

export interface RingPipeOptions {
  /** Called when a write needs the peer interrupted (spec §1.9.1). */
  signalTx?: () => void;
  /** Called when a read needs the producer interrupted for flow control (spec §1.9.2). */
  signalRx?: () => void;
}

export interface RingPipeStats {
  sent: number;
  received: number;
  /** Sends refused because the TX ring was full. */
  full: number;
  /** Packets of a type other than in-band (6), counted and skipped (checklist item 11). */
  skippedNonInband: number;
}

/** An IcPipe over a TX ring endpoint (producer side) and an RX ring endpoint (consumer side). */
export class RingPipe implements IcPipe {
  readonly tx: VmbusRing;
  readonly rx: VmbusRing;
  readonly stats: RingPipeStats = { sent: 0, received: 0, full: 0, skippedNonInband: 0 };
  private readonly opts: RingPipeOptions;

  constructor(tx: VmbusRing, rx: VmbusRing, opts: RingPipeOptions = {}) {
    if (tx.core.memory !== rx.core.memory) throw new SgringError('InvalidArgument', 'the TX and RX rings of a pipe must share one memory');
    this.tx = tx;
    this.rx = rx;
    this.opts = opts;
  }

  /** Ring errors (a corrupt ring, a packet that can never fit) propagate as SgringError. */
  send(payload: Uint8Array, transactionId: bigint, flags = 0): boolean {
    const r = this.tx.writePacket({ type: PKT_TYPE_INBAND, flags, transactionId, payload });
    if (!r.written) {
      this.stats.full++;
      return false;
    }
    this.stats.sent++;
    if (r.signal) this.opts.signalTx?.();
    return true;
  }

  receive(): IcPipeMessage | null {
    // Bounded: each iteration consumes one packet, and a ring holds finitely many.
    for (;;) {
      const p = this.rx.readPacket();
      if (p === null) return null;
      if (p.signal) this.opts.signalRx?.();
      if (p.type !== PKT_TYPE_INBAND) {
        this.stats.skippedNonInband++;
        continue;
      }
      this.stats.received++;
      return { payload: p.payload, transactionId: p.transactionId, flags: p.flags };
    }
  }
}

/**
 * Two rings (host->guest and guest->host) and the pipe of each end over them, the way a util
 * channel's ring pair is used once opened. Linux opens util channels with 3-page rings
 * (hv_util.c); the default here is 16 KiB of data per direction.
 */
export function createRingPipePair(core: Core, opts: { dataSize?: number } = {}): {
  host: RingPipe; guest: RingPipe; hostToGuest: VmbusRing; guestToHost: VmbusRing;
} {
  const dataSize = opts.dataSize ?? 16384;
  const hostToGuest = VmbusRing.create(core, { dataSize });
  const guestToHost = VmbusRing.create(core, { dataSize });
  const host = new RingPipe(hostToGuest, VmbusRing.attach(core, guestToHost.ptr, guestToHost.totalBytes));
  const guest = new RingPipe(guestToHost, VmbusRing.attach(core, hostToGuest.ptr, hostToGuest.totalBytes));
  return { host, guest, hostToGuest, guestToHost };
}

/** Anything that makes progress when polled (IcHost, IcGuest). */
export interface Pollable {
  /** Does the work that is ready; returns how many messages it sent or received. */
  poll(): number;
}

/**
 * Polls every endpoint until a whole round makes no progress, at most `maxRounds` rounds
 * (hardening P8: never an unbounded loop). Returns the rounds that made progress.
 */
export function pumpIc(endpoints: readonly Pollable[], maxRounds = 64): number {
  let rounds = 0;
  while (rounds < maxRounds) {
    let progress = 0;
    for (const e of endpoints) progress += e.poll();
    if (progress === 0) break;
    rounds++;
  }
  return rounds;
}

/**
 * Runs the endpoints of one thread until `promise` settles: poll, then let promise reactions
 * run (they may queue further requests), and repeat. Rejects with Timeout after `maxRounds`
 * idle rounds, so a peer that never answers cannot hang the caller.
 */
export async function settleIc<T>(promise: Promise<T>, endpoints: readonly Pollable[], maxRounds = 256): Promise<T> {
  let done = false;
  const tracked = promise.finally(() => { done = true; });
  tracked.catch(() => undefined);
  for (let idle = 0; !done && idle < maxRounds;) {
    const progress = pumpIc(endpoints);
    await new Promise<void>((r) => setTimeout(r, 0));
    idle = progress === 0 ? idle + 1 : 0;
  }
  if (!done) throw new SgringError('Timeout', `the IC exchange did not settle within ${maxRounds} idle rounds`);
  return tracked;
}
