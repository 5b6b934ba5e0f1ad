// A small NVMe/TCP host for the target's tests: one socket per queue, PDUs built by hand so a test
// can send anything (bad framing, data out of window, wrong digests) and see what comes back.
import { connect, type Socket } from 'node:net';
import { crc32c } from '../../src/devices/nvme/tcp/pdu';

export interface Received { type: number; flags: number; hdr: Uint8Array; data: Uint8Array }

export class RawQueue {
  private buf = new Uint8Array(0);
  private waiters: (() => void)[] = [];
  closed = false;
  cid = 0;
  constructor(readonly socket: Socket, public digests = { header: false, data: false }) {
    socket.on('data', (c: Buffer) => {
      const n = new Uint8Array(this.buf.length + c.length);
      n.set(this.buf);
      n.set(c, this.buf.length);
      this.buf = n;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  static async open(port: number): Promise<RawQueue> {
    const s = connect(port, '127.0.0.1');
    await new Promise<void>((r, j) => s.once('connect', () => r()).once('error', j));
    return new RawQueue(s);
  }

  private wake() {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  send(b: Uint8Array) {
    this.socket.write(b);
  }

  /** The next PDU, or null when the socket closed first (2 s at most). */
  async next(timeoutMs = 2000): Promise<Received | null> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (this.buf.length >= 8) {
        const plen = new DataView(this.buf.buffer, this.buf.byteOffset).getUint32(4, true);
        if (this.buf.length >= plen) {
          const p = this.buf.slice(0, plen);
          this.buf = this.buf.slice(plen);
          const hlen = p[2]!;
          const hd = p[1]! & 1 ? 4 : 0;
          const pdo = p[3]!;
          const dd = pdo && p[1]! & 2 ? 4 : 0;
          return { type: p[0]!, flags: p[1]!, hdr: p.slice(0, hlen + hd), data: pdo ? p.slice(pdo, plen - dd) : p.slice(hlen + hd) };
        }
      }
      if (this.closed) return null;
      if (Date.now() > until) throw new Error('no PDU in time');
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  /** A PDU of `type` with header fields written by `fill`, and data; digests added as negotiated. */
  pdu(type: number, hlen: number, fill: (h: DataView, b: Uint8Array) => void, data?: Uint8Array, flags = 0): Uint8Array {
    const hd = this.digests.header ? 4 : 0;
    const dd = data && data.length && this.digests.data ? 4 : 0;
    const len = hlen + hd + (data?.length ?? 0) + dd;
    const b = new Uint8Array(len);
    const dv = new DataView(b.buffer);
    b[0] = type;
    b[1] = flags | (hd ? 1 : 0) | (dd ? 2 : 0);
    b[2] = hlen;
    b[3] = data?.length ? hlen + hd : 0;
    dv.setUint32(4, len, true);
    fill(dv, b);
    if (hd) dv.setUint32(hlen, crc32c(b.subarray(0, hlen)), true);
    if (data?.length) {
      b.set(data, hlen + hd);
      if (dd) dv.setUint32(len - 4, crc32c(data), true);
    }
    return b;
  }

  icReq(dgst = 0): Uint8Array {
    return this.pdu(0, 128, (dv) => {
      dv.setUint8(11, dgst);
    });
  }

  /** A command capsule: `sqe` fields, and data either in-capsule or (length only) for R2T. */
  capsule(sqe: Uint8Array, inCapsule?: Uint8Array): Uint8Array {
    return this.pdu(4, 72, (_dv, b) => b.set(sqe, 8), inCapsule);
  }

  sqe(opcode: number, o: { nsid?: number; cdw?: Record<number, number>; length?: number; inCapsule?: boolean; fctype?: number } = {}): Uint8Array {
    const b = new Uint8Array(64);
    const dv = new DataView(b.buffer);
    b[0] = opcode;
    b[1] = 0x40;
    dv.setUint16(2, ++this.cid & 0xffff, true);
    dv.setUint32(4, o.nsid ?? 0, true);
    if (o.fctype !== undefined) b[4] = o.fctype;
    for (const [k, v] of Object.entries(o.cdw ?? {})) dv.setUint32(4 * Number(k), v >>> 0, true);
    dv.setUint32(32, o.length ?? 0, true);
    b[39] = o.inCapsule ? 0x01 : 0x5a;
    return b;
  }

  h2cData(cccid: number, ttag: number, offset: number, data: Uint8Array, last = true): Uint8Array {
    return this.pdu(6, 24, (dv) => {
      dv.setUint16(8, cccid, true);
      dv.setUint16(10, ttag, true);
      dv.setUint32(12, offset, true);
      dv.setUint32(16, data.length, true);
    }, data, last ? 4 : 0);
  }

  close() {
    this.socket.destroy();
  }
}

export const cqeStatus = (p: Received) => new DataView(p.hdr.buffer, p.hdr.byteOffset).getUint16(8 + 14, true) >> 1;
export const cqeCid = (p: Received) => new DataView(p.hdr.buffer, p.hdr.byteOffset).getUint16(8 + 12, true);
export const cqeDw0 = (p: Received) => new DataView(p.hdr.buffer, p.hdr.byteOffset).getUint32(8, true);

/** Connect data: host id, controller id, subsystem and host NQNs. */
export function connectData(subnqn: string, hostnqn: string, cntlid = 0xffff): Uint8Array {
  const d = new Uint8Array(1024);
  new DataView(d.buffer).setUint16(16, cntlid, true);
  for (let i = 0; i < subnqn.length; i++) d[256 + i] = subnqn.charCodeAt(i);
  for (let i = 0; i < hostnqn.length; i++) d[512 + i] = hostnqn.charCodeAt(i);
  return d;
}
