// Channel messages (spec/vmbus.md §3.1-3.6): the control plane of VMBus. Every message starts
// with the 8-byte header { msgtype u32, padding u32 } and is at most 240 bytes (the SynIC payload).
// encodeMessage writes the exact byte layout of the spec tables into a zeroed buffer (P10);
// decodeMessage parses a private copy (L2) and refuses, with a typed error, a message longer than
// 240 bytes (MessageTooLong), shorter than its type's fixed size (MessageTooShort, L1: only the
// minimum is enforced because newer hosts append fields) or of a type no one here handles
// (UnknownMessageType). Field values are not judged here: a relid of 5000 decodes, and the bus
// end that receives it decides (checklist 18). Decoding never reads past the bytes given.

import * as K from '../generated/constants';
import { SgringError } from '../engine/errors';
import { readGuid, writeGuid, type Guid } from './guid';

export interface OfferMessage {
  type: 'offer';
  classId: Guid; instanceId: Guid;
  /** Channel flags (spec §3.4: 0x1 enumerate, 0x2 transfer pages, 0x4 GPADLs, 0x10 pipe, ...). */
  flags: number; mmioMegabytes: number;
  /** The 120 user-defined bytes (pipe offers put pipe_mode first). */
  userDefined: Uint8Array;
  subChannelIndex: number; childRelid: number; monitorId: number; monitorAllocated: boolean;
  dedicatedInterrupt: boolean; connectionId: number;
}
export interface RescindMessage { type: 'rescind'; childRelid: number }
export interface RequestOffersMessage { type: 'requestOffers' }
export interface AllOffersDeliveredMessage { type: 'allOffersDelivered' }
export interface OpenChannelMessage {
  type: 'openChannel';
  childRelid: number; openId: number; ringGpadl: number; targetVp: number;
  /** Pages of the TX (upstream) ring: where the RX ring starts in the ring GPADL. */
  downstreamPageOffset: number;
  userData: Uint8Array;
}
export interface OpenResultMessage { type: 'openResult'; childRelid: number; openId: number; status: number }
export interface CloseChannelMessage { type: 'closeChannel'; childRelid: number }
export interface GpadlHeaderMessage {
  type: 'gpadlHeader';
  childRelid: number; gpadl: number;
  /** 8 + 8 * (total PFNs of the whole GPADL), in bytes: a u16 (spec §3.6). */
  rangeBufLen: number; rangeCount: number; byteCount: number; byteOffset: number;
  /** The PFNs this message carries (at most 26). */
  pfns: number[];
  /** Bytes after the last whole PFN (0 in a well-formed message). */
  trailingBytes: number;
}
export interface GpadlBodyMessage { type: 'gpadlBody'; msgNumber: number; gpadl: number; pfns: number[]; trailingBytes: number }
export interface GpadlCreatedMessage { type: 'gpadlCreated'; childRelid: number; gpadl: number; status: number }
export interface GpadlTeardownMessage { type: 'gpadlTeardown'; childRelid: number; gpadl: number }
export interface GpadlTorndownMessage { type: 'gpadlTorndown'; gpadl: number }
export interface RelidReleasedMessage { type: 'relidReleased'; childRelid: number }
export interface InitiateContactMessage {
  type: 'initiateContact';
  version: number; targetVcpu: number;
  /** Bytes 16..23: the interrupt page GPA before VMBus 5.0; msg_sint (byte 16) and msg_vtl (17) from 5.0. */
  interruptPage: bigint;
  monitorPage1: bigint; monitorPage2: bigint;
}
export interface VersionResponseMessage { type: 'versionResponse'; versionSupported: boolean; connectionState: number; msgConnId: number }
export interface UnloadMessage { type: 'unload' }
export interface UnloadResponseMessage { type: 'unloadResponse' }
export interface ModifyChannelMessage { type: 'modifyChannel'; childRelid: number; targetVp: number }
export interface ModifyChannelResponseMessage { type: 'modifyChannelResponse'; childRelid: number; status: number }

