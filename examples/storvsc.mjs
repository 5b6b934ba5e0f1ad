// A Hyper-V SCSI adapter, both ends in one thread: the storvsp host serving three memory disks
// behind two targets, the storvsc guest driver initialising it over a VMBus channel, finding the
// disks, and moving data through GPA-direct packets.
import assert from 'node:assert/strict';
import { GuestBus, HostBus, IommuDomain, loadCoreSync, MemoryDisk, MessageTransport, pageAllocator, StorvscDriver, StorvspDevice } from 'sgring';

const core = loadCoreSync({ guestBytes: 16 << 20 });
const transport = MessageTransport.create(core);
const dma = IommuDomain.create(core, 'storvsp0', { mode: 'identity' });
const host = new HostBus(transport, { dma });
const disk = (blocks) => MemoryDisk.create(core, { blockCount: blocks });
host.offer(new StorvspDevice({
  dma, targets: [{ target: 0, lun: 0, backend: disk(8192) }, { target: 0, lun: 1, backend: disk(8192) }, { target: 1, lun: 0, backend: disk(2048) }],
}).offer());

const pages = pageAllocator(core);
const guest = new GuestBus(transport, { allocPages: pages, pump: () => host.poll() });
await guest.connect();
const hba = await StorvscDriver.attach(guest, guest.offers.all()[0], { allocPages: pages });   // BEGIN, version, properties, END, scan
console.log(hba.disks.map((d) => `${d.target}:${d.lun} ${d.vendor} ${d.product}`).join('\n'));
assert.equal(hba.disks.length, 3);

const data = new Uint8Array(64 * 1024).fill(0xa5);
await hba.write(0, 1, 2048, data);                             // WRITE (16), data through a GPA range
assert.deepEqual(await hba.read(0, 1, 2048, 128), data);        // READ (16)
await hba.flush(0, 1);

// Straight into the guest's own memory: three segments (the end of one page, a whole page, half
// of a third). The list obeys Hyper-V's page-list rule, so nothing is bounced.
const segments = [{ addr: pages(1) + 0xe00, len: 0x200 }, { addr: pages(1), len: 0x1000 }, { addr: pages(1), len: 0x800 }];
await hba.read(0, 1, 2048, 13, segments);                       // 13 blocks = 0x1a00 bytes
assert.ok(segments.every((s) => core.u8.subarray(core.guestBase + s.addr, core.guestBase + s.addr + s.len).every((b) => b === 0xa5)));
assert.equal(hba.counters.bouncedBytes, 0);
const err = await hba.read(1, 0, 4096, 1).catch((e) => e);      // past the end of a 2048-block disk
assert.equal(err.code, 'LbaOutOfRange');
await hba.detach();
for (const s of segments) pages.free(s.addr & ~0xfff);
assert.equal(pages.stats().usedPages, 0);                      // ring and staging pages given back
