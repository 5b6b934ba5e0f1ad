// KVP (key-value pair) exchange bodies (IC message type 2). Layout as in Linux
// include/uapi/linux/hyperv.h (hv_kvp_msg: hv_kvp_hdr + union of hv_kvp_msg_get/set/delete/
// enumerate) and OpenVMM hyperv_ic_protocol kvp.rs (KvpMessage, 2580 bytes):
//   0 op u8 | 1 pool u8 | 2 pad u16 | 4 operation struct
//   GET/SET:   value struct at 4
//   ENUMERATE: index u32 at 4, value struct at 8
//   DELETE:    key_size u32 at 4, key[512] at 8
//   value struct: type u32 | key_size u32 | value_size u32 | key[512] | value[2048]
// Keys and string values are UTF-16LE with a NUL terminator, and their sizes are in bytes
// including it. The guest answers in the same buffer: GET fills the value, ENUMERATE the key
// and value; the result code goes in the IC header's status (HV_S_CONT = not found / no more).

import {
  KVP_BODY_SIZE, KVP_DELETE_MIN_BODY, KVP_DELETE_OFF_KEY, KVP_DELETE_OFF_KEY_SIZE, KVP_ENUM_MIN_BODY,
  KVP_ENUM_OFF_INDEX, KVP_ENUM_OFF_VALUE, KVP_GETSET_MIN_BODY, KVP_GETSET_OFF_VALUE, KVP_MAX_KEY_BYTES,
  KVP_MAX_VALUE_BYTES, KVP_OP_DELETE, KVP_OP_ENUMERATE, KVP_OP_GET, KVP_OP_SET, KVP_POOL_COUNT,
  KVP_TYPE_EXPAND_STRING, KVP_TYPE_STRING, KVP_TYPE_U32, KVP_TYPE_U64, KVP_TYPE_U64_LINUX,
  KVP_VALUE_OFF_KEY, KVP_VALUE_OFF_KEY_SIZE, KVP_VALUE_OFF_TYPE, KVP_VALUE_OFF_VALUE, KVP_VALUE_OFF_VALUE_SIZE,
} from '../../generated/constants';
import { SgringError } from '../../engine/errors';
import { requireBody, viewOf } from './framing';

export type KvpValue =
  | { type: 'string'; value: string }
  | { type: 'expand-string'; value: string }
  | { type: 'u32'; value: number }
  | { type: 'u64'; value: bigint };

export type KvpOperation = 'get' | 'set' | 'delete' | 'enumerate';

export type KvpRequest =
  | { operation: 'get'; pool: number; key: string }
  | { operation: 'set'; pool: number; key: string; value: KvpValue }
  | { operation: 'delete'; pool: number; key: string }
  | { operation: 'enumerate'; pool: number; index: number };

/** What a successful answer carries: GET a value, ENUMERATE a key and value, SET/DELETE nothing. */
export interface KvpResult {
  key?: string;
  value?: KvpValue;
}

const OPS: Record<KvpOperation, number> = { get: KVP_OP_GET, set: KVP_OP_SET, delete: KVP_OP_DELETE, enumerate: KVP_OP_ENUMERATE };
const OP_NAMES = ['get', 'set', 'delete', 'enumerate'] as const;
const MIN_BODY: Record<KvpOperation, number> = { get: KVP_GETSET_MIN_BODY, set: KVP_GETSET_MIN_BODY, delete: KVP_DELETE_MIN_BODY, enumerate: KVP_ENUM_MIN_BODY };

/** Longest key and string value, in UTF-16 code units, that fit with their terminator. */
export const KVP_MAX_KEY_UNITS = KVP_MAX_KEY_BYTES / 2 - 1;
export const KVP_MAX_STRING_UNITS = KVP_MAX_VALUE_BYTES / 2 - 1;

export function kvpOperationCode(op: KvpOperation): number {
  return OPS[op];
}

/** True when `s` has no unpaired surrogate (so it round-trips through UTF-16 unchanged). */
export function isWellFormedUtf16(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const n = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (n < 0xdc00 || n > 0xdfff) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return false;
  }
  return true;
}

/** Writes `s` + NUL as UTF-16LE into the `field` bytes at `off`, zeroing the rest; returns its size in bytes. */
function writeString(d: DataView, off: number, field: number, s: string, what: string): number {
  if (typeof s !== 'string' || !isWellFormedUtf16(s)) throw new SgringError('InvalidArgument', `KVP ${what} must be a well-formed string`);
  const size = (s.length + 1) * 2;
  if (size > field) throw new SgringError('InvalidArgument', `KVP ${what} of ${s.length} UTF-16 units does not fit in ${field} bytes with its terminator`);
  for (let i = 0; i < field; i += 2) d.setUint16(off + i, i < s.length * 2 ? s.charCodeAt(i / 2) : 0, true);
  return size;
}

