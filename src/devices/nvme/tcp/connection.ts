// One NVMe/TCP connection = one host queue: the ICReq exchange, capsules, the data phase (in-capsule
// data, or R2T + H2CData for larger writes; C2HData for reads), and the controller queue pair that
// carries the queue's commands. Framing faults end the connection with a C2HTermReq; faults in a
// command's fields fail that command (spec/hardening.md §3.10).

import type { Socket } from 'node:net';
import { buildPrp } from '../../../core/nvme-prp';
import { putSqe, takeCqe, type HostQueuePair } from '../queues';
import { NVME_SC } from '../status';
import {
  c2hData, c2hTermReq, capsuleResp, DATA_DIGEST_FAILED, dataDigest, FES, icResp, PDU, PduFault, PduReader, r2t, rd16, rd32, type Digests, type Pdu,
} from './pdu';
import { DISCOVERY_NQN, type Association, type FabricCommand, type QueueConnection, type TargetContext } from './types';

const PAGE = 4096;
const FABRICS = 0x7f;
const FCTYPE = { propertySet: 0x00, connect: 0x01, propertyGet: 0x04, disconnect: 0x08 } as const;
const KEEP_ALIVE = 0x18;
/** Unsent output bytes past which a connection stops taking PDUs until the host reads. */
const OUTPUT_LIMIT = 8 << 20;
/** Admin commands a fabric host may send (queue management is the target's, never the host's). */
const ADMIN_ALLOWED = new Set([0x02, 0x06, 0x08, 0x09, 0x0a, 0x0c, KEEP_ALIVE]);
const SGL_DATA_OFFSET = 0x01; // Data Block, offset subtype: in-capsule data
const SGL_TRANSPORT = 0x5a; // Transport SGL Data Block: data in H2CData / C2HData PDUs

const str = (b: Uint8Array, at: number, len: number) => {
  let s = '';
  for (let i = at; i < at + len && b[i] !== 0; i++) s += String.fromCharCode(b[i]!);
  return s;
};

export class Connection implements QueueConnection {
  private readonly reader: PduReader;
  private state: 'ic' | 'ready' | 'closed' = 'ic';
  private digests: Digests = { header: false, data: false };
  /** The fabric queue id after Connect (-1 before). */
  qid = -1;
  assoc: Association | null = null;
  discovery = false;
  private q: HostQueuePair | null = null;
  private slots: (FabricCommand | null)[] = [];
  private free: number[] = [];
  private backlog: FabricCommand[] = [];
  private r2ts = new Map<number, FabricCommand>();
  private nextTtag = 0;
  /** Set while the socket's unsent output is over OUTPUT_LIMIT: received PDUs wait for 'drain'. */
  private waitingForDrain = false;

  constructor(private readonly target: TargetContext, private readonly socket: Socket) {
    this.reader = new PduReader(Math.max(72 + target.inCapsuleData, 24 + target.maxH2cData) + 8);
  }

  private get open(): boolean {
    return this.state !== 'closed';
  }

  receive(chunk: Uint8Array): void {
    if (this.state === 'closed') return;
    this.reader.push(chunk);
    if (this.waitingForDrain) return;
    this.socket.cork(); // what the PDUs of this chunk produce leaves in as few writes as possible
    try {
      for (let p = this.reader.next(); p && this.open; p = this.waitingForDrain ? null : this.reader.next()) {
        this.handle(p);
        // A host that sends commands but does not read their data would have us buffer without
        // bound: past OUTPUT_LIMIT unsent bytes, its PDUs wait (and TCP holds the host back).
        if (this.socket.writableLength > OUTPUT_LIMIT) {
          this.waitingForDrain = true;
          this.target.counters.outputPauses++;
          this.socket.pause();
          this.socket.once('drain', () => {
            this.waitingForDrain = false;
            this.socket.resume();
            this.receive(new Uint8Array(0));
          });
        }
      }
    } catch (e) {
      if (e instanceof PduFault) this.terminate(e.fes, e.offset, e.header);
      else {
        // Our own failure on this host's input: this connection ends, the target and the others go on.
        this.target.counters.internalErrors++;
        this.shutdown();
      }
    } finally {
      this.socket.uncork();
    }
  }

