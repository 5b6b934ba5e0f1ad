// A minimal NVMe host for the controller tests: queues laid out in guest memory, SQEs written
// there, doorbells rung through mmioWrite, CQEs reaped by phase tag, as a driver does. The real
// driver is NvmeDriver (its own issue); this one stays small so each test can misbehave freely.
import { Iommu, loadCoreSync, MemoryDisk, NvmeController, type BlockBackend, type Core, type IommuDomain, type TapRegistry } from '../../src/index';

export const PAGE = 4096;

export interface Cqe { cdw0: number; sqhd: number; sqid: number; cid: number; status: number; phase: number }

export class Host {
  readonly core: Core;
  readonly dma: IommuDomain;
  readonly disk: MemoryDisk;
  readonly ctrl: NvmeController;
  readonly interrupts: number[] = [];
  private next = 0x10_0000; // guest page allocator (bump)
  readonly queues = new Map<number, { sq: number; cq: number; size: number; tail: number; head: number; phase: number; cqsize: number }>();
  private cid = 0;

  /** `wrap`: the namespace's backend made from the memory disk (default: the disk itself). */
  constructor(o: { taps?: TapRegistry; blocks?: number; maxQueues?: number; readOnly?: boolean; processOnDoorbell?: boolean; wrap?: (disk: MemoryDisk) => BlockBackend } = {}) {
    this.core = loadCoreSync({ guestBytes: 32 << 20 });
    this.dma = new Iommu(this.core).domain('nvme0', { windows: [{ gpa: 0x1f0_0000, len: 0x4000 }] }); // BAR0: never DMA-able
    this.dma.map(0x10_0000, 0x100_0000); // 16 MiB the driver grants the device
    this.disk = MemoryDisk.create(this.core, { blockCount: o.blocks ?? 8192, readOnly: o.readOnly });
    this.ctrl = new NvmeController(this.core, {
      dma: this.dma, namespaces: [{ backend: o.wrap ? o.wrap(this.disk) : this.disk }], taps: o.taps, maxQueues: o.maxQueues ?? 4,
      onInterrupt: (v) => this.interrupts.push(v), processOnDoorbell: o.processOnDoorbell,
    });
  }

  pages(n: number): number {
    const gpa = this.next;
    this.next += n * PAGE;
    this.core.u8.fill(0, this.core.guestBase + gpa, this.core.guestBase + gpa + n * PAGE);
    return gpa;
  }

  w32(off: number, v: number) { this.ctrl.mmioWrite(off, 4, v); }
  r32(off: number) { return this.ctrl.mmioRead(off, 4) as number; }

  /** Admin queues of `size` entries, then CC.EN; returns CSTS. */
  enable(size = 32, cc = 0x00460001): number {
    const asq = this.pages(1);
    const acq = this.pages(1);
    this.queues.set(0, { sq: asq, cq: acq, size, tail: 0, head: 0, phase: 1, cqsize: size });
    this.w32(0x24, ((size - 1) << 16) | (size - 1));
    this.ctrl.mmioWrite(0x28, 8, BigInt(asq));
    this.ctrl.mmioWrite(0x30, 8, BigInt(acq));
    this.w32(0x14, cc);
    return this.r32(0x1c);
  }

  sqe(opcode: number, nsid = 0, cdw: Record<number, number> = {}, prp1 = 0, prp2 = 0): Uint8Array {
    const b = new Uint8Array(64);
    const dv = new DataView(b.buffer);
    b[0] = opcode;
    dv.setUint16(2, ++this.cid & 0xffff, true);
    dv.setUint32(4, nsid, true);
    dv.setBigUint64(24, BigInt(prp1), true);
    dv.setBigUint64(32, BigInt(prp2), true);
    for (const [i, v] of Object.entries(cdw)) dv.setUint32(4 * Number(i), v >>> 0, true);
    return b;
  }

