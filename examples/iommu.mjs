// A device behind an IOMMU domain: grants, a gather and a scatter checked page by page, a
// zero-copy visit, and a reset that makes the old request's DMA fail.
import assert from 'node:assert/strict';
import { Iommu, loadCoreSync, SgringError } from 'sgring';

const core = loadCoreSync({ guestBytes: 64 << 20 });
const iommu = new Iommu(core);
const nvme = iommu.domain('nvme0', { windows: [{ gpa: 0x3f0_0000, len: 0x4000 }] }); // its BAR: never DMA-able
nvme.map(0x10_0000, 0x3000);                         // read + write; { read: true } for read-only
const req = nvme.begin();                            // ticket for one request
const segments = [{ addr: 0x10_0200, len: 0x1e00 }, { addr: 0x10_2000, len: 512 }];
const bytes = nvme.gather(segments, { context: req });
assert.equal(bytes.length, 0x2000);
const data = new Uint8Array(0x2000).fill(0xab);
nvme.scatter(segments, data, { context: req });      // segments, a PagePlan, or { gpaRanges, rangeCount }
let visited = 0;
nvme.visit(segments, 'write', (view) => (visited += view.length)); // zero-copy; reset() in here throws DmaReentrant
assert.equal(visited, 0x2000);
nvme.reset();                                        // FLR: mappings gone; DMA under `req` fails DmaStale
assert.throws(() => nvme.gather(segments, { context: req }), (e) => e instanceof SgringError && e.code === 'DmaStale');
assert.throws(() => nvme.gather(segments), (e) => e instanceof SgringError && e.code === 'IommuFault');
console.log('gather, scatter and visit checked every page; after reset the old request is stale');
