// The admin command set (spec/nvme.md §2.1, §5, §6.3): Identify, Create / Delete I/O SQ and CQ
// with every status a driver can provoke, Get / Set Features, Get Log Page, Abort and
// Asynchronous Event Request. Returns null for an AER, which completes later.

import { fail, ok, type Command, type Result } from './command';
import { activeNamespaces, firmwareLog, identifyController, identifyNamespace, namespaceDescriptors, smartLog } from './identify';
import { NVME_SC } from './status';
import type { ControllerContext } from './context';

const OPC = {
  deleteSq: 0x00, createSq: 0x01, getLogPage: 0x02, deleteCq: 0x04, createCq: 0x05, identify: 0x06,
  abort: 0x08, setFeatures: 0x09, getFeatures: 0x0a, asyncEvent: 0x0c,
} as const;

const FID = { arbitration: 0x01, powerManagement: 0x02, temperature: 0x04, volatileWriteCache: 0x06, numberOfQueues: 0x07, interruptCoalescing: 0x08, asyncEventConfig: 0x0b } as const;

export function executeAdmin(ctrl: ControllerContext, c: Command): Result | null {
  switch (c.opcode) {
    case OPC.identify: return identify(ctrl, c);
    case OPC.createCq: return createCq(ctrl, c);
    case OPC.createSq: return createSq(ctrl, c);
    case OPC.deleteSq: return deleteSq(ctrl, c);
    case OPC.deleteCq: return deleteCq(ctrl, c);
    case OPC.getFeatures: return getFeatures(ctrl, c);
    case OPC.setFeatures: return setFeatures(ctrl, c);
    case OPC.getLogPage: return getLogPage(ctrl, c);
    case OPC.abort: return ok(1); // bit 0 set: not aborted (commands here finish before an abort can reach them)
    case OPC.asyncEvent: return ctrl.queueAer(c);
    default: return fail(NVME_SC.invalidOpcode);
  }
}

/**
 * Copies `data` from `offset` to the command's data pointer: exactly min(length, size - offset)
 * bytes, the rest of the host's buffer untouched (bhyve wrote past it: nvme.md §6.6 #10, §6.7).
 */
function reply(ctrl: ControllerContext, c: Command, data: Uint8Array, length = 4096, offset = 0): Result {
  if (offset >= data.length && data.length > 0) return fail(NVME_SC.invalidField); // spec §3.7 item 55, QEMU CVE-2021-3947
  const segs = ctrl.dataSegments(c, length);
  if (typeof segs === 'number') return fail(segs);
  const out = data.slice(offset, offset + Math.min(length, data.length - offset));
  const st = ctrl.toHost(segs, out);
  return st === 0 ? { status: 0, cdw0: 0, data: out } : fail(st);
}

function identify(ctrl: ControllerContext, c: Command): Result {
  const cns = c.cdw(10) & 0xff;
  if (cns === 1) return reply(ctrl, c, identifyController(ctrl.identity()));
  if (cns === 0) {
    const disk = ctrl.namespace(c.nsid);
    return disk ? reply(ctrl, c, identifyNamespace(disk)) : fail(NVME_SC.invalidNamespace);
  }
  if (cns === 2) return c.nsid >= 0xfffffffe ? fail(NVME_SC.invalidNamespace) : reply(ctrl, c, activeNamespaces(ctrl.namespaceCount, c.nsid));
  if (cns === 3) return ctrl.namespace(c.nsid) ? reply(ctrl, c, namespaceDescriptors(ctrl.identity().serial, c.nsid)) : fail(NVME_SC.invalidNamespace);
  return fail(NVME_SC.invalidField);
}

/** QID (CDW10 15:0), QSIZE (31:16, 0's based) and the ring address (PRP1), checked in the spec's order. */
function queueArgs(ctrl: ControllerContext, c: Command): { qid: number; size: number; gpa: number } | number {
  const qid = c.cdw(10) & 0xffff;
  const size = (c.cdw(10) >>> 16) + 1;
  const prp1 = c.dv.getBigUint64(24, true);
  if (qid === 0 || qid > ctrl.maxIoQueues) return NVME_SC.invalidQueueId;
  if (size < 2 || size > ctrl.maxQueueEntries) return NVME_SC.invalidQueueSize;
  if ((c.cdw(11) & 1) === 0) return NVME_SC.invalidField; // physically contiguous required (CAP.CQR)
  if ((prp1 & 0xfffn) !== 0n || prp1 > BigInt(Number.MAX_SAFE_INTEGER)) return NVME_SC.invalidField;
  return { qid, size, gpa: Number(prp1) };
}

