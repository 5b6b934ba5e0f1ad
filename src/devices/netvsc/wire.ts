// The netvsc protocols on a VMBus network channel (spec/vmbus.md §5): NVSP messages (40 bytes,
// a u32 type and a packed union) that set the channel up and carry RNDIS, and the RNDIS messages
// themselves — control (INITIALIZE, QUERY, SET, KEEPALIVE, RESET, HALT, INDICATE_STATUS and
// their completions) and data (PACKET with per-packet info). Both ends build and read them
// here; the readers are the hardened ones of spec §6.6–6.7 (hardening §3.6): every offset and
// length is checked against the message before it is used, and a bad one is a typed error or
// a skipped PPI, never a read outside the bytes given.

import { SgringError } from '../../engine/errors';
import type { DeviceStatuses } from '../../taps/event';

export const NVSP = {
  init: 1, initComplete: 2,
  sendNdisVersion: 100, sendRecvBuf: 101, sendRecvBufComplete: 102, revokeRecvBuf: 103,
  sendSendBuf: 104, sendSendBufComplete: 105, revokeSendBuf: 106, sendRndisPkt: 107, sendRndisPktComplete: 108,
  sendNdisConfig: 125, sendVfAssociation: 128, switchDataPath: 129, subchannel: 133, sendIndirectionTable: 134,
} as const;

/** NVSP protocol versions, oldest first. */
export const NVSP_VERSION = { v1: 0x00002, v2: 0x30002, v4: 0x40000, v5: 0x50000, v6: 0x60000, v61: 0x60001 } as const;

export const NVSP_STATUS = { none: 0, success: 1, fail: 2, protocolTooNew: 3, protocolTooOld: 4, invalidRndisPacket: 5, busy: 6, unsupported: 7 } as const;

/** What the injectors' outcomes become on a network adapter: NVSP statuses (a failed send). */
export const NET_TAP_STATUSES: DeviceStatuses = { success: NVSP_STATUS.success, readOnly: NVSP_STATUS.fail, mediaError: NVSP_STATUS.fail, internal: NVSP_STATUS.fail };

/** Every NVSP message Linux sends is this long (the union's size); replies of 32 bytes or more are read. */
export const NVSP_MESSAGE_BYTES = 40;
/** The receive buffer's id in SEND_RECV_BUF and in every transfer-page packet. */
export const RECV_BUFFER_ID = 0xcafe;
/** SEND_RNDIS_PKT channel types. */
export const RNDIS_CHANNEL = { data: 0, control: 1 } as const;
/** SEND_RNDIS_PKT section index of a message sent by page buffer, not in a send-buffer section. */
export const NO_SECTION = 0xffffffff;
/** The smallest receive or send section a guest accepts (Linux: NETVSC_MTU_MIN + headers). */
export const MIN_SECTION_BYTES = 68;

export const RNDIS_MSG = {
  packet: 0x1, initialize: 0x2, halt: 0x3, query: 0x4, set: 0x5, reset: 0x6, indicateStatus: 0x7, keepalive: 0x8,
  initializeComplete: 0x80000002, queryComplete: 0x80000004, setComplete: 0x80000005, resetComplete: 0x80000006, keepaliveComplete: 0x80000008,
} as const;

export const RNDIS_STATUS = {
  success: 0, pending: 0x103, mediaConnect: 0x4001000b, mediaDisconnect: 0x4001000c, linkSpeedChange: 0x40010013, networkChange: 0x40010018,
  failure: 0xc0000001, notSupported: 0xc00000bb, invalidLength: 0xc0010014, bufferTooShort: 0xc0010016, invalidData: 0xc0010015,
} as const;

export const OID = {
  genSupportedList: 0x00010101, genHardwareStatus: 0x00010102, genMediaSupported: 0x00010103, genMediaInUse: 0x00010104,
  genMaximumFrameSize: 0x00010106, genLinkSpeed: 0x00010107, genVendorId: 0x0001010c, genCurrentPacketFilter: 0x0001010e,
  genMaximumTotalSize: 0x00010111, genMediaConnectStatus: 0x00010114, genMaximumSendPackets: 0x00010115,
  genRssCapabilities: 0x00010203, genRssParameters: 0x00010204,
  permanentAddress: 0x01010101, currentAddress: 0x01010102, multicastList: 0x01010103, maximumListSize: 0x01010104,
  offloadParameters: 0xfc01020c, offloadHardwareCapabilities: 0xfc01020d,
} as const;

