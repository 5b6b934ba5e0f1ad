// Synthetic Ethernet / IPv4 / TCP around a protocol's PDUs (spec/nvme.md §8.3), so that
// Wireshark's own NVMe/TCP and iSCSI dissectors decode a device's traffic. One TcpFlow is one
// connection: each direction keeps its own sequence number, advanced by every payload, and each
// segment acknowledges the other direction, which is what reassembly and request/response
// matching need. No handshake is written; none is needed.

import { SgringError } from '../engine/errors';

const ETH = 14;
const IP = 20;
const TCP = 20;
/** Most payload bytes one segment can carry (IPv4 total length is a u16). */
export const TCP_MAX_PAYLOAD = 0xffff - IP - TCP;

export interface FlowEnds {
  clientIp: readonly [number, number, number, number];
  serverIp: readonly [number, number, number, number];
  clientPort: number;
  serverPort: number;
  clientMac?: readonly number[];
  serverMac?: readonly number[];
}

export class TcpFlow {
  private readonly ends: Required<FlowEnds>;
  private seq = [0x1000, 0x8000]; // client, server
  private ipId = 1;

  constructor(ends: FlowEnds) {
    this.ends = {
      clientMac: [0x02, 0, 0, 0, 0, 0x01], serverMac: [0x02, 0, 0, 0, 0, 0x02], ...ends,
    } as Required<FlowEnds>;
  }

  /** The frame carrying `payload` from the client (true) or the server (false). */
  frame(fromClient: boolean, payload: Uint8Array): Uint8Array {
    if (payload.length > TCP_MAX_PAYLOAD) throw new SgringError('InvalidArgument', `a segment carries at most ${TCP_MAX_PAYLOAD} bytes`);
    const e = this.ends;
    const f = new Uint8Array(ETH + IP + TCP + payload.length);
    const dv = new DataView(f.buffer);
    f.set(fromClient ? e.serverMac : e.clientMac, 0);
    f.set(fromClient ? e.clientMac : e.serverMac, 6);
    dv.setUint16(12, 0x0800);
    // IPv4
    f[ETH] = 0x45;
    dv.setUint16(ETH + 2, IP + TCP + payload.length);
    dv.setUint16(ETH + 4, this.ipId++ & 0xffff);
    dv.setUint16(ETH + 6, 0x4000); // don't fragment
    f[ETH + 8] = 64;
    f[ETH + 9] = 6;
    f.set(fromClient ? e.clientIp : e.serverIp, ETH + 12);
    f.set(fromClient ? e.serverIp : e.clientIp, ETH + 16);
    dv.setUint16(ETH + 10, ipChecksum(f.subarray(ETH, ETH + IP)));
    // TCP (checksum left 0: Wireshark does not verify it by default)
    const t = ETH + IP;
    const me = fromClient ? 0 : 1;
    dv.setUint16(t, fromClient ? e.clientPort : e.serverPort);
    dv.setUint16(t + 2, fromClient ? e.serverPort : e.clientPort);
    dv.setUint32(t + 4, this.seq[me]!);
    dv.setUint32(t + 8, this.seq[1 - me]!);
    f[t + 12] = 0x50;
    f[t + 13] = 0x18; // PSH | ACK
    dv.setUint16(t + 14, 0xffff);
    f.set(payload, t + TCP);
    this.seq[me] = (this.seq[me]! + payload.length) >>> 0;
    return f;
  }
}

function ipChecksum(h: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < h.length; i += 2) sum += (h[i]! << 8) | h[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