/**
 * Reads a NUL-terminated UTF-16LE string of `size` bytes from a `field`-byte field (OpenVMM
 * parse_str): the size must be even, at least one unit, within the field, end in a NUL unit,
 * and the units before it must be well-formed UTF-16. IcBadKvpField otherwise.
 */
function readString(d: DataView, off: number, field: number, size: number, what: string): string {
  const bad = (why: string) => new SgringError('IcBadKvpField', `KVP ${what} size ${size}: ${why}`, { field: what, size });
  if (size > field) throw bad(`exceeds its ${field}-byte field`);
  if (size % 2 !== 0) throw bad('is odd (UTF-16 needs whole units)');
  if (size < 2) throw bad('leaves no room for the terminator');
  const units = size / 2 - 1;
  if (d.getUint16(off + units * 2, true) !== 0) throw bad('the last unit is not a NUL terminator');
  const codes = new Array<number>(units);
  for (let i = 0; i < units; i++) codes[i] = d.getUint16(off + i * 2, true);
  const s = String.fromCharCode(...codes);
  if (!isWellFormedUtf16(s)) throw bad('the string is not well-formed UTF-16');
  return s;
}

/** Writes a value struct (type, key, value) at `at`; the key is omitted (size 0) when undefined. */
function writeValueStruct(d: DataView, at: number, key: string | undefined, value: KvpValue | undefined): void {
  if (key !== undefined) d.setUint32(at + KVP_VALUE_OFF_KEY_SIZE, writeString(d, at + KVP_VALUE_OFF_KEY, KVP_MAX_KEY_BYTES, key, 'key'), true);
  if (value === undefined) return;
  const vo = at + KVP_VALUE_OFF_VALUE;
  for (let i = 0; i < KVP_MAX_VALUE_BYTES; i++) d.setUint8(vo + i, 0);
  let type: number;
  let size: number;
  switch (value.type) {
    case 'string':
    case 'expand-string':
      type = value.type === 'string' ? KVP_TYPE_STRING : KVP_TYPE_EXPAND_STRING;
      size = writeString(d, vo, KVP_MAX_VALUE_BYTES, value.value, 'value');
      break;
    case 'u32':
      if (!Number.isInteger(value.value) || value.value < 0 || value.value > 0xffffffff) throw new SgringError('InvalidArgument', `KVP u32 value ${value.value} is out of range`);
      type = KVP_TYPE_U32;
      size = 4;
      d.setUint32(vo, value.value, true);
      break;
    case 'u64':
      if (typeof value.value !== 'bigint' || value.value < 0n || value.value > 0xffff_ffff_ffff_ffffn) throw new SgringError('InvalidArgument', `KVP u64 value ${value.value} is out of range`);
      type = KVP_TYPE_U64;
      size = 8;
      d.setBigUint64(vo, value.value, true);
      break;
    default:
      throw new SgringError('InvalidArgument', `unknown KVP value type ${(value as { type: unknown }).type}`);
  }
  d.setUint32(at + KVP_VALUE_OFF_TYPE, type, true);
  d.setUint32(at + KVP_VALUE_OFF_VALUE_SIZE, size, true);
}

function readKey(d: DataView, at: number): string {
  return readString(d, at + KVP_VALUE_OFF_KEY, KVP_MAX_KEY_BYTES, d.getUint32(at + KVP_VALUE_OFF_KEY_SIZE, true), 'key');
}

function readValue(d: DataView, at: number): KvpValue {
  const type = d.getUint32(at + KVP_VALUE_OFF_TYPE, true);
  const size = d.getUint32(at + KVP_VALUE_OFF_VALUE_SIZE, true);
  const vo = at + KVP_VALUE_OFF_VALUE;
  const sized = (n: number) => {
    if (size !== n) throw new SgringError('IcBadKvpField', `KVP value of type ${type} has size ${size}, not ${n}`, { field: 'value', size, type });
  };
  switch (type) {
    case KVP_TYPE_STRING:
    case KVP_TYPE_EXPAND_STRING:
      return { type: type === KVP_TYPE_STRING ? 'string' : 'expand-string', value: readString(d, vo, KVP_MAX_VALUE_BYTES, size, 'value') };
    case KVP_TYPE_U32:
      sized(4);
      return { type: 'u32', value: d.getUint32(vo, true) };
    case KVP_TYPE_U64:
    case KVP_TYPE_U64_LINUX:
      sized(8);
      return { type: 'u64', value: d.getBigUint64(vo, true) };
    default:
      throw new SgringError('IcBadKvpField', `unknown KVP value type ${type}`, { field: 'value', type });
  }
}

function checkPool(pool: number): number {
  if (!Number.isInteger(pool) || pool < 0 || pool >= KVP_POOL_COUNT) throw new SgringError('InvalidArgument', `KVP pool ${pool} is not 0..${KVP_POOL_COUNT - 1}`);
  return pool;
}

