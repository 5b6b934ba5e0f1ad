// The VSTOR protocol on a VMBus storage channel (spec/vmbus.md §4): the vstor packet (64 bytes
// from Win8 on, 48 before), the SCSI request block inside it (52 bytes, 36 before Win8), the
// channel properties and protocol version members, and every operation, status and flag value.
// Both ends build and read packets here; the guest's reading of a reply applies the clamps of
// hardening §3.5 (items 34-37) so nothing the host says can make it copy past a buffer.

import { SgringError } from '../../engine/errors';

export const VSTOR_OP = {
  completeIo: 1, removeDevice: 2, executeSrb: 3, resetLun: 4, resetAdapter: 5, resetBus: 6,
  beginInitialization: 7, endInitialization: 8, queryProtocolVersion: 9, queryProperties: 10,
  enumerateBus: 11, fchbaData: 12, createSubChannels: 13,
} as const;

/** vstor `flags` bit 0: the only flag a guest sets (the host must answer). */
export const VSTOR_FLAG_REQUEST_COMPLETION = 1;

/** Protocol versions as `(major << 8) | minor`, newest last. */
export const VSTOR_VERSION = { win6: 0x0200, win7: 0x0402, win8: 0x0501, win8_1: 0x0600, win10: 0x0602 } as const;

/** SRB status: the low 6 bits are the result, 0x40 and 0x80 are flags. */
export const SRB_STATUS = {
  pending: 0x00, success: 0x01, aborted: 0x02, error: 0x04, invalidRequest: 0x06, timeout: 0x09,
  busy: 0x05, noDevice: 0x08, selectionTimeout: 0x0a, busReset: 0x0e, dataOverrun: 0x12, invalidLun: 0x20,
  invalidTargetId: 0x21, internalError: 0x30,
  queueFrozen: 0x40, autosenseValid: 0x80,
} as const;

export const SRB_FLAGS = { queueActionEnable: 0x02, disableSyncTransfer: 0x08, dataIn: 0x40, dataOut: 0x80, noQueueFreeze: 0x100 } as const;

/** `data_in` of a request: the direction of its data. */
export const SRB_DIRECTION = { write: 0, read: 1, none: 2 } as const;

/** Channel properties flag: the host can open sub-channels. */
export const VSTOR_PROPERTY_MULTI_CHANNEL = 1;

export const VSTOR_PACKET_BYTES = 64;
export const VSTOR_PACKET_BYTES_PRE_WIN8 = 48;
export const SRB_BYTES = 52;
export const SRB_BYTES_PRE_WIN8 = 36;
export const SENSE_BYTES = 20;
export const SENSE_BYTES_PRE_WIN8 = 18;
const SRB_AT = 12; // the union starts after operation, flags, status

/** True from Win8 (5.1) on: the 16-byte SRB extension and 20 bytes of sense. */
export function isWin8(version: number): boolean {
  return version >= VSTOR_VERSION.win8;
}

/** The vstor packet size a peer of `version` sends and expects. */
export function vstorPacketBytes(version: number): number {
  return isWin8(version) ? VSTOR_PACKET_BYTES : VSTOR_PACKET_BYTES_PRE_WIN8;
}

export interface VstorHeader {
  operation: number;
  flags: number;
  status: number;
}

// Little-endian fields by hand: these run per command, and a DataView per packet costs more than
// the packet (V8 must give a fresh array its own ArrayBuffer first).
const put16 = (b: Uint8Array, at: number, v: number) => {
  b[at] = v;
  b[at + 1] = v >>> 8;
};
const put32 = (b: Uint8Array, at: number, v: number) => {
  b[at] = v;
  b[at + 1] = v >>> 8;
  b[at + 2] = v >>> 16;
  b[at + 3] = v >>> 24;
};
const get16 = (b: Uint8Array, at: number) => b[at]! | (b[at + 1]! << 8);
const get32 = (b: Uint8Array, at: number) => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
const EMPTY = new Uint8Array(0);

/**
 * A vstor packet of the size `version` uses, header filled, union zeroed: a new array, or the
 * first bytes of `into` (a buffer a sender reuses; the packet is copied out when sent).
 */
export function encodeVstor(h: { operation: number; flags?: number; status?: number }, version: number = VSTOR_VERSION.win10, into?: Uint8Array): { bytes: Uint8Array } {
  return { bytes: vstor(h.operation, h.flags ?? VSTOR_FLAG_REQUEST_COMPLETION, h.status ?? 0, version, into) };
}

