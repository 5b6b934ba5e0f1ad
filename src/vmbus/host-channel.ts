// The host (device) end of an open channel (spec/vmbus.md §3.5): the data plane of ChannelEnd
// over the guest's RX ring (which the host produces) and TX ring (which it consumes), reached
// through the host's DmaDomain at the offsets the ring GPADL translates to. HostBus makes it on
// OPENCHANNEL; CLOSECHANNEL, a rescind or UNLOAD end it.

import type { SgringError } from '../engine/errors';
import { ChannelEnd, type ChannelEndInit, type ChannelEndOptions, type ChannelState } from './channel-end';
import type { Gpadl, GpadlTable } from './gpadl';
import type { DeviceClassName, Guid } from './guid';

/** What a device offers: HostBus.offer takes the spec and keeps the offer. */
export interface HostOfferSpec {
  classId: DeviceClassName | Guid;
  /** Default: a stable GUID derived from the relid. */
  instanceId?: Guid;
  subChannelIndex?: number;
  /** Default: the lowest free relid from 1. */
  relid?: number;
  /** Channel flags (spec §3.4); default 0. */
  flags?: number;
  mmioMegabytes?: number;
  userDefined?: Uint8Array;
  /** Called when the guest opens the channel: set the channel's handlers here. */
  onOpen?: (ch: HostChannel) => void;
  channel?: ChannelEndOptions;
}

export interface HostOffer {
  relid: number;
  classId: Guid;
  instanceId: Guid;
  subChannelIndex: number;
  flags: number;
  mmioMegabytes: number;
  userDefined: Uint8Array;
  state: 'offered' | 'opened' | 'rescinding';
  spec: HostOfferSpec;
}

export class HostChannel<C = unknown> extends ChannelEnd<C> {
  readonly offer: HostOffer;
  readonly relid: number;
  /** Handle of the ring GPADL the guest opened the channel with. */
  readonly ringGpadl: number;
  /** Called once when the channel closes for any reason. */
  onClose: ((reason: ChannelState) => void) | null = null;

  /** @internal made by HostBus on OPENCHANNEL */
  constructor(init: ChannelEndInit, opts: ChannelEndOptions, offer: HostOffer, ringGpadl: number, private readonly gpadls: GpadlTable) {
    super(init, opts);
    this.offer = offer;
    this.relid = offer.relid;
    this.ringGpadl = ringGpadl;
  }

  /**
   * A GPADL the guest created for this channel and finished (a device's receive or send buffer,
   * spec §3.6), or undefined: a handle of another channel, still being built, or unknown. The
   * ring's own GPADL is not handed out.
   */
  gpadl(handle: number): Gpadl | undefined {
    const g = this.gpadls.get(handle);
    return g && g.state === 'created' && g.relid === this.relid && handle !== this.ringGpadl ? g : undefined;
  }

  /** @internal */
  terminate(state: ChannelState, error: SgringError): unknown {
    if (this.state !== 'open') return null;
    const err = this.shutdown(state, error);
    this.onClose?.(state);
    return err;
  }
}
