// Two Hyper-V network adapters on one virtual switch, in one thread: each guest netvsc driver
// brings its adapter up over a VMBus channel (NVSP, receive and send buffers, RNDIS), then guest
// A broadcasts a frame and sends B a large one; B answers. The host ends are netvsp devices.
import assert from 'node:assert/strict';
import { GuestBus, HostBus, IommuDomain, loadCoreSync, MessageTransport, NetvscDriver, NetvspDevice, pageAllocator, VirtualSwitch } from 'sgring';

const core = loadCoreSync({ guestBytes: 16 << 20 });
const transport = MessageTransport.create(core);
const dma = IommuDomain.create(core, 'netvsp', { mode: 'identity' });
const host = new HostBus(transport, { dma });
const sw = new VirtualSwitch();
host.offer(new NetvspDevice({ dma, mac: '00:15:5d:00:00:0a', switch: sw, name: 'netvsp0' }).offer());
host.offer(new NetvspDevice({ dma, mac: '00:15:5d:00:00:0b', switch: sw, name: 'netvsp1' }).offer());

const pages = pageAllocator(core);
const guest = new GuestBus(transport, { allocPages: pages, pump: () => host.poll() });
await guest.connect();
const nics = [];
for (const offer of guest.offers.all()) nics.push(await NetvscDriver.attach(guest, offer, { allocPages: pages }));
const [nicA, nicB] = nics;
console.log(nics.map((n) => `${[...n.mac].map((x) => x.toString(16).padStart(2, '0')).join(':')} link ${n.link ? 'up' : 'down'} mtu ${n.mtu}`).join('\n'));

const frame = (dst, src, len) => {
  const f = new Uint8Array(len).fill(0x42);
  f.set(dst, 0);
  f.set(src, 6);
  f.set([0x88, 0xb5], 12);                                     // a local experimental EtherType
  return f;
};
const got = { a: [], b: [] };
nicA.onReceive = (f) => got.a.push(f.slice());                 // a view, valid during the call
nicB.onReceive = (f) => got.b.push(f.slice());
nicA.send(frame(new Uint8Array(6).fill(0xff), nicA.mac, 60));   // broadcast: through a send-buffer section
nicA.send(frame(nicB.mac, nicA.mac, 1514));                     // unicast
const run = () => {
  for (let i = 0; i < 10; i++) (host.poll(), guest.poll());       // both ends, one thread
};
run();
nicB.send(frame(nicA.mac, nicB.mac, 100));
run();
assert.deepEqual([got.b.map((f) => f.length), got.a.map((f) => f.length)], [[60, 1514], [100]]);
console.log(sw.list().map((p) => `${p.name}: in ${p.counters.inFrames}, out ${p.counters.outFrames}`).join('\n'));
for (const n of nics) await n.detach();
assert.equal(pages.stats().usedPages, 0);
