// NVMe/TCP PDUs (NVMe/TCP Transport 1.0, spec/nvme.md §8.4): the 8-byte common header, the
// header length each type must have, the PDUs a controller sends, CRC32C for the optional header
// and data digests, and a reader that cuts a byte stream into PDUs and checks their framing
// (checklist 74: hlen, pdo and plen must agree with the type and with each other).

export const PDU = {
  icReq: 0x00, icResp: 0x01, h2cTermReq: 0x02, c2hTermReq: 0x03, capsuleCmd: 0x04, capsuleResp: 0x05,
  h2cData: 0x06, c2hData: 0x07, r2t: 0x09,
} as const;

/** Header length of each type (without a header digest). */
export const HLEN: Record<number, number> = { 0: 128, 1: 128, 2: 24, 3: 24, 4: 72, 5: 24, 6: 24, 7: 24, 9: 24 };

export const FLAG = { hdgst: 0x01, ddgst: 0x02, last: 0x04, success: 0x08 } as const;

/** Fatal Error Status of a C2HTermReq. */
export const FES = { invalidHeaderField: 0x01, pduSequenceError: 0x02, headerDigestError: 0x03, dataOutOfRange: 0x04, r2tLimitExceeded: 0x05, dataTransferLimitExceeded: 0x05, unsupportedParameter: 0x06 } as const;

/** Why a connection is being ended: the Fatal Error Status and the header byte at fault. */
export class PduFault extends Error {
  constructor(readonly fes: number, readonly offset: number, message: string, readonly header: Uint8Array = new Uint8Array(0)) {
    super(message);
  }
}

// ---- CRC32C (Castagnoli, reflected 0x82F63B78) ----

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC32C of `b`, as NVMe/TCP digests carry it (little endian on the wire). */
export function crc32c(b: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < b.length; i++) c = TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

// ---- PDUs the controller sends ----

const le16 = (b: Uint8Array, at: number, v: number) => {
  b[at] = v;
  b[at + 1] = v >>> 8;
};
const le32 = (b: Uint8Array, at: number, v: number) => {
  le16(b, at, v);
  le16(b, at + 2, v >>> 16);
};
export const rd16 = (b: Uint8Array, at: number) => b[at]! | (b[at + 1]! << 8);
export const rd32 = (b: Uint8Array, at: number) => (rd16(b, at) | (rd16(b, at + 2) << 16)) >>> 0;

/** Digests negotiated at ICReq/ICResp. */
export interface Digests { header: boolean; data: boolean }

/** A header of `hlen` bytes (plus room for the header digest), type, flags, pdo and plen filled in. */
function header(type: number, hlen: number, dataLen: number, d: Digests, flags = 0): { b: Uint8Array; pdo: number } {
  const h = d.header && type !== PDU.icResp && type !== PDU.c2hTermReq ? 4 : 0;
  const dd = dataLen > 0 && d.data && type === PDU.c2hData ? 4 : 0;
  const pdo = dataLen > 0 ? hlen + h : 0;
  const b = new Uint8Array(hlen + h);
  b[0] = type;
  b[1] = flags | (h ? FLAG.hdgst : 0) | (dd ? FLAG.ddgst : 0);
  b[2] = hlen;
  b[3] = pdo;
  le32(b, 4, hlen + h + dataLen + dd);
  return { b, pdo };
}

function sealHeader(b: Uint8Array, hlen: number): Uint8Array {
  if (b.length > hlen) le32(b, hlen, crc32c(b.subarray(0, hlen)));
  return b;
}

export function icResp(maxH2cData: number, d: Digests): Uint8Array {
  const { b } = header(PDU.icResp, 128, 0, { header: false, data: false });
  le16(b, 8, 0); // PFV 0
  b[10] = 0; // CPDA: no data alignment
  b[11] = (d.header ? 1 : 0) | (d.data ? 2 : 0);
  le32(b, 12, maxH2cData);
  return b;
}

export function capsuleResp(cqe: Uint8Array, d: Digests): Uint8Array {
  const { b } = header(PDU.capsuleResp, 24, 0, d);
  b.set(cqe.subarray(0, 16), 8);
  return sealHeader(b, 24);
}

export function r2t(cccid: number, ttag: number, offset: number, length: number, d: Digests): Uint8Array {
  const { b } = header(PDU.r2t, 24, 0, d);
  le16(b, 8, cccid);
  le16(b, 10, ttag);
  le32(b, 12, offset);
  le32(b, 16, length);
  return sealHeader(b, 24);
}

/** A C2HData header for `length` bytes at `offset` (the data, and its digest when negotiated, follow it). */
export function c2hData(cccid: number, offset: number, length: number, last: boolean, d: Digests): Uint8Array {
  const { b } = header(PDU.c2hData, 24, length, d, last ? FLAG.last : 0);
  le16(b, 8, cccid);
  le32(b, 12, offset);
  le32(b, 16, length);
  return sealHeader(b, 24);
}