/** OID_GEN_CURRENT_PACKET_FILTER bits. */
export const PACKET_FILTER = { directed: 0x1, multicast: 0x2, allMulticast: 0x4, broadcast: 0x8, promiscuous: 0x20 } as const;

/** Per-packet info types (spec §5.4). */
export const PPI = { checksum: 0, lso: 2, vlan: 6, hashValue: 8, hashInfo: 9 } as const;

export const RNDIS_PACKET_HEADER = 44;
export const PPI_HEADER = 12;
/** Medium 802.3 (NdisMedium802_3). */
const MEDIUM_802_3 = 0;

// ---- little-endian fields by hand (no DataView per message: these run per frame) ----

const put32 = (b: Uint8Array, at: number, v: number) => {
  b[at] = v;
  b[at + 1] = v >>> 8;
  b[at + 2] = v >>> 16;
  b[at + 3] = v >>> 24;
};
const get32 = (b: Uint8Array, at: number) => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
const get16 = (b: Uint8Array, at: number) => b[at]! | (b[at + 1]! << 8);

export { get32 as readU32LE, put32 as writeU32LE };

// ---- NVSP ----

/** An NVSP message of `type` with u32 fields from offset 4 on (40 bytes, zero padded). */
export function encodeNvsp(type: number, ...fields: number[]): Uint8Array {
  const b = new Uint8Array(NVSP_MESSAGE_BYTES);
  put32(b, 0, type);
  fields.forEach((f, i) => put32(b, 4 + 4 * i, f));
  return b;
}

/** The NVSP type of a message; MessageTooShort below 4 bytes [spec §6.6 44, 57, 65]. */
export function nvspType(b: Uint8Array): number {
  if (b.length < 4) throw new SgringError('MessageTooShort', `an NVSP message of ${b.length} bytes has no type`);
  return get32(b, 0);
}

function need(b: Uint8Array, bytes: number, what: string): void {
  if (b.length < bytes) throw new SgringError('MessageTooShort', `${what}: ${b.length} bytes, at least ${bytes} needed`);
}

/** INIT: the guest tries one version (min = max = that version). */
export const encodeNvspInit = (version: number) => encodeNvsp(NVSP.init, version, version);
export function decodeNvspInit(b: Uint8Array): { min: number; max: number } {
  need(b, 12, 'NVSP INIT');
  return { min: get32(b, 4), max: get32(b, 8) };
}

export const encodeInitComplete = (status: number, maxMdlChainLength = 34) => encodeNvsp(NVSP.initComplete, 0, maxMdlChainLength, status);
/** INIT_COMPLETE's status; shorter than 4 + 12 bytes → MessageTooShort (spec §6.6 45). */
export function decodeInitComplete(b: Uint8Array): { status: number } {
  need(b, 16, 'NVSP INIT_COMPLETE');
  if (get32(b, 0) !== NVSP.initComplete) throw new SgringError('HostRefused', `NVSP INIT answered with message type ${get32(b, 0)}`);
  return { status: get32(b, 12) };
}

/** NDIS version a guest announces for an NVSP version: 6.1 up to NVSP 4, else 6.30. */
export function ndisVersionFor(nvsp: number): { major: number; minor: number } {
  return nvsp <= NVSP_VERSION.v4 ? { major: 6, minor: 1 } : { major: 6, minor: 30 };
}

/** SEND_NDIS_CONFIG: MTU + 14 and the capability bits (802.1Q always; SR-IOV and teaming from NVSP 5). */
export function encodeNdisConfig(mtu: number, capabilities: number): Uint8Array {
  const b = encodeNvsp(NVSP.sendNdisConfig, mtu + 14, 0, capabilities);
  return b;
}

/** SEND_RECV_BUF / SEND_SEND_BUF: a GPADL handle and the buffer's u16 id. */
export function encodeSendBuffer(type: typeof NVSP.sendRecvBuf | typeof NVSP.sendSendBuf, gpadl: number, id: number): Uint8Array {
  const b = encodeNvsp(type, gpadl);
  b[8] = id;
  b[9] = id >>> 8;
  return b;
}
export function decodeSendBuffer(b: Uint8Array): { gpadl: number; id: number } {
  need(b, 10, 'NVSP SEND_*_BUF');
  return { gpadl: get32(b, 4), id: get16(b, 8) };
}

