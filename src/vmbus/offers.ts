// The guest's view of the host's offers (spec/vmbus.md §3.4, §3.7, §3.9): one record per relid,
// with the device class resolved from the class GUID and sub-channels linked to their primary
// by the (class, instance) GUID pair. Checklist 18 / hardening L3: an offer whose relid is 2048
// or more, whose relid is already in use, that repeats a primary or a sub-channel index, or that
// is a sub-channel with no primary is refused with a typed error and changes nothing (no
// record is overwritten, nothing leaks).

import * as K from '../generated/constants';
import { SgringError } from '../engine/errors';
import { deviceClassOf, type DeviceClassName, type Guid } from './guid';
import type { OfferMessage } from './messages';

/** Guest-side channel states (spec §3.9; 'opening' covers the GPADL and OPEN round trips). */
export type OfferState = 'offered' | 'opening' | 'opened' | 'closing' | 'rescinded';

export interface Offer {
  relid: number;
  classId: Guid;
  instanceId: Guid;
  /** The class name from spec §3.4, or 'unknown' (offered, never bound). */
  className: DeviceClassName | 'unknown';
  /** 0 for a primary channel. */
  subChannelIndex: number;
  /** The primary of a sub-channel; null for a primary. */
  primary: Offer | null;
  connectionId: number;
  flags: number;
  mmioMegabytes: number;
  userDefined: Uint8Array;
  monitorId: number;
  monitorAllocated: boolean;
  dedicatedInterrupt: boolean;
  state: OfferState;
  /** True once a driver registered for its class took it. */
  bound: boolean;
}

const pairKey = (classId: Guid, instanceId: Guid) => `${classId}/${instanceId}`;

export class OfferTable {
  private readonly byRelid = new Map<number, Offer>();
  private readonly byPair = new Map<string, Map<number, Offer>>();
  /** Offers refused, by error code. */
  readonly refused: Record<string, number> = {};

  /** Validates and records an offer; throws RelidOutOfRange or DuplicateOffer (nothing recorded). */
  add(m: OfferMessage): Offer {
    try {
      return this.insert(m);
    } catch (e) {
      if (e instanceof SgringError) this.refused[e.code] = (this.refused[e.code] ?? 0) + 1;
      throw e;
    }
  }

  private insert(m: OfferMessage): Offer {
    const relid = m.childRelid;
    if (relid >= K.VMBUS_MAX_RELIDS) throw new SgringError('RelidOutOfRange', `offer with relid ${relid} (at most ${K.VMBUS_MAX_RELIDS - 1})`, { relid });
    if (this.byRelid.has(relid)) throw new SgringError('DuplicateOffer', `relid ${relid} is already offered`, { relid });
    const key = pairKey(m.classId, m.instanceId);
    const family = this.byPair.get(key);
    if (family?.has(m.subChannelIndex)) {
      throw new SgringError('DuplicateOffer', `${m.subChannelIndex === 0 ? 'a second primary' : `sub-channel ${m.subChannelIndex} again`} for ${key} (relid ${relid})`, { relid });
    }
    const primary = m.subChannelIndex === 0 ? null : family?.get(0) ?? null;
    if (m.subChannelIndex !== 0 && primary === null) {
      throw new SgringError('DuplicateOffer', `sub-channel ${m.subChannelIndex} of ${key} (relid ${relid}) has no primary`, { relid });
    }
    const offer: Offer = {
      relid, classId: m.classId, instanceId: m.instanceId, className: deviceClassOf(m.classId), subChannelIndex: m.subChannelIndex,
      primary, connectionId: m.connectionId, flags: m.flags, mmioMegabytes: m.mmioMegabytes, userDefined: m.userDefined,
      monitorId: m.monitorId, monitorAllocated: m.monitorAllocated, dedicatedInterrupt: m.dedicatedInterrupt, state: 'offered', bound: false,
    };
    this.byRelid.set(relid, offer);
    if (family) family.set(m.subChannelIndex, offer);
    else this.byPair.set(key, new Map([[m.subChannelIndex, offer]]));
    return offer;
  }

  get(relid: number): Offer | undefined {
    return this.byRelid.get(relid);
  }

  /** Forgets a relid (after RELID_RELEASED): it may be offered again. */
  remove(relid: number): void {
    const o = this.byRelid.get(relid);
    if (!o) return;
    this.byRelid.delete(relid);
    const key = pairKey(o.classId, o.instanceId);
    const family = this.byPair.get(key);
    family?.delete(o.subChannelIndex);
    if (family?.size === 0) this.byPair.delete(key);
  }

  /** Every offer, in relid order. */
  all(): Offer[] {
    return [...this.byRelid.values()].sort((a, b) => a.relid - b.relid);
  }

  /** The sub-channels of a primary, by index. */
  subChannels(primary: Offer): Offer[] {
    const family = this.byPair.get(pairKey(primary.classId, primary.instanceId));
    return family ? [...family.values()].filter((o) => o.subChannelIndex !== 0).sort((a, b) => a.subChannelIndex - b.subChannelIndex) : [];
  }

  get size(): number {
    return this.byRelid.size;
  }
}
