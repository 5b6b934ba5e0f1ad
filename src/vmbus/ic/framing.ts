// IC framing (spec/vmbus.md §3.4, end): every util-channel message is one in-band packet whose
// payload is   pipe header { type u32, size u32 } | IC header (20 bytes) | body.
// The packet payload may be longer than the message (ring padding to 8 bytes, or a peer that
// echoes a larger buffer); the pipe header's size says where the message ends and icmsgsize
// says where the body ends. Both are lengths from the peer and are checked before use
// (hardening P2), on a private copy (P3): decode never reads outside the array it was given.

import {
  IC_HEADER_SIZE, IC_HEADERS_SIZE, IC_OFF_FLAGS, IC_OFF_FRAMEWORK_VERSION, IC_OFF_MESSAGE_VERSION,
  IC_OFF_MSGSIZE, IC_OFF_MSGTYPE, IC_OFF_STATUS, IC_OFF_TRANSACTION_ID, IC_PIPE_HEADER_SIZE,
  IC_PIPE_OFF_SIZE, IC_PIPE_OFF_TYPE, IC_PIPE_TYPE_DATA,
} from '../../generated/constants';
import { SgringError } from '../../engine/errors';

/** An IC protocol version; on the wire { major u16, minor u16 } (major first). */
export interface IcVersion {
  major: number;
  minor: number;
}

/** The 20-byte IC header, minus icmsgsize (which is the body's length). */
export interface IcHeader {
  frameworkVersion: IcVersion;
  /** icmsgtype: IC_MSGTYPE_* (0 negotiate, 1 heartbeat, 2 KVP, 3 shutdown, 4 timesync, ...). */
  messageType: number;
  messageVersion: IcVersion;
  /** An HRESULT: 0 = OK, IC_STATUS_* otherwise (u32). */
  status: number;
  /** ictransaction_id, a u8 the peer echoes (hosts send 0). */
  transactionId: number;
  /** icflags: IC_FLAG_TRANSACTION | IC_FLAG_REQUEST | IC_FLAG_RESPONSE. */
  flags: number;
}

/** One decoded IC message. `body` is a copy of exactly icmsgsize bytes. */
export interface IcMessage {
  header: IcHeader;
  body: Uint8Array;
}

/** Largest body the u16 icmsgsize can describe. */
export const IC_MAX_BODY = 0xffff;

/** "3.0" etc. */
export function formatVersion(v: IcVersion): string {
  return `${v.major}.${v.minor}`;
}

/** Orders versions by major, then minor (FreeBSD's VMBUS_ICVER_SWAP comparison). */
export function compareVersions(a: IcVersion, b: IcVersion): number {
  return a.major !== b.major ? a.major - b.major : a.minor - b.minor;
}

export function sameVersion(a: IcVersion, b: IcVersion): boolean {
  return a.major === b.major && a.minor === b.minor;
}

/** A little-endian view over exactly the bytes of `u8` (never beyond them). */
export function viewOf(u8: Uint8Array): DataView {
  return new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
}

function checkU(v: number, bits: 8 | 16 | 32, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v >= 2 ** bits) throw new SgringError('InvalidArgument', `${what} ${v} is not a u${bits}`);
  return v;
}

export function checkVersion(v: IcVersion, what = 'version'): IcVersion {
  checkU(v?.major, 16, `${what} major`);
  checkU(v?.minor, 16, `${what} minor`);
  return v;
}

/**
 * Encodes pipe header + IC header + body. The pipe type is DATA and its size is exactly
 * 20 + body.length; icmsgsize is body.length. Reserved bytes are zero (hardening P10).
 */