  private handle(p: Pdu): void {
    if (p.type === PDU.icReq) {
      if (this.state !== 'ic') throw new PduFault(FES.pduSequenceError, 0, 'a second ICReq', p.hdr);
      this.icReq(p);
      return;
    }
    if (this.state === 'ic') throw new PduFault(FES.pduSequenceError, 0, 'a PDU before ICReq', p.hdr);
    if (p.type === PDU.capsuleCmd) this.capsule(p);
    else if (p.type === PDU.h2cData) this.h2cData(p);
    else if (p.type === PDU.h2cTermReq) this.shutdown();
    else throw new PduFault(FES.pduSequenceError, 0, `PDU type ${p.type} is the controller's to send`, p.hdr);
  }

  private icReq(p: Pdu): void {
    if (rd16(p.hdr, 8) !== 0) throw new PduFault(FES.invalidHeaderField, 8, 'PFV is not 0', p.hdr);
    if (p.hdr[10]! > 31) throw new PduFault(FES.invalidHeaderField, 10, 'HPDA above 31', p.hdr);
    const dgst = p.hdr[11]!;
    this.digests = { header: (dgst & 1) !== 0, data: (dgst & 2) !== 0 };
    this.send(icResp(this.target.maxH2cData, this.digests));
    this.reader.digests = this.digests;
    this.state = 'ready';
  }

  // ---- commands ----

  private capsule(p: Pdu): void {
    const t = this.target;
    t.counters.commands++;
    if (this.assoc) this.assoc.lastSeen = performance.now();
    const sqe = p.hdr.slice(8, 72);
    const opcode = sqe[0]!;
    const fabrics = opcode === FABRICS;
    const cmd: FabricCommand = { hostCid: rd16(sqe, 2), sqe, length: 0, dir: 0, gpa: -1, listGpa: -1, js: null, got: 0, r2tEnd: 0, status: 0 };
    cmd.dir = fabrics ? (sqe[4] === FCTYPE.connect ? 1 : 0) : opcode & 3;
    const sglType = sqe[39]!;
    const sglLen = rd32(sqe, 32);
    const inCapsule = p.data.length;
    if (cmd.dir === 3) return this.respond(cmd, NVME_SC.invalidField); // bidirectional: no such command here
    if (!fabrics && this.qid < 0) return this.respond(cmd, NVME_SC.commandSequenceError); // nothing but Connect before Connect, and nothing staged for it
    // [H76] the descriptor must say how the data comes; in-capsule data must be exactly what it says;
    // where the controller walks the data pointer for a length of its own, the host must describe at least that.
    const want = cmd.dir === 0 || fabrics || this.discovery ? null : this.expectedLength(sqe);
    // (Dataset Management may carry more than its ranges: Linux sends one range in a whole page.)
    const atLeast = this.qid > 0 && opcode === 0x09;
    if (want !== null && (atLeast ? sglLen < want : sglLen !== want)) return this.respond(cmd, NVME_SC.dataSglLengthInvalid);
    if (cmd.dir === 0 || sglLen === 0) {
      if (inCapsule !== 0) return this.respond(cmd, NVME_SC.dataSglLengthInvalid);
    } else if (sglType === SGL_DATA_OFFSET) {
      if (cmd.dir !== 1 || inCapsule !== sglLen || sglLen > t.inCapsuleData || rd32(sqe, 24) !== 0 || rd32(sqe, 28) !== 0) return this.respond(cmd, NVME_SC.dataSglLengthInvalid);
    } else if (sglType === SGL_TRANSPORT) {
      if (inCapsule !== 0) return this.respond(cmd, NVME_SC.dataSglLengthInvalid);
    } else return this.respond(cmd, NVME_SC.sglDescriptorTypeInvalid);
    if (sglLen > 4096 * 2 ** t.controller.mdts) return this.respond(cmd, NVME_SC.invalidField);
    cmd.length = cmd.dir === 0 ? 0 : sglLen;
    if (fabrics || this.discovery) cmd.js = new Uint8Array(cmd.length);
    else if (cmd.length > 0) {
      // Staging is bounded: a host may not hold more commands in their data phase than its queue has slots.
      if (this.r2ts.size >= Math.max(this.slots.length, 32)) return this.respond(cmd, NVME_SC.internalError);
      try {
        this.stage(cmd);
      } catch {
        t.counters.stagingRefused++;
        return this.respond(cmd, NVME_SC.internalError); // out of staging pages: the host may retry (no DNR)
      }
      // Where the controller may write less than the host asked for, the rest must not be an old command's bytes.
      const core = t.controller.core;
      if (want === null && cmd.dir === 2) core.u8.fill(0, core.guestBase + cmd.gpa, core.guestBase + cmd.gpa + cmd.length);
    }
    if (cmd.dir === 1 && cmd.length > 0) {
      if (inCapsule > 0) {
        this.sink(cmd, 0, p.data);
        if (p.flags & DATA_DIGEST_FAILED) return this.dataDigestFailed(cmd);
      } else {
        this.askForData(cmd);
        return;
      }
    }
    this.dispatch(cmd);
  }

