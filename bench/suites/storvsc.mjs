// Suite "storvsc": the storvsc guest driver and the storvsp host over real VMBus rings, data
// through GPA-direct ranges and the host's DMA domain, a memory disk: 4 KiB random reads and
// writes at QD 1 and 32 with the host in this thread or in a worker, on 1 or 4 channels; reads
// into the caller's guest segments with an unbounced and a bounced list; 64 KiB sequential reads
// (against the copy limit: between two buffers in cache, and streaming from a disk-sized region as
// the read does); and the illumos first-light case: dd-style sequential 4 KiB reads of
// a 40 MB disk (18.8 MB/s then). Each ops/s is whole commands: EXECUTE_SRB -> host -> disk ->
// COMPLETE_IO -> driver. Reads land in a buffer the caller gives (`into`), as a block layer's do.
// (The iSCSI front end under iscsi-perf, beside tgt, is the suite "targets".)

import { Worker } from 'node:worker_threads';
import { GuestBus, HostBus, IommuDomain, loadCoreSync, MemoryDisk, MessageTransport, pageAllocator, StorvscDriver, StorvspDevice } from '../../dist/index.mjs';
import { alternate, copyLimit, fillPattern, heapPerIo, iops, streamCopyLimit } from '../lib/io.mjs';
import { makeCase } from '../lib/timing.mjs';

const SUITE = 'storvsc';
const BLOCKS = 1 << 17; // 64 MiB disk

/** A guest driver and a storvsp host: in this thread (pumped) or the host in a worker. */
async function rig({ blocks = BLOCKS, threads = 1, cpus = 1 } = {}) {
  const core = loadCoreSync({ guestBytes: 16 << 20, ...(threads === 2 ? { shared: true, initialBytes: 160 << 20 } : {}) });
  const transport = MessageTransport.create(core);
  const pages = pageAllocator(core);
  let guest;
  let stop = async () => undefined;
  if (threads === 1) {
    const dma = IommuDomain.create(core, 'storvsp0', { mode: 'identity' });
    const host = new HostBus(transport, { dma });
    const disk = MemoryDisk.create(core, { blockCount: blocks });
    fillPattern(core.u8, disk.ptr, blocks * 512);
    host.offer(new StorvspDevice({ dma, targets: [{ target: 0, lun: 0, backend: disk }], subChannels: { bus: host, max: 3 } }).offer());
    guest = new GuestBus(transport, { allocPages: pages, pump: () => host.poll() });
  } else {
    const control = new SharedArrayBuffer(4);
    const worker = new Worker(new URL('../workers/storvsp-host.mjs', import.meta.url), { workerData: { memory: core.memory, transport: transport.ptr, control, blocks, subChannels: 3 } });
    const done = new Promise((resolve, reject) => (worker.once('message', (m) => (m.error ? reject(new Error(m.error)) : resolve(m))), worker.once('error', reject)));
    stop = async () => {
      Atomics.store(new Int32Array(control), 0, 1);
      transport.hostBell.ring();
      await done;
      await worker.terminate();
    };
    guest = new GuestBus(transport, { allocPages: pages });
  }
  await guest.connect();
  const hba = await StorvscDriver.attach(guest, guest.offers.all()[0], { allocPages: pages, scanTargets: [0], cpus });
  return { hba, core, pages, close: async () => (await hba.detach(), await stop()) };
}

/** One READ (16) / WRITE (16) of the driver on target 0, LUN 0 (reads into one reused buffer, or into `segments`). */
function ioFn(hba, op, bytes, segments) {
  const buf = new Uint8Array(bytes);
  const blocks = bytes / 512;
  return op === 'write' ? (lba) => hba.write(0, 0, lba, buf) : segments ? (lba) => hba.read(0, 0, lba, blocks, segments) : (lba) => hba.read(0, 0, lba, blocks, buf);
}

/** `iops` of the driver's reads or writes. */
function run(hba, op, o, segments) {
  return iops(ioFn(hba, op, o.bytes, segments), { diskBlocks: BLOCKS, ...o });
}