export interface RecvSection {
  offset: number;
  subAllocSize: number;
  numSubAllocs: number;
  endOffset: number;
}

export function encodeRecvBufComplete(status: number, sections: RecvSection[]): Uint8Array {
  const b = new Uint8Array(Math.max(NVSP_MESSAGE_BYTES, 12 + 16 * sections.length));
  put32(b, 0, NVSP.sendRecvBufComplete);
  put32(b, 4, status);
  put32(b, 8, sections.length);
  sections.forEach((s, i) => {
    put32(b, 12 + 16 * i, s.offset);
    put32(b, 16 + 16 * i, s.subAllocSize);
    put32(b, 20 + 16 * i, s.numSubAllocs);
    put32(b, 24 + 16 * i, s.endOffset);
  });
  return b;
}

/**
 * SEND_RECV_BUF_COMPLETE as a hardened guest reads it (spec §6.6 46, 52, 53; hardening [H42]):
 * status success, exactly one section at offset 0, sections of at least 68 bytes whose total
 * (computed without overflow) fits the buffer of `bufferBytes`. Anything else throws HostRefused.
 */
export function decodeRecvBufComplete(b: Uint8Array, bufferBytes: number): RecvSection {
  need(b, 4 + 24, 'NVSP SEND_RECV_BUF_COMPLETE');
  if (get32(b, 0) !== NVSP.sendRecvBufComplete) throw new SgringError('HostRefused', `SEND_RECV_BUF answered with message type ${get32(b, 0)}`);
  const status = get32(b, 4);
  if (status !== NVSP_STATUS.success) throw new SgringError('HostRefused', `the host refused the receive buffer (NVSP status ${status})`);
  const count = get32(b, 8);
  const s: RecvSection = { offset: get32(b, 12), subAllocSize: get32(b, 16), numSubAllocs: get32(b, 20), endOffset: get32(b, 24) };
  if (count !== 1 || s.offset !== 0) throw new SgringError('HostRefused', `the receive buffer must be one section at offset 0 (got ${count} sections, offset ${s.offset})`);
  if (s.subAllocSize < MIN_SECTION_BYTES || s.numSubAllocs === 0 || s.subAllocSize * s.numSubAllocs > bufferBytes) {
    throw new SgringError('HostRefused', `receive sections of ${s.subAllocSize} bytes x ${s.numSubAllocs} do not fit a ${bufferBytes}-byte buffer (or are under ${MIN_SECTION_BYTES} bytes)`);
  }
  return s;
}

export const encodeSendBufComplete = (status: number, sectionSize: number) => encodeNvsp(NVSP.sendSendBufComplete, status, sectionSize);
/** SEND_SEND_BUF_COMPLETE: the section size, at least 68 bytes (spec §6.6 47, 54). */
export function decodeSendBufComplete(b: Uint8Array, bufferBytes: number): { sectionSize: number } {
  need(b, 4 + 8, 'NVSP SEND_SEND_BUF_COMPLETE');
  if (get32(b, 0) !== NVSP.sendSendBufComplete) throw new SgringError('HostRefused', `SEND_SEND_BUF answered with message type ${get32(b, 0)}`);
  const status = get32(b, 4);
  if (status !== NVSP_STATUS.success) throw new SgringError('HostRefused', `the host refused the send buffer (NVSP status ${status})`);
  const sectionSize = get32(b, 8);
  if (sectionSize < MIN_SECTION_BYTES || sectionSize > bufferBytes) throw new SgringError('HostRefused', `send sections of ${sectionSize} bytes (${MIN_SECTION_BYTES}..${bufferBytes} accepted)`);
  return { sectionSize };
}

/** SEND_RNDIS_PKT: channel type, send-buffer section (NO_SECTION: page buffer) and bytes used in it. */
export const encodeRndisPkt = (channel: number, section: number, bytes: number) => encodeNvsp(NVSP.sendRndisPkt, channel, section, bytes);
export function decodeRndisPkt(b: Uint8Array): { channel: number; section: number; bytes: number } {
  need(b, 16, 'NVSP SEND_RNDIS_PKT');
  return { channel: get32(b, 4), section: get32(b, 8), bytes: get32(b, 12) };
}