export type ChannelMessage =
  | OfferMessage | RescindMessage | RequestOffersMessage | AllOffersDeliveredMessage | OpenChannelMessage
  | OpenResultMessage | CloseChannelMessage | GpadlHeaderMessage | GpadlBodyMessage | GpadlCreatedMessage
  | GpadlTeardownMessage | GpadlTorndownMessage | RelidReleasedMessage | InitiateContactMessage
  | VersionResponseMessage | UnloadMessage | UnloadResponseMessage | ModifyChannelMessage | ModifyChannelResponseMessage;

export type ChannelMessageName = ChannelMessage['type'];

/** msgtype number, fixed size (the minimum accepted) and direction of every message we handle. */
export const MESSAGE_TYPES: Record<ChannelMessageName, { id: number; size: number; dir: 'h2g' | 'g2h' }> = {
  offer: { id: K.CHMSG_OFFER, size: K.CHMSG_OFFER_SIZE, dir: 'h2g' },
  rescind: { id: K.CHMSG_RESCIND, size: K.CHMSG_RESCIND_SIZE, dir: 'h2g' },
  requestOffers: { id: K.CHMSG_REQUEST_OFFERS, size: K.CHMSG_HEADER_SIZE, dir: 'g2h' },
  allOffersDelivered: { id: K.CHMSG_ALL_OFFERS_DELIVERED, size: K.CHMSG_HEADER_SIZE, dir: 'h2g' },
  openChannel: { id: K.CHMSG_OPEN_CHANNEL, size: K.CHMSG_OPEN_CHANNEL_SIZE, dir: 'g2h' },
  openResult: { id: K.CHMSG_OPEN_RESULT, size: K.CHMSG_OPEN_RESULT_SIZE, dir: 'h2g' },
  closeChannel: { id: K.CHMSG_CLOSE_CHANNEL, size: K.CHMSG_CLOSE_CHANNEL_SIZE, dir: 'g2h' },
  gpadlHeader: { id: K.CHMSG_GPADL_HEADER, size: K.CHMSG_GPADL_HEADER_SIZE, dir: 'g2h' },
  gpadlBody: { id: K.CHMSG_GPADL_BODY, size: K.CHMSG_GPADL_BODY_SIZE, dir: 'g2h' },
  gpadlCreated: { id: K.CHMSG_GPADL_CREATED, size: K.CHMSG_GPADL_CREATED_SIZE, dir: 'h2g' },
  gpadlTeardown: { id: K.CHMSG_GPADL_TEARDOWN, size: K.CHMSG_GPADL_TEARDOWN_SIZE, dir: 'g2h' },
  gpadlTorndown: { id: K.CHMSG_GPADL_TORNDOWN, size: K.CHMSG_GPADL_TORNDOWN_SIZE, dir: 'h2g' },
  relidReleased: { id: K.CHMSG_RELID_RELEASED, size: K.CHMSG_RELID_RELEASED_SIZE, dir: 'g2h' },
  initiateContact: { id: K.CHMSG_INITIATE_CONTACT, size: K.CHMSG_INITIATE_CONTACT_SIZE, dir: 'g2h' },
  versionResponse: { id: K.CHMSG_VERSION_RESPONSE, size: K.CHMSG_VERSION_RESPONSE_SIZE, dir: 'h2g' },
  unload: { id: K.CHMSG_UNLOAD, size: K.CHMSG_HEADER_SIZE, dir: 'g2h' },
  unloadResponse: { id: K.CHMSG_UNLOAD_RESPONSE, size: K.CHMSG_HEADER_SIZE, dir: 'h2g' },
  modifyChannel: { id: K.CHMSG_MODIFY_CHANNEL, size: K.CHMSG_MODIFY_CHANNEL_SIZE, dir: 'g2h' },
  modifyChannelResponse: { id: K.CHMSG_MODIFY_CHANNEL_RESPONSE, size: K.CHMSG_MODIFY_CHANNEL_RESPONSE_SIZE, dir: 'h2g' },
};

const BY_ID = new Map(Object.entries(MESSAGE_TYPES).map(([name, t]) => [t.id, { name: name as ChannelMessageName, ...t }]));

/** The name, fixed size and direction of msgtype `id`, or undefined for a type we do not handle. */
export function messageTypeInfo(id: number): { name: ChannelMessageName; id: number; size: number; dir: 'h2g' | 'g2h' } | undefined {
  return BY_ID.get(id);
}

