// Suite "netvsc": Ethernet frames from one guest netvsc driver through its netvsp, the virtual
// switch and a second netvsp into a second guest, over real VMBus rings: all in one thread, or
// the netvsps and the switch in a worker. 64-byte and 1514-byte frames through send-buffer
// sections ("chimney") one send() each or in bursts (sendBurst packs several to a section), and
// 1514-byte frames by page buffer. Each frame/s is a frame received by the second guest.

import { Worker } from 'node:worker_threads';
import { GuestBus, HostBus, instanceGuid, IommuDomain, loadCoreSync, MessageTransport, NetvscDriver, NetvspDevice, pageAllocator, VirtualSwitch } from '../../dist/index.mjs';
import { copyLimit, heapPerOp } from '../lib/io.mjs';
import { makeCase } from '../lib/timing.mjs';

const SUITE = 'netvsc';

async function rig(chimneyMax) {
  const core = loadCoreSync({ guestBytes: 64 << 20 });
  const transport = MessageTransport.create(core);
  const dma = IommuDomain.create(core, 'netvsp', { mode: 'identity' });
  const host = new HostBus(transport, { dma });
  const sw = new VirtualSwitch();
  host.offer(new NetvspDevice({ dma, mac: '00:15:5d:00:00:0a', switch: sw, name: 'a' }).offer());
  host.offer(new NetvspDevice({ dma, mac: '00:15:5d:00:00:0b', switch: sw, name: 'b' }).offer());
  const pages = pageAllocator(core);
  const guest = new GuestBus(transport, { allocPages: pages, pump: () => host.poll() });
  await guest.connect();
  const o = { allocPages: pages, recvBufferBytes: 16 << 20, ...(chimneyMax !== undefined ? { chimneyMax } : {}) };
  const [a, b] = [await NetvscDriver.attach(guest, guest.offers.all()[0], o), await NetvscDriver.attach(guest, guest.offers.all()[1], o)];
  return { a, b, host, guest, close: async () => (await a.detach(), await b.detach()) };
}

/** The same two guests with the netvsps and the switch in a worker. */
async function rigThreads() {
  const core = loadCoreSync({ shared: true, guestBytes: 64 << 20, initialBytes: 96 << 20 });
  const transport = MessageTransport.create(core);
  const control = new SharedArrayBuffer(4);
  const worker = new Worker(new URL('../workers/netvsp-host.mjs', import.meta.url), { workerData: { memory: core.memory, transport: transport.ptr, control } });
  const done = new Promise((resolve, reject) => (worker.once('message', (m) => (m.error ? reject(new Error(m.error)) : resolve(m))), worker.once('error', reject)));
  const pages = pageAllocator(core);
  const guest = new GuestBus(transport, { allocPages: pages });
  await guest.connect();
  const offer = (n) => guest.offers.all().find((o) => o.instanceId === instanceGuid(n));
  const o = { allocPages: pages, recvBufferBytes: 16 << 20 };
  const [a, b] = [await NetvscDriver.attach(guest, offer(0xa), o), await NetvscDriver.attach(guest, offer(0xb), o)];
  return {
    // Wait for the hosts only when a poll found nothing: a poll that took completions freed send
    // sections, and waiting then (instead of sending) leaves both threads idle until the timeout.
    a, b, guest, pump: async () => {
      if (guest.poll() === 0) await guest.waitForHost(1);
    },
    close: async () => {
      await a.detach();
      await b.detach();
      Atomics.store(new Int32Array(control), 0, 1);
      transport.hostBell.ring();
      await done;
      await worker.terminate();
    },
  };
}

/**
 * A round of sending A -> B about 256 `bytes`-byte frames through send sections: one send() each,
 * or sendBurst() of `burst` frames; a round ends early when A has no room.
 */
function sender({ a, b }, bytes, burst) {
  const f = new Uint8Array(bytes).fill(7);
  f.set(b.mac, 0);
  f.set(a.mac, 6);
  const frames = Array.from({ length: burst }, () => f);
  return burst > 0
    ? () => {
      for (let i = 0; i < 256 / burst; i++) if (a.sendBurst(frames) < burst) break;
    }
    : () => {
      for (let i = 0; i < 256; i++) if (!a.send(f)) break;
    };
}

