// The PRP/SGL façade on both engines: status decoding, option checking (SgringError for the
// caller's mistakes), address forms (number, bigint), the batch classes' resumption and
// per-command errors, and the raw status encoding the engines share.
import { describe, expect, it } from 'vitest';
import {
  buildPrp, constants, decodeNvmeStatus, isNvmeStatus, NvmeBuildBatch, NvmeWalkBatch, prpEntryCount, walkPrp,
  walkSgl,
} from '../../src/index';
import { ENGINES, guestCore, MiB, putU64, segmentsOf, statusOf } from './prp-helpers';
import { codeOf } from '../util/errors';

const K4 = 4096;

describe('NVMe status encoding', () => {
  it('packs reason, DNR, SCT and SC below -65535 and decodes them back', () => {
    const v = -((constants.NVME_WHY_ENTRY_ALIGN << 16) | constants.NVME_DNR | constants.NVME_SC_PRP_OFFSET_INVALID);
    expect(isNvmeStatus(v)).toBe(true);
    expect(isNvmeStatus(-99)).toBe(false);
    expect(decodeNvmeStatus(v)).toEqual({ sct: 0, sc: 0x13, dnr: true, field: 0x4013, name: 'PrpOffsetInvalid', reason: 'ListEntryNotPageAligned' });
    // field << 1 | phase is the CQE status half-word (spec §2.2).
    expect((decodeNvmeStatus(v).field << 1) | 1).toBe(0x8027);
  });

  it('counts PRP entries as spec §3.1 rule 10 does', () => {
    expect([prpEntryCount(0, 0), prpEntryCount(512, 0x400), prpEntryCount(8192, 0), prpEntryCount(8192, 0x800), prpEntryCount(2 * MiB, 0x200)]).toEqual([0, 1, 2, 3, 513]);
    expect(prpEntryCount(3 * 65536, 4, 65536)).toBe(4);
  });
});

