// Suite "storvsc": the storvsc guest driver and the storvsp host in one thread over real VMBus
// rings, data through GPA-direct ranges and the host's DMA domain, a memory disk: 4 KiB random
// reads and writes at QD 1 and 32, 64 KiB sequential reads (against the copy limit), and the
// illumos first-light case: dd-style sequential 4 KiB reads of a 40 MB disk (18.8 MB/s then).
// Each ops/s is whole commands: EXECUTE_SRB -> host -> disk -> COMPLETE_IO -> driver.

import { GuestBus, HostBus, IommuDomain, loadCoreSync, MemoryDisk, MessageTransport, pageAllocator, StorvscDriver, StorvspDevice } from '../../dist/index.mjs';
import { copyLimit, iops } from '../lib/io.mjs';
import { makeCase } from '../lib/timing.mjs';

const SUITE = 'storvsc';
const BLOCKS = 1 << 17; // 64 MiB disk

async function rig(blocks = BLOCKS) {
  const core = loadCoreSync({ guestBytes: 64 << 20 });
  const transport = MessageTransport.create(core);
  const dma = IommuDomain.create(core, 'storvsp0', { mode: 'identity' });
  const host = new HostBus(transport, { dma });
  host.offer(new StorvspDevice({ dma, targets: [{ target: 0, lun: 0, backend: MemoryDisk.create(core, { blockCount: blocks }) }] }).offer());
  const pages = pageAllocator(core);
  const guest = new GuestBus(transport, { allocPages: pages, pump: () => host.poll() });
  await guest.connect();
  const hba = await StorvscDriver.attach(guest, guest.offers.all()[0], { allocPages: pages, scanTargets: [0] });
  await hba.scsi(0, 0, new Uint8Array(6)); // the power-on unit attention
  return hba;
}

/** `iops` of the driver's READ (16) / WRITE (16) on target 0, LUN 0. */
function run(hba, op, o) {
  const buf = new Uint8Array(o.bytes);
  return iops((lba) => (op === 'read' ? hba.read(0, 0, lba, o.bytes / 512) : hba.write(0, 0, lba, buf)), { diskBlocks: BLOCKS, ...o });
}

export default {
  name: SUITE,
  keyFigures: [
    { label: '4 KiB random read, QD 32, one thread, IOPS (target 500 k)', of: { suite: SUITE, name: '4 KiB random read, QD 32', engine: 'wasm', payloadBytes: 4096 } },
    { label: '4 KiB random read, QD 1, IOPS', of: { suite: SUITE, name: '4 KiB random read, QD 1', engine: 'wasm', payloadBytes: 4096 } },
    { label: '64 KiB sequential read, wasm / copy limit (target 0.6)', of: { suite: SUITE, name: '64 KiB sequential read, QD 8', engine: 'wasm', payloadBytes: 65536 }, over: { suite: SUITE, name: '64 KiB sequential read, QD 8', engine: 'copy-limit', payloadBytes: 65536 } },
    { label: 'dd 4 KiB sequential reads of a 40 MB disk, MB/s (illumos first light: 18.8)', of: { suite: SUITE, name: 'dd 4 KiB sequential read, 40 MB disk, QD 1', engine: 'wasm', payloadBytes: 4096 } },
  ],
  async run(ctx) {
    const ms = ctx.quick ? 400 : 2000;
    const rows = [];
    const add = (name, bytes, rate, engine = 'wasm') => {
      rows.push(makeCase({ suite: SUITE, name, engine, payloadBytes: bytes }, rate));
      ctx.log(`  ${name} (${engine}): ${(rate / 1e3).toFixed(1)} k/s, ${((rate * bytes) / 1e6).toFixed(1)} MB/s`);
    };
    const hba = await rig();
    add('4 KiB random read, QD 1', 4096, await run(hba, 'read', { depth: 1, bytes: 4096, ms }));
    add('4 KiB random read, QD 32', 4096, await run(hba, 'read', { depth: 32, bytes: 4096, ms }));
    add('4 KiB random write, QD 1', 4096, await run(hba, 'write', { depth: 1, bytes: 4096, ms }));
    add('4 KiB random write, QD 32', 4096, await run(hba, 'write', { depth: 32, bytes: 4096, ms }));
    add('64 KiB sequential read, QD 8', 65536, await run(hba, 'read', { depth: 8, bytes: 65536, ms, sequential: true }));
    add('64 KiB sequential read, QD 8', 65536, copyLimit(65536), 'copy-limit');
    await hba.detach();
    const dd = await rig(40e6 / 512);
    add('dd 4 KiB sequential read, 40 MB disk, QD 1', 4096, await run(dd, 'read', { depth: 1, bytes: 4096, ms, sequential: true, diskBlocks: 40e6 / 512 }));
    await dd.detach();
    return rows;
  },
};