/** encodeVstor without its argument and result objects (the per-command encoders). */
function vstor(operation: number, flags: number, status: number, version: number, into: Uint8Array | undefined): Uint8Array {
  const n = vstorPacketBytes(version);
  const bytes = into ? (into.length === n ? into : into.subarray(0, n)).fill(0) : new Uint8Array(n);
  put32(bytes, 0, operation);
  put32(bytes, 4, flags);
  put32(bytes, 8, status);
  return bytes;
}

/** operation, flags and status of a vstor packet (at least 12 bytes). */
export function decodeVstorHeader(bytes: Uint8Array): VstorHeader {
  if (bytes.length < 12) throw new SgringError('MessageTooShort', `a vstor packet of ${bytes.length} bytes has no header (12 bytes)`);
  return { operation: get32(bytes, 0), flags: get32(bytes, 4), status: get32(bytes, 8) };
}

/** A SCSI command as the guest sends it (EXECUTE_SRB). */
export interface SrbRequest {
  port: number;
  path: number;
  target: number;
  lun: number;
  cdb: Uint8Array;
  /** SRB_DIRECTION: 0 write, 1 read, 2 no data. */
  direction: number;
  /** Bytes of the data buffer (0 for none). */
  dataTransferLength: number;
  /** Sense bytes the guest can take (20, or 18 before Win8, by default). */
  senseInfoLength?: number;
  /** Win8 extension fields; defaults are what Linux sends. */
  queueTag?: number;
  queueAction?: number;
  srbFlags?: number;
  timeoutSeconds?: number;
}

/** The host's answer to an EXECUTE_SRB (COMPLETE_IO). */
export interface SrbReply {
  srbStatus: number;
  scsiStatus: number;
  /** Bytes actually moved. */
  dataTransferLength: number;
  /** Sense data (empty when none was returned). */
  sense: Uint8Array;
}

/** The srb_flags Linux sets for a direction: queue action enable, no sync transfer, the data bit. */
export function defaultSrbFlags(direction: number): number {
  const dir = direction === SRB_DIRECTION.read ? SRB_FLAGS.dataIn : direction === SRB_DIRECTION.write ? SRB_FLAGS.dataOut : 0;
  return SRB_FLAGS.queueActionEnable | SRB_FLAGS.disableSyncTransfer | dir;
}

/** EXECUTE_SRB for `version` (the SRB size and the extension follow it). */
export function encodeExecuteSrb(r: SrbRequest, version: number = VSTOR_VERSION.win10, into?: Uint8Array): Uint8Array {
  if (!(r.cdb instanceof Uint8Array) || r.cdb.length === 0 || r.cdb.length > 16) throw new SgringError('InvalidArgument', `a CDB is 1 to 16 bytes (got ${r.cdb?.length})`);
  if (r.direction !== 0 && r.direction !== 1 && r.direction !== 2) throw new SgringError('InvalidArgument', `direction ${r.direction} is 0 (write), 1 (read) or 2 (none)`);
  const win8 = isWin8(version);
  const bytes = vstor(VSTOR_OP.executeSrb, VSTOR_FLAG_REQUEST_COMPLETION, 0, version, into);
  put16(bytes, SRB_AT, win8 ? SRB_BYTES : SRB_BYTES_PRE_WIN8);
  bytes[SRB_AT + 4] = r.port;
  bytes[SRB_AT + 5] = r.path;
  bytes[SRB_AT + 6] = r.target;
  bytes[SRB_AT + 7] = r.lun;
  bytes[SRB_AT + 8] = r.cdb.length;
  bytes[SRB_AT + 9] = r.senseInfoLength ?? (win8 ? SENSE_BYTES : SENSE_BYTES_PRE_WIN8);
  bytes[SRB_AT + 10] = r.direction;
  put32(bytes, SRB_AT + 12, r.dataTransferLength);
  bytes.set(r.cdb, SRB_AT + 16);
  if (win8) {
    bytes[SRB_AT + 38] = r.queueTag ?? 0xff; // untagged
    bytes[SRB_AT + 39] = r.queueAction ?? 0x20; // simple queue tag
    put32(bytes, SRB_AT + 40, r.srbFlags ?? defaultSrbFlags(r.direction));
    put32(bytes, SRB_AT + 44, r.timeoutSeconds ?? 60);
  }
  return bytes;
}

/** CDB buffers decodeExecuteSrb made for an `into` request: its own, never a view of a packet (a WeakSet asks less than comparing buffers). */
const ownCdbs = new WeakSet<Uint8Array>();

/**
 * The host's reading of an EXECUTE_SRB: the request, or a reason to answer INVALID REQUEST
 * (a packet shorter than the negotiated size, an SRB length that is neither size, a CDB length
 * above 16 or zero, an unknown direction). The CDB is a view of `bytes`, or with `into` a copy in
 * its own buffer. The message is `len` bytes at `at` of `bytes` (a channel's read buffer in core
 * memory, without a view of it), or all of `bytes`.
 */