  /**
   * The data length a command needs, where the controller walks its data pointer for that many
   * bytes: a host that describes less would have the walk run past the staging ([H76]).
   * null: the controller reads no more than the descriptor gives.
   */
  private expectedLength(sqe: Uint8Array): number | null {
    const opcode = sqe[0]!;
    if (this.qid === 0) {
      if (opcode === 0x06) return 4096;
      if (opcode === 0x02) return (((rd32(sqe, 44) & 0xffff) * 65536 + (rd32(sqe, 40) >>> 16)) + 1) * 4;
      return null;
    }
    if (opcode === 0x01 || opcode === 0x02 || opcode === 0x05) {
      const ns = this.target.controller.namespace(rd32(sqe, 4));
      return ((rd32(sqe, 48) & 0xffff) + 1) * (ns?.blockSize ?? 1);
    }
    if (opcode === 0x09) return ((rd32(sqe, 40) & 0xff) + 1) * 16;
    return null;
  }

  /** Guest pages for a command's data, and the PRPs that describe them. */
  private stage(cmd: FabricCommand): void {
    const t = this.target;
    const pages = Math.ceil(cmd.length / PAGE);
    cmd.gpa = t.allocPages(pages);
    if (pages > 2) {
      try {
        cmd.listGpa = t.allocPages(Math.ceil((pages * 8) / (PAGE - 8)) + 1);
      } catch (e) {
        this.release(cmd);
        throw e;
      }
    }
  }

  private release(cmd: FabricCommand): void {
    const free = this.target.allocPages.free;
    if (cmd.gpa >= 0) free?.(cmd.gpa);
    if (cmd.listGpa >= 0) free?.(cmd.listGpa);
    cmd.gpa = cmd.listGpa = -1;
  }

  private sink(cmd: FabricCommand, offset: number, data: Uint8Array): void {
    if (cmd.js) cmd.js.set(data, offset);
    else {
      const core = this.target.controller.core;
      core.u8.set(data, core.guestBase + cmd.gpa + offset);
    }
  }

  private askForData(cmd: FabricCommand): void {
    let ttag = this.nextTtag;
    while (this.r2ts.has(ttag)) ttag = (ttag + 1) & 0xffff;
    this.nextTtag = (ttag + 1) & 0xffff;
    cmd.r2tEnd = Math.min(cmd.length, cmd.got + this.target.maxH2cData);
    this.r2ts.set(ttag, cmd);
    this.send(r2t(cmd.hostCid, ttag, cmd.got, cmd.r2tEnd - cmd.got, this.digests));
  }