const TWO32 = 0x1_0000_0000;

function u(v: unknown, bits: 8 | 16 | 32, what: string): number {
  const max = bits === 32 ? 0xffffffff : (1 << bits) - 1;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw new SgringError('InvalidArgument', `${what} must be a u${bits} (got ${String(v)})`);
  return v;
}
function u64(v: unknown, what: string): bigint {
  if (typeof v !== 'bigint' || v < 0n || v > 0xffff_ffff_ffff_ffffn) throw new SgringError('InvalidArgument', `${what} must be a u64 bigint`);
  return v;
}
function pfn(v: unknown, i: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new SgringError('InvalidArgument', `pfn ${i} must be a non-negative safe integer (got ${String(v)})`);
  return v;
}
function bytesField(v: unknown, size: number, what: string): Uint8Array {
  if (v === undefined) return new Uint8Array(0);
  if (!(v instanceof Uint8Array) || v.length > size) throw new SgringError('InvalidArgument', `${what} must be a Uint8Array of at most ${size} bytes`);
  return v;
}

/** Encodes one message into a fresh zeroed buffer of its exact size. Throws InvalidArgument or MessageTooLong. */
export function encodeMessage(m: ChannelMessage): Uint8Array {
  const info = MESSAGE_TYPES[m?.type as ChannelMessageName];
  if (!info) throw new SgringError('InvalidArgument', `unknown channel message '${String((m as { type?: unknown })?.type)}'`);
  const pfns = m.type === 'gpadlHeader' || m.type === 'gpadlBody' ? m.pfns : [];
  if (!Array.isArray(pfns)) throw new SgringError('InvalidArgument', `${m.type}: pfns must be an array`);
  const size = info.size + 8 * pfns.length;
  if (size > K.SYNIC_MAX_PAYLOAD) throw new SgringError('MessageTooLong', `${m.type} with ${pfns.length} PFNs needs ${size} bytes (at most ${K.SYNIC_MAX_PAYLOAD})`);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  const w8 = (o: number, v: unknown, what: string) => dv.setUint8(o, u(v, 8, what));
  const w16 = (o: number, v: unknown, what: string) => dv.setUint16(o, u(v, 16, what), true);
  const w32 = (o: number, v: unknown, what: string) => dv.setUint32(o, u(v, 32, what), true);
  const w64 = (o: number, v: unknown, what: string) => dv.setBigUint64(o, u64(v, what), true);
  const wPfns = (o: number) => pfns.forEach((p, i) => {
    const x = pfn(p, i);
    dv.setUint32(o + 8 * i, x % TWO32, true);
    dv.setUint32(o + 8 * i + 4, Math.floor(x / TWO32), true);
  });
  dv.setUint32(0, info.id, true);
  switch (m.type) {
    case 'offer':
      writeGuid(m.classId, out, K.OFFER_OFF_CLASS_ID);
      writeGuid(m.instanceId, out, K.OFFER_OFF_INSTANCE_ID);
      w16(K.OFFER_OFF_FLAGS, m.flags, 'flags');
      w16(K.OFFER_OFF_MMIO_MB, m.mmioMegabytes, 'mmioMegabytes');
      out.set(bytesField(m.userDefined, K.OFFER_USER_DEFINED_SIZE, 'userDefined'), K.OFFER_OFF_USER_DEFINED);
      w16(K.OFFER_OFF_SUB_CHANNEL_INDEX, m.subChannelIndex, 'subChannelIndex');
      w32(K.OFFER_OFF_CHILD_RELID, m.childRelid, 'childRelid');
      w8(K.OFFER_OFF_MONITOR_ID, m.monitorId, 'monitorId');
      w8(K.OFFER_OFF_MONITOR_ALLOCATED, m.monitorAllocated ? 1 : 0, 'monitorAllocated');
      w16(K.OFFER_OFF_DEDICATED_INTERRUPT, m.dedicatedInterrupt ? 1 : 0, 'dedicatedInterrupt');
      w32(K.OFFER_OFF_CONNECTION_ID, m.connectionId, 'connectionId');
      break;
    case 'rescind': case 'closeChannel': case 'relidReleased':
      w32(8, m.childRelid, 'childRelid');
      break;
    case 'requestOffers': case 'allOffersDelivered': case 'unload': case 'unloadResponse':
      break;
    case 'openChannel':
      w32(8, m.childRelid, 'childRelid');
      w32(12, m.openId, 'openId');
      w32(16, m.ringGpadl, 'ringGpadl');
      w32(20, m.targetVp, 'targetVp');
      w32(24, m.downstreamPageOffset, 'downstreamPageOffset');
      out.set(bytesField(m.userData, K.OPEN_USER_DATA_SIZE, 'userData'), K.OPEN_OFF_USER_DATA);
      break;
    case 'openResult':
      w32(8, m.childRelid, 'childRelid');
      w32(12, m.openId, 'openId');
      w32(16, m.status, 'status');
      break;
    case 'gpadlHeader':
      w32(8, m.childRelid, 'childRelid');
      w32(12, m.gpadl, 'gpadl');
      w16(16, m.rangeBufLen, 'rangeBufLen');
      w16(18, m.rangeCount, 'rangeCount');
      w32(20, m.byteCount, 'byteCount');
      w32(24, m.byteOffset, 'byteOffset');
      wPfns(28);
      break;
    case 'gpadlBody':
      w32(8, m.msgNumber, 'msgNumber');
      w32(12, m.gpadl, 'gpadl');
      wPfns(16);
      break;
    case 'gpadlCreated':
      w32(8, m.childRelid, 'childRelid');
      w32(12, m.gpadl, 'gpadl');
      w32(16, m.status, 'status');
      break;
    case 'gpadlTeardown':
      w32(8, m.childRelid, 'childRelid');
      w32(12, m.gpadl, 'gpadl');
      break;
    case 'gpadlTorndown':
      w32(8, m.gpadl, 'gpadl');
      break;
    case 'initiateContact':
      w32(8, m.version, 'version');
      w32(12, m.targetVcpu, 'targetVcpu');
      w64(16, m.interruptPage, 'interruptPage');
      w64(24, m.monitorPage1, 'monitorPage1');
      w64(32, m.monitorPage2, 'monitorPage2');
      break;
    case 'versionResponse':
      w8(8, m.versionSupported ? 1 : 0, 'versionSupported');
      w8(9, m.connectionState, 'connectionState');
      w32(12, m.msgConnId, 'msgConnId');
      break;
    case 'modifyChannel':
      w32(8, m.childRelid, 'childRelid');
      w32(12, m.targetVp, 'targetVp');
      break;
    case 'modifyChannelResponse':
      w32(8, m.childRelid, 'childRelid');
      w32(12, m.status, 'status');
      break;
  }
  return out;
}