describe.each(ENGINES)('PRP / SGL façade (%s)', (engine) => {
  const c = guestCore(engine, 8 * MiB);

  it('throws SgringError for the caller\'s mistakes, never for a hostile data pointer', () => {
    expect(codeOf(() => walkPrp(c, { prp1: 0, prp2: 0, length: 1, mps: 2048 }))).toBe('NvmeInvalidConfig');
    expect(codeOf(() => walkPrp(c, { prp1: 0, prp2: 0, length: 1, mps: 12288 }))).toBe('NvmeInvalidConfig');
    expect(codeOf(() => walkPrp(c, { prp1: 0, prp2: 0, length: -1 }))).toBe('InvalidArgument');
    expect(codeOf(() => walkPrp(c, { prp1: 2 ** 53, prp2: 0, length: 1 }))).toBe('InvalidArgument');
    expect(codeOf(() => walkPrp(c, { prp1: -1n, prp2: 0, length: 1 }))).toBe('InvalidArgument');
    expect(codeOf(() => walkPrp(c, { prp1: 0, prp2: 0, length: 1, maxMappings: 0 }))).toBe('InvalidArgument');
    expect(codeOf(() => buildPrp(c, { addr: 0x1000, length: 3 * K4, pages: [0x5000] }))).toBe('InvalidArgument');
    expect(codeOf(() => walkSgl(c, { sgl1: new Uint8Array(8), length: 1 }))).toBe('InvalidArgument');
    // Hostile 64-bit values are results, not exceptions.
    expect(statusOf(walkPrp(c, { prp1: 2n ** 64n - 4n, prp2: 2n ** 64n - 8n, length: 100 })).name).toBe('DataTransferError');
  });

  it('takes addresses as numbers or bigints and transfers as segments or first address + pages', () => {
    const a = buildPrp(c, { addr: 0x100800n, length: 3 * K4, pages: [0x300000n, 0x200000, 0x201000], listPages: [0x10000n] });
    const b = buildPrp(c, { segments: [{ addr: 0x100800, len: 2048 }, { addr: 0x300000, len: K4 }, { addr: 0x200000, len: K4 + 2048 }], listPages: [0x10000] });
    expect(a).toEqual(b);
    expect(a).toMatchObject({ prp1: 0x100800n, prp2: 0x10000n, length: 3 * K4, entries: 4, listPages: [0x10000n] });
    expect(segmentsOf(walkPrp(c, { prp1: BigInt(a.prp1), prp2: BigInt(a.prp2), length: a.length }))).toEqual([
      { addr: 0x100800, len: 2048 }, { addr: 0x300000, len: K4 }, { addr: 0x200000, len: K4 }, { addr: 0x201000, len: 2048 },
    ].reduce((acc, s) => {
      const last = acc[acc.length - 1];
      if (last && last.addr + last.len === s.addr) last.len += s.len;
      else acc.push({ ...s });
      return acc;
    }, [] as { addr: number; len: number }[]));
    expect(buildPrp(c, { segments: [] })).toMatchObject({ prp1: 0n, prp2: 0n, length: 0, entries: 0 });
  });

  it('converts mdts (units of 4 KiB, a power of two) and maxTransferBytes into the MDTS check', () => {
    expect(statusOf(walkPrp(c, { prp1: 0x100000, prp2: 0x101000, length: 8193, mdts: 1 })).reason).toBe('TransferExceedsMdts');
    expect(segmentsOf(walkPrp(c, { prp1: 0x100000, prp2: 0x101000, length: 8192, mdts: 1 }))).toEqual([{ addr: 0x100000, len: 8192 }]);
    expect(statusOf(walkPrp(c, { prp1: 0x100000, prp2: 0, length: 101, maxTransferBytes: 100 })).reason).toBe('TransferExceedsMdts');
    expect(segmentsOf(walkPrp(c, { prp1: 0x100000, prp2: 0, length: 4096, mdts: 40 })).length).toBe(1);
  });

  it('a walk batch resumes where its segment array filled up, and reports each command\'s own status', () => {
    putU64(c, 0x10000, Array.from({ length: 40 }, (_, i) => 0x400000 + 2 * i * K4));
    const b = new NvmeWalkBatch(c, { format: 'prp', capacity: 5, segmentCapacity: 64, maxMappings: 64 });
    b.addPrp(0x200000, 0x10000, 30 * K4); // 30 segments
    b.addPrp(0x200001, 0, 10); // misaligned PRP1
    b.addPrp(0x200000, 0x10000, 30 * K4);
    b.addPrp(0x200000, 0x10000, 20 * K4);
    b.addPrp(0x7fff_0000, 0, 10); // outside guest RAM
    const next = b.run();
    expect(next).toBe(3); // 30 + 0 + 30 fit in 64; the 4th needs 20 more
    expect([b.status(0), b.status(1)?.reason, b.segmentCount(2)]).toEqual([null, 'Prp1NotDwordAligned', 30]);
    expect(b.run(next)).toBe(5);
    expect([b.segmentCount(3), b.status(4)?.name]).toEqual([20, 'DataTransferError']);
    expect(b.segments(3)[19]).toEqual({ addr: 0x400000 + 2 * 18 * K4, len: K4 });
    expect(codeOf(() => b.addPrp(0, 0, 1))).toBe('BufferTooSmall');
    expect(codeOf(() => b.addSgl({ addr: 0, length: 1 }, 1))).toBe('InvalidArgument');
    expect(codeOf(() => new NvmeWalkBatch(c, { format: 'prp', capacity: 1, segmentCapacity: 10 }))).toBe('InvalidArgument');
  });

  it('a build batch takes list pages from one pool in order; a failing transfer uses none and throws on result()', () => {
    const b = new NvmeBuildBatch(c, { format: 'prp', capacity: 4, listPages: [0x20000, 0x21000, 0x22000] });
    b.add([{ addr: 0x100000, len: 3 * K4 }]); // list in 0x20000
    b.add([{ addr: 0x100002, len: 3 * K4 }]); // not dword aligned
    b.add([{ addr: 0x100000, len: 600 * K4 }]); // two pages: 0x21000, 0x22000
    b.add([{ addr: 0x100000, len: 3 * K4 }]); // pool exhausted
    expect(b.run()).toBe(3);
    const dv = (i: number) => new DataView(b.result(i).dptr.buffer);
    expect(dv(0).getUint32(8, true)).toBe(0x20000);
    expect(dv(2).getUint32(8, true)).toBe(0x21000);
    expect(b.result(2)).toMatchObject({ length: 600 * K4, listPages: 2 });
    expect(codeOf(() => b.result(1))).toBe('NvmeNotDwordAligned');
    expect(codeOf(() => b.result(3))).toBe('NvmeListPoolTooSmall');
    b.clear();
    expect(b.count).toBe(0);
  });
});