  /** Writes SQEs at the tail of queue `qid` and rings its doorbell once. */
  submit(qid: number, ...sqes: Uint8Array[]): number[] {
    const q = this.queues.get(qid)!;
    const cids: number[] = [];
    for (const s of sqes) {
      this.core.u8.set(s, this.core.guestBase + q.sq + q.tail * 64);
      cids.push(new DataView(s.buffer).getUint16(2, true));
      q.tail = (q.tail + 1) % q.size;
    }
    this.w32(0x1000 + 8 * qid, q.tail);
    return cids;
  }

  /** Every CQE whose phase says it is new, and the head doorbell once. */
  reap(qid: number, ringHead = true): Cqe[] {
    const q = this.queues.get(qid)!;
    const out: Cqe[] = [];
    const dv = this.core.dv;
    for (;;) {
      const at = this.core.guestBase + q.cq + q.head * 16;
      const st = dv.getUint16(at + 14, true);
      if ((st & 1) !== q.phase) break;
      out.push({ cdw0: dv.getUint32(at, true), sqhd: dv.getUint16(at + 8, true), sqid: dv.getUint16(at + 10, true), cid: dv.getUint16(at + 12, true), status: st >> 1, phase: st & 1 });
      q.head = (q.head + 1) % q.cqsize;
      if (q.head === 0) q.phase ^= 1;
    }
    if (ringHead && out.length > 0) this.w32(0x1000 + 8 * qid + 4, q.head);
    return out;
  }

  /** One admin or I/O command, run to completion (the controller runs on the doorbell). */
  async cmd(qid: number, sqe: Uint8Array): Promise<Cqe> {
    const [cid] = this.submit(qid, sqe);
    for (let i = 0; i < 1000; i++) {
      const got = this.reap(qid);
      const mine = got.find((c) => c.cid === cid);
      if (mine) return mine;
      await new Promise((r) => setTimeout(r, 0));
    }
    throw new Error(`command ${cid} on queue ${qid} never completed`);
  }

  /** Create I/O CQ + SQ `qid` of `size` entries (interrupts on vector qid). */
  async createQueuePair(qid: number, size = 64): Promise<[Cqe, Cqe]> {
    const cq = this.pages(Math.ceil((size * 16) / PAGE));
    const sq = this.pages(Math.ceil((size * 64) / PAGE));
    this.queues.set(qid, { sq, cq, size, tail: 0, head: 0, phase: 1, cqsize: size });
    const a = await this.cmd(0, this.sqe(0x05, 0, { 10: ((size - 1) << 16) | qid, 11: (qid << 16) | 3 }, cq));
    const b = await this.cmd(0, this.sqe(0x01, 0, { 10: ((size - 1) << 16) | qid, 11: (qid << 16) | 1 }, sq));
    return [a, b];
  }

  /** A data buffer of `pages` guest pages and a PRP1/PRP2 (with a list page when needed) for `bytes` at `offset`. */
  buffer(bytes: number, offset = 0): { gpa: number; prp1: number; prp2: number } {
    const pages = Math.ceil((offset + bytes) / PAGE);
    const gpa = this.pages(pages);
    const prp1 = gpa + offset;
    if (pages === 1) return { gpa, prp1, prp2: 0 };
    if (pages === 2) return { gpa, prp1, prp2: gpa + PAGE };
    const list = this.pages(1);
    for (let i = 1; i < pages; i++) this.core.dv.setBigUint64(this.core.guestBase + list + 8 * (i - 1), BigInt(gpa + i * PAGE), true);
    return { gpa, prp1, prp2: list };
  }

  guest(gpa: number, n: number): Uint8Array {
    return this.core.u8.subarray(this.core.guestBase + gpa, this.core.guestBase + gpa + n);
  }

  read = (nsid: number, lba: number, blocks: number, prp1: number, prp2: number) => this.sqe(0x02, nsid, { 10: lba, 11: 0, 12: blocks - 1 }, prp1, prp2);
  write = (nsid: number, lba: number, blocks: number, prp1: number, prp2: number) => this.sqe(0x01, nsid, { 10: lba, 11: 0, 12: blocks - 1 }, prp1, prp2);
}

export const sc = (status: number) => status & 0xff;
export const sct = (status: number) => (status >> 8) & 7;