export const encodeRndisPktComplete = (status: number) => encodeNvsp(NVSP.sendRndisPktComplete, status);
/** RNDIS_PKT_COMPLETE's status (spec §6.6 49: shorter than 4 + 4 → MessageTooShort). */
export function decodeRndisPktComplete(b: Uint8Array): number {
  need(b, 8, 'NVSP RNDIS_PKT_COMPLETE');
  if (get32(b, 0) !== NVSP.sendRndisPktComplete) throw new SgringError('HostRefused', `a send completed with NVSP type ${get32(b, 0)}`);
  return get32(b, 4);
}

// ---- RNDIS control ----

/** An RNDIS message of `type` with u32 fields from offset 8 on, then `tail` bytes. */
function rndis(type: number, fields: number[], tail?: Uint8Array): Uint8Array {
  const len = 8 + 4 * fields.length + (tail?.length ?? 0);
  const b = new Uint8Array(len);
  put32(b, 0, type);
  put32(b, 4, len);
  fields.forEach((f, i) => put32(b, 8 + 4 * i, f));
  if (tail) b.set(tail, 8 + 4 * fields.length);
  return b;
}

/** INITIALIZE (RNDIS 1.0, max transfer 0x4000 as Linux asks). */
export const encodeRndisInitialize = (rid: number, maxTransfer = 0x4000) => rndis(RNDIS_MSG.initialize, [rid, 1, 0, maxTransfer]);

export interface RndisInitializeComplete {
  rid: number;
  status: number;
  maxPacketsPerMessage: number;
  maxTransferSize: number;
  /** log2 of the packet alignment. */
  alignmentFactor: number;
}
export const encodeRndisInitializeComplete = (c: RndisInitializeComplete) =>
  rndis(RNDIS_MSG.initializeComplete, [c.rid, c.status, 1, 0, 0, MEDIUM_802_3, c.maxPacketsPerMessage, c.maxTransferSize, c.alignmentFactor, 0, 0]);

export const encodeRndisQuery = (rid: number, oid: number) => rndis(RNDIS_MSG.query, [rid, oid, 0, 20, 0]);
export const encodeRndisSet = (rid: number, oid: number, value: Uint8Array) => rndis(RNDIS_MSG.set, [rid, oid, value.length, 20, 0], value);
export const encodeRndisQueryComplete = (rid: number, status: number, info: Uint8Array) => rndis(RNDIS_MSG.queryComplete, [rid, status, info.length, info.length > 0 ? 16 : 0], info);
export const encodeRndisSetComplete = (rid: number, status: number) => rndis(RNDIS_MSG.setComplete, [rid, status]);
export const encodeRndisKeepalive = (rid: number) => rndis(RNDIS_MSG.keepalive, [rid]);
export const encodeRndisKeepaliveComplete = (rid: number, status: number) => rndis(RNDIS_MSG.keepaliveComplete, [rid, status]);
export const encodeRndisResetComplete = (status: number) => rndis(RNDIS_MSG.resetComplete, [status, 0]);
/** INDICATE_STATUS with an optional status buffer right after the 20-byte header. */
export const encodeRndisIndicateStatus = (status: number, buffer?: Uint8Array) => rndis(RNDIS_MSG.indicateStatus, [status, buffer?.length ?? 0, buffer ? 12 : 0], buffer);

/** A decoded RNDIS message of any kind (the reader's view: bytes are views of the input). */
export type RndisMessage =
  | { type: typeof RNDIS_MSG.packet; frame: Uint8Array; ppi: PacketInfo }
  | { type: typeof RNDIS_MSG.initialize; rid: number; major: number; minor: number; maxTransfer: number }
  | { type: typeof RNDIS_MSG.query | typeof RNDIS_MSG.set; rid: number; oid: number; info: Uint8Array }
  | { type: typeof RNDIS_MSG.keepalive; rid: number }
  | { type: typeof RNDIS_MSG.reset | typeof RNDIS_MSG.halt }
  | ({ type: typeof RNDIS_MSG.initializeComplete } & RndisInitializeComplete)
  | { type: typeof RNDIS_MSG.queryComplete; rid: number; status: number; info: Uint8Array }
  | { type: typeof RNDIS_MSG.setComplete | typeof RNDIS_MSG.keepaliveComplete; rid: number; status: number }
  | { type: typeof RNDIS_MSG.resetComplete; status: number }
  | { type: typeof RNDIS_MSG.indicateStatus; status: number; buffer: Uint8Array };