  private h2cData(p: Pdu): void {
    const cccid = rd16(p.hdr, 8);
    const ttag = rd16(p.hdr, 10);
    const datao = rd32(p.hdr, 12);
    const datal = rd32(p.hdr, 16);
    const cmd = this.r2ts.get(ttag);
    // [H75] data nobody asked for; [H76] data outside the window the R2T asked for
    if (!cmd) throw new PduFault(FES.invalidHeaderField, 10, `H2CData for TTAG ${ttag}, which no R2T gave`, p.hdr);
    if (cmd.hostCid !== cccid) throw new PduFault(FES.invalidHeaderField, 8, `H2CData CCCID ${cccid} is not the R2T's`, p.hdr);
    if (datal !== p.data.length) throw new PduFault(FES.invalidHeaderField, 16, 'DATAL is not the data the PDU holds', p.hdr);
    if (datao !== cmd.got || datao + datal > cmd.r2tEnd) throw new PduFault(FES.dataOutOfRange, 12, `H2CData at ${datao}+${datal} is outside ${cmd.got}..${cmd.r2tEnd}`, p.hdr);
    this.sink(cmd, datao, p.data);
    cmd.got += datal;
    if (p.flags & DATA_DIGEST_FAILED) cmd.status = NVME_SC.transientTransportError;
    if (cmd.got < cmd.r2tEnd) return;
    this.r2ts.delete(ttag);
    if (cmd.got < cmd.length) return this.askForData(cmd);
    if (cmd.status !== 0) return this.dataDigestFailed(cmd);
    this.dispatch(cmd);
  }

  /** [H77] data that came with a bad digest is never used: the command fails with Transient Transport Error. */
  private dataDigestFailed(cmd: FabricCommand): void {
    this.target.counters.dataDigestErrors++;
    this.respond(cmd, NVME_SC.transientTransportError);
  }

  private dispatch(cmd: FabricCommand): void {
    const opcode = cmd.sqe[0]!;
    if (opcode === FABRICS) return this.fabrics(cmd);
    if (this.qid < 0) return this.respond(cmd, NVME_SC.commandSequenceError); // nothing but Connect before Connect
    if (this.discovery) return this.target.discovery.execute(this, cmd);
    if (this.qid === 0) {
      if (opcode === KEEP_ALIVE) return this.respond(cmd, 0);
      if (!ADMIN_ALLOWED.has(opcode) && opcode < 0xc0) return this.respond(cmd, NVME_SC.invalidOpcode);
    }
    this.submit(cmd);
  }

  // ---- the controller queue behind this connection ----

  /** Takes guest pages for an SQ and a CQ of `size` entries. */
  private makeQueue(qid: number, size: number): HostQueuePair {
    const t = this.target;
    const q = { qid, sq: t.allocPages(Math.ceil((size * 64) / PAGE)), cq: t.allocPages(Math.ceil((size * 16) / PAGE)), size, tail: 0, head: 0, phase: 1 };
    const core = t.controller.core;
    core.u8.fill(0, core.guestBase + q.cq, core.guestBase + q.cq + Math.ceil((size * 16) / PAGE) * PAGE);
    this.slots = new Array(size - 1).fill(null);
    this.free = Array.from({ length: size - 1 }, (_, i) => size - 2 - i);
    return q;
  }

  /** Writes the command into the SQ (its data pointer now PRPs to the staging pages) and rings. */
  submit(cmd: FabricCommand): void {
    const q = this.q;
    if (!q) return this.respond(cmd, NVME_SC.commandSequenceError);
    const slot = this.free.pop();
    if (slot === undefined) {
      this.backlog.push(cmd);
      return;
    }
    this.slots[slot] = cmd;
    const t = this.target;
    const core = t.controller.core;
    const sqe = cmd.sqe.slice();
    sqe[2] = slot;
    sqe[3] = slot >>> 8;
    if (!cmd.internal) this.describeStaging(cmd, sqe);
    putSqe(core.u8, core.guestBase, q, sqe);
    t.controller.mmioWrite(0x1000 + 8 * q.qid, 4, q.tail);
  }

