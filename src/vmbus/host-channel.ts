// The host (device) end of an open channel (spec/vmbus.md §3.5): the data plane of ChannelEnd
// over the guest's RX ring (which the host produces) and TX ring (which it consumes), reached
// through the host's DmaDomain at the offsets the ring GPADL translates to. HostBus makes it on
// OPENCHANNEL; CLOSECHANNEL, a rescind or UNLOAD end it.

import type { SgringError } from '../engine/errors';
import { ChannelEnd, type ChannelEndInit, type ChannelEndOptions, type ChannelState } from './channel-end';
import type { HostOffer } from './host-bus';

export class HostChannel<C = unknown> extends ChannelEnd<C> {
  readonly offer: HostOffer;
  readonly relid: number;
  /** Handle of the ring GPADL the guest opened the channel with. */
  readonly ringGpadl: number;
  /** Called once when the channel closes for any reason. */
  onClose: ((reason: ChannelState) => void) | null = null;

  /** @internal made by HostBus on OPENCHANNEL */
  constructor(init: ChannelEndInit, opts: ChannelEndOptions, offer: HostOffer, ringGpadl: number) {
    super(init, opts);
    this.offer = offer;
    this.relid = offer.relid;
    this.ringGpadl = ringGpadl;
  }

  /** @internal */
  terminate(state: ChannelState, error: SgringError): unknown {
    if (this.state !== 'open') return null;
    const err = this.shutdown(state, error);
    this.onClose?.(state);
    return err;
  }
}