/** The 2580-byte KVP body of a request (host side). Unused bytes are zero. */
export function encodeKvpRequest(req: KvpRequest): Uint8Array {
  const out = new Uint8Array(KVP_BODY_SIZE);
  const d = viewOf(out);
  const code = OPS[req.operation];
  if (code === undefined) throw new SgringError('InvalidArgument', `unknown KVP operation ${String(req.operation)}`);
  out[0] = code;
  out[1] = checkPool(req.pool);
  switch (req.operation) {
    case 'get':
      writeValueStruct(d, KVP_GETSET_OFF_VALUE, req.key, undefined);
      break;
    case 'set':
      writeValueStruct(d, KVP_GETSET_OFF_VALUE, req.key, req.value);
      break;
    case 'delete':
      d.setUint32(KVP_DELETE_OFF_KEY_SIZE, writeString(d, KVP_DELETE_OFF_KEY, KVP_MAX_KEY_BYTES, req.key, 'key'), true);
      break;
    case 'enumerate':
      if (!Number.isInteger(req.index) || req.index < 0 || req.index > 0xffffffff) throw new SgringError('InvalidArgument', `KVP index ${req.index} is not a u32`);
      d.setUint32(KVP_ENUM_OFF_INDEX, req.index, true);
      break;
  }
  return out;
}

/** Operation and pool bytes of a KVP body (IcTruncated when the 4-byte header is missing). */
export function kvpHeader(body: Uint8Array): { operation: number; pool: number } {
  requireBody(body, 4, 'KVP');
  return { operation: body[0]!, pool: body[1]! };
}

/**
 * Decodes a request (guest side). Throws IcTruncated when the body is shorter than the
 * operation's fixed struct (§6.4 item 28), IcUnexpectedMessage for an operation other than
 * GET/SET/DELETE/ENUMERATE or a pool >= 5, IcBadKvpField for a bad key or value.
 */
export function decodeKvpRequest(body: Uint8Array): KvpRequest {
  const { operation, pool } = kvpHeader(body);
  const op = OP_NAMES[operation];
  if (op === undefined) throw new SgringError('IcUnexpectedMessage', `KVP operation ${operation} is not supported`, { operation });
  if (pool >= KVP_POOL_COUNT) throw new SgringError('IcUnexpectedMessage', `KVP pool ${pool} does not exist`, { pool });
  requireBody(body, MIN_BODY[op], `KVP ${op}`);
  const d = viewOf(body);
  switch (op) {
    case 'get':
      return { operation: op, pool, key: readKey(d, KVP_GETSET_OFF_VALUE) };
    case 'set':
      return { operation: op, pool, key: readKey(d, KVP_GETSET_OFF_VALUE), value: readValue(d, KVP_GETSET_OFF_VALUE) };
    case 'delete':
      return { operation: op, pool, key: readString(d, KVP_DELETE_OFF_KEY, KVP_MAX_KEY_BYTES, d.getUint32(KVP_DELETE_OFF_KEY_SIZE, true), 'key') };
    case 'enumerate':
      return { operation: op, pool, index: d.getUint32(KVP_ENUM_OFF_INDEX, true) };
  }
}

/**
 * The guest's answer body: a copy of the request body with the result written in place
 * (GET: value; ENUMERATE: key and value; others unchanged), as Linux kvp_respond_to_host does,
 * except that the rest of each written field is zeroed (hardening P10).
 */
export function kvpReplyBody(requestBody: Uint8Array, operation: KvpOperation, result: KvpResult | null): Uint8Array {
  const out = requestBody.slice();
  if (result === null) return out;
  const d = viewOf(out);
  if (operation === 'get' && result.value) {
    requireBody(out, KVP_GETSET_MIN_BODY, 'KVP get');
    writeValueStruct(d, KVP_GETSET_OFF_VALUE, undefined, result.value);
  } else if (operation === 'enumerate' && result.key !== undefined && result.value) {
    requireBody(out, KVP_ENUM_MIN_BODY, 'KVP enumerate');
    writeValueStruct(d, KVP_ENUM_OFF_VALUE, result.key, result.value);
  }
  return out;
}

/** Decodes a successful answer (host side): GET -> value; ENUMERATE -> key and value; else {}. */
export function decodeKvpResponse(operation: KvpOperation, body: Uint8Array): KvpResult {
  const h = kvpHeader(body);
  if (h.operation !== OPS[operation]) {
    throw new SgringError('IcUnexpectedMessage', `KVP answer carries operation ${h.operation}, the request was ${operation}`, { operation: h.operation });
  }
  requireBody(body, MIN_BODY[operation], `KVP ${operation} answer`);
  const d = viewOf(body);
  if (operation === 'get') return { value: readValue(d, KVP_GETSET_OFF_VALUE) };
  if (operation === 'enumerate') return { key: readKey(d, KVP_ENUM_OFF_VALUE), value: readValue(d, KVP_ENUM_OFF_VALUE) };
  return {};
}
