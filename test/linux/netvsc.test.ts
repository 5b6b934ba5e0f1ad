// netvsc meets a real Linux guest: Debian's kernel under QEMU with a virtio-net NIC on
// `-netdev dgram`, one Ethernet frame per UDP datagram to the switch's UdpUplink. The Linux
// guest (169.254.0.1) pings our netvsc guest (169.254.0.2), which answers ARP and echo requests
// from Node; then our guest pings Linux and the Linux kernel answers.
import { expect, it } from 'vitest';
import { GuestBus, HostBus, IommuDomain, loadCoreSync, MessageTransport, NetvscDriver, NetvspDevice, pageAllocator, VirtualSwitch } from '../../src/index';
import { UdpUplink } from '../../src/node/index';
import { bootLinux, initramfs, linuxGuestMissing, prepareKernel } from '../util/linux-guest';

const missing = linuxGuestMissing();
if (missing && process.env.SGRING_REQUIRE_TOOLS === '1') throw new Error(`the QEMU Linux guest test must run under CI: ${missing}`);
if (missing) console.warn(`the QEMU Linux guest test is skipped: ${missing}`);

const ME = [169, 254, 0, 2];
const LINUX = [169, 254, 0, 1];

function checksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

it.skipIf(missing !== null)('a Linux guest on the switch pings our netvsc guest, and our guest pings it back (ARP, ICMP, both ways)', async () => {
  const kernel = prepareKernel();
  const core = loadCoreSync({ guestBytes: 16 << 20 });
  const transport = MessageTransport.create(core);
  const dma = IommuDomain.create(core, 'netvsp', { mode: 'identity' });
  const host = new HostBus(transport, { dma });
  const sw = new VirtualSwitch();
  host.offer(new NetvspDevice({ dma, mac: '00:15:5d:a9:fe:02', switch: sw }).offer());
  const uplink = new UdpUplink({ port: 0 }); // learns QEMU's address from its first datagram
  await uplink.open();
  sw.addUplink(uplink);
  const pages = pageAllocator(core);
  const guest = new GuestBus(transport, { allocPages: pages, pump: () => host.poll() });
  await guest.connect();
  const nic = await NetvscDriver.attach(guest, guest.offers.all()[0]!, { allocPages: pages });

  // A minimal stack at 169.254.0.2: ARP replies, echo replies, and our own pings' replies noted.
  let linuxMac: Uint8Array | null = null;
  const answered = { arp: 0, echo: 0 };
  const replies: number[] = [];
  const eth = (dst: ArrayLike<number>, type: number, payload: ArrayLike<number>) => Uint8Array.from([...Array.from(dst), ...nic.mac, type >> 8, type & 0xff, ...Array.from(payload)]);
  nic.onReceive = (f) => {
    const type = (f[12]! << 8) | f[13]!;
    if (type === 0x0806 && f[21] === 1 && [...f.subarray(38, 42)].join() === ME.join()) {
      linuxMac = f.slice(22, 28);
      nic.send(eth(f.subarray(6, 12), 0x0806, [0, 1, 8, 0, 6, 4, 0, 2, ...nic.mac, ...ME, ...f.subarray(22, 28), ...f.subarray(28, 32)]));
      answered.arp++;
    } else if (type === 0x0806 && f[21] === 2) linuxMac = f.slice(22, 28);
    else if (type === 0x0800 && f[23] === 1 && f[34] === 8) {
      const r = f.slice();
      r.set(f.subarray(6, 12), 0);
      r.set(nic.mac, 6);
      r.set(f.subarray(30, 34), 26);
      r.set(f.subarray(26, 30), 30);
      r[34] = 0;
      r[36] = r[37] = 0;
      const c = checksum(r.subarray(34, 14 + ((r[16]! << 8) | r[17]!)));
      r[36] = c >> 8;
      r[37] = c & 0xff;
      nic.send(r);
      answered.echo++;
    } else if (type === 0x0800 && f[23] === 1 && f[34] === 0 && f[38] === 0x5a) replies.push((f[40]! << 8) | f[41]!);
  };
  // Once Linux has pinged us, we ping it: three echo requests, ids 0x5a17.
  let pinged = 0;
  let next = 0;
  const tick = () => {
    host.poll();
    guest.poll();
    if (answered.echo >= 3 && linuxMac && pinged < 3 && performance.now() > next) {
      const icmp = new Uint8Array(8 + 32);
      icmp.set([8, 0, 0, 0, 0x5a, 0x17, 0, ++pinged]);
      const c = checksum(icmp);
      icmp[2] = c >> 8;
      icmp[3] = c & 0xff;
      const ip = new Uint8Array(20 + icmp.length);
      ip.set([0x45, 0, 0, ip.length, 0, pinged, 0x40, 0, 64, 1, 0, 0, ...ME, ...LINUX]);
      const ic = checksum(ip.subarray(0, 20));
      ip[10] = ic >> 8;
      ip[11] = ic & 0xff;
      ip.set(icmp, 20);
      nic.send(eth(linuxMac, 0x0800, ip));
      next = performance.now() + 200;
    }
  };
  const script = [
    'ip link set lo up; ip link set eth0 up',
    'ip addr add 169.254.0.1/16 dev eth0',
    'ping -c 3 -W 5 169.254.0.2 || exit 1',
    'sleep 2', // our guest's pings come in meanwhile; the kernel answers them
    'exit 0',
    '',
  ].join('\n');
  const rd = initramfs(kernel, ['virtio_pci', 'virtio_net'], script);
  try {
    const r = await bootLinux(kernel, rd.path, [
      '-netdev', `dgram,id=n1,local.type=inet,local.host=127.0.0.1,local.port=0,remote.type=inet,remote.host=127.0.0.1,remote.port=${uplink.port}`,
      '-device', 'virtio-net-pci,netdev=n1,romfile=,mac=52:54:00:a9:fe:01',
    ], { timeoutMs: 60_000, tick });
    expect(r.code, r.output.slice(-3000)).toBe(0);
    expect(r.output).toMatch(/3 packets transmitted, 3 packets received/);
    expect(answered.echo).toBeGreaterThanOrEqual(3);
    expect([...linuxMac!].map((b) => b.toString(16).padStart(2, '0')).join(':')).toBe('52:54:00:a9:fe:01');
    expect(replies).toEqual([1, 2, 3]);
  } finally {
    rd.remove();
    await nic.detach();
    await uplink.close();
  }
}, 120_000);
