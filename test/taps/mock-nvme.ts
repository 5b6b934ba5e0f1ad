// A small NVMe-shaped block device for the tap and trace tests (the real controller is its own
// issue): it declares the four pipeline stages of spec/nvme.md §7.2, runs each 64-byte SQE
// through decode taps, executes Read / Write / Flush on an in-memory disk (and answers an
// unknown admin opcode with Invalid Opcode), then through writeback taps, exactly as a device
// uses the registry: one branch per stage when nothing is attached.
import { nvmeTcpEncoder, type DeviceStatuses, type StagePoint, type TapRegistry } from '../../src/index';

export const NVME_STATUS: DeviceStatuses = {
  success: 0,
  readOnly: 0x0182 | 0x4000, // SCT 1, SC 0x82 Attempted Write to Read Only Range, DNR
  mediaError: 0x0281, // SCT 2, SC 0x81 Unrecovered Read Error
  internal: 0x0006, // Internal Error
};
const INVALID_OPCODE = 0x0001 | 0x4000;
export const BLOCK = 512;

export interface Done {
  status: number;
  cdw0: number;
  data: Uint8Array | null;
  /** How the request ended: completed, dropped by a tap, or failed by a tap that threw. */
  end: 'completed' | 'dropped' | 'tap-error';
  error?: unknown;
}

export function sqe(opcode: number, cid: number, nsid: number, cdw: Record<number, number> = {}): Uint8Array {
  const b = new Uint8Array(64);
  const dv = new DataView(b.buffer);
  b[0] = opcode;
  dv.setUint16(2, cid, true);
  dv.setUint32(4, nsid, true);
  for (const [i, v] of Object.entries(cdw)) dv.setUint32(4 * Number(i), v >>> 0, true);
  return b;
}

export const readCmd = (cid: number, lba: number, blocks: number) => sqe(0x02, cid, 1, { 10: lba, 11: 0, 12: blocks - 1 });
export const writeCmd = (cid: number, lba: number, blocks: number) => sqe(0x01, cid, 1, { 10: lba, 11: 0, 12: blocks - 1 });

export class MockNvme {
  readonly disk: Uint8Array;
  private readonly admin: [StagePoint, StagePoint];
  private readonly io: [StagePoint, StagePoint];
  private clock = 1_700_000_000_000_000_000n;
  /** What the model did, per request, for comparison with what tshark decodes. */
  readonly log: { qid: number; cid: number; opcode: number; nsid: number; slba?: number; nlb?: number; status: number; cdw0: number }[] = [];

  constructor(readonly taps: TapRegistry, readonly name = 'nvme0', blocks = 1024) {
    this.disk = new Uint8Array(blocks * BLOCK);
    const [ad, aw, id, iw] = taps.declare(name, [
      { name: 'nvme:admin:decode', description: 'admin SQE fetched, before execution' },
      { name: 'nvme:admin:writeback', description: 'admin CQE about to be posted' },
      { name: 'nvme:io:decode', description: 'I/O SQE fetched, before execution' },
      { name: 'nvme:io:writeback', description: 'I/O CQE about to be posted' },
    ], { encoder: nvmeTcpEncoder });
    this.admin = [ad!, aw!];
    this.io = [id!, iw!];
  }

  async submit(qid: number, cmd: Uint8Array, data: Uint8Array | null = null): Promise<Done> {
    const [decode, writeback] = qid === 0 ? this.admin : this.io;
    const dv = new DataView(cmd.buffer, cmd.byteOffset, 64);
    const opcode = cmd[0]!;
    const cid = dv.getUint16(2, true);
    const nsid = dv.getUint32(4, true);
    const lba = dv.getUint32(40, true);
    const blocks = (dv.getUint16(48, true) + 1);
    const kind = qid === 0 ? 'admin' : opcode === 0x01 ? 'write' : opcode === 0x02 ? 'read' : opcode === 0x00 ? 'flush' : 'other';
    const completion = { status: 0, cdw0: 0 };
    const event = (timeNs: bigint, d: Uint8Array | null) => ({
      device: this.name, queue: qid, io: { kind, opcode, lba: BigInt(lba), blocks } as const, command: cmd, completion,
      data: d ? [d] : null, statuses: NVME_STATUS, request: `${qid}:${cid}`, timeNs, detail: { transferBytes: kind === 'read' || kind === 'write' ? blocks * BLOCK : 0 },
    });
    let handled = false;
    if (decode.taps !== null) {
      const o = this.taps.run(decode, event(this.tick(), kind === 'write' ? data : null));
      if (o.error) return { status: NVME_STATUS.internal, cdw0: 0, data: null, end: 'tap-error', error: o.error };
      if (o.wait) await o.wait;
      if (o.action === 'drop') return { status: -1, cdw0: 0, data: null, end: 'dropped' };
      handled = o.action === 'complete';
    }
    let out: Uint8Array | null = null;
    if (!handled) {
      if (kind === 'write') this.disk.set(data!.subarray(0, blocks * BLOCK), lba * BLOCK);
      else if (kind === 'read') out = this.disk.slice(lba * BLOCK, (lba + blocks) * BLOCK);
      else if (kind === 'admin') completion.status = INVALID_OPCODE;
    }
    if (writeback.taps !== null) {
      const o = this.taps.run(writeback, event(this.tick(), out));
      if (o.error) return { status: NVME_STATUS.internal, cdw0: 0, data: null, end: 'tap-error', error: o.error };
      if (o.wait) await o.wait;
      if (o.action === 'drop') return { status: -1, cdw0: 0, data: null, end: 'dropped' };
    }
    this.log.push({ qid, cid, opcode, nsid, ...(kind === 'read' || kind === 'write' ? { slba: lba, nlb: blocks - 1 } : {}), status: completion.status, cdw0: completion.cdw0 });
    return { status: completion.status, cdw0: completion.cdw0, data: out, end: 'completed' };
  }

  private tick(): bigint {
    this.clock += 25_000n; // 25 µs of virtual time per stage
    return this.clock;
  }
}