export default {
  name: SUITE,
  keyFigures: [
    { label: '4 KiB random read, QD 32, one thread, IOPS (target 500 k)', of: { suite: SUITE, name: '4 KiB random read, QD 32', engine: 'wasm', payloadBytes: 4096 } },
    { label: '4 KiB random read, QD 32, host in a worker, IOPS', of: { suite: SUITE, name: '4 KiB random read, QD 32, two threads', engine: 'wasm', payloadBytes: 4096 } },
    { label: '4 KiB random read, QD 1, IOPS', of: { suite: SUITE, name: '4 KiB random read, QD 1', engine: 'wasm', payloadBytes: 4096 } },
    { label: '4 KiB random read, QD 32, heap bytes per I/O (a promise round trip alone: ~565, see nvme)', of: { suite: SUITE, name: '4 KiB random read, QD 32', engine: 'wasm', payloadBytes: 4096 }, heap: true },
    { label: '64 KiB sequential read into guest segments (one copy) / streaming copy limit (target 0.6)', of: { suite: SUITE, name: '64 KiB sequential read into guest segments, QD 8', engine: 'wasm', payloadBytes: 65536 }, over: { suite: SUITE, name: '64 KiB sequential read, QD 8', engine: 'copy-limit, streaming', payloadBytes: 65536 } },
    { label: '64 KiB sequential read into guest segments (one copy) / in-cache copy limit', of: { suite: SUITE, name: '64 KiB sequential read into guest segments, QD 8', engine: 'wasm', payloadBytes: 65536 }, over: { suite: SUITE, name: '64 KiB sequential read, QD 8', engine: 'copy-limit', payloadBytes: 65536 } },
    { label: '64 KiB sequential read into a buffer (two copies), wasm / copy limit', of: { suite: SUITE, name: '64 KiB sequential read, QD 8', engine: 'wasm', payloadBytes: 65536 }, over: { suite: SUITE, name: '64 KiB sequential read, QD 8', engine: 'copy-limit', payloadBytes: 65536 } },
    { label: 'dd 4 KiB sequential reads of a 40 MB disk, MB/s (illumos first light: 18.8)', of: { suite: SUITE, name: 'dd 4 KiB sequential read, 40 MB disk, QD 1', engine: 'wasm', payloadBytes: 4096 } },
  ],
  async run(ctx) {
    const ms = ctx.quick ? 400 : 2000;
    const rows = [];
    const add = (name, bytes, rate, engine = 'wasm', heapBytesPerOp = undefined) => {
      rows.push({ ...makeCase({ suite: SUITE, name, engine, payloadBytes: bytes }, rate), ...(heapBytesPerOp === undefined ? {} : { heapBytesPerOp }) });
      ctx.log(`  ${name} (${engine}): ${(rate / 1e3).toFixed(1)} k/s, ${((rate * bytes) / 1e6).toFixed(1)} MB/s${heapBytesPerOp === undefined ? '' : `, ${Math.round(heapBytesPerOp)} heap B/I/O`}`);
    };
    const one = await rig();
    const { hba, pages } = one;
    add('4 KiB random read, QD 1', 4096, await run(hba, 'read', { depth: 1, bytes: 4096, ms }));
    add('4 KiB random read, QD 32', 4096, await run(hba, 'read', { depth: 32, bytes: 4096, ms }), 'wasm', await heapPerIo(ioFn(hba, 'read', 4096), { depth: 32, bytes: 4096, diskBlocks: BLOCKS }));
    add('4 KiB random write, QD 1', 4096, await run(hba, 'write', { depth: 1, bytes: 4096, ms }));
    add('4 KiB random write, QD 32', 4096, await run(hba, 'write', { depth: 32, bytes: 4096, ms }));
    // Into guest segments: a page-aligned list goes out as it is; two half pages break the rule and are bounced.
    add('4 KiB random read into guest segments, unbounced, QD 32', 4096, await run(hba, 'read', { depth: 32, bytes: 4096, ms }, [{ addr: pages(1), len: 4096 }]));
    add('4 KiB random read into guest segments, bounced, QD 32', 4096, await run(hba, 'read', { depth: 32, bytes: 4096, ms }, [{ addr: pages(1), len: 2048 }, { addr: pages(1), len: 2048 }]));
    add('64 KiB sequential read, QD 8', 65536, await run(hba, 'read', { depth: 8, bytes: 65536, ms, sequential: true }));
    // The key ratio: the reads and the streaming limit measured in turn (five rounds each).
    const [seq, limit] = await alternate(5, () => run(hba, 'read', { depth: 8, bytes: 65536, ms: ms / 5, sequential: true }, [{ addr: pages(16), len: 65536 }]), () => streamCopyLimit(65536, BLOCKS * 512, ms / 5));
    add('64 KiB sequential read into guest segments, QD 8', 65536, seq);
    add('64 KiB sequential read, QD 8', 65536, copyLimit(65536), 'copy-limit');
    add('64 KiB sequential read, QD 8', 65536, limit, 'copy-limit, streaming');
    await one.close();
    const four = await rig({ cpus: 4 });
    add('4 KiB random read, QD 32, 4 channels', 4096, await run(four.hba, 'read', { depth: 32, bytes: 4096, ms }));
    await four.close();
    for (const cpus of [1, 4]) {
      const two = await rig({ threads: 2, cpus });
      const suffix = cpus === 1 ? '' : ', 4 channels';
      add(`4 KiB random read, QD 1, two threads${suffix}`, 4096, await run(two.hba, 'read', { depth: 1, bytes: 4096, ms }));
      add(`4 KiB random read, QD 32, two threads${suffix}`, 4096, await run(two.hba, 'read', { depth: 32, bytes: 4096, ms }));
      await two.close();
    }
    const dd = await rig({ blocks: 40e6 / 512 });
    add('dd 4 KiB sequential read, 40 MB disk, QD 1', 4096, await run(dd.hba, 'read', { depth: 1, bytes: 4096, ms, sequential: true, diskBlocks: 40e6 / 512 }));
    await dd.close();
    return rows;
  },
};
