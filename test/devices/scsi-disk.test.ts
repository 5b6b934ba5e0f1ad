// The SCSI disk target on a memory disk: every command of the storvsc issue's list, the sense
// data of each failure, unit attentions, and data that reaches the medium.
import { describe, expect, it } from 'vitest';
import { loadCoreSync, MemoryDisk, ScsiDisk, SCSI_STATUS, SgringError, type ScsiResult } from '../../src/index';

const cdb = (...b: number[]) => Uint8Array.from(b);
const cdb10 = (op: number, lba: number, blocks: number, flags = 0) => cdb(op, flags, lba >>> 24, lba >>> 16, lba >>> 8, lba, 0, blocks >> 8, blocks & 0xff, 0);
const cdb16 = (op: number, lba: number, blocks: number, flags = 0) => {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  b[0] = op;
  b[1] = flags;
  dv.setBigUint64(2, BigInt(lba));
  dv.setUint32(10, blocks);
  return b;
};
const sense = (r: ScsiResult) => (r.sense ? [r.sense[2]! & 0xf, r.sense[12], r.sense[13]] : null);

async function disk(o: { blocks?: number; readOnly?: boolean; blockSize?: number } = {}) {
  const core = loadCoreSync();
  const backend = MemoryDisk.create(core, { blockCount: o.blocks ?? 2048, readOnly: o.readOnly, blockSize: o.blockSize });
  const d = new ScsiDisk(backend, { serial: 'SGRTEST0001' });
  const ua = await d.execute({ cdb: cdb(0, 0, 0, 0, 0, 0) }); // the power-on unit attention, cleared
  expect(sense(ua)).toEqual([0x6, 0x29, 0x00]);
  return { core, backend, d };
}

