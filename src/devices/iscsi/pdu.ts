// iSCSI PDUs (RFC 7143 §11): the 48-byte basic header segment, a data segment padded to 4
// bytes, no digests (the target negotiates None). Reading a stream into PDUs and writing them.

export const BHS = 48;

export const OPC = {
  nopOut: 0x00, scsiCommand: 0x01, taskMgmt: 0x02, loginRequest: 0x03, textRequest: 0x04, dataOut: 0x05, logoutRequest: 0x06,
  nopIn: 0x20, scsiResponse: 0x21, taskMgmtResponse: 0x22, loginResponse: 0x23, textResponse: 0x24, dataIn: 0x25,
  logoutResponse: 0x26, r2t: 0x31, reject: 0x3f,
} as const;

export interface Pdu {
  bhs: Uint8Array;
  dv: DataView;
  opcode: number;
  immediate: boolean;
  flags: number;
  itt: number;
  data: Uint8Array;
}

export function makePdu(opcode: number, flags: number, data: Uint8Array | null = null): { bytes: Uint8Array; dv: DataView } {
  const len = data?.length ?? 0;
  const bytes = new Uint8Array(BHS + ((len + 3) & ~3));
  const dv = new DataView(bytes.buffer);
  bytes[0] = opcode;
  bytes[1] = flags;
  dv.setUint32(4, len & 0xffffff); // TotalAHSLength 0
  if (data) bytes.set(data, BHS);
  return { bytes, dv };
}

/**
 * Splits a byte stream into PDUs; refuses AHS and absurd lengths (the caller drops the
 * connection). Chunks are kept as they came and joined once per PDU, so a stream costs one copy.
 */
export class PduReader {
  private chunks: Uint8Array[] = [];
  private head = 0; // bytes of chunks[0] already taken
  /** Bytes held and not yet returned as PDUs. */
  length = 0;

  constructor(private readonly maxData: number) {}

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** The next `n` bytes (n <= length), consumed when `take`, else only looked at. */
  private bytes(n: number, take: boolean): Uint8Array {
    const out = new Uint8Array(n);
    let i = 0;
    let at = this.head;
    for (let got = 0; got < n; i++, at = 0) {
      const c = this.chunks[i]!;
      const k = Math.min(c.length - at, n - got);
      out.set(c.subarray(at, at + k), got);
      got += k;
      if (take && at + k < c.length) { // stopped inside this chunk
        this.chunks.splice(0, i);
        this.head = at + k;
        this.length -= n;
        return out;
      }
    }
    if (take) {
      this.chunks.splice(0, i);
      this.head = 0;
      this.length -= n;
    }
    return out;
  }

  /** The next whole PDU, null when more bytes are needed; throws on a PDU no target should accept. */
  next(): Pdu | null {
    if (this.length < BHS) return null;
    const head = this.bytes(BHS, false);
    const dv = new DataView(head.buffer);
    const ahs = head[4]! * 4;
    const dsl = dv.getUint32(4) & 0xffffff;
    if (ahs !== 0) throw new Error('additional header segments are not supported');
    if (dsl > this.maxData) throw new Error(`a data segment of ${dsl} bytes is more than the ${this.maxData} negotiated`);
    const total = BHS + ((dsl + 3) & ~3);
    if (this.length < total) return null;
    const pdu = this.bytes(total, true);
    const bhs = pdu.subarray(0, BHS);
    const hdv = new DataView(pdu.buffer, 0, BHS);
    return { bhs, dv: hdv, opcode: bhs[0]! & 0x3f, immediate: (bhs[0]! & 0x40) !== 0, flags: bhs[1]!, itt: hdv.getUint32(16), data: pdu.subarray(BHS, BHS + dsl) };
  }
}

/** key=value pairs of a text or login data segment (NUL separated). */
export function parseKeys(data: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  for (const kv of new TextDecoder().decode(data).split('\0')) {
    const eq = kv.indexOf('=');
    if (eq > 0) out.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  return out;
}

export function encodeKeys(keys: [string, string][]): Uint8Array {
  return new TextEncoder().encode(keys.map(([k, v]) => `${k}=${v}\0`).join(''));
}
