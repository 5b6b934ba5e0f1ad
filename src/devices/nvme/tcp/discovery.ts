// The discovery subsystem (nqn.2014-08.org.nvmexpress.discovery, NVMe-oF 1.1 §5): a controller of
// its own with an admin queue only, whose Discovery log page (LID 0x70) lists the subsystem this
// target serves and where (TCP, IPv4, the port), so a host can discover before it connects.

import { NVME_SC } from '../status';
import { rd32 } from './pdu';
import { DISCOVERY_NQN, type Discovery, type FabricCommand, type QueueConnection } from './types';

/** Where the subsystem is served, for the log page. */
export interface DiscoveryEndpoint {
  readonly subnqn: string;
  readonly port: number;
  readonly address: string;
}

const ascii = (b: Uint8Array, at: number, len: number, s: string, pad = 0x20) => {
  for (let i = 0; i < len; i++) b[at + i] = i < s.length ? s.charCodeAt(i) & 0x7f : pad;
};

export class DiscoveryController implements Discovery {
  private cc = 0;
  /** Log page generation: hosts re-read the log when it changes. */
  readonly generation = 1n;

  constructor(private readonly target: DiscoveryEndpoint) {}

  /** Property Get/Set on a discovery connection: CAP, VS, CC and CSTS of a small admin-only controller. */
  property(conn: QueueConnection, cmd: FabricCommand, set: boolean, offset: number, size: number, value: number): void {
    if (set) {
      if (offset !== 0x14 || size !== 4) return conn.respond(cmd, NVME_SC.invalidField);
      this.cc = value;
      return conn.respond(cmd, 0);
    }
    if (offset === 0x00 && size === 8) return conn.respond(cmd, 0, 31 | (1 << 16) | (30 << 24), 1 << 5); // MQES 31, CQR, TO 15 s; CSS NVM
    if (offset === 0x08 && size === 4) return conn.respond(cmd, 0, 0x00010300); // 1.3: the version discovery controllers report
    if (offset === 0x14 && size === 4) return conn.respond(cmd, 0, this.cc);
    if (offset === 0x1c && size === 4) return conn.respond(cmd, 0, (this.cc & 1) | (((this.cc >>> 14) & 3) !== 0 ? 2 << 2 : 0)); // RDY = EN; shutdown completes at once
    conn.respond(cmd, NVME_SC.invalidField);
  }

  execute(conn: QueueConnection, cmd: FabricCommand): void {
    const sqe = cmd.sqe;
    switch (sqe[0]) {
      case 0x06: // Identify
        return (sqe[40]! === 1) ? conn.respond(cmd, 0, 0, 0, this.identify()) : conn.respond(cmd, NVME_SC.invalidField);
      case 0x02: { // Get Log Page
        if (sqe[40] !== 0x70) return conn.respond(cmd, NVME_SC.invalidLogPage);
        const log = this.log();
        const offset = rd32(sqe, 48) + rd32(sqe, 52) * 2 ** 32;
        if (offset % 4 !== 0 || offset > log.length) return conn.respond(cmd, NVME_SC.invalidField);
        return conn.respond(cmd, 0, 0, 0, log.subarray(offset));
      }
      case 0x09: // Set Features: keep-alive timer and async event configuration are accepted
      case 0x0a:
      case 0x18: // Keep Alive
        return conn.respond(cmd, 0);
      case 0x0c: // Asynchronous Event Request: no discovery change ever happens here, so it is held
        return;
      default:
        return conn.respond(cmd, NVME_SC.invalidOpcode);
    }
  }

  private identify(): Uint8Array {
    const b = new Uint8Array(4096);
    const dv = new DataView(b.buffer);
    ascii(b, 4, 20, 'SGRDISC');
    ascii(b, 24, 40, 'sgring NVMe/TCP discovery');
    ascii(b, 64, 8, '1.0');
    dv.setUint16(78, 0xffff, true); // CNTLID
    dv.setUint32(80, 0x00010300, true); // VER 1.3
    b[111] = 2; // CNTRLTYPE: discovery controller
    b[261] = 0x04; // LPA: extended data for Get Log Page
    dv.setUint16(320, 10, true); // KAS: 1 s
    dv.setUint16(514, 32, true); // MAXCMD
    dv.setUint32(536, 0x00100001, true); // SGLS
    b.fill(0, 768, 1024);
    ascii(b, 768, DISCOVERY_NQN.length, DISCOVERY_NQN);
    return b;
  }

  /** Discovery log page: a 1024-byte header, then one 1024-byte entry for the subsystem. */
  private log(): Uint8Array {
    const t = this.target;
    const b = new Uint8Array(2048);
    const dv = new DataView(b.buffer);
    dv.setBigUint64(0, this.generation, true); // GENCTR
    dv.setBigUint64(8, 1n, true); // NUMREC
    dv.setUint16(16, 0, true); // RECFMT
    const e = 1024;
    b[e + 0] = 3; // TRTYPE: TCP
    b[e + 1] = 1; // ADRFAM: IPv4
    b[e + 2] = 2; // SUBTYPE: an NVM subsystem
    b[e + 3] = 0x02; // TREQ: secure channel not required
    dv.setUint16(e + 4, 1, true); // PORTID
    dv.setUint16(e + 6, 0xffff, true); // CNTLID: dynamic
    dv.setUint16(e + 8, 32, true); // ASQSZ
    ascii(b, e + 32, 32, String(t.port));
    ascii(b, e + 256, 256, t.address);
    b[e + 512] = 0; // TSAS: no security
    b.fill(0, e + 768, e + 1024);
    ascii(b, e + 768, t.subnqn.length, t.subnqn);
    return b;
  }
}