export function dataDigest(data: Uint8Array): Uint8Array {
  const b = new Uint8Array(4);
  le32(b, 0, crc32c(data));
  return b;
}

/** C2HTermReq: the fatal error, the field at fault, and up to 128 bytes of the header that caused it. */
export function c2hTermReq(fes: number, fei: number, offending: Uint8Array): Uint8Array {
  const tail = offending.subarray(0, 128);
  const b = new Uint8Array(24 + tail.length);
  b[0] = PDU.c2hTermReq;
  b[2] = 24;
  le32(b, 4, b.length);
  le16(b, 8, fes);
  le32(b, 10, fei);
  b.set(tail, 24);
  return b;
}

// ---- reading ----

export interface Pdu {
  type: number;
  flags: number;
  /** The header without its digest (hlen bytes). */
  hdr: Uint8Array;
  /** The data (pdo..plen without the data digest), empty when none: a view, valid until the next push(). */
  data: Uint8Array;
}

/**
 * Cuts a byte stream into PDUs. Framing is checked before a PDU's bytes are awaited, so a peer
 * cannot make the reader hold more than `maxPdu` bytes; digests are verified when negotiated.
 */
export class PduReader {
  private buf = new Uint8Array(64 * 1024);
  private start = 0;
  private end = 0;
  digests: Digests = { header: false, data: false };

  constructor(private maxPdu: number) {}

  push(chunk: Uint8Array): void {
    if (this.end + chunk.length > this.buf.length) {
      const held = this.end - this.start;
      if (held + chunk.length > this.buf.length) {
        const grown = new Uint8Array(Math.max(2 * this.buf.length, held + chunk.length));
        grown.set(this.buf.subarray(this.start, this.end));
        this.buf = grown;
      } else this.buf.copyWithin(0, this.start, this.end);
      this.start = 0;
      this.end = held;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
  }

  /** Bytes held and not yet returned. */
  get length(): number {
    return this.end - this.start;
  }

  /** The next whole PDU, or null when more bytes are needed. Throws PduFault on bad framing or a digest mismatch. */
  next(): Pdu | null {
    if (this.end - this.start < 8) return null;
    const b = this.buf;
    const s = this.start;
    const type = b[s]!;
    const flags = b[s + 1]!;
    const hlen = b[s + 2]!;
    const pdo = b[s + 3]!;
    const plen = rd32(b, s + 4);
    const fault = (fes: number, off: number, msg: string) => new PduFault(fes, off, msg, b.slice(s, s + Math.min(this.end - s, Math.max(hlen, 8), 128)));
    const want = HLEN[type];
    if (want === undefined) throw fault(FES.invalidHeaderField, 0, `PDU type 0x${type.toString(16)} is unknown`);
    if (hlen !== want) throw fault(FES.invalidHeaderField, 2, `hlen ${hlen} is not ${want} for PDU type ${type}`);
    const hd = this.digests.header && type !== PDU.icReq && type !== PDU.h2cTermReq ? 4 : 0;
    if (hd && !(flags & FLAG.hdgst)) throw fault(FES.invalidHeaderField, 1, 'the header digest negotiated is missing');
    const hasData = pdo !== 0;
    const dd = hasData && this.digests.data ? 4 : 0;
    if (dd && !(flags & FLAG.ddgst)) throw fault(FES.invalidHeaderField, 1, 'the data digest negotiated is missing');
    if (plen < hlen + hd) throw fault(FES.invalidHeaderField, 4, `plen ${plen} is less than the header`);
    if (plen > this.maxPdu) throw fault(FES.dataTransferLimitExceeded, 4, `plen ${plen} is more than ${this.maxPdu}`);
    if (hasData && (pdo < hlen + hd || pdo > plen - dd)) throw fault(FES.invalidHeaderField, 3, `pdo ${pdo} is outside the PDU (hlen ${hlen}, plen ${plen})`);
    if (!hasData && plen !== hlen + hd && type !== PDU.h2cTermReq) throw fault(FES.invalidHeaderField, 4, `plen ${plen} with no data offset`);
    if (this.end - s < plen) return null;
    const hdr = b.slice(s, s + hlen);
    if (hd && rd32(b, s + hlen) !== crc32c(hdr)) throw new PduFault(FES.headerDigestError, 0, 'header digest mismatch', hdr);
    const data = b.subarray(s + (hasData ? pdo : hlen + hd), s + plen - dd); // a term request's offending header has no pdo
    this.start += plen;
    if (this.start === this.end) this.start = this.end = 0;
    if (dd && rd32(b, s + plen - 4) !== crc32c(data)) return { type, flags: flags | 0x80, hdr, data }; // bit 7: data digest failed
    return { type, flags, hdr, data };
  }
}

/** Set on Pdu.flags (never on the wire) when the data digest did not match. */
export const DATA_DIGEST_FAILED = 0x80;
