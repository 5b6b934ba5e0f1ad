// netvsc meets a real Linux guest: Debian's kernel under QEMU with a virtio-net NIC on
// `-netdev dgram`, one Ethernet frame per UDP datagram to the switch's UdpUplink. The Linux
// guest (169.254.0.1) pings our netvsc guest (169.254.0.2), which answers ARP and echo requests
// from Node; then our guest pings Linux and the Linux kernel answers; then our guest sends 10^4
// UDP datagrams to a port nobody listens on, and the kernel answers each with an ICMP port
// unreachable quoting it (rate limit off): both directions counted, none lost or corrupted.
import { expect, it } from 'vitest';
import { GuestBus, HostBus, IommuDomain, loadCoreSync, MessageTransport, NetvscDriver, NetvspDevice, pageAllocator, VirtualSwitch } from '../../src/index';
import { UdpUplink } from '../../src/node/index';
import { linuxGuestSkip, runGuest } from '../util/linux-guest.mjs';

const missing = linuxGuestSkip('the QEMU Linux guest netvsc test');

const ME = [169, 254, 0, 2];
const LINUX = [169, 254, 0, 1];

function checksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

it.skipIf(missing !== null)('a Linux guest on the switch pings our netvsc guest and is pinged back (ARP, ICMP), then takes 10^4 UDP datagrams and answers each (ICMP port unreachable): none lost or corrupt', async () => {
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
    else if (type === 0x0800 && f[23] === 1 && f[34] === 3 && f[35] === 3) {
      // Port unreachable, quoting our IP header and the first 8 bytes of the UDP datagram: its source port is the sequence number.
      const seq = ((f[62]! << 8) | f[63]!) & 0x7fff; // ICMP at 34, the quoted IP header at 42, its UDP header at 62
      if (f[42 + 9] === 17 && !unreachable.has(seq)) unreachable.add(seq);
      else duplicates++;
    }
  };
  const unreachable = new Set<number>();
  let duplicates = 0;
  let udpSent = 0;
  const UDP_COUNT = 10_000;
  const udp = (seq: number) => {
    const payload = new Uint8Array(64).map((_, i) => (seq + i) & 0xff);
    const u = new Uint8Array(8 + payload.length);
    u.set([0x80 | (seq >> 8), seq & 0xff, 0, 9, u.length >> 8, u.length & 0xff, 0, 0]); // source port 0x8000 + seq, to the discard port
    u.set(payload, 8);
    const pseudo = Uint8Array.from([...ME, ...LINUX, 0, 17, 0, u.length, ...u]);
    const c = checksum(pseudo) || 0xffff;
    u[6] = c >> 8;
    u[7] = c & 0xff;
    const ip = new Uint8Array(20 + u.length);
    ip.set([0x45, 0, (ip.length >> 8) & 0xff, ip.length & 0xff, seq >> 8, seq & 0xff, 0x40, 0, 64, 17, 0, 0, ...ME, ...LINUX]);
    const ic = checksum(ip.subarray(0, 20));
    ip[10] = ic >> 8;
    ip[11] = ic & 0xff;
    ip.set(u, 20);
    return eth(linuxMac!, 0x0800, ip);
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
    // After the pings: the datagrams, at most 32 unanswered at a time (QEMU's socket would drop a burst).
    if (replies.length >= 3 && linuxMac) {
      while (udpSent < UDP_COUNT && udpSent - unreachable.size < 32) nic.send(udp(udpSent++));
    }
  };
  try {
    const r = await runGuest({
      modules: ['virtio_pci', 'virtio_net'],
      lines: [
        'ip link set lo up; ip link set eth0 up',
        'ip addr add 169.254.0.1/16 dev eth0',
        'sysctl -w net.ipv4.icmp_ratelimit=0 net.ipv4.icmp_msgs_per_sec=1000000 net.ipv4.icmp_msgs_burst=1000000 >/dev/null',
        'ping -c 3 -W 5 169.254.0.2 || exit 1',
        // our guest's pings, then its datagrams, come in meanwhile; the kernel answers them
        `for i in $(seq 1 600); do set -- $(grep "^Udp: [0-9]" /proc/net/snmp); [ "$3" -ge ${UDP_COUNT} ] && break; sleep 0.1; done`,
        'grep "^Udp:" /proc/net/snmp | sed "s/^/SNMP /"',
      ],
      args: [
        '-netdev', `dgram,id=n1,local.type=inet,local.host=127.0.0.1,local.port=0,remote.type=inet,remote.host=127.0.0.1,remote.port=${uplink.port}`,
        '-device', 'virtio-net-pci,netdev=n1,romfile=,mac=52:54:00:a9:fe:01',
      ],
      timeoutMs: 90_000,
      tick,
    });
    expect(r.code, `${r.output.slice(-3000)}\nsent ${udpSent}, answered ${unreachable.size}`).toBe(0);
    expect(r.output).toMatch(/3 packets transmitted, 3 packets received/);
    expect(answered.echo).toBeGreaterThanOrEqual(3);
    expect([...linuxMac!].map((b) => b.toString(16).padStart(2, '0')).join(':')).toBe('52:54:00:a9:fe:01');
    expect(replies).toEqual([1, 2, 3]);
    // The kernel's UDP counters: every datagram arrived (NoPorts), none failed its checksum.
    const [head, values] = [...r.output.matchAll(/SNMP Udp: (.*)/g)].map((m) => m[1]!.trim().split(/\s+/));
    const snmp = Object.fromEntries(head!.map((k, i) => [k, Number(values![i])]));
    expect([snmp.NoPorts, snmp.InErrors, snmp.InCsumErrors]).toEqual([UDP_COUNT, 0, 0]);
    expect([unreachable.size, duplicates]).toEqual([UDP_COUNT, 0]);
  } finally {
    await nic.detach();
    await uplink.close();
  }
}, 120_000);