/** Frames per second A -> B of `bytes`-byte frames over `ms`: one send() each, or sendBurst() of `burst` frames. */
async function run(rig, bytes, ms, burst = 0) {
  const { b, host, guest, pump: wait } = rig;
  const send = sender(rig, bytes, burst);
  let received = 0;
  b.onReceive = () => received++;
  const pump = wait ?? (() => {
    host.poll();
    guest.poll();
  });
  for (let i = 0; i < 8; i++) (send(), await pump()); // warm up
  for (let i = 0; i < 50; i++) await pump();
  received = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    send();
    await pump();
    t = performance.now();
  }
  return (received / (t - t0)) * 1000;
}

/** Heap bytes per frame A -> B in steady state (frames through send sections, one send() each or in bursts). */
async function heapPerFrame(rig, bytes, burst = 0) {
  const { b, host, guest } = rig;
  const send = sender(rig, bytes, burst);
  let received = 0;
  b.onReceive = () => received++;
  return heapPerOp(() => {
    const start = received;
    for (let round = 0; round < 8; round++) {
      send();
      host.poll();
      guest.poll();
    }
    return Math.max(1, received - start);
  });
}

export default {
  name: SUITE,
  keyFigures: [
    { label: '64 B frames guest to guest through the switch, one thread, bursts of 32 (sendBurst: 8 frames per RNDIS message), frames/s (target 2 M)', of: { suite: SUITE, name: '64 B frames, send sections, bursts of 32', engine: 'wasm', payloadBytes: 64 } },
    { label: '64 B frames guest to guest through the switch, one thread, one send() per frame, frames/s', of: { suite: SUITE, name: '64 B frames, send sections', engine: 'wasm', payloadBytes: 64 } },
    { label: '64 B frames in bursts, heap bytes per frame (target: no allocation per frame)', of: { suite: SUITE, name: '64 B frames, send sections, bursts of 32', engine: 'wasm', payloadBytes: 64 }, heap: true },
    { label: '64 B frames one send() each, heap bytes per frame', of: { suite: SUITE, name: '64 B frames, send sections', engine: 'wasm', payloadBytes: 64 }, heap: true },
    { label: '1514 B frames guest to guest, one thread, frames/s (target 1 GB/s = 660 k)', of: { suite: SUITE, name: '1514 B frames, send sections', engine: 'wasm', payloadBytes: 1514 } },
  ],
  async run(ctx) {
    const ms = ctx.quick ? 400 : 2000;
    const rows = [];
    const add = (name, bytes, rate, engine = 'wasm', heapBytesPerOp = undefined) => {
      rows.push({ ...makeCase({ suite: SUITE, name, engine, payloadBytes: bytes }, rate), ...(heapBytesPerOp === undefined ? {} : { heapBytesPerOp }) });
      ctx.log(`  ${name} (${engine}): ${(rate / 1e3).toFixed(1)} k/s, ${((rate * bytes) / 1e6).toFixed(1)} MB/s${heapBytesPerOp === undefined ? '' : `, ${Math.round(heapBytesPerOp)} heap B/frame`}`);
    };
    const chimney = await rig();
    add('64 B frames, send sections', 64, await run(chimney, 64, ms), 'wasm', await heapPerFrame(chimney, 64));
    add('1514 B frames, send sections', 1514, await run(chimney, 1514, ms));
    add('64 B frames, send sections, bursts of 32', 64, await run(chimney, 64, ms, 32), 'wasm', await heapPerFrame(chimney, 64, 32));
    add('1514 B frames, send sections, bursts of 32', 1514, await run(chimney, 1514, ms, 32));
    add('1514 B frames, send sections', 1514, copyLimit(1514), 'copy-limit');
    await chimney.close();
    const paged = await rig(0);
    add('1514 B frames, page buffer', 1514, await run(paged, 1514, ms));
    await paged.close();
    const two = await rigThreads();
    add('64 B frames, send sections, two threads', 64, await run(two, 64, ms));
    add('1514 B frames, send sections, two threads', 1514, await run(two, 1514, ms));
    await two.close();
    return rows;
  },
};
