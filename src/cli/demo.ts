// `sgring demo`: one simulated VM with the three devices, both ends of each in this thread: an
// NVMe controller and its driver, a storvsc adapter with two disks, and a netvsc NIC on a virtual
// switch with a second guest's NIC. The guest drivers run a short mixed workload (block writes
// and reads checked byte for byte; ARP, ping and UDP between the two NICs), then readOnlyAfter
// is attached to one disk while the guest writes: the errors surface, nothing acknowledged is
// lost, and after it is detached the disk takes writes again. Every host stage is traced into
// one pcapng file; a table of what crossed each device and the rates ends the run. One thread,
// so the output comes in one order (the rates are measured, so they vary).

import {
  deviceClassOf, GuestBus, HostBus, Iommu, IommuDomain, loadCore, MemoryDisk, MessageTransport, NetvscDriver, NetvspDevice, NvmeController, NvmeDriver,
  pageAllocator, PcapngWriter, readOnlyAfter, SgringError, StorvscDriver, StorvspDevice, TapRegistry, traceTap, VirtualSwitch, type Tap,
} from '../index';
import { FileSink } from '../node/index';
import { parseInjector } from './serve';

export type DemoDevice = 'nvme' | 'storvsc' | 'netvsc';

export interface DemoOptions {
  devices: DemoDevice[];
  /** Seconds of mixed workload (default 2). */
  seconds: number;
  /** The pcapng file (default sgring-demo.pcapng). */
  trace: string;
  /** Injectors attached at the start, NAME[:ARGS] as `sgring serve` takes them (on every device's I/O decode stage). */
  inject: string[];
  out: (line: string) => void;
  /** Replaces the progress line (stderr on a terminal); null: no progress. */
  progress: ((line: string) => void) | null;
}

interface Tally { requests: number; bytes: number; ms: number; errors: number }

const pattern = (n: number, seed: number) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return b;
};
const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);
const hexMac = (m: Uint8Array) => [...m].map((x) => x.toString(16).padStart(2, '0')).join(':');

// ---- a few Ethernet frames, built by hand (ARP, IPv4 with ICMP echo and UDP) ----