  /** Replaces a host command's SGL with PRPs to its staging pages (or none). */
  private describeStaging(cmd: FabricCommand, sqe: Uint8Array): void {
    sqe[1] = sqe[1]! & 0x3f; // PSDT 00: PRPs
    let prp1: number | bigint = 0;
    let prp2: number | bigint = 0;
    if (cmd.length > 0) {
      const pages = Math.ceil(cmd.length / PAGE);
      prp1 = cmd.gpa;
      if (pages === 2) prp2 = cmd.gpa + PAGE;
      else if (pages > 2) {
        const lists = Math.ceil((pages * 8) / (PAGE - 8)) + 1;
        prp2 = buildPrp(this.target.controller.core, {
          addr: cmd.gpa, length: cmd.length, pages: Array.from({ length: pages - 1 }, (_, i) => cmd.gpa + (i + 1) * PAGE),
          listPages: Array.from({ length: lists }, (_, i) => cmd.listGpa + i * PAGE),
        }).prp2;
      }
    }
    const dv = new DataView(sqe.buffer);
    dv.setBigUint64(24, BigInt(prp1), true);
    dv.setBigUint64(32, BigInt(prp2), true);
  }

  /** Takes every new CQE of this connection's queue and answers the host for each. */
  reap(qid: number): void {
    const q = this.q;
    if (!q || q.qid !== qid) return;
    const core = this.target.controller.core;
    let n = 0;
    for (let at = takeCqe(core.u8, core.guestBase, q); at >= 0; at = takeCqe(core.u8, core.guestBase, q)) {
      const cqe = core.u8.slice(at, at + 16);
      n++;
      const slot = rd16(cqe, 12);
      const cmd = this.slots[slot];
      if (!cmd) continue;
      this.slots[slot] = null;
      this.free.push(slot);
      if (cmd.internal) cmd.internal(cqe);
      else this.completeFromController(cmd, cqe);
    }
    if (n === 0) return;
    this.target.controller.mmioWrite(0x1000 + 8 * q.qid + 4, 4, q.head);
    while (this.backlog.length > 0 && this.free.length > 0) this.submit(this.backlog.shift()!);
  }

  private completeFromController(cmd: FabricCommand, cqe: Uint8Array): void {
    const status = (rd16(cqe, 14) >> 1) & 0x7fff;
    if (status === 0 && cmd.dir === 2 && cmd.length > 0) {
      const core = this.target.controller.core;
      this.sendData(cmd, core.u8.subarray(core.guestBase + cmd.gpa, core.guestBase + cmd.gpa + cmd.length));
    }
    this.release(cmd);
    cqe[10] = this.qid;
    cqe[11] = this.qid >>> 8;
    cqe[12] = cmd.hostCid;
    cqe[13] = cmd.hostCid >>> 8;
    cqe[14] &= 0xfe;
    this.send(capsuleResp(cqe, this.digests));
  }

  /** A command the target sends itself on this (admin) queue. */
  internal(sqe: Uint8Array, done: (status: number) => void): void {
    const cmd: FabricCommand = { hostCid: 0, sqe, length: 0, dir: 0, gpa: -1, listGpa: -1, js: null, got: 0, r2tEnd: 0, status: 0, internal: (cqe) => done((rd16(cqe, 14) >> 1) & 0x7fff) };
    this.submit(cmd);
  }

  // ---- responses ----

  private sendData(cmd: FabricCommand, data: Uint8Array): void {
    this.send(c2hData(cmd.hostCid, 0, data.length, true, this.digests));
    this.send(Buffer.from(data)); // a copy: the staging pages are reused once the response is out
    if (this.digests.data) this.send(dataDigest(data));
  }

  /** Answers a command the target handled itself, with its data first when it has any. */
  respond(cmd: FabricCommand, status: number, dw0 = 0, dw1 = 0, data?: Uint8Array): void {
    if (status === 0 && data && cmd.length > 0) {
      const out = new Uint8Array(cmd.length); // exactly what the host asked for: the data, then zeros
      out.set(data.subarray(0, cmd.length));
      this.sendData(cmd, out);
    }
    this.release(cmd);
    const cqe = new Uint8Array(16);
    const dv = new DataView(cqe.buffer);
    dv.setUint32(0, dw0 >>> 0, true);
    dv.setUint32(4, dw1 >>> 0, true);
    dv.setUint16(10, Math.max(this.qid, 0), true);
    dv.setUint16(12, cmd.hostCid, true);
    dv.setUint16(14, (status & 0x7fff) << 1, true);
    this.send(capsuleResp(cqe, this.digests));
  }

  private send(b: Uint8Array): void {
    if (this.state === 'closed') return;
    this.target.counters.bytesOut += b.length;
    this.socket.write(b);
  }

