// The browser demo's page: the guest drivers on the main thread (storvsc, two netvsc NICs and an
// NVMe driver), the device hosts in workers, one shared memory. It runs a checked workload, shows
// the counters, and has buttons to attach / detach an injector and to download the trace.
import { GuestBus, loadCoreSync, MessageTransport, NetvscDriver, NvmeDriver, NvmeMmioChannel, NvmeRemote, pageAllocator, StorvscDriver, deviceClassOf } from '/dist/index.mjs';

const $ = (id) => document.getElementById(id);
const log = (line) => {
  $('log').textContent += `${line}\n`;
  $('log').scrollTop = $('log').scrollHeight;
};
const state = (text, key) => {
  $('state').textContent = text;
  if (key) document.body.dataset.state = key;
};
const counters = { nvme: { requests: 0, bytes: 0, errors: 0 }, storvsc: { requests: 0, bytes: 0, errors: 0 }, netvsc: { requests: 0, bytes: 0, errors: 0 } };
const show = () => {
  $('counters').innerHTML = Object.entries(counters).map(([d, c]) => `<tr><td>${d}</td><td>${c.requests}</td><td>${c.bytes}</td><td>${c.errors}</td></tr>`).join('');
};
const pattern = (n, seed) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) & 0xff);
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const nvmeTrace = []; // the NVMe worker's trace blocks: a pcapng section of its own
const started = (worker, message) => new Promise((resolve, reject) => {
  worker.onmessage = ({ data }) => (data.traceBlock ? nvmeTrace.push(data.traceBlock) : data.error ? reject(new Error(data.error)) : data.ready && resolve());
  worker.onerror = (e) => reject(new Error(e.message));
  worker.postMessage(message);
});

async function main() {
  if (!globalThis.crossOriginIsolated) {
    state('This page needs to be cross-origin isolated: the drivers and the device hosts share one WebAssembly memory, and browsers give SharedArrayBuffer only to pages served with "Cross-Origin-Opener-Policy: same-origin" and "Cross-Origin-Embedder-Policy: require-corp" (npm run demo:browser sends both).', 'not-isolated');
    $('state').className = 'warn';
    return;
  }
  const core = loadCoreSync({ shared: true, guestBytes: 16 << 20, initialBytes: 48 << 20 });
  const transport = MessageTransport.create(core);
  const channel = NvmeMmioChannel.create(core);
  const control = new SharedArrayBuffer(4);
  const hosts = new Worker(new URL('./hosts.mjs', import.meta.url), { type: 'module' });
  const nvmeHost = new Worker(new URL('./nvme.mjs', import.meta.url), { type: 'module' });
  await Promise.all([started(hosts, { start: { memory: core.memory, transport: transport.ptr, control } }), started(nvmeHost, { memory: core.memory, channel: channel.ptr })]);
  log('device hosts started in two workers over one shared memory');

  const pages = pageAllocator(core);
  const guest = new GuestBus(transport, { allocPages: pages });
  await guest.connect();
  let hba = null;
  const nics = [];
  for (const offer of guest.offers.all()) {
    if (deviceClassOf(offer.classId) === 'storage') hba = await StorvscDriver.attach(guest, offer, { allocPages: pages });
    else if (deviceClassOf(offer.classId) === 'network') nics.push(await NetvscDriver.attach(guest, offer, { allocPages: pages }));
  }
  log(`storvsc: ${hba.disks.map((d) => `disk ${d.target}:${d.lun} ${d.blockCount} x ${d.blockSize} B`).join(', ')}`);
  const [a, b] = nics;
  log(`netvsc: two NICs, link ${a.link ? 'up' : 'down'}, MTU ${a.mtu}`);
  const nvme = new NvmeDriver(core, new NvmeRemote(channel), { allocPages: pages, ioQueues: 1 });
  await nvme.init();
  log(`nvme: namespace 1, ${nvme.namespaces[0].blockCount} x ${nvme.namespaces[0].blockSize} B`);

  // B echoes every frame back to A; A keeps what it gets.
  const echoed = [];
  b.onReceive = (f) => {
    const back = f.slice();
    back.set(f.subarray(6, 12), 0);
    back.set(b.mac, 6);
    b.send(back);
  };
  a.onReceive = (f) => void echoed.push(f.slice());

  state('running the workload…', 'running');
  for (let round = 0; round < 100; round++) {
    const data = pattern(16384, round);
    await nvme.write(1, round * 32, data);
    if (!same(await nvme.read(1, round * 32, 32), data)) throw new Error(`nvme: read back differs at round ${round}`);
    Object.assign(counters.nvme, { requests: counters.nvme.requests + 2, bytes: counters.nvme.bytes + 2 * data.length });
    for (const lun of [0, 1]) {
      await hba.write(0, lun, round * 32, data);
      if (!same(await hba.read(0, lun, round * 32, 32), data)) throw new Error(`storvsc: disk 0:${lun} read back differs at round ${round}`);
      Object.assign(counters.storvsc, { requests: counters.storvsc.requests + 2, bytes: counters.storvsc.bytes + 2 * data.length });
    }
    const frame = new Uint8Array(600);
    frame.set(b.mac, 0);
    frame.set(a.mac, 6);
    frame.set([0x88, 0xb5, round & 0xff], 12);
    a.send(frame);
    for (let t = 0; echoed.length === 0 && t < 400; t++) {
      guest.poll(); // the frames on their way in are read here, on the page's turn
      await guest.waitForHost(5);
    }
    const back = echoed.shift();
    if (!back || back[14] !== (round & 0xff)) throw new Error(`netvsc: no echo for round ${round}`);
    Object.assign(counters.netvsc, { requests: counters.netvsc.requests + 2, bytes: counters.netvsc.bytes + 2 * frame.length });
    if (round % 10 === 9) show();
  }
  show();
  state('workload done: every block read back and every frame echoed; try the injector', 'done');
  log('workload done');

  const message = (m) => new Promise((resolve) => {
    hosts.onmessage = ({ data }) => resolve(data);
    hosts.postMessage(m);
  });
  $('inject').disabled = $('detach').disabled = $('trace').disabled = false;
  $('inject').onclick = async () => {
    await message({ inject: true });
    try {
      await hba.write(0, 1, 4000, pattern(4096, 9));
      log('write to disk 0:1 after attaching: taken (?)');
    } catch (e) {
      counters.storvsc.errors++;
      log(`write to disk 0:1: ${e.code}: ${e.message.split('\n')[0]}`);
      document.body.dataset.refused = e.code;
    }
    show();
  };
  $('detach').onclick = async () => {
    await message({ inject: false });
    await hba.write(0, 1, 4000, pattern(4096, 9));
    log('injector detached: disk 0:1 takes writes again');
    document.body.dataset.detached = 'yes';
  };
  $('trace').onclick = async () => {
    const { trace } = await message({ trace: true });
    // Two sections in one file, as pcapng allows: the VMBus devices', then the NVMe controller's.
    const blob = new Blob([trace, ...nvmeTrace], { type: 'application/vnd.tcpdump.pcap' });
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = 'sgring-browser-demo.pcapng';
    link.click();
    log(`trace: ${blob.size} bytes downloaded (tshark -r sgring-browser-demo.pcapng)`);
  };
}

main().catch((e) => {
  state(`failed: ${e.message}`, 'failed');
  log(String(e.stack ?? e));
});
