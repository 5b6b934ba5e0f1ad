// A SCSI disk (what the iSCSI target serves) on a memory disk: CDBs in, status, data and
// sense out; then the same disk served over iSCSI on 127.0.0.1 for any initiator to log in to.
import assert from 'node:assert/strict';
import { loadCoreSync, MemoryDisk, ScsiDisk, SCSI_STATUS } from 'sgring';
import { IscsiTarget } from 'sgring/node';

const core = loadCoreSync();
const disk = new ScsiDisk(MemoryDisk.create(core, { blockCount: 32768 }), { serial: 'EXAMPLE0001' });   // 16 MiB
await disk.execute({ cdb: Uint8Array.of(0x00, 0, 0, 0, 0, 0) });            // TEST UNIT READY: the power-on unit attention, cleared

const cap = await disk.execute({ cdb: Uint8Array.of(0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0) });   // READ CAPACITY (10)
const dv = new DataView(cap.data.buffer, cap.data.byteOffset);
assert.deepEqual([dv.getUint32(0), dv.getUint32(4)], [32767, 512]);       // last LBA, block length

const block = new Uint8Array(512).fill(0x5a);
const w = await disk.execute({ cdb: Uint8Array.of(0x2a, 0, 0, 0, 0, 7, 0, 0, 1, 0), dataOut: block });   // WRITE (10) LBA 7
assert.equal(w.status, SCSI_STATUS.good);
const r = await disk.execute({ cdb: Uint8Array.of(0x28, 0, 0, 0, 0, 7, 0, 0, 1, 0) });   // READ (10) LBA 7
assert.deepEqual(r.data, block);

const bad = await disk.execute({ cdb: Uint8Array.of(0x28, 0, 0, 0, 0x80, 0, 0, 0, 1, 0) });   // past the end
assert.equal(bad.status, SCSI_STATUS.checkCondition);
assert.deepEqual([bad.sense[2] & 0xf, bad.sense[12]], [0x5, 0x21]);          // ILLEGAL REQUEST, LBA OUT OF RANGE

const target = new IscsiTarget({ luns: [disk], iqn: 'iqn.2026-12.sgring:example', port: 0 });
await target.listen();
console.log(`serving: iscsi-inq iscsi://127.0.0.1:${target.port}/${target.iqn}/0`);
await target.close();