function checksum(b: Uint8Array, from: number, to: number, seed = 0): number {
  let s = seed;
  for (let i = from; i < to; i += 2) s += (b[i]! << 8) | (i + 1 < to ? b[i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

function ethernet(dst: Uint8Array, src: Uint8Array, type: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(Math.max(60, 14 + payload.length));
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = type >> 8;
  f[13] = type & 0xff;
  f.set(payload, 14);
  return f;
}

function arp(op: 1 | 2, sha: Uint8Array, spa: number[], tha: Uint8Array, tpa: number[]): Uint8Array {
  const p = new Uint8Array(28);
  p.set([0, 1, 8, 0, 6, 4, 0, op]);
  p.set(sha, 8);
  p.set(spa, 14);
  p.set(tha, 18);
  p.set(tpa, 24);
  return p;
}

function ipv4(src: number[], dst: number[], proto: number, body: Uint8Array): Uint8Array {
  const p = new Uint8Array(20 + body.length);
  p.set([0x45, 0, (p.length >> 8) & 0xff, p.length & 0xff, 0, 1, 0x40, 0, 64, proto], 0);
  p.set(src, 12);
  p.set(dst, 16);
  const c = checksum(p, 0, 20);
  p[10] = c >> 8;
  p[11] = c & 0xff;
  p.set(body, 20);
  return p;
}

function icmpEcho(type: 0 | 8, id: number, seq: number, data: Uint8Array): Uint8Array {
  const m = new Uint8Array(8 + data.length);
  m.set([type, 0, 0, 0, id >> 8, id & 0xff, seq >> 8, seq & 0xff]);
  m.set(data, 8);
  const c = checksum(m, 0, m.length);
  m[2] = c >> 8;
  m[3] = c & 0xff;
  return m;
}

function udp(src: number[], dst: number[], sport: number, dport: number, data: Uint8Array): Uint8Array {
  const u = new Uint8Array(8 + data.length);
  u.set([sport >> 8, sport & 0xff, dport >> 8, dport & 0xff, u.length >> 8, u.length & 0xff]);
  u.set(data, 8);
  const pseudo = new Uint8Array(12 + u.length);
  pseudo.set(src, 0);
  pseudo.set(dst, 4);
  pseudo.set([0, 17, u.length >> 8, u.length & 0xff], 8);
  pseudo.set(u, 12);
  const c = checksum(pseudo, 0, pseudo.length) || 0xffff;
  u[6] = c >> 8;
  u[7] = c & 0xff;
  return u;
}

const IP_A = [10, 0, 0, 1];
const IP_B = [10, 0, 0, 2];
const BROADCAST = new Uint8Array(6).fill(0xff);

export async function demo(o: DemoOptions): Promise<void> {
  const say = o.out;
  const want = new Set(o.devices);
  const injectors = o.inject.map((s, i) => ({ spec: s, ...parseInjector(s, i + 1) })); // checked before anything starts
  const core = await loadCore({ guestBytes: 64 << 20 });
  const pages = pageAllocator(core);
  const taps = new TapRegistry();
  const writer = new PcapngWriter(new FileSink(o.trace), { application: 'sgring demo' });
  const trace = traceTap(writer);
  // Storage at every stage; frames as they leave a guest onto the switch and as they enter one
  // (not the RNDIS control messages, which are not Ethernet frames).
  for (const stage of ['nvme:*:*', 'storvsc:*:*', 'netvsc:tx:execute', 'netvsc:rx:post']) taps.attach(stage, trace);
  for (const i of injectors) taps.attach(`*:io:${i.stage}`, i.tap);
  const tally = new Map<string, Tally>();
  const count = (dev: string, bytes: number, ms: number, requests = 1) => {
    const t = tally.get(dev) ?? { requests: 0, bytes: 0, ms: 0, errors: 0 };
    t.requests += requests;
    t.bytes += bytes;
    t.ms += ms;
    tally.set(dev, t);
  };
  const progress = (line: string) => o.progress?.(line);
  const t0 = performance.now();

  // ---- bring-up ----
  say('sgring demo: one VM, three paravirtual devices, both ends of each in this process');
  let nvme: NvmeDriver | null = null;
  if (want.has('nvme')) {
    const dma = new Iommu(core).domain('nvme0');
    dma.map(0, 64 << 20);
    const ctrl = new NvmeController(core, { dma, namespaces: [{ backend: MemoryDisk.create(core, { blockCount: 16384 }) }], taps, maxQueues: 2 });
    nvme = new NvmeDriver(core, ctrl, { allocPages: pages, ioQueues: 2, queueDepth: 32, retries: 1 });
    await nvme.init();
    const ns = nvme.namespaces[0]!;
    say(`  nvme0     NVMe 1.4 controller, namespace 1: ${ns.blockCount} x ${ns.blockSize} B, ${nvme.ioQueueCount} I/O queue pairs`);
  }
  const transport = MessageTransport.create(core);
  const hostDma = IommuDomain.create(core, 'vmbus', { mode: 'identity' });
  const host = new HostBus(transport, { dma: hostDma });
  const sw = new VirtualSwitch();
  if (want.has('storvsc')) {
    host.offer(new StorvspDevice({
      dma: hostDma, taps, name: 'storvsp0',
      targets: [{ target: 0, lun: 0, backend: MemoryDisk.create(core, { blockCount: 16384 }) }, { target: 0, lun: 1, backend: MemoryDisk.create(core, { blockCount: 16384 }) }],
    }).offer());
  }
  if (want.has('netvsc')) {
    host.offer(new NetvspDevice({ dma: hostDma, mac: '00:15:5d:00:00:0a', switch: sw, name: 'netvsp0', taps }).offer());
    host.offer(new NetvspDevice({ dma: hostDma, mac: '00:15:5d:00:00:0b', switch: sw, name: 'netvsp1', taps }).offer());
  }
  const guest = new GuestBus(transport, { allocPages: pages, pump: () => host.poll() });
  await guest.connect();
  let hba: StorvscDriver | null = null;
  const nics: NetvscDriver[] = [];
  for (const offer of guest.offers.all()) {
    const cls = deviceClassOf(offer.classId);
    if (cls === 'storage') {
      hba = await StorvscDriver.attach(guest, offer, { allocPages: pages });
      say(`  storvsp0  VMBus SCSI adapter, ${hba.disks.map((d) => `disk ${d.target}:${d.lun} ${d.blockCount} x ${d.blockSize} B`).join(', ')}`);
    } else if (cls === 'network') nics.push(await NetvscDriver.attach(guest, offer, { allocPages: pages }));
  }
  const [nicA, nicB] = nics;
  if (nicA && nicB) say(`  netvsp0/1 two VMBus NICs on one switch: ${hexMac(nicA.mac)} (10.0.0.1), ${hexMac(nicB.mac)} (10.0.0.2), link up, MTU ${nicA.mtu}`);
  const pump = () => {
    for (let i = 0; i < 4; i++) (host.poll(), guest.poll());
  };

  // Guest B answers ARP, ping and UDP (echo); guest A keeps what comes back.
  const toA: Uint8Array[] = [];
  if (nicA && nicB) {
    nicA.onReceive = (f) => void toA.push(f.slice());
    nicB.onReceive = (f) => {
      const type = (f[12]! << 8) | f[13]!;
      const src = f.slice(6, 12);
      if (type === 0x0806 && f[21] === 1) nicB.send(ethernet(src, nicB.mac, 0x0806, arp(2, nicB.mac, IP_B, src, IP_A)));
      else if (type === 0x0800 && f[23] === 1 && f[34] === 8) {
        const len = ((f[16]! << 8) | f[17]!) - 20;
        const echo = f.subarray(34, 34 + len);
        nicB.send(ethernet(src, nicB.mac, 0x0800, ipv4(IP_B, IP_A, 1, icmpEcho(0, (echo[4]! << 8) | echo[5]!, (echo[6]! << 8) | echo[7]!, echo.subarray(8)))));
      } else if (type === 0x0800 && f[23] === 17) {
        const len = ((f[38]! << 8) | f[39]!) - 8;
        nicB.send(ethernet(src, nicB.mac, 0x0800, ipv4(IP_B, IP_A, 17, udp(IP_B, IP_A, 7, (f[34]! << 8) | f[35]!, f.subarray(42, 42 + len)))));
      }
    };
  }

  // ---- the mixed workload ----
  say('');
  say(`workload: ${o.seconds} s of checked block I/O and network traffic`);
  const acked = new Map<string, Uint8Array>(); // what each disk acknowledged, to check nothing was lost
  let netOk = true;
  if (nicA && nicB) {
    const sent = performance.now();
    nicA.send(ethernet(BROADCAST, nicA.mac, 0x0806, arp(1, nicA.mac, IP_A, new Uint8Array(6), IP_B)));
    pump();
    const reply = toA.shift();
    netOk = !!reply && reply[21] === 2 && same(reply.subarray(22, 28), nicB.mac);
    count('netvsc', 120, performance.now() - sent, 2);
    say(`  ARP: who-has 10.0.0.2 tell 10.0.0.1 -> ${netOk ? `10.0.0.2 is-at ${hexMac(nicB.mac)}` : 'no answer'}`);
    const pinged = performance.now();
    nicA.send(ethernet(nicB.mac, nicA.mac, 0x0800, ipv4(IP_A, IP_B, 1, icmpEcho(8, 0x5347, 1, pattern(56, 1)))));
    pump();
    const pong = toA.shift();
    const pongOk = !!pong && pong[23] === 1 && pong[34] === 0;
    netOk &&= pongOk;
    count('netvsc', 196, performance.now() - pinged, 2);
    say(`  ping 10.0.0.2: ${pongOk ? 'echo reply, 64 bytes' : 'no reply'}`);
  }
  /**
   * A write and its read back. An error the device answered (an injector given with --inject)
   * is counted and leaves nothing acknowledged; bytes that differ after an acknowledged write
   * end the demo.
   */
  const checked = async (dev: string, key: string, data: Uint8Array, write: (d: Uint8Array) => Promise<unknown>, read: () => Promise<unknown>) => {
    const s = performance.now();
    try {
      await write(data);
      acked.set(key, data);
      const back = (await read()) as Uint8Array;
      if (!same(back, data)) throw new Error(`demo: ${dev} read back differs at ${key}`);
      count(dev, 2 * data.length, performance.now() - s, 2);
    } catch (e) {
      if (!(e instanceof SgringError)) throw e;
      count(dev, 0, performance.now() - s, 1);
      tally.get(dev)!.errors++;
    }
  };
  const end = performance.now() + o.seconds * 1000;
  let round = 0;
  while (performance.now() < end) {
    round++;
    if (nvme) {
      const lba = (round * 128) % 16000;
      await checked('nvme', `nvme:${lba}`, pattern(65536, round), (d) => nvme!.write(1, lba, d), () => nvme!.read(1, lba, 128));
    }
    if (hba) {
      for (const lun of [0, 1]) {
        const lba = (round * 64) % 16000;
        await checked('storvsc', `scsi${lun}:${lba}`, pattern(32768, round + lun), (d) => hba!.write(0, lun, lba, d), () => hba!.read(0, lun, lba, 64));
      }
    }
    if (nicA && nicB) {
      const s = performance.now();
      const msg = pattern(512, round);
      nicA.send(ethernet(nicB.mac, nicA.mac, 0x0800, ipv4(IP_A, IP_B, 17, udp(IP_A, IP_B, 40000, 7, msg))));
      pump();
      const back = toA.shift();
      const ok = !!back && back[23] === 17 && same(back.subarray(42, 42 + 512), msg);
      netOk &&= ok;
      count('netvsc', 2 * (42 + 512), performance.now() - s, 2);
    }
    if (round % 16 === 0) progress(`workload ${Math.min(100, Math.round((100 * (performance.now() - t0)) / (o.seconds * 1000 + 1)))}%: ${round} rounds`);
  }
  progress('');
  if (nicA && nicB) say(`  UDP echo: ${round} datagrams of 512 bytes to 10.0.0.2:7 and back, ${netOk ? 'every one intact' : 'SOME LOST OR DAMAGED'}`);
  const failed = (tally.get('nvme')?.errors ?? 0) + (tally.get('storvsc')?.errors ?? 0);
  say(`  block I/O: ${round} rounds of write + read back, every byte checked${failed ? `; ${failed} requests failed by the injectors given` : ''}`);

  // ---- a fault at run time ----
  if (hba) {
    say('');
    say('fault: readOnlyAfter(2) attached to storvsc disk 0:1 while the guest writes (the frankendrive "No Writes" drive)');
    const inner = readOnlyAfter(2);
    const onLun1: Tap = (ctx) => ((ctx as { request?: string }).request?.startsWith('0:1:') ? inner(ctx) : undefined);
    const handle = taps.attach('storvsc:io:decode', onLun1);
    const results: string[] = [];
    for (let i = 0; i < 4; i++) {
      const lba = 16100 + i * 8; // past what the workload wrote
      const data = pattern(4096, 100 + i);
      try {
        await hba.write(0, 1, lba, data);
        acked.set(`scsi1:${lba}`, data);
        results.push(`write LBA ${lba}: ok`);
      } catch (e) {
        const err = e as SgringError;
        const d = err.details as { senseKey?: number; asc?: number; ascq?: number } | undefined;
        tally.get('storvsc')!.errors++;
        results.push(`write LBA ${lba}: ${err.code} (CHECK CONDITION, sense key ${d?.senseKey ?? '?'} / ASC 0x${(d?.asc ?? 0).toString(16)}: write protected)`);
      }
    }
    for (const r of results) say(`  ${r}`);
    say('  the driver surfaced the CHECK CONDITION as a typed error for that write only; the adapter stayed up');
    let lost = 0;
    for (const [key, data] of acked) {
      const read = key.startsWith('nvme:')
        ? () => nvme!.read(1, Number(key.slice(5)), data.length / 512)
        : () => hba!.read(0, Number(key[4]), Number(key.slice(6)), data.length / 512);
      // A read an injector given with --inject fails is tried again; bytes that differ are lost.
      for (let attempt = 1; ; attempt++) {
        try {
          if (!same(await read(), data)) lost++;
          break;
        } catch (e) {
          if (!(e instanceof SgringError) || attempt === 10) throw e;
        }
      }
    }
    say(`  every acknowledged write read back: ${acked.size} ranges, ${lost === 0 ? 'nothing lost' : `${lost} LOST`}`);
    handle.detach();
    await hba.write(0, 1, 16200, pattern(4096, 7)).catch((e) => {
      if (!(e instanceof SgringError) || injectors.length === 0) throw e; // an injector given with --inject may still fail it
    });
    say('  injector detached: the disk takes writes again');
    if (lost > 0) throw new SgringError('InvalidArgument', `demo: ${lost} acknowledged writes were lost`);
  }

  // ---- trace and totals ----
  for (const n of nics) await n.detach();
  if (hba) await hba.detach();
  writer.close();
  say('');
  say(`trace: ${o.trace}, ${trace.stats.events} events from ${[...new Set([...(nvme ? ['nvme0'] : []), ...(hba ? ['storvsp0'] : []), ...(nics.length ? ['netvsp0', 'netvsp1'] : [])])].join(', ')}`);
  say(`  read it with: tshark -r ${o.trace}   (NVMe/TCP, iSCSI and Ethernet frames, faults as packet comments)`);
  say('');
  say('device    requests  bytes moved   MB/s     requests/s  errors');
  for (const dev of ['nvme', 'storvsc', 'netvsc']) {
    const t = tally.get(dev);
    if (!t) continue;
    const s = t.ms / 1000;
    say(`${dev.padEnd(9)} ${String(t.requests).padStart(8)}  ${String(t.bytes).padStart(11)}  ${(t.bytes / 1e6 / s).toFixed(1).padStart(6)}  ${(t.requests / s).toFixed(0).padStart(10)}  ${String(t.errors).padStart(6)}`);
  }
  say(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  if (!netOk) throw new SgringError('InvalidArgument', 'demo: a network exchange failed');
}