export function decodeExecuteSrb(bytes: Uint8Array, version: number = VSTOR_VERSION.win10, into?: SrbRequest, at = 0, len = bytes.length - at): SrbRequest | { invalid: string } {
  const need = vstorPacketBytes(version);
  if (len < need) return { invalid: `${len} bytes, a vstor packet of this version is ${need}` };
  const b = at + SRB_AT; // the SRB: every field below is read from it once
  const srbLength = get16(bytes, b);
  if (srbLength !== SRB_BYTES && srbLength !== SRB_BYTES_PRE_WIN8) return { invalid: `SRB length ${srbLength}` };
  const cdbLength = bytes[b + 8]!;
  if (cdbLength === 0 || cdbLength > 16) return { invalid: `CDB length ${cdbLength}` };
  const direction = bytes[b + 10]!;
  if (direction > 2) return { invalid: `data_in ${direction}` };
  // `into` (a request the caller reuses) is filled whole, so nothing of an earlier packet stays in it.
  const r: SrbRequest = into ?? { port: 0, path: 0, target: 0, lun: 0, cdb: EMPTY, direction: 0, dataTransferLength: 0 };
  r.port = bytes[b + 4]!;
  r.path = bytes[b + 5]!;
  r.target = bytes[b + 6]!;
  r.lun = bytes[b + 7]!;
  if (into) {
    // A private copy in the request's own CDB buffer (kept while the length repeats): the packet's
    // bytes may change after this (P3), and a view of them would be an object per request.
    let cdb = into.cdb;
    if (cdb.length !== cdbLength || !ownCdbs.has(cdb)) ownCdbs.add((cdb = new Uint8Array(cdbLength)));
    for (let i = 0; i < cdbLength; i++) cdb[i] = bytes[b + 16 + i]!;
    r.cdb = cdb;
  } else r.cdb = bytes.subarray(b + 16, b + 16 + cdbLength);
  r.senseInfoLength = bytes[b + 9]!;
  r.direction = direction;
  r.dataTransferLength = get32(bytes, b + 12);
  const win8 = isWin8(version) && srbLength === SRB_BYTES;
  if (win8 || into) {
    r.queueTag = win8 ? bytes[b + 38]! : undefined;
    r.queueAction = win8 ? bytes[b + 39]! : undefined;
    r.srbFlags = win8 ? get32(bytes, b + 40) : undefined;
    r.timeoutSeconds = win8 ? get32(bytes, b + 44) : undefined;
  }
  return r;
}

/**
 * COMPLETE_IO answering `req`: the request's addressing echoed, the statuses, bytes moved, and
 * sense data cut to what the guest offered and the version allows (autosense-valid set with it);
 * into the first bytes of `into` when given.
 */
export function encodeCompleteIo(req: Pick<SrbRequest, 'port' | 'path' | 'target' | 'lun' | 'direction' | 'senseInfoLength'>, reply: SrbReply, version: number = VSTOR_VERSION.win10, status = 0, into?: Uint8Array): Uint8Array {
  const win8 = isWin8(version);
  const bytes = vstor(VSTOR_OP.completeIo, 0, status, version, into);
  const senseMax = Math.min(req.senseInfoLength ?? SENSE_BYTES, win8 ? SENSE_BYTES : SENSE_BYTES_PRE_WIN8);
  const sense = reply.sense.length > senseMax ? reply.sense.subarray(0, senseMax) : reply.sense;
  put16(bytes, SRB_AT, win8 ? SRB_BYTES : SRB_BYTES_PRE_WIN8);
  bytes[SRB_AT + 2] = reply.srbStatus | (sense.length > 0 ? SRB_STATUS.autosenseValid : 0);
  bytes[SRB_AT + 3] = reply.scsiStatus;
  bytes[SRB_AT + 4] = req.port;
  bytes[SRB_AT + 5] = req.path;
  bytes[SRB_AT + 6] = req.target;
  bytes[SRB_AT + 7] = req.lun;
  bytes[SRB_AT + 9] = sense.length;
  bytes[SRB_AT + 10] = req.direction;
  put32(bytes, SRB_AT + 12, reply.dataTransferLength);
  if (sense.length > 0) bytes.set(sense, SRB_AT + 16);
  return bytes;
}

/**
 * The guest's reading of a COMPLETE_IO for a request of `requested` bytes, clamped as a
 * hardened guest does: sense length at most 20 [H34], sense only with CHECK CONDITION and
 * autosense-valid [H35], bytes moved at most the request [H36], and none at all for an SRB
 * failure other than DATA OVERRUN [H37]. Throws MessageTooShort for a packet without an SRB.
 * The message is `len` bytes at `at` of `bytes`, or all of `bytes`.
 */
