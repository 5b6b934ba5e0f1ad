// GUIDs as VMBus carries them (spec/vmbus.md §3.4): offers name a device class and an instance
// with 16-byte GUIDs in Windows binary form — the first three fields little-endian, the last
// eight bytes as written. In TS a GUID is its canonical lower-case string; these helpers are
// the only place the byte order is spelled out.

import { SgringError } from '../engine/errors';

/** A GUID in canonical form: 8-4-4-4-12 lower-case hex digits. */
export type Guid = string;

const CANONICAL = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Lower-cases and checks a GUID string ("{...}" braces allowed); throws InvalidArgument. */
export function normalizeGuid(s: string): Guid {
  const t = typeof s === 'string' ? s.trim().toLowerCase().replace(/^\{(.*)\}$/, '$1') : '';
  if (!CANONICAL.test(t)) throw new SgringError('InvalidArgument', `'${String(s)}' is not a GUID (8-4-4-4-12 hex digits)`);
  return t;
}

// Byte i of the Windows form comes from hex-digit pair ORDER[i] of the 32 digits (dashes removed).
const ORDER = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];

/** Writes the 16-byte Windows binary form of `g` at `out[at..at+16)`. */
export function writeGuid(g: Guid, out: Uint8Array, at = 0): void {
  const hex = normalizeGuid(g).replace(/-/g, '');
  for (let i = 0; i < 16; i++) out[at + i] = parseInt(hex.substr(ORDER[i]! * 2, 2), 16);
}

/** The 16-byte Windows binary form of `g`. */
export function guidToBytes(g: Guid): Uint8Array {
  const out = new Uint8Array(16);
  writeGuid(g, out);
  return out;
}

/** Reads a Windows binary GUID at `bytes[at..at+16)` (any 16 bytes are a valid GUID). */
export function readGuid(bytes: Uint8Array, at = 0): Guid {
  if (!(at >= 0 && bytes.length >= 16 && at <= bytes.length - 16)) throw new SgringError('InvalidArgument', `no 16 GUID bytes at ${at}`);
  const d = new Array<string>(16);
  for (let i = 0; i < 16; i++) d[ORDER[i]!] = HEX[bytes[at + i]!]!;
  const h = d.join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Device classes of spec §3.4, by the name sgring uses for them. */
export const DEVICE_CLASSES = {
  storage: 'ba6163d9-04a1-4d29-b605-72e2ffb1dc7f', // SCSI (storvsc)
  ide: '32412632-86cb-44a2-9b5c-50d1417354f5', // IDE (blkvsc, same protocol)
  fibreChannel: '2f9bcc4a-0069-4af3-b76b-6fd0be528cda',
  network: 'f8615163-df3e-46c5-913f-f2d2f965ed0e', // netvsc
  heartbeat: '57164f39-9115-4e78-ab55-382f3bd5422d',
  shutdown: '0e0b6031-5213-4934-818b-38d90ced39db',
  timesync: '9527e630-d0ae-497b-adce-e80ab0175caf',
  kvp: 'a9a0f4e7-5a45-4d96-b827-8a841e8c03e6',
  vss: '35fa2e29-ea23-4236-96ae-3a6ebacba440',
  dynamicMemory: '525074dc-8985-46e2-8057-a307dc18a502',
  keyboard: 'f912ad6d-2b17-48ea-bd65-f927a61c7684',
  mouse: 'cfa8b69e-5b4a-4cc0-b98b-8ba1a1f3f95a',
  video: 'da0a7802-e377-4aac-8e77-0558eb1073f8',
  pciPassthrough: '44c4f61d-4444-4400-9d52-802e27ede19f',
  fileCopy: '34d14be3-dee4-41c8-9ae7-6b174977c192',
} as const satisfies Record<string, Guid>;

export type DeviceClassName = keyof typeof DEVICE_CLASSES;

const BY_GUID = new Map<Guid, DeviceClassName>(Object.entries(DEVICE_CLASSES).map(([k, v]) => [v, k as DeviceClassName]));

/** The class name of a class GUID, or 'unknown' for a GUID outside the table. */
export function deviceClassOf(classId: Guid): DeviceClassName | 'unknown' {
  return BY_GUID.get(classId) ?? 'unknown';
}

/** A class GUID from a class name or a GUID string. */
export function classGuid(cls: DeviceClassName | Guid): Guid {
  return (DEVICE_CLASSES as Record<string, Guid>)[cls] ?? normalizeGuid(cls);
}

/**
 * A deterministic instance GUID (version-4 layout) from a 32-bit seed: hosts that offer several
 * instances of one class tell them apart by instance GUID (spec §3.4), and tests want stable ones.
 */
export function instanceGuid(seed: number): Guid {
  let x = (seed >>> 0) ^ 0x9e3779b9;
  const b = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    x = Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) >>> 0;
    x = (x ^ (x >>> 12)) >>> 0;
    b[i] = x & 0xff;
  }
  b[7] = (b[7]! & 0x0f) | 0x40; // version 4 (byte 7 is the high byte of the third field)
  b[8] = (b[8]! & 0x3f) | 0x80; // RFC 4122 variant
  return readGuid(b);
}