/** The info buffer at `offsetField` + 8 of `len` bytes, checked to lie inside the message. */
function infoOf(b: Uint8Array, msgLen: number, offset: number, len: number, min: number, what: string): Uint8Array {
  if (len === 0) return b.subarray(0, 0);
  if (offset < min || offset > msgLen - 8 || len > msgLen - 8 - offset) {
    throw new SgringError('InvalidMessageLength', `${what}: info buffer of ${len} bytes at offset ${offset} lies outside the ${msgLen}-byte message`);
  }
  return b.subarray(8 + offset, 8 + offset + len);
}

/**
 * Reads one RNDIS message from `b` (a range of the receive buffer or a send section), as a
 * hardened reader does (spec §6.7 71–93, hardening [H44]–[H46]): the length field at least 8
 * and within the bytes given, each type's fixed part present, every offset/length pair inside
 * the message. Bad input throws InvalidMessageLength / MessageTooShort / UnknownMessageType.
 */
export function decodeRndis(b: Uint8Array): RndisMessage {
  if (b.length < 8) throw new SgringError('MessageTooShort', `an RNDIS message of ${b.length} bytes`);
  const type = get32(b, 0);
  const len = get32(b, 4);
  if (len < 8 || len > b.length) throw new SgringError('InvalidMessageLength', `RNDIS length ${len} with ${b.length} bytes present`);
  if (type === RNDIS_MSG.packet) return decodeRndisPacket(len === b.length ? b : b.subarray(0, len));
  const fixed = (n: number, what: string) => {
    if (len < n) throw new SgringError('MessageTooShort', `RNDIS ${what} of ${len} bytes (at least ${n})`);
  };
  switch (type) {
    case RNDIS_MSG.packet:
      return decodeRndisPacket(b.subarray(0, len));
    case RNDIS_MSG.initialize:
      fixed(24, 'INITIALIZE');
      return { type, rid: get32(b, 8), major: get32(b, 12), minor: get32(b, 16), maxTransfer: get32(b, 20) };
    case RNDIS_MSG.query:
    case RNDIS_MSG.set:
      fixed(28, type === RNDIS_MSG.query ? 'QUERY' : 'SET');
      return { type, rid: get32(b, 8), oid: get32(b, 12), info: infoOf(b, len, get32(b, 20), get32(b, 16), 20, 'QUERY/SET') };
    case RNDIS_MSG.keepalive:
      fixed(12, 'KEEPALIVE');
      return { type, rid: get32(b, 8) };
    case RNDIS_MSG.reset:
    case RNDIS_MSG.halt:
      return { type };
    case RNDIS_MSG.initializeComplete:
      fixed(52, 'INITIALIZE_CMPLT');
      return { type, rid: get32(b, 8), status: get32(b, 12), maxPacketsPerMessage: get32(b, 32), maxTransferSize: get32(b, 36), alignmentFactor: get32(b, 40) };
    case RNDIS_MSG.queryComplete:
      fixed(24, 'QUERY_CMPLT'); // spec §6.7 89-90
      return { type, rid: get32(b, 8), status: get32(b, 12), info: infoOf(b, len, get32(b, 20), get32(b, 16), 16, 'QUERY_CMPLT') };
    case RNDIS_MSG.setComplete:
    case RNDIS_MSG.keepaliveComplete:
      fixed(16, 'completion'); // spec §6.7 86
      return { type, rid: get32(b, 8), status: get32(b, 12) };
    case RNDIS_MSG.resetComplete:
      fixed(16, 'RESET_CMPLT');
      return { type, status: get32(b, 8) };
    case RNDIS_MSG.indicateStatus: {
      fixed(20, 'INDICATE_STATUS'); // spec §6.7 92-93
      const blen = get32(b, 12);
      const off = get32(b, 16);
      if (blen === 0) return { type, status: get32(b, 8), buffer: b.subarray(0, 0) };
      if (off < 12 || off > len - 8 || blen > len - 8 - off) throw new SgringError('InvalidMessageLength', `INDICATE_STATUS buffer of ${blen} bytes at ${off} lies outside the ${len}-byte message`);
      return { type, status: get32(b, 8), buffer: b.subarray(8 + off, 8 + off + blen) };
    }
    default:
      throw new SgringError('UnknownMessageType', `RNDIS message type 0x${type.toString(16)}`);
  }
}

// ---- RNDIS data ----