export function decodeCompleteIo(bytes: Uint8Array, requested: number, into?: VstorHeader & SrbReply, at = 0, len = bytes.length - at): VstorHeader & SrbReply {
  if (len < VSTOR_PACKET_BYTES_PRE_WIN8) {
    decodeVstorHeader(bytes.subarray(at, at + len));
    throw new SgringError('MessageTooShort', `a COMPLETE_IO of ${len} bytes has no SRB`);
  }
  const b = at + SRB_AT;
  const srbStatus = bytes[b + 2]!;
  const scsiStatus = bytes[b + 3]!;
  const senseRoom = Math.min(SENSE_BYTES, len - (SRB_AT + 16));
  const senseLength = Math.min(bytes[b + 9]!, senseRoom);
  const withSense = scsiStatus === 0x02 && (srbStatus & SRB_STATUS.autosenseValid) !== 0;
  const result = srbStatus & 0x3f;
  let moved = Math.min(get32(bytes, b + 12), requested);
  if (result !== SRB_STATUS.success && result !== SRB_STATUS.dataOverrun) moved = 0;
  const r = into ?? { operation: 0, flags: 0, status: 0, srbStatus: 0, scsiStatus: 0, dataTransferLength: 0, sense: EMPTY };
  r.operation = get32(bytes, at);
  r.flags = get32(bytes, at + 4);
  r.status = get32(bytes, at + 8);
  r.srbStatus = srbStatus;
  r.scsiStatus = scsiStatus;
  r.dataTransferLength = moved;
  r.sense = withSense ? bytes.slice(b + 16, b + 16 + senseLength) : EMPTY;
  return r;
}

/** QUERY_PROTOCOL_VERSION asking for `version` (always sent in the size of that version). */
export function encodeQueryProtocolVersion(version: number): Uint8Array {
  const { bytes } = encodeVstor({ operation: VSTOR_OP.queryProtocolVersion }, version);
  put16(bytes, SRB_AT, version);
  put16(bytes, SRB_AT + 2, 0); // revision
  return bytes;
}

/** The version a QUERY_PROTOCOL_VERSION asks for. */
export function decodeProtocolVersion(bytes: Uint8Array): number {
  if (bytes.length < SRB_AT + 4) throw new SgringError('MessageTooShort', `a QUERY_PROTOCOL_VERSION of ${bytes.length} bytes`);
  return get16(bytes, SRB_AT);
}

/** The channel properties a host answers QUERY_PROPERTIES with. */
export interface VstorProperties {
  maxChannels: number;
  multiChannel: boolean;
  maxTransferBytes: number;
}

export function encodeProperties(p: VstorProperties, version: number = VSTOR_VERSION.win10): Uint8Array {
  const { bytes } = encodeVstor({ operation: VSTOR_OP.completeIo, flags: 0 }, version);
  put16(bytes, SRB_AT + 4, p.maxChannels);
  put32(bytes, SRB_AT + 8, p.multiChannel ? VSTOR_PROPERTY_MULTI_CHANNEL : 0);
  put32(bytes, SRB_AT + 12, p.maxTransferBytes);
  return bytes;
}

/** The properties of a QUERY_PROPERTIES reply, the transfer size rounded down to 4 KiB [H41]. */
export function decodeProperties(bytes: Uint8Array): VstorProperties {
  if (bytes.length < SRB_AT + 24) throw new SgringError('MessageTooShort', `a QUERY_PROPERTIES reply of ${bytes.length} bytes`);
  return {
    maxChannels: get16(bytes, SRB_AT + 4),
    multiChannel: (get32(bytes, SRB_AT + 8) & VSTOR_PROPERTY_MULTI_CHANNEL) !== 0,
    maxTransferBytes: (get32(bytes, SRB_AT + 12) & ~0xfff) >>> 0,
  };
}

/** CREATE_SUB_CHANNELS asking for `count` sub-channels. */
export function encodeCreateSubChannels(count: number, version: number = VSTOR_VERSION.win10): Uint8Array {
  const { bytes } = encodeVstor({ operation: VSTOR_OP.createSubChannels }, version);
  put16(bytes, SRB_AT, count);
  return bytes;
}

export function decodeSubChannelCount(bytes: Uint8Array): number {
  if (bytes.length < SRB_AT + 2) throw new SgringError('MessageTooShort', `a CREATE_SUB_CHANNELS of ${bytes.length} bytes`);
  return get16(bytes, SRB_AT);
}
