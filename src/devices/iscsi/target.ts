// A small iSCSI target (RFC 7143) on 127.0.0.1 that serves ScsiDisk LUNs, so standard
// initiators and tools reach the disks the models serve: login without authentication
// (discovery and normal sessions), SendTargets, SCSI commands with immediate data, R2T and
// Data-Out for the rest of a write, Data-In and the SCSI response with status and sense,
// NOP, task management and logout. No digests, one connection per session, error recovery
// level 0: a protocol error closes the connection. With `taps`, every SCSI command passes the
// stages iscsi:io:decode|execute|writeback (scsi/staged.ts, as storvsp's do), so the injectors
// act on what a real initiator sends. Node only (the sgring/node subpath).

import type { Socket } from 'node:net';
import { SgringError } from '../../engine/errors';
import { optionNames } from '../../core/args';
import type { ScsiDisk, ScsiResult } from '../scsi/disk';
import { reportLuns } from '../scsi/disk';
import { fixedSense, SCSI_STATUS, SENSE } from '../scsi/sense';
import type { TapRegistry } from '../../taps/registry';
import { TcpListener } from '../tcp-listener';
import { declareScsiStages, runStaged, type ScsiStages } from '../scsi/staged';
import { BHS, encodeKeys, makePdu, OPC, parseKeys, PduReader, type Pdu } from './pdu';

export interface IscsiTargetOptions {
  /** The logical units, LUN 0 first. */
  luns: ScsiDisk[];
  iqn?: string;
  host?: string;
  /** TCP port (default 3260; 0 picks a free one: read `port` after listen()). */
  port?: number;
  /** Bytes of write data one connection may have outstanding (default 256 MiB); beyond it TASK SET FULL. */
  maxPendingBytes?: number;
  /** Tap points iscsi:io:decode|execute|writeback (every SCSI command), traced as iSCSI. */
  taps?: TapRegistry;
  /** Device instance name for taps and traces (default 'iscsi0'). */
  name?: string;
}

const OUR_MAX_RECV = 262144;
const MAX_BURST = 262144;
const FIRST_BURST = 65536;
const CMD_WINDOW = 32;
const MAX_BUFFERED = 4 * OUR_MAX_RECV; // received bytes held before the socket is paused

interface PendingWrite {
  itt: number;
  lun: number;
  cdb: Uint8Array;
  edtl: number;
  buf: Uint8Array;
  received: number;
  ttt: number;
  r2tsn: number;
  /** The DataSN the next Data-Out of this R2T's sequence must carry. */
  dataSn: number;
  /** Bytes asked for by the last R2T and not yet received. */
  asked: number;
}

export class IscsiTarget {
  readonly iqn: string;
  readonly host: string;
  private readonly luns: ScsiDisk[];
  /** @internal */
  readonly maxPendingBytes: number;
  private readonly listener: TcpListener;
  /** Connections, logins, commands, commands ignored for a CmdSN outside the window, and connections closed for a protocol error. */
  readonly counters = { connections: 0, logins: 0, commands: 0, ignoredCommands: 0, protocolErrors: 0 };
  readonly name: string;
  /** @internal */
  readonly taps: TapRegistry | null;
  /** @internal */
  readonly stages: ScsiStages | null;

  constructor(opts: IscsiTargetOptions) {
    optionNames(opts, ['luns', 'iqn', 'host', 'port', 'maxPendingBytes', 'taps', 'name'], 'IscsiTarget');
    if (!Array.isArray(opts?.luns) || opts.luns.length === 0) throw new SgringError('InvalidArgument', 'IscsiTarget needs luns: [ScsiDisk, ...]');
    this.luns = opts.luns;
    this.iqn = opts.iqn ?? 'iqn.2026-12.sgring:disk';
    this.host = opts.host ?? '127.0.0.1';
    this.listener = new TcpListener(opts.port ?? 3260, this.host, (s) => this.accept(s));
    this.maxPendingBytes = opts.maxPendingBytes ?? 256 << 20;
    this.name = opts.name ?? 'iscsi0';
    this.taps = opts.taps ?? null;
    this.stages = this.taps ? declareScsiStages(this.taps, this.name, 'iscsi') : null;
  }