/** What per-packet info a frame carries (undefined: absent). */
export interface PacketInfo {
  checksum?: number;
  lso?: number;
  /** 802.1Q: priority bits 0-2, CFI bit 3, VLAN id bits 4-15. */
  vlan?: number;
  hashValue?: number;
  hashInfo?: number;
}

/** The per-packet-info elements this library writes, in the order it writes them. */
const PPI_KINDS = [['checksum', PPI.checksum], ['lso', PPI.lso], ['vlan', PPI.vlan], ['hashValue', PPI.hashValue], ['hashInfo', PPI.hashInfo]] as const;

/** Bytes of PPI records `info` needs. */
export function ppiBytes(info: PacketInfo | undefined): number {
  if (!info) return 0;
  let n = 0;
  for (let i = 0; i < PPI_KINDS.length; i++) if (info[PPI_KINDS[i]![0]] !== undefined) n += PPI_HEADER + 4;
  return n;
}

/**
 * Writes an RNDIS PACKET (header, PPI records, then the frame) into `out` at `at`: `frame` bytes
 * are copied when given, else the caller writes `frameBytes` of frame after the returned header
 * length. Returns the message length (header + PPI + frame).
 */
export function writeRndisPacket(out: Uint8Array, at: number, frameBytes: number, info?: PacketInfo, frame?: Uint8Array): number {
  const ppi = ppiBytes(info);
  const len = RNDIS_PACKET_HEADER + ppi + frameBytes;
  out.fill(0, at, at + RNDIS_PACKET_HEADER);
  put32(out, at, RNDIS_MSG.packet);
  put32(out, at + 4, len);
  put32(out, at + 8, 36 + ppi); // data offset, from byte 8
  put32(out, at + 12, frameBytes);
  if (ppi > 0) {
    put32(out, at + 28, 36); // PPI right after the header
    put32(out, at + 32, ppi);
    let p = at + RNDIS_PACKET_HEADER;
    for (const [k, type] of PPI_KINDS) {
      const v = info![k];
      if (v === undefined) continue;
      put32(out, p, PPI_HEADER + 4);
      put32(out, p + 4, type);
      put32(out, p + 8, PPI_HEADER);
      put32(out, p + 12, v);
      p += PPI_HEADER + 4;
    }
  }
  if (frame) out.set(frame, at + RNDIS_PACKET_HEADER + ppi);
  return len;
}

/**
 * writeRndisPacket for the per-frame paths, into memory seen as bytes and as words (core memory):
 * a packet without per-packet info at a 4-byte aligned offset (every section a driver lays out)
 * gets its header as 11 word stores; anything else goes through writeRndisPacket.
 */
export function writeRndisPacketFast(u8: Uint8Array, u32: Uint32Array, at: number, frameBytes: number, info: PacketInfo | undefined, frame: Uint8Array): number {
  if ((info !== undefined && ppiBytes(info) > 0) || (at & 3) !== 0) return writeRndisPacket(u8, at, frameBytes, info, frame);
  const w = at >>> 2;
  const len = RNDIS_PACKET_HEADER + frameBytes;
  u32[w] = RNDIS_MSG.packet;
  u32[w + 1] = len;
  u32[w + 2] = 36; // data offset, from byte 8
  u32[w + 3] = frameBytes;
  for (let i = 4; i < RNDIS_PACKET_HEADER / 4; i++) u32[w + i] = 0;
  u8.set(frame, at + RNDIS_PACKET_HEADER);
  return len;
}

/** An RNDIS PACKET message around `frame` (a new array). */
export function encodeRndisPacket(frame: Uint8Array, info?: PacketInfo): Uint8Array {
  const b = new Uint8Array(RNDIS_PACKET_HEADER + ppiBytes(info) + frame.length);
  writeRndisPacket(b, 0, frame.length, info, frame);
  return b;
}

/**
 * Reads an RNDIS PACKET (`b` cut to its length field), hardened (spec §6.7 74–82, §6.8 99–100,
 * hardening [H44], [H45]): the 44-byte header present, the data offset at least 36 and the frame
 * inside the message, the frame at least 14 bytes. A PPI area outside the message, or an element
 * whose size or offset does not fit, is skipped (the frame is still good).
 */