export function encodeIcMessage(header: IcHeader, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  if (body.length > IC_MAX_BODY) throw new SgringError('InvalidArgument', `IC body of ${body.length} bytes exceeds the u16 icmsgsize`);
  checkVersion(header.frameworkVersion, 'framework version');
  checkVersion(header.messageVersion, 'message version');
  checkU(header.messageType, 16, 'message type');
  checkU(header.status, 32, 'status');
  checkU(header.transactionId, 8, 'IC transaction id');
  checkU(header.flags, 8, 'IC flags');
  const out = new Uint8Array(IC_HEADERS_SIZE + body.length);
  const d = viewOf(out);
  d.setUint32(IC_PIPE_OFF_TYPE, IC_PIPE_TYPE_DATA, true);
  d.setUint32(IC_PIPE_OFF_SIZE, IC_HEADER_SIZE + body.length, true);
  d.setUint16(IC_OFF_FRAMEWORK_VERSION, header.frameworkVersion.major, true);
  d.setUint16(IC_OFF_FRAMEWORK_VERSION + 2, header.frameworkVersion.minor, true);
  d.setUint16(IC_OFF_MSGTYPE, header.messageType, true);
  d.setUint16(IC_OFF_MESSAGE_VERSION, header.messageVersion.major, true);
  d.setUint16(IC_OFF_MESSAGE_VERSION + 2, header.messageVersion.minor, true);
  d.setUint16(IC_OFF_MSGSIZE, body.length, true);
  d.setUint32(IC_OFF_STATUS, header.status >>> 0, true);
  out[IC_OFF_TRANSACTION_ID] = header.transactionId;
  out[IC_OFF_FLAGS] = header.flags;
  out.set(body, IC_HEADERS_SIZE);
  return out;
}

/**
 * Decodes one message from an in-band packet payload (which may carry trailing padding).
 * Throws SgringError:
 * - IcTruncated: fewer than 8 bytes (no pipe header), a pipe size below 20, or fewer than
 *   28 bytes (no IC header);
 * - IcBadPipeHeader: pipe type is not DATA (1);
 * - IcLengthMismatch: the pipe size runs past the payload, or icmsgsize past the pipe size.
 */
export function decodeIcMessage(payload: Uint8Array): IcMessage {
  const n = payload.length;
  if (n < IC_PIPE_HEADER_SIZE) throw new SgringError('IcTruncated', `IC packet of ${n} bytes has no pipe header (needs ${IC_PIPE_HEADER_SIZE})`, { length: n });
  const d = viewOf(payload);
  const pipeType = d.getUint32(IC_PIPE_OFF_TYPE, true);
  const pipeSize = d.getUint32(IC_PIPE_OFF_SIZE, true);
  if (pipeType !== IC_PIPE_TYPE_DATA) throw new SgringError('IcBadPipeHeader', `pipe type ${pipeType} is not 1 (data)`, { pipeType });
  if (n < IC_HEADERS_SIZE) throw new SgringError('IcTruncated', `IC packet of ${n} bytes has no IC header (needs ${IC_HEADERS_SIZE})`, { length: n });
  // The pipe size counts the bytes after the pipe header: it must fit in what arrived.
  if (pipeSize > n - IC_PIPE_HEADER_SIZE) {
    throw new SgringError('IcLengthMismatch', `pipe size ${pipeSize} exceeds the ${n - IC_PIPE_HEADER_SIZE} bytes after the pipe header`, { pipeSize, length: n });
  }
  if (pipeSize < IC_HEADER_SIZE) throw new SgringError('IcTruncated', `pipe size ${pipeSize} leaves no room for the ${IC_HEADER_SIZE}-byte IC header`, { pipeSize });
  const msgSize = d.getUint16(IC_OFF_MSGSIZE, true);
  if (msgSize > pipeSize - IC_HEADER_SIZE) {
    throw new SgringError('IcLengthMismatch', `icmsgsize ${msgSize} exceeds the ${pipeSize - IC_HEADER_SIZE} body bytes the pipe header describes`, { msgSize, pipeSize });
  }
  return {
    header: {
      frameworkVersion: { major: d.getUint16(IC_OFF_FRAMEWORK_VERSION, true), minor: d.getUint16(IC_OFF_FRAMEWORK_VERSION + 2, true) },
      messageType: d.getUint16(IC_OFF_MSGTYPE, true),
      messageVersion: { major: d.getUint16(IC_OFF_MESSAGE_VERSION, true), minor: d.getUint16(IC_OFF_MESSAGE_VERSION + 2, true) },
      status: d.getUint32(IC_OFF_STATUS, true),
      transactionId: payload[IC_OFF_TRANSACTION_ID]!,
      flags: payload[IC_OFF_FLAGS]!,
    },
    body: payload.slice(IC_HEADERS_SIZE, IC_HEADERS_SIZE + msgSize),
  };
}

/** Throws IcTruncated when `body` is shorter than `min` bytes (spec §6.4 items 23, 26, 28). */
export function requireBody(body: Uint8Array, min: number, what: string): void {
  if (body.length < min) throw new SgringError('IcTruncated', `${what} body of ${body.length} bytes is shorter than ${min}`, { length: body.length, min });
}
