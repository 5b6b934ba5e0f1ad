// NVMe data pointers: a driver builds PRP1/PRP2 and a PRP list; a controller walks them back.
import assert from 'node:assert/strict';
import { buildPrp, loadCoreSync, NvmeWalkBatch, walkPrp } from 'sgring';

const core = loadCoreSync({ guestBytes: 64 << 20 });
// Driver side: 12 KiB starting mid-page, over scattered pages; the list goes in page 0x10000.
const p = buildPrp(core, { addr: 0x100800, length: 12288, pages: [0x300000, 0x200000, 0x201000], listPages: [0x10000] });
assert.deepEqual([p.prp1, p.prp2], [0x100800n, 0x10000n]); // bigints: exact over 64 bits
// Controller side: walk what the SQE carries, with MDTS = 2^9 pages.
const r = walkPrp(core, { prp1: p.prp1, prp2: p.prp2, length: p.length, mdts: 9 });
if (r.ok) console.log(r.segments);   // [{ addr: 0x100800, len: 2048 }, { addr: 0x300000, len: 4096 }, { addr: 0x200000, len: 6144 }]
else console.log(r.status);          // { sct: 0, sc: 0x13, dnr: true, name: 'PrpOffsetInvalid', ... }
assert.deepEqual(r.segments, [{ addr: 0x100800, len: 2048 }, { addr: 0x300000, len: 4096 }, { addr: 0x200000, len: 6144 }]);
const batch = new NvmeWalkBatch(core, { format: 'prp', capacity: 256 }); // many commands per engine call
assert.equal(batch.capacity, 256);
