// What a trace the library wrote holds, per device (pcapng interface): frames and bytes, the
// commands by name with their latencies (command to response, from the frames' timestamps) and
// failures, and the faults taps injected (from the packet comments, by stage). NVMe/TCP and
// iSCSI flows are reassembled per TCP connection and cut into PDUs; Ethernet devices are
// counted by protocol. What cannot be parsed is counted, never thrown.

import { readPcapng } from './pcapng';

export interface CommandStats {
  count: number;
  /** Responses with a non-zero status. */
  failed: number;
  /** Command-to-response latencies in nanoseconds, sorted. */
  latenciesNs: number[];
}

export interface DeviceTrace {
  name: string;
  protocol: 'NVMe/TCP' | 'iSCSI' | 'Ethernet' | 'other';
  frames: number;
  bytes: number;
  /** Time from the first frame to the last, in nanoseconds. */
  spanNs: number;
  /** NVMe: "admin Identify", "io Read"...; iSCSI: "READ(10)"...; Ethernet: "ARP", "IPv4/UDP"... */
  commands: Map<string, CommandStats>;
  /** Faults by stage ("fault at STAGE: ..." comments). */
  faults: Map<string, number>;
  /** Frames or PDUs that could not be parsed. */
  unparsed: number;
}

const ADMIN: Record<number, string> = {
  0x00: 'Delete I/O SQ', 0x01: 'Create I/O SQ', 0x02: 'Get Log Page', 0x04: 'Delete I/O CQ', 0x05: 'Create I/O CQ', 0x06: 'Identify',
  0x08: 'Abort', 0x09: 'Set Features', 0x0a: 'Get Features', 0x0c: 'Async Event Request', 0x18: 'Keep Alive',
};
const IO: Record<number, string> = { 0x00: 'Flush', 0x01: 'Write', 0x02: 'Read', 0x05: 'Compare', 0x08: 'Write Zeroes', 0x09: 'Dataset Management' };
const SCSI: Record<number, string> = {
  0x00: 'TEST UNIT READY', 0x03: 'REQUEST SENSE', 0x12: 'INQUIRY', 0x1a: 'MODE SENSE(6)', 0x1b: 'START STOP UNIT', 0x25: 'READ CAPACITY(10)',
  0x28: 'READ(10)', 0x2a: 'WRITE(10)', 0x2f: 'VERIFY(10)', 0x35: 'SYNCHRONIZE CACHE(10)', 0x42: 'UNMAP', 0x5a: 'MODE SENSE(10)', 0x88: 'READ(16)',
  0x8a: 'WRITE(16)', 0x91: 'SYNCHRONIZE CACHE(16)', 0x93: 'WRITE SAME(16)', 0x9e: 'SERVICE ACTION IN(16)', 0xa0: 'REPORT LUNS', 0x08: 'READ(6)', 0x0a: 'WRITE(6)',
};

interface Stream { bytes: Uint8Array; used: number }