  // ---- fabrics commands ----

  private fabrics(cmd: FabricCommand): void {
    const sqe = cmd.sqe;
    const fctype = sqe[4]!;
    if (fctype === FCTYPE.connect) return this.connect(cmd);
    if (this.qid < 0) return this.respond(cmd, NVME_SC.commandSequenceError);
    if (fctype === FCTYPE.disconnect) return this.respond(cmd, 0);
    if (fctype === FCTYPE.propertyGet || fctype === FCTYPE.propertySet) {
      if (this.qid !== 0) return this.respond(cmd, NVME_SC.invalidField);
      const size = (sqe[40]! & 7) === 1 ? 8 : 4;
      const offset = rd32(sqe, 44);
      if (this.discovery) return this.target.discovery.property(this, cmd, fctype === FCTYPE.propertySet, offset, size, rd32(sqe, 48));
      const ctrl = this.target.controller;
      if (fctype === FCTYPE.propertySet) {
        if (offset !== 0x14 || size !== 4) return this.respond(cmd, NVME_SC.invalidField); // CC is the only property a host sets
        ctrl.mmioWrite(0x14, 4, rd32(sqe, 48));
        return this.respond(cmd, 0);
      }
      if (![0x00, 0x08, 0x14, 0x1c].includes(offset) || (offset === 0 ? size !== 8 : size !== 4)) return this.respond(cmd, NVME_SC.invalidField);
      const v = BigInt(ctrl.mmioRead(offset, size));
      return this.respond(cmd, 0, Number(v & 0xffff_ffffn), Number(v >> 32n));
    }
    this.respond(cmd, NVME_SC.invalidOpcode);
  }

  /**
   * Fabrics Connect ([H78]): the subsystem, the host, the controller id and the queue are checked
   * before anything is allocated; a refusal says which field (dw0: offset, bit 16 set for a
   * Connect data field, as Linux's host and target lay it out).
   */
  private connect(cmd: FabricCommand): void {
    const t = this.target;
    const sqe = cmd.sqe;
    const data = cmd.js!;
    const refuse = (status: number, dw0 = 0) => {
      t.counters.connectRefused++;
      this.respond(cmd, status, dw0);
    };
    const inData = (offset: number) => (1 << 16) | offset;
    if (this.qid >= 0) return refuse(NVME_SC.commandSequenceError);
    if (rd16(sqe, 40) !== 0) return refuse(NVME_SC.incompatibleFormat);
    if (data.length < 1024) return refuse(NVME_SC.dataSglLengthInvalid);
    const qid = rd16(sqe, 42);
    const sqsize = rd16(sqe, 44);
    const kato = rd32(sqe, 48);
    const cntlid = rd16(data, 16);
    const subnqn = str(data, 256, 256);
    const hostnqn = str(data, 512, 256);
    if (subnqn === DISCOVERY_NQN) {
      if (qid !== 0) return refuse(NVME_SC.connectInvalidParameters, 42);
      this.discovery = true;
      this.qid = 0;
      return this.respond(cmd, 0, 0xffff);
    }
    if (subnqn !== t.subnqn) return refuse(NVME_SC.connectInvalidParameters, inData(256));
    if (!t.hostAllowed(hostnqn)) return refuse(NVME_SC.connectInvalidHost);
    if (sqsize < 1 || sqsize + 1 > t.controller.maxQueueEntries) return refuse(NVME_SC.connectInvalidParameters, 44);
    const ctrl = t.controller;
    if (qid === 0) {
      if (cntlid !== 0xffff) return refuse(NVME_SC.connectInvalidParameters, inData(16)); // the dynamic controller model
      if (sqsize + 1 > 4096) return refuse(NVME_SC.connectInvalidParameters, 44); // AQA holds 12 bits
      const a = t.associate(this, hostnqn, kato);
      if (typeof a === 'number') return refuse(a);
      this.assoc = a;
      this.qid = 0;
      this.q = this.makeQueue(0, sqsize + 1);
      ctrl.mmioWrite(0x14, 4, 0);
      ctrl.mmioWrite(0x24, 4, (sqsize << 16) | sqsize);
      ctrl.mmioWrite(0x28, 8, BigInt(this.q.sq));
      ctrl.mmioWrite(0x30, 8, BigInt(this.q.cq));
      t.owners.set(0, this);
      return this.respond(cmd, 0, a.cntlid);
    }
    const a = t.association;
    if (!a || a.cntlid !== cntlid || a.hostnqn !== hostnqn) return refuse(NVME_SC.connectInvalidParameters, inData(16));
    if (qid > ctrl.maxIoQueues || a.io.has(qid)) return refuse(NVME_SC.connectInvalidParameters, 42);
    if (!ctrl.ready) return refuse(NVME_SC.commandSequenceError);
    const q = this.makeQueue(qid, sqsize + 1);
    const admin = a.admin;
    const cdw10 = (sqsize << 16) | qid;
    const createCq = new Uint8Array(64);
    createCq[0] = 0x05;
    const dv = new DataView(createCq.buffer);
    dv.setBigUint64(24, BigInt(q.cq), true);
    dv.setUint32(40, cdw10, true);
    dv.setUint32(44, (qid << 16) | 3, true); // vector qid, interrupts enabled, physically contiguous
    const createSq = new Uint8Array(64);
    createSq[0] = 0x01;
    const sv = new DataView(createSq.buffer);
    sv.setBigUint64(24, BigInt(q.sq), true);
    sv.setUint32(40, cdw10, true);
    sv.setUint32(44, (qid << 16) | 1, true); // bound to CQ qid, physically contiguous
    const fail = (status: number) => {
      this.freeQueue(q);
      refuse(NVME_SC.connectInvalidParameters, (status & 0xff) === 0x02 ? 44 : 42);
    };
    this.qid = qid; // Connect accepted so far: further capsules wait behind it
    admin.internal(createCq, (st) => {
      if (st !== 0) return fail(st);
      admin.internal(createSq, (st2) => {
        if (st2 !== 0) return fail(st2);
        if (this.state === 'closed' || t.association !== a) return;
        this.q = q;
        this.assoc = a;
        a.io.set(qid, this);
        t.owners.set(qid, this);
        this.respond(cmd, 0, a.cntlid);
      });
    });
  }

