// An NVMe controller model and a host driver in one thread: real submission and completion
// queues in guest memory, the controller reaching it only through a strict IOMMU domain, a
// memory disk behind namespace 1, and a fault injected at the controller's decode stage.
import assert from 'node:assert/strict';
import { Iommu, loadCoreSync, MemoryDisk, NvmeController, NvmeDriver, pageAllocator, readOnlyAfter, SgringError, TapRegistry } from 'sgring';

const core = loadCoreSync({ guestBytes: 64 << 20 });           // guest RAM: queues, PRP lists, data
const dma = new Iommu(core).domain('nvme0');                   // strict: the device sees what is granted
dma.map(0, 64 << 20);
const taps = new TapRegistry();
const ctrl = new NvmeController(core, {
  dma, namespaces: [{ backend: MemoryDisk.create(core, { blockCount: 1 << 16 }) }], taps,   // 32 MiB, 512-byte blocks
});
const drv = new NvmeDriver(core, ctrl, { allocPages: pageAllocator(core), ioQueues: 2, queueDepth: 64 });
await drv.init();                                              // CC.EN, Identify, Set Features, Create CQ/SQ
assert.deepEqual(drv.namespaces, [{ nsid: 1, blockSize: 512, blockCount: 65536 }]);

const data = new Uint8Array(128 * 1024).fill(0x5a);
await drv.write(1, 2048, data);                                // PRP1 + a PRP list, one doorbell
assert.deepEqual(await drv.read(1, 2048, 256), data);

taps.attach('nvme:io:decode', readOnlyAfter(1));               // the frankendrive "No Writes" drive
await drv.write(1, 0, new Uint8Array(512));                    // the one write it still takes
const err = await drv.write(1, 0, new Uint8Array(512)).catch((e) => e);
assert.ok(err instanceof SgringError && err.code === 'NvmeCommandFailed');
console.log(err.message);                                      // WRITE sqid:1 cid:..: status 01/82 DNR