  /** The port it listens on (after listen()). */
  get port(): number {
    return this.listener.port;
  }

  listen(): Promise<void> {
    return this.listener.listen();
  }

  /** Closes every connection and the listening socket; the tap stages go with them. */
  async close(): Promise<void> {
    this.taps?.undeclare(this.name);
    await this.listener.close();
  }

  private accept(socket: Socket): void {
    this.counters.connections++;
    const conn = new Connection(this, socket, this.counters.connections);
    const reader = new PduReader(OUR_MAX_RECV);
    let chain = Promise.resolve();
    socket.on('data', (chunk: Buffer) => {
      reader.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
      // An initiator that sends faster than the disk serves is held back by TCP, not by our memory.
      if (reader.length > MAX_BUFFERED) socket.pause();
      chain = chain.then(async () => {
        // Responses to a batch of PDUs leave in as few writes as possible.
        socket.cork();
        try {
          for (let p = reader.next(); p; p = reader.next()) await conn.handle(p);
        } finally {
          socket.uncork();
        }
        if (socket.isPaused() && reader.length <= MAX_BUFFERED) socket.resume();
      }).catch(() => {
        this.counters.protocolErrors++;
        socket.destroy();
      });
    });
    socket.on('error', () => socket.destroy());
  }

  /** @internal */
  lun(n: number): ScsiDisk | undefined {
    return this.luns[n];
  }

  /** @internal */
  lunCount(): number {
    return this.luns.length;
  }
}

class Connection {
  private phase: 'login' | 'full' = 'login';
  private discovery = false;
  private statSn = 1;
  private expCmdSn = 0;
  /** The initiator's MaxRecvDataSegmentLength: the most data we put in one PDU to it. */
  private peerMaxRecv = 8192;
  private immediateData = true;
  private firstBurst = FIRST_BURST;
  private maxBurst = MAX_BURST;
  private nextTtt = 1;
  private readonly writes = new Map<number, PendingWrite>();
  /** ITTs of the last writes failed for a DataSN error, whose remaining Data-Out is dropped. */
  private readonly failedWrites = new Set<number>();

  private nextRequest = 1;

  constructor(private readonly target: IscsiTarget, private readonly socket: Socket, private readonly id: number) {}

