// The VMBus device hosts of the browser demo, in a Web Worker over the page's shared memory: a
// storvsp SCSI adapter (disk 0:0 an OpfsDisk, disk 0:1 in memory) and two netvsp NICs on a
// virtual switch, served until the page says stop. Every host stage is traced into memory; the
// page asks for the trace, and attaches or detaches an injector on disk 0:1.
import {
  HostBus, IommuDomain, loadCoreSync, MemoryDisk, MemorySink, MessageTransport, NetvspDevice, OpfsDisk, PcapngWriter, readOnlyAfter,
  StorvspDevice, TapRegistry, traceTap, VirtualSwitch,
} from '/dist/index.mjs';

self.onmessage = async ({ data }) => {
  if (data.start) return start(data.start);
  if (data.inject !== undefined) return inject(data.inject);
  if (data.trace) return self.postMessage({ trace: sink.bytes() });
};

const taps = new TapRegistry();
const sink = new MemorySink();
let injector = null;

function inject(on) {
  injector?.detach();
  injector = null;
  // Only disk 0:1: a storvsp request is named target:lun:number.
  if (on) {
    const tap = readOnlyAfter(0);
    injector = taps.attach('storvsc:io:decode', (ctx) => (ctx.request.startsWith('0:1:') ? tap(ctx) : undefined));
  }
  self.postMessage({ injected: on });
}

async function start({ memory, transport, control }) {
  try {
    const core = loadCoreSync({ memory });
    const writer = new PcapngWriter(sink, { application: 'sgring browser demo' });
    const trace = traceTap(writer); // one tap at every stage: one interface per device
    for (const stage of ['storvsc:*:*', 'netvsc:tx:execute', 'netvsc:rx:post']) taps.attach(stage, trace);
    const dma = IommuDomain.create(core, 'vmbus', { mode: 'identity' });
    const bus = new HostBus(MessageTransport.attach(core, transport), { dma });
    const opfs = await OpfsDisk.open('sgring-demo-disk.img', { core, createBlocks: 8192 });
    bus.offer(new StorvspDevice({ dma, taps, targets: [{ target: 0, lun: 0, backend: opfs }, { target: 0, lun: 1, backend: MemoryDisk.create(core, { blockCount: 8192 }) }] }).offer());
    const sw = new VirtualSwitch();
    bus.offer(new NetvspDevice({ dma, taps, switch: sw, mac: '00:15:5d:00:00:0a', name: 'netvsp0' }).offer());
    bus.offer(new NetvspDevice({ dma, taps, switch: sw, mac: '00:15:5d:00:00:0b', name: 'netvsp1' }).offer());
    self.postMessage({ ready: true });
    const stop = new Int32Array(control);
    await bus.serveAsync(() => Atomics.load(stop, 0) === 1, 3_600_000);
    opfs.close();
  } catch (e) {
    self.postMessage({ error: String(e?.stack ?? e) });
  }
}