export function decodeRndisPacket(b: Uint8Array): { type: typeof RNDIS_MSG.packet; frame: Uint8Array; ppi: PacketInfo } {
  const r = new RndisPacketReader();
  r.packet(b, 0, b.length);
  return { type: RNDIS_MSG.packet, frame: b.subarray(r.frameAt, r.frameAt + r.frameLen), ppi: r.ppi };
}

/** The per-packet info of a packet that carries none (frozen: one object for every such packet). */
export const NO_PPI: PacketInfo = Object.freeze({});

/**
 * decodeRndisPacket's checks on messages in place, for the per-frame paths: no views and, for a
 * packet without per-packet info, no objects. After a read, the frame is [frameAt, frameAt +
 * frameLen) of the bytes read and `ppi` its per-packet info (NO_PPI, or a new object).
 */
export class RndisPacketReader {
  frameAt = 0;
  frameLen = 0;
  ppi: PacketInfo = NO_PPI;

  /**
   * The RNDIS message at `at` of `b`, with `avail` bytes present from there: false when it is not
   * a PACKET (the caller decodes it with decodeRndis), true with the frame found; throws as
   * decodeRndis does when its length field or the packet fails a check.
   */
  read(b: Uint8Array, at: number, avail: number): boolean {
    if (avail < 8) throw new SgringError('MessageTooShort', `an RNDIS message of ${avail} bytes`);
    const len = get32(b, at + 4);
    if (len < 8 || len > avail) throw new SgringError('InvalidMessageLength', `RNDIS length ${len} with ${avail} bytes present`);
    if (get32(b, at) !== RNDIS_MSG.packet) return false;
    this.packet(b, at, len);
    return true;
  }

  /** The PACKET of `len` bytes (its length field) at `at` of `b`. */
  packet(b: Uint8Array, at: number, len: number): void {
    if (len < RNDIS_PACKET_HEADER) throw new SgringError('MessageTooShort', `an RNDIS PACKET of ${len} bytes (the header is 44)`);
    const dataOffset = get32(b, at + 8);
    const dataLen = get32(b, at + 12);
    if (dataOffset < 36 || dataOffset >= len - 8 || dataLen > len - 8 - dataOffset) {
      throw new SgringError('InvalidMessageLength', `RNDIS PACKET: ${dataLen} bytes of frame at offset ${dataOffset} do not fit its ${len} bytes`);
    }
    if (dataLen < 14) throw new SgringError('InvalidMessageLength', `RNDIS PACKET: a ${dataLen}-byte frame has no Ethernet header`);
    let ppi = NO_PPI;
    const ppiOffset = get32(b, at + 28);
    const ppiLen = get32(b, at + 32);
    if (ppiOffset >= 36 && ppiOffset <= len - 8 && ppiLen >= PPI_HEADER && ppiLen <= len - 8 - ppiOffset) {
      for (let p = at + 8 + ppiOffset, left = ppiLen; left >= PPI_HEADER;) {
        const size = get32(b, p);
        const t = get32(b, p + 4) & 0x7fffffff;
        const off = get32(b, p + 8);
        if (size < PPI_HEADER || size > left || off >= size || (size & 3) !== 0) break; // this and the rest are skipped
        if (size - off >= 4 && (get32(b, p + 4) & 0x80000000) === 0) {
          const v = get32(b, p + off);
          if (ppi === NO_PPI && (t === PPI.checksum || t === PPI.lso || t === PPI.vlan || t === PPI.hashValue || t === PPI.hashInfo)) ppi = {};
          if (t === PPI.checksum) ppi.checksum = v;
          else if (t === PPI.lso) ppi.lso = v;
          else if (t === PPI.vlan) ppi.vlan = v;
          else if (t === PPI.hashValue) ppi.hashValue = v;
          else if (t === PPI.hashInfo) ppi.hashInfo = v;
        }
        p += size;
        left -= size;
      }
    }
    this.frameAt = at + 8 + dataOffset;
    this.frameLen = dataLen;
    this.ppi = ppi;
  }
}

/** A frame's flow for spreading over channels: a hash of its IPv4 addresses (else its MAC addresses). */
export function flowHash(f: Uint8Array): number {
  const ipv4 = f.length >= 34 && f[12] === 0x08 && f[13] === 0x00;
  let h = 0x811c9dc5;
  for (let i = ipv4 ? 26 : 0, end = ipv4 ? 34 : 12; i < end; i++) h = Math.imul(h ^ f[i]!, 0x01000193);
  return h >>> 0;
}