  private send(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** StatSN, ExpCmdSN and MaxCmdSN at bytes 24..35 of a response. */
  private seq(dv: DataView, advanceStat = true): void {
    dv.setUint32(24, this.statSn);
    if (advanceStat) this.statSn = (this.statSn + 1) >>> 0;
    dv.setUint32(28, this.expCmdSn);
    dv.setUint32(32, (this.expCmdSn + CMD_WINDOW) >>> 0);
  }

  async handle(p: Pdu): Promise<void> {
    if (this.phase === 'login') {
      if (p.opcode !== OPC.loginRequest) throw new Error('only login requests before full feature phase');
      return this.login(p);
    }
    if (!p.immediate && (p.opcode === OPC.scsiCommand || p.opcode === OPC.textRequest || p.opcode === OPC.logoutRequest || p.opcode === OPC.taskMgmt || (p.opcode === OPC.nopOut && p.itt !== 0xffffffff))) {
      const cmdSn = p.dv.getUint32(24);
      // Outside [ExpCmdSN, MaxCmdSN] (serial arithmetic) a command is silently ignored (RFC 7143 4.2.2.1).
      if (((cmdSn - this.expCmdSn) >>> 0) > CMD_WINDOW) {
        this.target.counters.ignoredCommands++;
        return;
      }
      if (cmdSn === this.expCmdSn) this.expCmdSn = (this.expCmdSn + 1) >>> 0;
    }
    switch (p.opcode) {
      case OPC.scsiCommand: return this.command(p);
      case OPC.dataOut: return this.dataOut(p);
      case OPC.nopOut: return this.nop(p);
      case OPC.textRequest: return this.text(p);
      case OPC.taskMgmt: return this.taskMgmt(p);
      case OPC.logoutRequest: return this.logout(p);
      default: return this.reject(p, 0x04); // command not supported
    }
  }

  private login(p: Pdu): void {
    const keys = parseKeys(p.data);
    const csg = (p.flags >> 2) & 3;
    const nsg = p.flags & 3;
    const transit = (p.flags & 0x80) !== 0;
    if (p.dv.getUint32(24) !== undefined) this.expCmdSn = p.dv.getUint32(24);
    const out: [string, string][] = [];
    let statusClass = 0;
    let statusDetail = 0;
    if (keys.get('SessionType') === 'Discovery') this.discovery = true;
    const name = keys.get('TargetName');
    if (!this.discovery && name !== undefined && name !== this.target.iqn) {
      statusClass = 2;
      statusDetail = 3; // target not found
    }
    for (const [k, v] of keys) {
      switch (k) {
        case 'AuthMethod': out.push([k, 'None']); break;
        case 'HeaderDigest': case 'DataDigest': out.push([k, 'None']); break;
        case 'MaxRecvDataSegmentLength': this.peerMaxRecv = Math.max(512, Math.min(Number(v) || 8192, 16777215)); break;
        case 'MaxBurstLength': this.maxBurst = Math.min(Number(v) || MAX_BURST, MAX_BURST); out.push([k, String(this.maxBurst)]); break;
        case 'FirstBurstLength': this.firstBurst = Math.min(Number(v) || FIRST_BURST, FIRST_BURST); out.push([k, String(this.firstBurst)]); break;
        case 'InitialR2T': out.push([k, 'Yes']); break;
        case 'ImmediateData': this.immediateData = v === 'Yes'; out.push([k, v === 'Yes' ? 'Yes' : 'No']); break;
        case 'MaxConnections': out.push([k, '1']); break;
        case 'MaxOutstandingR2T': out.push([k, '1']); break;
        case 'DataPDUInOrder': case 'DataSequenceInOrder': out.push([k, 'Yes']); break;
        case 'DefaultTime2Wait': out.push([k, '2']); break;
        case 'DefaultTime2Retain': out.push([k, '0']); break;
        case 'ErrorRecoveryLevel': out.push([k, '0']); break;
        case 'IFMarker': case 'OFMarker': out.push([k, 'No']); break;
        case 'InitiatorName': case 'InitiatorAlias': case 'SessionType': case 'TargetName': break;
        default: out.push([k, 'NotUnderstood']);
      }
    }
    if (csg === 0 && !this.discovery && statusClass === 0) out.push(['TargetPortalGroupTag', '1']);
    if (keys.has('MaxRecvDataSegmentLength') || csg === 1) out.push(['MaxRecvDataSegmentLength', String(OUR_MAX_RECV)]);
    const full = statusClass === 0 && transit && nsg === 3;
    const data = encodeKeys(out);
    const { bytes, dv } = makePdu(OPC.loginResponse, statusClass === 0 && transit ? 0x80 | (csg << 2) | nsg : csg << 2, data);
    bytes.set(p.bhs.subarray(8, 14), 8); // ISID
    dv.setUint16(14, full ? 1 : 0); // TSIH
    dv.setUint32(16, p.itt);
    this.seq(dv);
    bytes[36] = statusClass;
    bytes[37] = statusDetail;
    this.send(bytes);
    if (full) {
      this.phase = 'full';
      this.target.counters.logins++;
    }
    if (statusClass !== 0) this.socket.end();
  }

  private text(p: Pdu): void {
    const keys = parseKeys(p.data);
    const out: [string, string][] = [];
    if (keys.get('SendTargets') !== undefined) {
      out.push(['TargetName', this.target.iqn], ['TargetAddress', `${this.target.host}:${this.target.port},1`]);
    }
    const { bytes, dv } = makePdu(OPC.textResponse, 0x80, encodeKeys(out));
    dv.setUint32(16, p.itt);
    dv.setUint32(20, 0xffffffff);
    this.seq(dv);
    this.send(bytes);
  }

  private nop(p: Pdu): void {
    if (p.itt === 0xffffffff) return; // a ping that wants no answer
    const { bytes, dv } = makePdu(OPC.nopIn, 0x80, p.data.length > 0 ? p.data : null);
    dv.setUint32(16, p.itt);
    dv.setUint32(20, 0xffffffff);
    this.seq(dv);
    this.send(bytes);
  }

  private taskMgmt(p: Pdu): void {
    const fn = p.flags & 0x7f;
    const lun = p.bhs[9]!;
    // Commands run in order as they arrive, so the only tasks still open are writes waiting for Data-Out.
    let response = 0; // function complete
    if (!this.target.lun(lun) && fn < 6) response = 2; // LUN does not exist
    else if (fn === 1) { // ABORT TASK: the write gets no response; one already answered "does not exist"
      response = this.writes.delete(p.dv.getUint32(20)) ? 0 : 1;
    } else if (fn === 2 || fn === 3 || fn === 5 || fn === 6 || fn === 7) { // task set aborts and resets
      for (const [itt, w] of this.writes) if (w.lun === lun || fn >= 6) this.writes.delete(itt);
      if (fn >= 5) this.target.lun(lun)?.reset();
    } else if (fn !== 4) response = 5; // not supported (CLEAR ACA has nothing to clear: 4 completes)
    const { bytes, dv } = makePdu(OPC.taskMgmtResponse, 0x80);
    bytes[2] = response;
    dv.setUint32(16, p.itt);
    this.seq(dv);
    this.send(bytes);
  }

  private logout(p: Pdu): void {
    const { bytes, dv } = makePdu(OPC.logoutResponse, 0x80);
    dv.setUint32(16, p.itt);
    this.seq(dv);
    this.send(bytes);
    this.socket.end();
  }

  private reject(p: Pdu, reason: number): void {
    const { bytes, dv } = makePdu(OPC.reject, 0x80, p.bhs);
    bytes[2] = reason;
    dv.setUint32(16, 0xffffffff);
    this.seq(dv);
    this.send(bytes);
  }

  private async command(p: Pdu): Promise<void> {
    this.target.counters.commands++;
    if (this.writes.has(p.itt)) return this.reject(p, 0x09); // an ITT still in flight: invalid PDU field
    const lun = (p.bhs[8]! & 0xc0) === 0 ? p.bhs[9]! : ((p.bhs[8]! & 0x3f) << 8) | p.bhs[9]!;
    const edtl = p.dv.getUint32(20);
    const cdb = p.bhs.slice(32, 48);
    const write = (p.flags & 0x20) !== 0;
    if (write && edtl > 0) {
      if (edtl > 64 << 20) return this.respond(p.itt, lun, edtl, checkResult(fixedSense(SENSE.invalidFieldInCdb())), null);
      let pending = 0;
      for (const w of this.writes.values()) pending += w.edtl;
      if (pending + edtl > this.target.maxPendingBytes) { // no buffer for it now: the initiator retries later
        return this.respond(p.itt, lun, edtl, { status: SCSI_STATUS.taskSetFull, sense: null, data: null, transferred: 0 }, null);
      }
      const w: PendingWrite = { itt: p.itt, lun, cdb, edtl, buf: new Uint8Array(edtl), received: 0, ttt: 0, r2tsn: 0, dataSn: 0, asked: 0 };
      const imm = this.immediateData ? Math.min(p.data.length, edtl) : 0;
      w.buf.set(p.data.subarray(0, imm));
      w.received = imm;
      if (w.received >= w.edtl) return this.execute(w.itt, lun, cdb, edtl, w.buf);
      this.writes.set(p.itt, w);
      this.r2t(w);
      return;
    }
    return this.execute(p.itt, lun, cdb, edtl, null);
  }

  /** Asks for the next piece of a write, at most MaxBurstLength. */
  private r2t(w: PendingWrite): void {
    w.ttt = this.nextTtt++ >>> 0;
    w.dataSn = 0;
    w.asked = Math.min(this.maxBurst, w.edtl - w.received);
    const { bytes, dv } = makePdu(OPC.r2t, 0x80);
    bytes[9] = w.lun;
    dv.setUint32(16, w.itt);
    dv.setUint32(20, w.ttt);
    this.seq(dv, false);
    dv.setUint32(36, w.r2tsn++);
    dv.setUint32(40, w.received);
    dv.setUint32(44, w.asked);
    this.send(bytes);
  }

  private async dataOut(p: Pdu): Promise<void> {
    const w = this.writes.get(p.itt);
    if (!w) {
      if (this.failedWrites.has(p.itt)) return; // the rest of a write already failed for its DataSN: dropped
      throw new Error(`Data-Out for no outstanding write (ITT ${p.itt})`);
    }
    const offset = p.dv.getUint32(40);
    if (p.dv.getUint32(20) !== w.ttt) throw new Error('Data-Out with a target transfer tag we did not give');
    if (p.dv.getUint32(36) !== w.dataSn++) {
      // A Data-Out out of DataSN order: error recovery level 0 recovers nothing, so the command fails
      // (ABORTED COMMAND, DATA PHASE ERROR) and the rest of its data is dropped as it comes.
      this.writes.delete(p.itt);
      this.failedWrites.add(p.itt);
      if (this.failedWrites.size > CMD_WINDOW) this.failedWrites.delete(this.failedWrites.values().next().value!);
      return this.respond(w.itt, w.lun, w.edtl, checkResult(fixedSense(SENSE.dataPhaseError)), null);
    }
    if (offset + p.data.length > w.edtl) throw new Error('Data-Out beyond the expected data transfer length');
    w.buf.set(p.data, offset);
    w.received += p.data.length;
    w.asked -= p.data.length;
    if ((p.flags & 0x80) === 0) return; // more of this sequence to come
    if (w.received < w.edtl) {
      this.r2t(w);
      return;
    }
    this.writes.delete(p.itt);
    return this.execute(w.itt, w.lun, w.cdb, w.edtl, w.buf);
  }

  /** Runs a command through the tap stages; a command a tap dropped gets no response. */
  private async execute(itt: number, lun: number, cdb: Uint8Array, edtl: number, dataOut: Uint8Array | null): Promise<void> {
    const disk = this.target.lun(lun);
    const blocks = disk ? writeBlocks(cdb) : null;
    const t = this.target;
    const r = await runStaged(t.taps, t.stages, {
      device: t.name, queue: this.id, request: `${this.id}:${itt}:${this.nextRequest++}`, lun, cdb, length: edtl,
      dataOut: dataOut ? () => dataOut : null, run: (d) => this.run(lun, cdb, edtl, d ?? null),
    });
    if (r === null) return;
    this.respond(itt, lun, edtl, r, blocks !== null ? blocks * disk!.backend.blockSize : dataOut !== null ? edtl : null);
  }

  private async run(lun: number, cdb: Uint8Array, edtl: number, dataOut: Uint8Array | null): Promise<ScsiResult> {
    const disk = this.target.lun(lun);
    if (cdb[0] === 0xa0) {
      // REPORT LUNS belongs to the target: every LUN it serves.
      const data = reportLuns(Array.from({ length: this.target.lunCount() }, (_, i) => i));
      const alloc = new DataView(cdb.buffer, cdb.byteOffset).getUint32(6);
      return { status: SCSI_STATUS.good, sense: null, data: data.subarray(0, Math.min(alloc, data.length)), transferred: 0 };
    }
    if (!disk) {
      if (cdb[0] !== 0x12) return checkResult(fixedSense(SENSE.lunNotSupported));
      // INQUIRY to a LUN that does not exist: peripheral qualifier 3, device type 0x1f.
      const b = new Uint8Array(36);
      b[0] = 0x7f;
      b[2] = 0x06;
      b[3] = 0x02;
      b[4] = 31;
      return { status: SCSI_STATUS.good, sense: null, data: b.subarray(0, Math.min(cdb[4]! | (cdb[3]! << 8), 36)), transferred: 36 };
    }
    const blocks = writeBlocks(cdb);
    if (blocks !== null) {
      // EDTL and the CDB disagree: write only the whole blocks both allow and report the rest as a
      // residual (overflow when the CDB asked for more than EDTL, underflow when less).
      const fit = Math.min(blocks, Math.floor(edtl / disk.backend.blockSize));
      if (fit === 0 && blocks !== 0) return { status: SCSI_STATUS.good, sense: null, data: null, transferred: 0 };
      return disk.execute({ cdb: fit === blocks ? cdb : withWriteBlocks(cdb, fit), dataOut: dataOut ?? undefined });
    }
    return disk.execute({ cdb, dataOut: dataOut ?? undefined });
  }

  /**
   * Data-In for read data (cut to EDTL), then the SCSI response with residuals and sense.
   * `wanted` is the data-out length the command itself asked for (null for no data-out).
   */
  private respond(itt: number, lun: number, edtl: number, r: ScsiResult, wanted: number | null): void {
    let flags = 0x80;
    let residual = 0;
    if (r.data && r.status === SCSI_STATUS.good) {
      if (r.data.length > edtl) {
        flags |= 0x04; // overflow
        residual = r.data.length - edtl;
      } else if (r.data.length < edtl) {
        flags |= 0x02; // underflow
        residual = edtl - r.data.length;
      }
      const data = r.data.subarray(0, Math.min(r.data.length, edtl));
      for (let off = 0, sn = 0; off < data.length; off += this.peerMaxRecv, sn++) {
        const n = Math.min(this.peerMaxRecv, data.length - off);
        const last = off + n === data.length;
        // The last Data-In carries the status (phase collapse, RFC 7143 §11.7.4): good status has no sense, so no SCSI Response follows.
        const { bytes, dv } = makePdu(OPC.dataIn, last ? flags | 0x01 : 0, data.subarray(off, off + n));
        bytes[9] = lun;
        dv.setUint32(16, itt);
        dv.setUint32(20, 0xffffffff);
        if (last) {
          bytes[3] = r.status;
          this.seq(dv);
          dv.setUint32(44, residual);
        } else {
          this.seq(dv, false);
          dv.setUint32(24, 0);
        }
        dv.setUint32(36, sn);
        dv.setUint32(40, off);
        this.send(bytes);
      }
      if (data.length > 0) return;
    } else if (wanted !== null && r.status === SCSI_STATUS.good && wanted !== edtl) {
      flags |= wanted > edtl ? 0x04 : 0x02;
      residual = Math.abs(wanted - edtl);
    } else if (wanted === null && edtl > 0 && r.status === SCSI_STATUS.good) {
      flags |= 0x02;
      residual = edtl;
    }
    const sense = r.sense ? (() => {
      const s = new Uint8Array(2 + r.sense.length);
      new DataView(s.buffer).setUint16(0, r.sense.length);
      s.set(r.sense, 2);
      return s;
    })() : null;
    const { bytes, dv } = makePdu(OPC.scsiResponse, flags, sense);
    bytes[2] = 0; // command completed at target
    bytes[3] = r.status;
    dv.setUint32(16, itt);
    this.seq(dv);
    dv.setUint32(44, residual);
    this.send(bytes);
  }
}

function checkResult(sense: Uint8Array): ScsiResult {
  return { status: SCSI_STATUS.checkCondition, sense, data: null, transferred: 0 };
}

/** The transfer length in blocks of a WRITE (6), (10) or (16); null for any other command. */
function writeBlocks(cdb: Uint8Array): number | null {
  const dv = new DataView(cdb.buffer, cdb.byteOffset, cdb.length);
  switch (cdb[0]) {
    case 0x0a: return cdb[4] === 0 ? 256 : cdb[4]!;
    case 0x2a: return dv.getUint16(7);
    case 0x8a: return dv.getUint32(10);
    default: return null;
  }
}

/** A copy of a WRITE CDB with its transfer length set to `blocks` (1..the original). */
function withWriteBlocks(cdb: Uint8Array, blocks: number): Uint8Array {
  const c = cdb.slice();
  const dv = new DataView(c.buffer);
  if (c[0] === 0x0a) c[4] = blocks & 0xff;
  else if (c[0] === 0x2a) dv.setUint16(7, blocks);
  else dv.setUint32(10, blocks);
  return c;
}

export { BHS };
