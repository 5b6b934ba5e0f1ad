// SCSI commands as iSCSI PDUs (RFC 7143 §11), which Wireshark's own iSCSI dissector decodes:
// one TCP connection per device on port 3260; a decode stage (a guest's submit) writes the SCSI
// Command PDU (and Data-Out for a write), a writeback stage (a guest's complete) Data-In (for a
// read) and the SCSI Response with the status and sense. Events give the CDB as their command and, in `detail`, the LUN
// (`lun`), the transfer length (`transferBytes`) and the sense bytes (`sense`).

import { LINKTYPE_ETHERNET } from './pcapng';
import { TcpFlow } from './tcp';
import { joinData, stageStep, type TraceEncoder, type TraceRecord } from './encoder';

export const ISCSI_PORT = 3260;
const OP_SCSI_COMMAND = 0x01;
const OP_DATA_OUT = 0x05;
const OP_SCSI_RESPONSE = 0x21;
const OP_DATA_IN = 0x25;
const BHS = 48;
const DATA_CHUNK = 32 * 1024;

interface IscsiState {
  flow: TcpFlow;
  itt: Map<string, number>;
  nextItt: number;
  cmdSn: number;
  statSn: number;
}

let instances = 0;

function bhs(opcode: number, flags: number, lun: number, itt: number, dataLen: number): [Uint8Array, DataView] {
  const b = new Uint8Array(BHS + ((dataLen + 3) & ~3));
  const dv = new DataView(b.buffer);
  b[0] = opcode;
  b[1] = flags;
  dv.setUint32(4, dataLen & 0xffffff); // TotalAHSLength 0, DataSegmentLength
  b[9] = lun & 0xff; // LUN, single-level format
  b[8] = (lun >> 8) & 0x3f;
  dv.setUint32(16, itt);
  return [b, dv];
}

export const iscsiEncoder: TraceEncoder = {
  protocol: 'iSCSI',
  linktype: LINKTYPE_ETHERNET,
  createState(): IscsiState {
    const n = instances++ & 0xff;
    return {
      flow: new TcpFlow({ clientIp: [10, 0, 2, 1], serverIp: [10, 0, 3, n], clientPort: 40000 + n, serverPort: ISCSI_PORT }),
      itt: new Map(), nextItt: 1, cmdSn: 1, statSn: 1,
    };
  },
  encode(r: TraceRecord, state: unknown): Uint8Array[] {
    const s = state as IscsiState;
    // The command as it leaves (a guest's submit) or arrives (a host's decode); the answer as the
    // host writes it back or the guest takes it (complete).
    const at = stageStep(r.stage);
    const step = at === 'submit' ? 'decode' : at === 'complete' ? 'writeback' : at;
    if ((step !== 'decode' && step !== 'writeback') || r.command === null) return [];
    const lun = Number(r.detail?.lun ?? 0);
    const data = joinData(r.data);
    const out: Uint8Array[] = [];
    if (step === 'decode') {
      const itt = s.nextItt++ >>> 0;
      s.itt.set(r.request, itt);
      const read = r.io.kind === 'read';
      const write = r.io.kind === 'write';
      const [b, dv] = bhs(OP_SCSI_COMMAND, 0x80 | (read ? 0x40 : 0) | (write ? 0x20 : 0) | 0x01, lun, itt, 0);
      dv.setUint32(20, Number(r.detail?.transferBytes ?? data.length)); // expected data transfer length
      dv.setUint32(24, s.cmdSn++);
      dv.setUint32(28, s.statSn);
      b.set(r.command.subarray(0, 16), 32);
      out.push(s.flow.frame(true, b));
      if (write) {
        for (let off = 0, sn = 0; off < data.length; off += DATA_CHUNK, sn++) {
          const n = Math.min(DATA_CHUNK, data.length - off);
          const [d, ddv] = bhs(OP_DATA_OUT, off + n === data.length ? 0x80 : 0, lun, itt, n);
          ddv.setUint32(20, 0xffffffff); // target transfer tag: unsolicited
          ddv.setUint32(28, s.statSn);
          ddv.setUint32(36, sn);
          ddv.setUint32(40, off);
          d.set(data.subarray(off, off + n), BHS);
          out.push(s.flow.frame(true, d));
        }
      }
      return out;
    }
    const itt = s.itt.get(r.request) ?? 0xffffffff;
    s.itt.delete(r.request);
    if (r.io.kind === 'read') {
      for (let off = 0, sn = 0; off < data.length; off += DATA_CHUNK, sn++) {
        const n = Math.min(DATA_CHUNK, data.length - off);
        const [d, ddv] = bhs(OP_DATA_IN, off + n === data.length ? 0x80 : 0, lun, itt, n);
        ddv.setUint32(20, 0xffffffff);
        ddv.setUint32(28, s.cmdSn);
        ddv.setUint32(32, s.cmdSn + 16);
        ddv.setUint32(36, sn);
        ddv.setUint32(40, off);
        d.set(data.subarray(off, off + n), BHS);
        out.push(s.flow.frame(false, d));
      }
    }
    const sense = r.detail?.sense instanceof Uint8Array ? r.detail.sense : null;
    const segLen = sense ? 2 + sense.length : 0;
    const [b, dv] = bhs(OP_SCSI_RESPONSE, 0x80, 0, itt, segLen);
    b[3] = r.completion.status & 0xff; // SCSI status; response 0: command completed at target
    b.fill(0, 8, 16); // a response carries no LUN
    dv.setUint32(24, s.statSn++);
    dv.setUint32(28, s.cmdSn);
    dv.setUint32(32, s.cmdSn + 16);
    if (sense) {
      dv.setUint16(BHS, sense.length);
      b.set(sense, BHS + 2);
    }
    out.push(s.flow.frame(false, b));
    return out;
  },
};