/**
 * Decodes one message from `bytes` (the whole payload the SynIC slot said it carries; pass a
 * private copy). Throws MessageTooLong, MessageTooShort or UnknownMessageType; nothing else can
 * fail, and nothing is read outside `bytes`.
 */
export function decodeMessage(bytes: Uint8Array): ChannelMessage {
  const n = bytes.length;
  if (n > K.SYNIC_MAX_PAYLOAD) throw new SgringError('MessageTooLong', `channel message of ${n} bytes (at most ${K.SYNIC_MAX_PAYLOAD})`);
  if (n < K.CHMSG_HEADER_SIZE) throw new SgringError('MessageTooShort', `channel message of ${n} bytes has no 8-byte header`, { size: n, minimum: K.CHMSG_HEADER_SIZE });
  const dv = new DataView(bytes.buffer, bytes.byteOffset, n);
  const id = dv.getUint32(0, true);
  const info = BY_ID.get(id);
  if (!info) throw new SgringError('UnknownMessageType', `channel message type ${id}`, { msgtype: id });
  if (n < info.size) throw new SgringError('MessageTooShort', `${info.name} (type ${id}) of ${n} bytes; it needs ${info.size}`, { msgtype: id, size: n, minimum: info.size });
  const r8 = (o: number) => dv.getUint8(o);
  const r16 = (o: number) => dv.getUint16(o, true);
  const r32 = (o: number) => dv.getUint32(o, true);
  const r64 = (o: number) => dv.getBigUint64(o, true);
  // A PFN above 2^53 comes out rounded, but still far above any legal PFN (< 2^40), so the
  // receiver's range check refuses it all the same.
  const rPfns = (o: number) => {
    const count = Math.floor((n - o) / 8);
    const out = new Array<number>(count);
    for (let i = 0; i < count; i++) out[i] = r32(o + 8 * i + 4) * TWO32 + r32(o + 8 * i);
    return out;
  };
  switch (info.name) {
    case 'offer':
      return {
        type: 'offer', classId: readGuid(bytes, K.OFFER_OFF_CLASS_ID), instanceId: readGuid(bytes, K.OFFER_OFF_INSTANCE_ID),
        flags: r16(K.OFFER_OFF_FLAGS), mmioMegabytes: r16(K.OFFER_OFF_MMIO_MB),
        userDefined: bytes.slice(K.OFFER_OFF_USER_DEFINED, K.OFFER_OFF_USER_DEFINED + K.OFFER_USER_DEFINED_SIZE),
        subChannelIndex: r16(K.OFFER_OFF_SUB_CHANNEL_INDEX), childRelid: r32(K.OFFER_OFF_CHILD_RELID),
        monitorId: r8(K.OFFER_OFF_MONITOR_ID), monitorAllocated: (r8(K.OFFER_OFF_MONITOR_ALLOCATED) & 1) !== 0,
        dedicatedInterrupt: (r16(K.OFFER_OFF_DEDICATED_INTERRUPT) & 1) !== 0, connectionId: r32(K.OFFER_OFF_CONNECTION_ID),
      };
    case 'rescind': return { type: 'rescind', childRelid: r32(8) };
    case 'closeChannel': return { type: 'closeChannel', childRelid: r32(8) };
    case 'relidReleased': return { type: 'relidReleased', childRelid: r32(8) };
    case 'requestOffers': return { type: 'requestOffers' };
    case 'allOffersDelivered': return { type: 'allOffersDelivered' };
    case 'unload': return { type: 'unload' };
    case 'unloadResponse': return { type: 'unloadResponse' };
    case 'openChannel':
      return {
        type: 'openChannel', childRelid: r32(8), openId: r32(12), ringGpadl: r32(16), targetVp: r32(20),
        downstreamPageOffset: r32(24), userData: bytes.slice(K.OPEN_OFF_USER_DATA, K.OPEN_OFF_USER_DATA + K.OPEN_USER_DATA_SIZE),
      };
    case 'openResult': return { type: 'openResult', childRelid: r32(8), openId: r32(12), status: r32(16) };
    case 'gpadlHeader':
      return {
        type: 'gpadlHeader', childRelid: r32(8), gpadl: r32(12), rangeBufLen: r16(16), rangeCount: r16(18),
        byteCount: r32(20), byteOffset: r32(24), pfns: rPfns(28), trailingBytes: (n - 28) % 8,
      };
    case 'gpadlBody': return { type: 'gpadlBody', msgNumber: r32(8), gpadl: r32(12), pfns: rPfns(16), trailingBytes: (n - 16) % 8 };
    case 'gpadlCreated': return { type: 'gpadlCreated', childRelid: r32(8), gpadl: r32(12), status: r32(16) };
    case 'gpadlTeardown': return { type: 'gpadlTeardown', childRelid: r32(8), gpadl: r32(12) };
    case 'gpadlTorndown': return { type: 'gpadlTorndown', gpadl: r32(8) };
    case 'initiateContact':
      return { type: 'initiateContact', version: r32(8), targetVcpu: r32(12), interruptPage: r64(16), monitorPage1: r64(24), monitorPage2: r64(32) };
    case 'versionResponse': return { type: 'versionResponse', versionSupported: r8(8) !== 0, connectionState: r8(9), msgConnId: r32(12) };
    case 'modifyChannel': return { type: 'modifyChannel', childRelid: r32(8), targetVp: r32(12) };
    case 'modifyChannelResponse': return { type: 'modifyChannelResponse', childRelid: r32(8), status: r32(12) };
  }
}