function createCq(ctrl: ControllerContext, c: Command): Result {
  const a = queueArgs(ctrl, c);
  if (typeof a === 'number') return fail(a);
  if (ctrl.cqs.has(a.qid)) return fail(NVME_SC.invalidQueueId);
  const ien = (c.cdw(11) & 2) !== 0;
  const vector = c.cdw(11) >>> 16;
  if (vector >= ctrl.vectors) return fail(NVME_SC.invalidInterruptVector);
  const st = ctrl.checkRing(a.gpa, a.size * 16);
  if (st !== 0) return fail(st);
  ctrl.cqs.set(a.qid, { id: a.qid, gpa: a.gpa, size: a.size, ien, vector, tail: 0, head: 0, phase: 1, sqs: 0, held: [], laneWaiting: 0 });
  return ok();
}

function createSq(ctrl: ControllerContext, c: Command): Result {
  const a = queueArgs(ctrl, c);
  if (typeof a === 'number') return fail(a);
  if (ctrl.sqs.has(a.qid)) return fail(NVME_SC.invalidQueueId);
  const cqid = c.cdw(11) >>> 16;
  const cq = ctrl.cqs.get(cqid);
  if (cqid === 0 || !cq) return fail(NVME_SC.completionQueueInvalid);
  const st = ctrl.checkRing(a.gpa, a.size * 64);
  if (st !== 0) return fail(st);
  ctrl.sqs.set(a.qid, { id: a.qid, gpa: a.gpa, size: a.size, cqid, head: 0, tail: 0 });
  cq.sqs++;
  return ok();
}

function deleteSq(ctrl: ControllerContext, c: Command): Result {
  const qid = c.cdw(10) & 0xffff;
  const sq = ctrl.sqs.get(qid);
  if (qid === 0 || !sq) return fail(NVME_SC.invalidQueueId);
  ctrl.sqs.delete(qid);
  const cq = ctrl.cqs.get(sq.cqid);
  if (cq) cq.sqs--;
  return ok();
}

function deleteCq(ctrl: ControllerContext, c: Command): Result {
  const qid = c.cdw(10) & 0xffff;
  const cq = ctrl.cqs.get(qid);
  if (qid === 0 || !cq) return fail(NVME_SC.invalidQueueId);
  if (cq.sqs > 0) return fail(NVME_SC.invalidQueueDeletion);
  ctrl.cqs.delete(qid);
  return ok();
}

function getFeatures(ctrl: ControllerContext, c: Command): Result {
  const fid = c.cdw(10) & 0xff;
  const v = ctrl.features.get(fid);
  if (v === undefined) return fail(NVME_SC.invalidField);
  return ok(v);
}

function setFeatures(ctrl: ControllerContext, c: Command): Result {
  const fid = c.cdw(10) & 0xff;
  if ((c.cdw(10) >>> 31) !== 0) return fail(NVME_SC.featureNotSaveable);
  const v = c.cdw(11);
  switch (fid) {
    case FID.numberOfQueues: {
      // Requested counts are 0's based; 0xFFFF is invalid. The answer is what the controller has,
      // and it is given once per reset: asking again is a Command Sequence Error (nvme.md §6.6 #23).
      if ((v & 0xffff) === 0xffff || v >>> 16 === 0xffff) return fail(NVME_SC.invalidField);
      if (ctrl.features.has(QUEUES_SET)) return fail(NVME_SC.commandSequenceError);
      ctrl.features.set(QUEUES_SET, 1);
      const n = ctrl.maxIoQueues - 1;
      const answer = (n << 16) | n;
      ctrl.features.set(fid, answer);
      return ok(answer);
    }
    case FID.volatileWriteCache:
      ctrl.features.set(fid, v & 1);
      return ok(v & 1);
    case FID.arbitration:
    case FID.powerManagement:
    case FID.temperature:
    case FID.interruptCoalescing:
    case FID.asyncEventConfig:
      ctrl.features.set(fid, v);
      return ok(v);
    default:
      return fail(NVME_SC.invalidField);
  }
}

function getLogPage(ctrl: ControllerContext, c: Command): Result {
  const lid = c.cdw(10) & 0xff;
  const dwords = ((c.cdw(11) & 0xffff) * 65536 + (c.cdw(10) >>> 16)) + 1;
  const offset = (BigInt(c.cdw(13)) << 32n) | BigInt(c.cdw(12));
  const length = dwords * 4;
  if (length > 1 << 20) return fail(NVME_SC.invalidField);
  let page: Uint8Array;
  if (lid === 0x01) page = ctrl.errorLog();
  else if (lid === 0x02) page = smartLog(ctrl.health, ctrl.namespace(1)?.blockSize ?? 512);
  else if (lid === 0x03) page = firmwareLog(ctrl.identity().firmware);
  else return fail(NVME_SC.invalidLogPage);
  if (offset >= BigInt(page.length)) return fail(NVME_SC.invalidField);
  return reply(ctrl, c, page, length, Number(offset));
}

/** A pseudo feature id marking that Number of Queues was set since the last reset. */
const QUEUES_SET = 0x10007;

export { FID };
