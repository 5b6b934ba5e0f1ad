// NVMe commands and completions as NVMe/TCP PDUs (spec/nvme.md §8.4-8.6), which Wireshark's
// own dissector decodes: one TCP connection per queue, opened with a Fabrics Connect for that
// queue id (so the dissector knows admin from I/O), each SQE in a CapsuleCmd, write data in
// H2CData and read data in C2HData PDUs, each CQE in a CapsuleResp. Decode stages carry the
// command; writeback stages the completion.

import { LINKTYPE_ETHERNET } from './pcapng';
import { TcpFlow } from './tcp';
import { joinData, setupFrame, stageStep, type TraceEncoder, type TraceRecord } from './encoder';

export const NVME_TCP_PORT = 4420;
const PDU_CAPSULE_CMD = 0x04;
const PDU_CAPSULE_RESP = 0x05;
const PDU_H2C_DATA = 0x06;
const PDU_C2H_DATA = 0x07;
const FLAG_LAST_PDU = 0x04;
const DATA_CHUNK = 32 * 1024;
const OPC_FABRICS = 0x7f;
const FCTYPE_CONNECT = 0x01;
const CONNECT_CID = 0xfffe; // a CID no queue of the model uses before it is connected

interface NvmeTcpState {
  index: number;
  queues: Map<number, TcpFlow>;
  /** Requests whose write data is in the trace already (a device may show it at decode or at execute). */
  sent: Set<string>;
}

let instances = 0;

function pdu(type: number, flags: number, hlen: number, pdo: number, header: Uint8Array | null, data: Uint8Array | null): Uint8Array {
  const plen = hlen + (data?.length ?? 0);
  const b = new Uint8Array(plen);
  const dv = new DataView(b.buffer);
  b[0] = type;
  b[1] = flags;
  b[2] = hlen;
  b[3] = pdo;
  dv.setUint32(4, plen, true);
  if (header) b.set(header, 8);
  if (data) b.set(data, hlen);
  return b;
}

/** C2HData / H2CData PDUs for `data`, at most 32 KiB each, the last flagged LAST_PDU. */
function dataPdus(type: number, cid: number, data: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let off = 0; off < data.length; off += DATA_CHUNK) {
    const n = Math.min(DATA_CHUNK, data.length - off);
    const h = new Uint8Array(16);
    const dv = new DataView(h.buffer);
    dv.setUint16(0, cid, true); // CCCID
    dv.setUint16(2, 0, true); // TTAG
    dv.setUint32(4, off, true); // DATAO
    dv.setUint32(8, n, true); // DATAL
    out.push(pdu(type, off + n === data.length ? FLAG_LAST_PDU : 0, 24, 24, h, data.subarray(off, off + n)));
  }
  return out;
}

/** The SQE as a fabrics host sends it: SGL1 a transport data block of `bytes` (PSDT = SGL). */
function capsuleSqe(sqe: Uint8Array, bytes: number): Uint8Array {
  const s = sqe.slice(0, 64);
  s[1] = (s[1]! & 0x3f) | 0x40; // PSDT 01: SGLs
  s.fill(0, 24, 40);
  new DataView(s.buffer).setUint32(32, bytes, true);
  s[39] = 0x5a; // Transport SGL Data Block, transport-specific sub-type
  return s;
}

function connectSqe(qid: number, sqsize: number): Uint8Array {
  const s = new Uint8Array(64);
  const dv = new DataView(s.buffer);
  s[0] = OPC_FABRICS;
  dv.setUint16(2, CONNECT_CID, true);
  s[4] = FCTYPE_CONNECT;
  dv.setUint16(42, qid, true);
  dv.setUint16(44, sqsize, true);
  return s;
}

function cqe(cdw0: number, sqhd: number, sqid: number, cid: number, status: number): Uint8Array {
  const c = new Uint8Array(16);
  const dv = new DataView(c.buffer);
  dv.setUint32(0, cdw0 >>> 0, true);
  dv.setUint16(8, sqhd, true);
  dv.setUint16(10, sqid, true);
  dv.setUint16(12, cid, true);
  dv.setUint16(14, ((status & 0x7fff) << 1) | 1, true);
  return c;
}

/** The encoder an NVMe controller model declares with its stages. */
export const nvmeTcpEncoder: TraceEncoder = {
  protocol: 'NVMe/TCP',
  linktype: LINKTYPE_ETHERNET,
  createState(): NvmeTcpState {
    return { index: instances++ & 0xff, queues: new Map(), sent: new Set() };
  },
  encode(r: TraceRecord, state: unknown): Uint8Array[] {
    const s = state as NvmeTcpState;
    const step = stageStep(r.stage);
    if ((step !== 'decode' && step !== 'execute' && step !== 'writeback') || r.command === null || r.command.length < 64) return [];
    const qid = r.queue & 0xffff;
    const out: Uint8Array[] = [];
    let flow = s.queues.get(qid);
    if (!flow) {
      flow = new TcpFlow({ clientIp: [10, 0, 0, 1], serverIp: [10, 0, 1, s.index], clientPort: 50000 + qid, serverPort: NVME_TCP_PORT });
      s.queues.set(qid, flow);
      out.push(setupFrame(flow.frame(true, pdu(PDU_CAPSULE_CMD, 0, 72, 0, connectSqe(qid, Number(r.detail?.queueSize ?? 64) - 1), null))));
      out.push(setupFrame(flow.frame(false, pdu(PDU_CAPSULE_RESP, 0, 24, 0, cqe(1, 0, qid, CONNECT_CID, 0), null))));
    }
    const cid = new DataView(r.command.buffer, r.command.byteOffset, 64).getUint16(2, true);
    const data = joinData(r.data);
    const h2c = () => {
      if (r.io.kind !== 'write' || data.length === 0 || s.sent.has(r.request)) return;
      s.sent.add(r.request);
      for (const p of dataPdus(PDU_H2C_DATA, cid, data)) out.push(flow.frame(true, p));
    };
    if (step === 'decode') {
      const bytes = Number(r.detail?.transferBytes ?? data.length);
      out.push(flow.frame(true, pdu(PDU_CAPSULE_CMD, 0, 72, 0, capsuleSqe(r.command, bytes), null)));
      h2c();
    } else if (step === 'execute') {
      h2c();
    } else {
      s.sent.delete(r.request);
      if (r.io.kind !== 'write' && data.length > 0) for (const p of dataPdus(PDU_C2H_DATA, cid, data)) out.push(flow.frame(false, p));
      const sqhd = Number(r.detail?.sqhd ?? 0);
      out.push(flow.frame(false, pdu(PDU_CAPSULE_RESP, 0, 24, 0, cqe(r.completion.cdw0, sqhd, qid, cid, r.completion.status), null)));
    }
    return out;
  },
};