describe('ScsiDisk', () => {
  it('transfer(): READ/WRITE straight between the medium and core memory, synchronously on a memory disk; null for what execute() must answer', async () => {
    const { core, backend, d } = await disk();
    const buf = core.alloc(4096);
    core.u8.fill(0x3c, buf, buf + 4096);
    expect(d.transfer(cdb16(0x8a, 8, 8), buf, 4096)).toEqual({ status: SCSI_STATUS.good, sense: null, data: null, transferred: 4096 });
    expect(core.u8[backend.ptr + 8 * 512]).toBe(0x3c);
    core.u8.fill(0, buf, buf + 4096);
    expect(d.transfer(cdb10(0x28, 8, 8), buf, 4096)).toMatchObject({ status: SCSI_STATUS.good, transferred: 4096 });
    expect(core.u8[buf + 4095]).toBe(0x3c);
    expect(d.counters).toMatchObject({ readBlocks: 8, writtenBlocks: 8 });
    const past = d.transfer(cdb16(0x88, 2047, 2), buf, 1024) as ScsiResult;
    expect([past.status, sense(past)]).toEqual([SCSI_STATUS.checkCondition, [0x5, 0x21, 0]]);
    expect(d.transfer(cdb16(0x88, 0, 8), buf, 2048)).toBeNull(); // the buffer is not the command's size
    expect(d.transfer(cdb16(0x8a, 0, 1, 0x08), buf, 512)).toBeNull(); // FUA: execute() flushes
    expect(d.transfer(cdb(0x12, 0, 0, 0, 36, 0), buf, 36)).toBeNull(); // not a READ or WRITE
    d.reset();
    expect(d.transfer(cdb16(0x88, 0, 1), buf, 512)).toBeNull(); // a unit attention is execute()'s to report
    const ro = await disk({ readOnly: true });
    const refused = ro.d.transfer(cdb16(0x8a, 0, 1), ro.core.alloc(512), 512) as ScsiResult;
    expect([refused.status, sense(refused)]).toEqual([SCSI_STATUS.checkCondition, [0x7, 0x27, 0]]);
  });

  it('INQUIRY: standard data and the VPD pages 0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2; allocation length honoured', async () => {
    const { d } = await disk();
    const std = await d.execute({ cdb: cdb(0x12, 0, 0, 0, 96, 0) });
    expect(std.status).toBe(SCSI_STATUS.good);
    expect(new TextDecoder().decode(std.data!.subarray(8, 28))).toBe('SGRING  Virtual Disk');
    expect(std.data![0]).toBe(0);
    expect((await d.execute({ cdb: cdb(0x12, 0, 0, 0, 36, 0) })).data!.length).toBe(36);
    expect([...(await d.execute({ cdb: cdb(0x12, 1, 0x00, 0, 255, 0) })).data!]).toEqual([0, 0, 0, 6, 0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2]);
    expect(new TextDecoder().decode((await d.execute({ cdb: cdb(0x12, 1, 0x80, 0, 255, 0) })).data!.subarray(4))).toBe('SGRTEST0001');
    const id = (await d.execute({ cdb: cdb(0x12, 1, 0x83, 0, 255, 0) })).data!;
    expect([id[4], id[5], id[7], id[8]! >> 4]).toEqual([1, 3, 16, 6]); // binary, LU, NAA, NAA 6
    const bl = (await d.execute({ cdb: cdb(0x12, 1, 0xb0, 0, 255, 0) })).data!;
    expect(new DataView(bl.buffer, bl.byteOffset).getUint32(8)).toBe(2048); // max transfer blocks
    expect(sense(await d.execute({ cdb: cdb(0x12, 1, 0x99, 0, 255, 0) }))).toEqual([0x5, 0x24, 0x00]);
    expect(sense(await d.execute({ cdb: cdb(0x12, 0, 0x80, 0, 255, 0) }))).toEqual([0x5, 0x24, 0x00]); // page without EVPD
  });

  it('READ CAPACITY (10) and (16), REPORT LUNS, TEST UNIT READY, START STOP UNIT, SYNCHRONIZE CACHE', async () => {
    const { d } = await disk({ blocks: 5000, blockSize: 4096 });
    const rc10 = (await d.execute({ cdb: cdb(0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0) })).data!;
    expect([new DataView(rc10.buffer).getUint32(0), new DataView(rc10.buffer).getUint32(4)]).toEqual([4999, 4096]);
    const rc16 = (await d.execute({ cdb: cdb16(0x9e, 0, 32, 0x10) })).data!;
    expect([new DataView(rc16.buffer).getBigUint64(0), rc16[14]]).toEqual([4999n, 0xc0]);
    const luns = (await d.execute({ cdb: cdb(0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0) })).data!;
    expect([...luns]).toEqual([0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    for (const c of [cdb(0, 0, 0, 0, 0, 0), cdb(0x1b, 0, 0, 0, 1, 0), cdb10(0x35, 0, 0), cdb16(0x91, 0, 0)]) expect((await d.execute({ cdb: c })).status).toBe(0);
  });

  it('READ/WRITE (6), (10), (16) move blocks to and from the medium; VERIFY with BYTCHK compares', async () => {
    const { d, core, backend } = await disk();
    const data = Uint8Array.from({ length: 4096 }, (_, i) => (i * 13) & 0xff);
    expect(await d.execute({ cdb: cdb10(0x2a, 100, 8), dataOut: data })).toMatchObject({ status: 0, transferred: 4096 });
    expect(core.u8.slice(backend.ptr + 100 * 512, backend.ptr + 100 * 512 + 4096)).toEqual(data);
    expect((await d.execute({ cdb: cdb(0x08, 0, 0, 100, 8, 0) })).data).toEqual(data); // READ(6)
    expect((await d.execute({ cdb: cdb16(0x88, 100, 8) })).data).toEqual(data);
    await d.execute({ cdb: cdb(0x0a, 0, 0, 7, 1, 0), dataOut: data.subarray(0, 512) }); // WRITE(6)
    await d.execute({ cdb: cdb16(0x8a, 1500, 1), dataOut: data.subarray(512, 1024) });
    expect((await d.execute({ cdb: cdb10(0x28, 7, 1) })).data).toEqual(data.subarray(0, 512));
    expect((await d.execute({ cdb: cdb10(0x28, 1500, 1) })).data).toEqual(data.subarray(512, 1024));
    expect((await d.execute({ cdb: cdb10(0x2f, 100, 8, 0x02), dataOut: data })).status).toBe(0); // VERIFY, BYTCHK 1
    const other = data.slice();
    other[700] ^= 1;
    expect(sense(await d.execute({ cdb: cdb10(0x2f, 100, 8, 0x02), dataOut: other }))).toEqual([0xe, 0x1d, 0x00]);
    expect((await d.execute({ cdb: cdb10(0x2f, 100, 8) })).status).toBe(0); // no byte check
  });

  it('WRITE SAME (16) writes one block many times, or with UNMAP deallocates; UNMAP with a parameter list', async () => {
    const { d } = await disk();
    const block = new Uint8Array(512).fill(0x3c);
    expect((await d.execute({ cdb: cdb16(0x93, 200, 16), dataOut: block })).status).toBe(0);
    expect((await d.execute({ cdb: cdb10(0x28, 200, 16) })).data!.every((x) => x === 0x3c)).toBe(true);
    expect((await d.execute({ cdb: cdb16(0x93, 200, 4, 0x08) })).status).toBe(0); // UNMAP bit
    expect((await d.execute({ cdb: cdb10(0x28, 200, 4) })).data!.every((x) => x === 0)).toBe(true);
    const list = new Uint8Array(8 + 16);
    const dv = new DataView(list.buffer);
    dv.setUint16(0, 22);
    dv.setUint16(2, 16);
    dv.setBigUint64(8, 210n);
    dv.setUint32(16, 2);
    expect((await d.execute({ cdb: cdb(0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0), dataOut: list })).status).toBe(0);
    expect((await d.execute({ cdb: cdb10(0x28, 210, 3) })).data!.subarray(0, 1024).every((x) => x === 0)).toBe(true);
    expect((await d.execute({ cdb: cdb10(0x28, 212, 1) })).data!.every((x) => x === 0x3c)).toBe(true);
    dv.setBigUint64(8, 5000n); // beyond the disk: nothing applied
    expect(sense(await d.execute({ cdb: cdb(0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0), dataOut: list }))).toEqual([0x5, 0x21, 0x00]);
    expect(sense(await d.execute({ cdb: cdb(0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0), dataOut: list.subarray(0, 12) }))).toEqual([0x5, 0x1a, 0x00]);
  });

  it('MODE SENSE (6) and (10): the caching page, all pages, the block descriptor; WP for a read-only disk', async () => {
    const { d } = await disk();
    const m6 = (await d.execute({ cdb: cdb(0x1a, 0, 0x08, 0, 255, 0) })).data!;
    expect([m6[0], m6[3], m6[12], m6[14]! & 0x04]).toEqual([m6.length - 1, 8, 0x08, 0x04]);
    const m10 = (await d.execute({ cdb: cdb(0x5a, 0x08, 0x3f, 0, 0, 0, 0, 0, 255, 0) })).data!;
    expect([new DataView(m10.buffer).getUint16(0), m10[7], m10[8]]).toEqual([m10.length - 2, 0, 0x08]); // DBD: no block descriptor
    expect(sense(await d.execute({ cdb: cdb(0x1a, 0, 0x1c, 0, 255, 0) }))).toEqual([0x5, 0x24, 0x00]);
    const ro = await disk({ readOnly: true });
    expect((await ro.d.execute({ cdb: cdb(0x1a, 0, 0x3f, 0, 255, 0) })).data![2]! & 0x80).toBe(0x80);
  });

  it('failures are CHECK CONDITION with fixed sense: LBA out of range, invalid field, invalid opcode, write protected, medium error', async () => {
    const { d } = await disk({ blocks: 100 });
    const r = await d.execute({ cdb: cdb10(0x28, 99, 2) });
    expect([r.status, ...sense(r)!]).toEqual([SCSI_STATUS.checkCondition, 0x5, 0x21, 0x00]);
    expect(r.sense![0]).toBe(0x70);
    expect(sense(await d.execute({ cdb: cdb16(0x88, 2 ** 60, 1) }))).toEqual([0x5, 0x21, 0x00]);
    expect(sense(await d.execute({ cdb: cdb10(0x28, 0, 4000) }))).toEqual([0x5, 0x21, 0x00]);
    expect(sense(await d.execute({ cdb: cdb(0xee, 0, 0, 0, 0, 0) }))).toEqual([0x5, 0x20, 0x00]);
    expect(sense(await d.execute({ cdb: cdb(0x28) }))).toEqual([0x5, 0x20, 0x00]); // too short to be a CDB
    expect(sense(await d.execute({ cdb: cdb10(0x2a, 0, 8), dataOut: new Uint8Array(100) }))).toEqual([0x5, 0x24, 0x00]); // data-out shorter than the transfer
    const ro = await disk({ readOnly: true });
    expect(sense(await ro.d.execute({ cdb: cdb10(0x2a, 0, 1), dataOut: new Uint8Array(512) }))).toEqual([0x7, 0x27, 0x00]);
    expect(sense(await ro.d.execute({ cdb: cdb16(0x93, 0, 1, 0x08) }))).toEqual([0x7, 0x27, 0x00]);
    // A backend failure is a MEDIUM ERROR with the LBA in INFORMATION.
    const broken = await disk();
    (broken.backend as unknown as { read: () => never }).read = () => {
      throw new SgringError('MediumError', 'disk gone');
    };
    const bad = await broken.d.execute({ cdb: cdb10(0x28, 42, 1) });
    expect([bad.status, ...sense(bad)!, bad.sense![0]! & 0x80, new DataView(bad.sense!.buffer).getUint32(3)]).toEqual([SCSI_STATUS.checkCondition, 0x3, 0x11, 0x00, 0x80, 42]);
    // REQUEST SENSE returns what the last failure said.
    const rs = await d.execute({ cdb: cdb(0x03, 0, 0, 0, 18, 0) });
    expect([rs.status, rs.data![2]! & 0xf, rs.data![12]]).toEqual([0, 0x5, 0x24]); // the short data-out above
  });

  it('UNIT ATTENTION after a reset or a capacity change, once; INQUIRY is not held up by it', async () => {
    const { d } = await disk();
    d.reset();
    expect((await d.execute({ cdb: cdb(0x12, 0, 0, 0, 36, 0) })).status).toBe(0);
    expect(sense(await d.execute({ cdb: cdb(0, 0, 0, 0, 0, 0) }))).toEqual([0x6, 0x29, 0x00]);
    expect((await d.execute({ cdb: cdb(0, 0, 0, 0, 0, 0) })).status).toBe(0);
    d.capacityChanged();
    expect(sense(await d.execute({ cdb: cdb10(0x28, 0, 1) }))).toEqual([0x6, 0x2a, 0x09]);
    expect((await d.execute({ cdb: cdb10(0x28, 0, 1) })).status).toBe(0);
  });
});