  private freeQueue(q: HostQueuePair): void {
    this.target.allocPages.free?.(q.sq);
    this.target.allocPages.free?.(q.cq);
    this.qid = -1;
  }

  // ---- ending ----

  /** [H74] [H75] [H77] ends the connection with a C2HTermReq naming the fault. */
  private terminate(fes: number, fei: number, header: Uint8Array): void {
    if (this.state === 'closed') return;
    this.target.counters.terminated++;
    this.send(c2hTermReq(fes, fei, header));
    this.socket.end();
    this.shutdown();
  }

  /**
   * Stops serving: staging of commands not yet in the controller goes back (a command inside it
   * keeps its pages: an asynchronous backend may still write them); an I/O queue is deleted from
   * the controller; an admin queue ends the association.
   */
  shutdown(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (!this.socket.destroyed) this.socket.end();
    for (const c of [...this.backlog, ...this.r2ts.values()]) this.release(c);
    this.backlog = [];
    this.r2ts.clear();
    const t = this.target;
    const a = this.assoc;
    const q = this.q;
    if (a && t.association === a && a.admin !== this) {
      if (!q || a.io.get(q.qid) !== this) return;
      a.io.delete(q.qid);
      t.owners.delete(q.qid);
      // The controller forgets the queue pair; its pages go back once it has.
      const del = (opcode: number) => {
        const b = new Uint8Array(64);
        b[0] = opcode;
        b[40] = q.qid;
        b[41] = q.qid >>> 8;
        return b;
      };
      a.admin.internal(del(0x00), () => a.admin.internal(del(0x04), () => {
        t.allocPages.free?.(q.sq);
        t.allocPages.free?.(q.cq);
      }));
      return;
    }
    if (a && t.association === a) t.endAssociation(a); // the admin queue: the controller is reset
    if (q) {
      t.allocPages.free?.(q.sq);
      t.allocPages.free?.(q.cq);
      this.q = null;
    }
  }
}