/** Summarises a pcapng file written by traceTap / port.capture. Throws InvalidArgument only when the file is not pcapng. */
export function summarizeTrace(file: Uint8Array): DeviceTrace[] {
  const { interfaces, packets } = readPcapng(file);
  const devices: DeviceTrace[] = interfaces.map((i) => ({
    name: i.name || `interface ${interfaces.indexOf(i)}`,
    protocol: /NVMe\/TCP/.test(i.description) ? 'NVMe/TCP' : /iSCSI/.test(i.description) ? 'iSCSI' : i.linktype === 1 ? 'Ethernet' : 'other',
    frames: 0, bytes: 0, spanNs: 0, commands: new Map(), faults: new Map(), unparsed: 0,
  }));
  const first = new Map<number, bigint>();
  const streams = new Map<string, Stream>();
  const pending = new Map<string, { name: string; at: bigint }>();
  const qids = new Map<string, number>(); // NVMe/TCP: the queue each connection was opened for
  const stat = (d: DeviceTrace, name: string) => {
    let s = d.commands.get(name);
    if (!s) d.commands.set(name, (s = { count: 0, failed: 0, latenciesNs: [] }));
    return s;
  };
  for (const p of packets) {
    const d = devices[p.iface]!;
    d.frames++;
    d.bytes += p.data.length;
    if (!first.has(p.iface)) first.set(p.iface, p.timeNs);
    d.spanNs = Number(p.timeNs - first.get(p.iface)!);
    for (const c of p.comments) {
      const m = /^fault at ([^:]+:[^:]+:[^:]+): /.exec(c);
      if (m) d.faults.set(m[1]!, (d.faults.get(m[1]!) ?? 0) + 1);
    }
    const f = p.data;
    if (f.length < 14) {
      d.unparsed++;
      continue;
    }
    const type = (f[12]! << 8) | f[13]!;
    if (d.protocol === 'Ethernet' || d.protocol === 'other') {
      const proto = type === 0x0806 ? 'ARP' : type === 0x86dd ? 'IPv6' : type !== 0x0800 ? `EtherType 0x${type.toString(16).padStart(4, '0')}`
        : `IPv4/${({ 1: 'ICMP', 6: 'TCP', 17: 'UDP' } as Record<number, string>)[f[23] ?? 0] ?? `proto ${f[23]}`}`;
      stat(d, proto).count++;
      continue;
    }
    // TCP over IPv4: append the payload to its connection's stream and cut PDUs.
    if (type !== 0x0800 || f[23] !== 6 || f.length < 34) {
      d.unparsed++;
      continue;
    }
    const ip = 14 + (f[14]! & 0xf) * 4;
    const tcp = ip + (f[ip + 12]! >> 4) * 4;
    if (tcp > f.length) {
      d.unparsed++;
      continue;
    }
    const key = `${p.iface}:${f.subarray(26, 34).join('.')}:${f.subarray(ip, ip + 4).join('.')}`;
    let s = streams.get(key);
    if (!s) streams.set(key, (s = { bytes: new Uint8Array(0), used: 0 }));
    const payload = f.subarray(tcp);
    if (payload.length === 0) continue;
    const joined = new Uint8Array(s.bytes.length - s.used + payload.length);
    joined.set(s.bytes.subarray(s.used));
    joined.set(payload, s.bytes.length - s.used);
    s.bytes = joined;
    s.used = 0;
    // A connection is named by its client's port (the higher one: servers sit on 4420 and 3260).
    const conn = `${p.iface}:${Math.max((f[ip]! << 8) | f[ip + 1]!, (f[ip + 2]! << 8) | f[ip + 3]!)}`;
    for (;;) {
      const b = s.bytes.subarray(s.used);
      const n = d.protocol === 'NVMe/TCP' ? nvmePdu(b) : iscsiPdu(b);
      if (n === 0) break;
      if (n < 0) {
        d.unparsed++;
        s.used = s.bytes.length;
        break;
      }
      const pdu = b.subarray(0, n);
      s.used += n;
      if (d.protocol === 'NVMe/TCP') {
        if (pdu[0] === 0x04 && pdu.length >= 72) {
          const op = pdu[8]!;
          // A Connect names the queue its connection carries (SQE dword 10, bits 31:16).
          if (op === 0x7f && pdu[12] === 0x01) qids.set(conn, pdu[50]! | (pdu[51]! << 8));
          const fabrics = ({ 0x00: 'Property Set', 0x01: 'Connect', 0x04: 'Property Get' } as Record<number, string>)[pdu[12]!] ?? `0x${pdu[12]!.toString(16)}`;
          const name = op === 0x7f ? `Fabrics ${fabrics}` : qids.get(conn) === 0 ? `admin ${ADMIN[op] ?? `opcode 0x${op.toString(16)}`}` : `io ${IO[op] ?? `opcode 0x${op.toString(16)}`}`;
          pending.set(`${conn}:${pdu[10]! | (pdu[11]! << 8)}`, { name, at: p.timeNs });
        } else if (pdu[0] === 0x05 && pdu.length >= 24) {
          const k = `${conn}:${pdu[20]! | (pdu[21]! << 8)}`;
          finish(k, ((pdu[22]! | (pdu[23]! << 8)) >> 1) !== 0, p.timeNs);
        }
      } else if ((pdu[0]! & 0x3f) === 0x01) {
        const op = pdu[32]!;
        pending.set(`${conn}:${pdu.subarray(16, 20).join('.')}`, { name: SCSI[op] ?? `opcode 0x${op.toString(16)}`, at: p.timeNs });
      } else if ((pdu[0]! & 0x3f) === 0x21 || ((pdu[0]! & 0x3f) === 0x25 && (pdu[1]! & 0x01) !== 0)) {
        finish(`${conn}:${pdu.subarray(16, 20).join('.')}`, pdu[3] !== 0, p.timeNs);
      }
    }
  }
  function finish(key: string, failed: boolean, at: bigint) {
    const c = pending.get(key);
    if (!c) return;
    pending.delete(key);
    const dev = devices[Number(key.split(':')[0])]!;
    const s = stat(dev, c.name);
    s.count++;
    if (failed) s.failed++;
    s.latenciesNs.push(Number(at - c.at));
  }
  for (const d of devices) for (const s of d.commands.values()) s.latenciesNs.sort((a, b) => a - b);
  return devices;
}

/** Length of the NVMe/TCP PDU at the start of `b`, 0 when it is not all there, -1 when it cannot be one. */
function nvmePdu(b: Uint8Array): number {
  if (b.length < 8) return 0;
  const plen = (b[4]! | (b[5]! << 8) | (b[6]! << 16) | (b[7]! << 24)) >>> 0;
  if (plen < 8 || b[2]! < 8 || b[2]! > plen) return -1;
  return plen <= b.length ? plen : 0;
}

/** Length of the iSCSI PDU at the start of `b` (no digests), 0 when it is not all there. */
function iscsiPdu(b: Uint8Array): number {
  if (b.length < 48) return 0;
  const dsl = (b[5]! << 16) | (b[6]! << 8) | b[7]!;
  const n = 48 + b[4]! * 4 + ((dsl + 3) & ~3);
  return n <= b.length ? n : 0;
}
