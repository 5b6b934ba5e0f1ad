// The guest end of an open channel (spec/vmbus.md §3.5): the data plane of ChannelEnd over the
// channel's TX ring (guest -> host, which it produces) and RX ring (host -> guest, which it
// consumes), both inside the ring GPADL in guest RAM. GuestBus.open makes it; close() and a
// rescind end it, failing every request still in flight exactly once.

import * as K from '../generated/constants';
import type { Core } from '../engine/core';
import type { SgringError } from '../engine/errors';
import { ChannelEnd, type ChannelEndInit, type ChannelEndOptions, type ChannelState } from './channel-end';
import type { Offer } from './offers';

/**
 * Prepares the ring buffer at guest-physical `gpa` before OPEN (spec §1.1): both rings zeroed,
 * feature_bits = 1 (pending_send_sz) on both, as Linux writes them (§1.9.3). Returns its core offset.
 */
export function initRingPages(core: Core, gpa: number, txPages: number, rxPages: number): number {
  const base = core.guestBase + gpa;
  core.checkRange(base, (txPages + rxPages) * 4096);
  core.u8.fill(0, base, base + (txPages + rxPages) * 4096);
  for (const at of [base, base + txPages * 4096]) Atomics.store(core.u32, (at + K.RING_OFF_FEATURE_BITS) >> 2, K.RING_FEATURE_PENDING_SEND_SIZE);
  return base;
}

export interface GuestRingLayout {
  /** Guest-physical address of the ring buffer (TX ring pages, then RX ring pages). */
  gpa: number;
  txPages: number;
  rxPages: number;
  /** Handle of the ring GPADL. */
  gpadl: number;
}

export class GuestChannel<C = unknown> extends ChannelEnd<C> {
  readonly offer: Offer;
  readonly relid: number;
  readonly rings: GuestRingLayout;
  private readonly closer: (ch: GuestChannel<C>, timeoutMs?: number) => Promise<void>;

  /** @internal made by GuestBus.open */
  constructor(init: ChannelEndInit, opts: ChannelEndOptions, offer: Offer, rings: GuestRingLayout,
    closer: (ch: GuestChannel<C>, timeoutMs?: number) => Promise<void>) {
    super(init, opts);
    this.offer = offer;
    this.relid = offer.relid;
    this.rings = rings;
    this.closer = closer;
  }

  /**
   * Closes the channel (spec §3.5): its sub-channels first, then CLOSECHANNEL, then the ring
   * GPADL's teardown. Requests in flight fail with ChannelClosed, once each.
   */
  close(timeoutMs?: number): Promise<void> {
    return this.closer(this, timeoutMs);
  }

  /** @internal ends the data plane (close, rescind, unload); returns a handler's error, if any. */
  terminate(state: ChannelState, error: SgringError): unknown {
    return this.shutdown(state, error);
  }
}
