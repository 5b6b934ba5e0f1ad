// The sender's length, for a ring used as a plain message pipe. A VMBus packet carries its
// length in 8-byte units (spec §1.4), so a reader sees the payload padded with zeros to a
// multiple of 8 and cannot tell "hello" from "hello\0\0\0". Device protocols carry their own
// lengths (a vstor_packet, an NVSP message, an RNDIS header) and read payload.subarray(0, n);
// for anything else, frame the message: a 4-byte little-endian length, then the bytes.

import { SgringError } from '../engine/errors';
import { bytesArg } from './args';

/** Bytes a framed message adds in front of the message. */
export const MESSAGE_PREFIX_BYTES = 4;

/** `message` behind its 4-byte little-endian length: a payload for writePacket, write or WriteBatch.add. */
export function frameMessage(message: Uint8Array): Uint8Array {
  bytesArg(message, 'message', 'frameMessage');
  const out = new Uint8Array(MESSAGE_PREFIX_BYTES + message.length);
  new DataView(out.buffer).setUint32(0, message.length, true);
  out.set(message, MESSAGE_PREFIX_BYTES);
  return out;
}

/**
 * The message a framed payload carries, exactly as it was sent (a view into `payload`, no copy).
 * A payload whose prefix claims more bytes than it holds is InvalidMessageLength.
 */
export function unframeMessage(payload: Uint8Array): Uint8Array {
  bytesArg(payload, 'payload', 'unframeMessage');
  if (payload.length < MESSAGE_PREFIX_BYTES) {
    throw new SgringError('InvalidMessageLength', `unframeMessage: a ${payload.length}-byte payload has no 4-byte length prefix`);
  }
  const n = new DataView(payload.buffer, payload.byteOffset, payload.length).getUint32(0, true);
  if (n > payload.length - MESSAGE_PREFIX_BYTES) {
    throw new SgringError('InvalidMessageLength', `unframeMessage: the prefix claims ${n} bytes, the payload holds ${payload.length - MESSAGE_PREFIX_BYTES}`);
  }
  return payload.subarray(MESSAGE_PREFIX_BYTES, MESSAGE_PREFIX_BYTES + n);
}
