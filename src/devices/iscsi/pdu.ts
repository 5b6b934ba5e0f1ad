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

/** Splits a byte stream into PDUs; refuses AHS and absurd lengths (the caller drops the connection). */
export class PduReader {
  private buf = new Uint8Array(0);

  constructor(private readonly maxData: number) {}

  push(chunk: Uint8Array): void {
    const b = new Uint8Array(this.buf.length + chunk.length);
    b.set(this.buf);
    b.set(chunk, this.buf.length);
    this.buf = b;
  }

  /** The next whole PDU, null when more bytes are needed; throws on a PDU no target should accept. */
  next(): Pdu | null {
    if (this.buf.length < BHS) return null;
    const dv = new DataView(this.buf.buffer, this.buf.byteOffset, BHS);
    const ahs = this.buf[4]! * 4;
    const dsl = dv.getUint32(4) & 0xffffff;
    if (ahs !== 0) throw new Error('additional header segments are not supported');
    if (dsl > this.maxData) throw new Error(`a data segment of ${dsl} bytes is more than the ${this.maxData} negotiated`);
    const total = BHS + ((dsl + 3) & ~3);
    if (this.buf.length < total) return null;
    const bhs = this.buf.slice(0, BHS);
    const data = this.buf.slice(BHS, BHS + dsl);
    this.buf = this.buf.slice(total);
    const hdv = new DataView(bhs.buffer);
    return { bhs, dv: hdv, opcode: bhs[0]! & 0x3f, immediate: (bhs[0]! & 0x40) !== 0, flags: bhs[1]!, itt: hdv.getUint32(16), data };
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
