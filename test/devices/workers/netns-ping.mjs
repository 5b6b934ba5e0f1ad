// Runs inside the network namespace of the real-stack test: its TAP device (10.77.0.1/24, made
// by socat) is bridged to UDP, one frame per datagram, and our switch's UdpUplink is the other
// end. A netvsc guest at 10.77.0.2 on that switch asks the Linux kernel for the TAP's MAC (ARP),
// answers the kernel's own ARP questions, and pings 10.77.0.1 three times. Prints one JSON line.
//
// argv[2]: { uplinkPort, tapPort }

import { GuestBus, HostBus, IommuDomain, loadCoreSync, MessageTransport, NetvscDriver, NetvspDevice, pageAllocator, VirtualSwitch } from '../../../dist/index.mjs';
import { UdpUplink } from '../../../dist/node.mjs';

const { uplinkPort, tapPort } = JSON.parse(process.argv[2]);
const ME = [10, 77, 0, 2];
const KERNEL = [10, 77, 0, 1];

const core = loadCoreSync({ guestBytes: 16 << 20 });
const transport = MessageTransport.create(core);
const dma = IommuDomain.create(core, 'netvsp', { mode: 'identity' });
const host = new HostBus(transport, { dma });
const sw = new VirtualSwitch();
const dev = new NetvspDevice({ dma, mac: '00:15:5d:77:00:02', switch: sw });
host.offer(dev.offer());
const uplink = new UdpUplink({ port: uplinkPort, remote: { port: tapPort } });
await uplink.open();
sw.addUplink(uplink);
const pages = pageAllocator(core);
const guest = new GuestBus(transport, { allocPages: pages, pump: () => host.poll() });
await guest.connect();
const nic = await NetvscDriver.attach(guest, guest.offers.all()[0], { allocPages: pages });

const eth = (dst, type, payload) => {
  const f = new Uint8Array(14 + payload.length);
  f.set(dst, 0);
  f.set(nic.mac, 6);
  f[12] = type >> 8;
  f[13] = type & 0xff;
  f.set(payload, 14);
  return f;
};
const arp = (op, tha, tpa) => Uint8Array.from([0, 1, 8, 0, 6, 4, 0, op, ...nic.mac, ...ME, ...tha, ...tpa]);
const csum = (b, from, to) => {
  let s = 0;
  for (let i = from; i < to; i += 2) s += (b[i] << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
};
const ping = (dst, seq, data) => {
  const ip = new Uint8Array(20 + 8 + data.length);
  ip.set([0x45, 0, (ip.length >> 8) & 0xff, ip.length & 0xff, 0x12, 0x34, 0x40, 0, 64, 1, 0, 0, ...ME, ...KERNEL]);
  const c = csum(ip, 0, 20);
  ip[10] = c >> 8;
  ip[11] = c & 0xff;
  ip.set([8, 0, 0, 0, 0x5a, 0x17, seq >> 8, seq & 0xff], 20);
  ip.set(data, 28);
  const ic = csum(ip, 20, ip.length);
  ip[22] = ic >> 8;
  ip[23] = ic & 0xff;
  return eth(dst, 0x0800, ip);
};
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

let kernelMac = null;
const replies = [];
const seen = { arpRequestsAnswered: 0, other: 0 };
const payload = Uint8Array.from({ length: 56 }, (_, i) => i);
nic.onReceive = (f) => {
  const type = (f[12] << 8) | f[13];
  if (type === 0x0806 && f.length >= 42) {
    const op = (f[20] << 8) | f[21];
    const spa = [...f.subarray(28, 32)];
    const tpa = [...f.subarray(38, 42)];
    if (op === 2 && same(spa, KERNEL)) kernelMac = f.slice(22, 28);
    if (op === 1 && same(tpa, ME)) {
      nic.send(eth(f.subarray(22, 28), 0x0806, arp(2, [...f.subarray(22, 28)], spa)));
      seen.arpRequestsAnswered++;
    }
    return;
  }
  if (type === 0x0800 && f[23] === 1 && same([...f.subarray(26, 30)], KERNEL) && f[34] === 0 && f[38] === 0x5a && f[39] === 0x17) {
    const icmpOk = csum(f, 34, 14 + ((f[16] << 8) | f[17])) === 0;
    replies.push({ seq: (f[40] << 8) | f[41], icmpOk, payloadOk: same(f.subarray(42, 42 + 56), payload) });
    return;
  }
  seen.other++; // IPv6 router solicitations and the like
};

const until = async (done, ms) => {
  const deadline = performance.now() + ms;
  while (!done() && performance.now() < deadline) {
    host.poll();
    guest.poll();
    await new Promise((r) => setImmediate(r));
  }
  return done();
};

// Asked again every 200 ms, as a stack does: the bridge may still be binding its socket.
const t0 = performance.now();
let arpTries = 0;
while (kernelMac === null && arpTries < 50) {
  nic.send(eth(new Uint8Array(6).fill(0xff), 0x0806, arp(1, [0, 0, 0, 0, 0, 0], KERNEL)));
  arpTries++;
  await until(() => kernelMac !== null, 200);
}
const arpMs = performance.now() - t0;
if (kernelMac !== null) {
  for (let seq = 1; seq <= 3; seq++) {
    nic.send(ping(kernelMac, seq, payload));
    await until(() => replies.length >= seq, 3000);
  }
}
console.log(JSON.stringify({
  kernelMac: kernelMac ? [...kernelMac].map((b) => b.toString(16).padStart(2, '0')).join(':') : null,
  arpMs, arpTries, replies, seen, uplink: uplink.counters, nic: nic.counters, dev: dev.counters,
}));
await nic.detach();
await uplink.close();
process.exit(0);
