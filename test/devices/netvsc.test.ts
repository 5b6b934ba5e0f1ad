// netvsc end to end in one thread: two guest drivers, each on its own netvsp, the two netvsps on
// one virtual switch, over real VMBus rings: initialisation, frames through send-buffer sections
// and page buffers, transfer-page receives, link indications.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  corrupt, drop, GuestBus, HostBus, instanceGuid, IommuDomain, loadCoreSync, MemorySink, MessageTransport, NetvscDriver, NetvspDevice, NVSP_VERSION, pageAllocator,
  PcapngWriter, TapRegistry, traceTap, VirtualSwitch,
} from '../../src/index';
import { haveTool } from '../util/tools';

const MAC_A = '00:15:5d:00:00:0a';
const MAC_B = '00:15:5d:00:00:0b';

async function rig(o: { chimneyMax?: number; taps?: TapRegistry; channels?: number; recvBufferBytes?: number } = {}, taps?: TapRegistry, subChannels = 0) {
  const core = loadCoreSync({ guestBytes: 32 << 20 });
  const transport = MessageTransport.create(core);
  const dma = IommuDomain.create(core, 'netvsp', { mode: 'identity' });
  const host = new HostBus(transport, { dma });
  const sw = new VirtualSwitch();
  const more = { ...(taps ? { taps } : {}), ...(subChannels > 0 ? { subChannels: { bus: host, max: subChannels } } : {}) };
  const devA = new NetvspDevice({ dma, mac: MAC_A, switch: sw, name: 'netvsp0', instanceId: instanceGuid(0xa), ...more });
  const devB = new NetvspDevice({ dma, mac: MAC_B, switch: sw, name: 'netvsp1', instanceId: instanceGuid(0xb), ...more });
  host.offer(devA.offer());
  host.offer(devB.offer());
  const pages = pageAllocator(core);
  const guest = new GuestBus(transport, { allocPages: pages, pump: () => host.poll() });
  await guest.connect();
  const offer = (id: string) => guest.offers.all().find((x) => x.instanceId === id)!;
  const a = await NetvscDriver.attach(guest, offer(instanceGuid(0xa)), { allocPages: pages, ...o, name: 'netvsc0' });
  const b = await NetvscDriver.attach(guest, offer(instanceGuid(0xb)), { allocPages: pages, ...o, name: 'netvsc1' });
  /** Runs both ends until `done()` (or gives up after many rounds). */
  const settle = (done: () => boolean) => {
    for (let i = 0; i < 100_000 && !done(); i++) {
      host.poll();
      guest.poll();
    }
    host.poll();
    guest.poll();
  };
  return { core, host, guest, sw, devA, devB, a, b, pages, settle };
}

const mac = (s: string) => Uint8Array.from(s.split(':').map((h) => parseInt(h, 16)));
/** An Ethernet frame to `dst` from `src` of `len` bytes, payload a pattern from `seed`. */
function frame(dst: Uint8Array, src: Uint8Array, len: number, seed: number): Uint8Array {
  const f = new Uint8Array(len);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = 0x08;
  f[13] = 0x00;
  for (let i = 14; i < len; i++) f[i] = (i * 13 + seed) & 0xff;
  return f;
}

describe('netvsc guest, netvsp host and the virtual switch', () => {
  it('initialises as Linux does: NVSP 6.1, receive and send buffers, RNDIS INITIALIZE, the MAC and the link from the host', async () => {
    const { a, b, devA } = await rig();
    expect(a.version).toBe(NVSP_VERSION.v61);
    expect([...a.mac]).toEqual([...mac(MAC_A)]);
    expect([...b.mac]).toEqual([...mac(MAC_B)]);
    expect([a.link, a.mtu]).toEqual([true, 1500]);
    expect(devA.counters).toMatchObject({ badRequests: 0, badRndis: 0, unsupportedOids: 0 });
    expect(devA.counters.control).toBeGreaterThanOrEqual(5); // INITIALIZE, two MAC/link queries, MTU, packet filter
    await a.keepalive();
  });

  it('a broadcast and a unicast frame from A reach B byte for byte; B answers A; the switch learned both', async () => {
    const { a, b, sw, settle } = await rig();
    const got: { at: string; f: Uint8Array }[] = [];
    a.onReceive = (f) => got.push({ at: 'a', f: f.slice() });
    b.onReceive = (f) => got.push({ at: 'b', f: f.slice() });
    const bcast = frame(new Uint8Array(6).fill(0xff), a.mac, 60, 1);
    expect(a.send(bcast)).toBe(true);
    settle(() => got.length >= 1);
    expect(got).toEqual([{ at: 'b', f: bcast }]);
    const reply = frame(a.mac, b.mac, 98, 2);
    b.send(reply);
    settle(() => got.length >= 2);
    expect(got[1]).toEqual({ at: 'a', f: reply });
    const uni = frame(b.mac, a.mac, 1514, 3);
    a.send(uni);
    settle(() => got.length >= 3);
    expect(got[2]).toEqual({ at: 'b', f: uni });
    expect(sw.counters.flooded).toBe(1); // only the broadcast: the unicast frames went to learned ports
    expect(sw.list().map((p) => [p.name, p.counters.inFrames, p.counters.outFrames])).toEqual([['netvsp0', 2, 1], ['netvsp1', 1, 2]]);
  });

  it('ARP, ICMP echo and 10^5 UDP frames of mixed sizes between two guests: small ones through send sections, large ones by page buffer; none lost, none corrupt', async () => {
    const { a, b, host, guest, settle } = await rig({ chimneyMax: 512 });
    // B is a tiny stack at 10.0.0.2: it answers ARP and echo requests, and checks every UDP datagram.
    const sizes = [18, 22, 100, 469, 470, 471, 958, 1472]; // UDP payloads: frames of 60..1514 bytes
    let received = 0;
    let corrupt = 0;
    b.onReceive = (f) => {
      if (f[12] === 0x08 && f[13] === 0x06 && f[21] === 1) b.send(arpReply(f, b.mac));
      else if (f[23] === 1 && f[34] === 8) b.send(echoReply(f));
      else if (f[23] === 17) {
        const want = udp(b.mac, a.mac, sizes[received % sizes.length]!, received);
        if (f.length !== want.length || f.some((x, i) => x !== want[i])) corrupt++;
        received++;
      }
    };
    let bMac: Uint8Array | null = null;
    let echoed: Uint8Array | null = null;
    a.onReceive = (f) => {
      if (f[12] === 0x08 && f[13] === 0x06 && f[21] === 2) bMac = f.slice(22, 28);
      else if (f[23] === 1 && f[34] === 0) echoed = f.slice();
    };
    a.send(arpRequest(a.mac));
    settle(() => bMac !== null);
    expect(bMac).toEqual(b.mac);
    const ping = echoRequest(bMac!, a.mac, 7);
    a.send(ping);
    settle(() => echoed !== null);
    expect(echoed!.subarray(42)).toEqual(ping.subarray(42)); // the payload came back
    const total = 100_000;
    for (let sent = 0; sent < total;) {
      if (a.send(udp(bMac!, a.mac, sizes[sent % sizes.length]!, sent))) sent++;
      else for (let i = 0; i < 4; i++) (host.poll(), guest.poll()); // flow control: until the host catches up
    }
    settle(() => received >= total);
    expect({ received, corrupt }).toEqual({ received: total, corrupt: 0 });
    expect(a.counters.txChimney).toBe(total * 5 / 8 + 2);
    expect(a.counters.txPageBuffer).toBe(total * 3 / 8);
    expect(a.counters.txFailed).toBe(0);
    expect(b.counters).toMatchObject({ rxFrames: total + 2, rxBadRanges: 0, rxBadRndis: 0, rxBadPackets: 0 });
  }, 60_000);

  it('flow control: sends refused when every section is in flight; onWritable fires once a completion frees one, and the frames all arrive', async () => {
    const { a, b, settle } = await rig();
    let got = 0;
    b.onReceive = () => got++;
    let sent = 0;
    while (a.send(frame(b.mac, a.mac, 60, sent))) sent++;
    expect(a.counters.txBusy).toBe(1);
    let woken = 0;
    a.onWritable = () => woken++;
    settle(() => got >= sent);
    expect([got, woken]).toEqual([sent, 1]);
    expect(a.send(frame(b.mac, a.mac, 60, 0))).toBe(true);
  });

  it('sendBurst packs small frames several to a send section (8 per RNDIS message, 8-byte aligned, as the host allows): all arrive in order, intact; large ones go by page buffer between them', async () => {
    const { a, b, settle } = await rig({ chimneyMax: 1000 });
    const got: Uint8Array[] = [];
    b.onReceive = (f) => got.push(f.slice());
    const burst = Array.from({ length: 100 }, (_, i) => frame(b.mac, a.mac, i % 25 === 24 ? 1514 : 60 + (i % 7), i));
    let sent = 0;
    for (let round = 0; sent < burst.length && round < 1000; round++) {
      sent += a.sendBurst(burst.slice(sent));
      settle(() => got.length >= sent);
    }
    expect(got.length).toBe(100);
    expect(got.every((f, i) => f.length === burst[i]!.length && f.every((x, k) => x === burst[i]![k]))).toBe(true);
    // 96 small frames in runs of 24 between the four large ones: 3 sections of 8 per run.
    expect([a.counters.txChimney, a.counters.txPageBuffer, a.counters.txFrames]).toEqual([12, 4, 100]);
  });

  it('sendBurst stops when the send sections run out and says how many went; the rest go once completions free sections', async () => {
    const { a, b, settle } = await rig({ recvBufferBytes: 8 << 20 }); // B takes what A's sections hold without dropping
    let got = 0;
    b.onReceive = () => got++;
    const burst = Array.from({ length: 4000 }, (_, i) => frame(b.mac, a.mac, 60, i));
    const first = a.sendBurst(burst);
    expect(first).toBeLessThan(4000);
    expect(first % 8).toBe(0); // whole sections went
    expect(a.counters.txBusy).toBe(1);
    settle(() => got >= first);
    let sent = first;
    for (let round = 0; sent < burst.length && round < 1000; round++) {
      sent += a.sendBurst(burst.slice(sent));
      settle(() => got >= sent);
    }
    expect(got).toBe(4000);
    expect(() => a.sendBurst([new Uint8Array(10)])).toThrow(/frames\[0\]/);
  });

  it('the host takes the link down and up: the guest is told (INDICATE_STATUS), frames for a down link are dropped and counted', async () => {
    const { a, b, devB, settle } = await rig();
    const seen: boolean[] = [];
    b.onLink = (up) => seen.push(up);
    devB.link = false;
    settle(() => seen.length >= 1);
    expect([seen, b.link]).toEqual([[false], false]);
    let got = 0;
    b.onReceive = () => got++;
    a.send(frame(b.mac, a.mac, 60, 0));
    settle(() => false);
    expect([got, devB.counters.rxLinkDown]).toEqual([0, 1]);
    devB.link = true;
    settle(() => seen.length >= 2);
    a.send(frame(b.mac, a.mac, 60, 0));
    settle(() => got >= 1);
    expect([seen, got]).toEqual([[false, true], 1]);
  });

  it('a frame already in guest memory goes by page buffer as its segments (the RNDIS header in a staging page): it arrives intact', async () => {
    const { core, a, b, pages, settle } = await rig();
    const f = frame(b.mac, a.mac, 1200, 9);
    const segs = [{ addr: pages(1) + 0xf00, len: 0x100 }, { addr: pages(1) + 0x10, len: 1200 - 0x100 }];
    core.u8.set(f.subarray(0, 0x100), core.guestBase + segs[0]!.addr);
    core.u8.set(f.subarray(0x100), core.guestBase + segs[1]!.addr);
    const got: Uint8Array[] = [];
    b.onReceive = (x) => got.push(x.slice());
    expect(a.send(segs)).toBe(true);
    settle(() => got.length >= 1);
    expect(got).toEqual([f]);
    expect(() => a.send([{ addr: pages(1), len: 10 }])).toThrow(/14\.\./);
  });

  it("sub-channels (vRSS): 4 channels per adapter, the host's indirection table spreads what A sends, flows spread over what B receives; every frame arrives", async () => {
    const { a, b, settle, pages } = await rig({ channels: 4 }, undefined, 3);
    expect([a.channels.length, b.channels.length]).toEqual([4, 4]);
    expect(a.indirection).toEqual(Array.from({ length: 16 }, (_, i) => i % 4));
    const caps = await a.query(0x00010203); // OID_GEN_RECEIVE_SCALE_CAPABILITIES: 4 receive queues
    expect([caps[0], caps[1], caps[2], caps[12]]).toEqual([0x88, 2, 18, 4]);
    let got = 0;
    b.onReceive = () => got++;
    for (let flow = 0; flow < 64; flow++) {
      const f = udp(b.mac, a.mac, 100, flow);
      f[29] = flow; // the source address 10.0.0.x: a flow per address
      while (!a.send(f)) settle(() => false);
    }
    settle(() => got >= 64);
    expect(got).toBe(64);
    for (const ch of a.channels) expect(ch.stats.packetsSent).toBeGreaterThan(0);
    for (const ch of b.channels) expect(ch.stats.packetsReceived).toBeGreaterThan(0);
    await a.detach();
    await b.detach();
    expect(pages.stats().usedPages).toBe(0);
  });

  it('[H47] a host without sub-channels, or asked for none: the adapter works on its primary alone', async () => {
    const { a, b, settle } = await rig({ channels: 4 });
    expect([a.channels.length, a.indirection]).toEqual([1, null]);
    let got = 0;
    b.onReceive = () => got++;
    a.send(udp(b.mac, a.mac, 10));
    settle(() => got >= 1);
    expect(got).toBe(1);
  });

  it('detach revokes the buffers and gives every page back', async () => {
    const { a, b, pages } = await rig();
    await a.detach();
    await b.detach();
    expect(pages.stats().usedPages).toBe(0);
  });
});

/** An ARP request (who has 10.0.0.2, tell 10.0.0.1) and a UDP datagram to port 9, as a stack sends them. */
function arpRequest(src: Uint8Array): Uint8Array {
  return Uint8Array.from([...new Array(6).fill(0xff), ...src, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1, ...src, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
}
/** IPv4 from 10.0.0.1 to 10.0.0.2 with a correct header checksum around `body`. */
function ipv4(dst: Uint8Array, src: Uint8Array, proto: number, body: Uint8Array): Uint8Array {
  const ip = new Uint8Array(20 + body.length);
  ip.set([0x45, 0, ip.length >> 8, ip.length & 0xff, 0, 1, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
  const c = checksum(ip.subarray(0, 20));
  ip[10] = c >> 8;
  ip[11] = c & 0xff;
  ip.set(body, 20);
  return Uint8Array.from([...dst, ...src, 0x08, 0x00, ...ip]);
}
function checksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
/** A UDP datagram 12345 -> 9 (discard), no checksum, payload a pattern from `seed`. */
function udp(dst: Uint8Array, src: Uint8Array, payload: number, seed = 0): Uint8Array {
  const u = new Uint8Array(8 + payload);
  u.set([0x30, 0x39, 0, 9, (8 + payload) >> 8, (8 + payload) & 0xff, 0, 0]);
  for (let i = 0; i < payload; i++) u[8 + i] = (i * 7 + seed) & 0xff;
  return ipv4(dst, src, 17, u);
}
function echoRequest(dst: Uint8Array, src: Uint8Array, seq: number): Uint8Array {
  const m = new Uint8Array(8 + 56);
  m.set([8, 0, 0, 0, 0x12, 0x34, seq >> 8, seq & 0xff]);
  for (let i = 0; i < 56; i++) m[8 + i] = i;
  const c = checksum(m);
  m[2] = c >> 8;
  m[3] = c & 0xff;
  return ipv4(dst, src, 1, m);
}
/** The echo reply to an echo request frame: addresses swapped, type 0, checksum adjusted. */
function echoReply(f: Uint8Array): Uint8Array {
  const r = f.slice();
  r.set(f.subarray(6, 12), 0);
  r.set(f.subarray(0, 6), 6);
  r.set(f.subarray(30, 34), 26);
  r.set(f.subarray(26, 30), 30);
  r[34] = 0;
  r[36] = 0;
  r[37] = 0;
  const c = checksum(r.subarray(34));
  r[36] = c >> 8;
  r[37] = c & 0xff;
  return r;
}
/** The ARP reply of `mac` (at the requested address) to a request frame. */
function arpReply(f: Uint8Array, mac: Uint8Array): Uint8Array {
  return Uint8Array.from([...f.subarray(6, 12), ...mac, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 2, ...mac, ...f.subarray(38, 42), ...f.subarray(22, 28), ...f.subarray(28, 32)]);
}

describe('netvsc taps', () => {
  it('drop at netvsc:tx:decode loses what A sends; corrupt at netvsc:rx:post flips one bit of what B receives; detached, frames flow again', async () => {
    const taps = new TapRegistry();
    const { a, b, settle, devA } = await rig({}, taps);
    const got: Uint8Array[] = [];
    b.onReceive = (f) => got.push(f.slice());
    const d = taps.attach('netvsc:tx:decode', drop({ rate: 1, seed: 1 }), { device: 'netvsp0' });
    a.send(frame(b.mac, a.mac, 100, 1));
    settle(() => false);
    expect([got.length, devA.counters.txFrames, a.counters.txFailed]).toEqual([0, 1, 0]); // taken and acknowledged, never forwarded
    d.detach();
    const c = taps.attach('netvsc:rx:post', corrupt({ rate: 1, seed: 3 }), { device: 'netvsp1' });
    const sent = frame(b.mac, a.mac, 100, 2);
    a.send(sent);
    settle(() => got.length >= 1);
    const diff = [...got[0]!].map((x, i) => x ^ sent[i]!).filter((x) => x !== 0);
    expect(diff.length).toBe(1);
    expect(diff[0]! & (diff[0]! - 1)).toBe(0); // one bit
    c.detach();
    a.send(sent);
    settle(() => got.length >= 2);
    expect(got[1]).toEqual(sent);
  });

  it('guest stages: drop at netvsc:tx:submit never sends; corrupt at netvsc:rx:deliver flips a bit of what onReceive sees; the stages go with detach', async () => {
    const taps = new TapRegistry();
    const { a, b, settle, devA } = await rig({ taps });
    expect(taps.stages().map((x) => `${x.device} ${x.name}`)).toEqual(['netvsc0 netvsc:tx:submit', 'netvsc0 netvsc:rx:deliver', 'netvsc1 netvsc:tx:submit', 'netvsc1 netvsc:rx:deliver']);
    const got: Uint8Array[] = [];
    b.onReceive = (f) => got.push(f.slice());
    const d = taps.attach('netvsc:tx:submit', drop({ rate: 1, seed: 1 }));
    const sent = frame(b.mac, a.mac, 80, 4);
    expect(a.send(sent)).toBe(true);
    settle(() => false);
    expect([got.length, devA.counters.txFrames]).toEqual([0, 0]); // it never left the guest
    d.detach();
    const c = taps.attach('netvsc:rx:deliver', corrupt({ rate: 1, seed: 5 }));
    a.send(sent);
    settle(() => got.length >= 1);
    expect([...got[0]!].filter((x, i) => x !== sent[i]).length).toBe(1);
    expect(sent[20]).toBe((20 * 13 + 4) & 0xff); // the caller's frame untouched
    c.detach();
    // sendBurst with a tap on netvsc:tx:submit: each frame goes through it as send() sends it.
    const seen: number[] = [];
    const t = taps.attach('netvsc:tx:submit', (ctx) => {
      seen.push(ctx.data![0]![20]!);
      if (seen.length % 2 === 0) ctx.drop();
    });
    got.length = 0;
    expect(a.sendBurst(Array.from({ length: 6 }, (_, i) => frame(b.mac, a.mac, 80, i)))).toBe(6);
    settle(() => got.length >= 3);
    expect([seen.length, got.map((f) => f[20])]).toEqual([6, [0, 2, 4].map((i) => (20 * 13 + i) & 0xff)]);
    t.detach();
    await a.detach();
    await b.detach();
    expect(taps.stages()).toEqual([]);
  });

  const tshark = haveTool('tshark', ['--version'], 'tshark', 'the netvsc trace decode test');
  it.skipIf(!tshark)('a trace at the netvsc stages is the Ethernet frames: tshark decodes ARP and UDP, nothing malformed', async () => {
    const taps = new TapRegistry();
    const sink = new MemorySink();
    const w = new PcapngWriter(sink);
    taps.attach('netvsc:*:*', traceTap(w));
    const { a, b, settle } = await rig({}, taps);
    let got = 0;
    b.onReceive = () => got++;
    a.send(arpRequest(a.mac));
    a.send(udp(b.mac, a.mac, 100));
    a.send(udp(b.mac, a.mac, 1400));
    settle(() => got >= 3);
    w.close();
    const dir = mkdtempSync(join(tmpdir(), 'netvsc-trace-'));
    const file = join(dir, 'netvsc.pcapng');
    writeFileSync(file, sink.bytes());
    const protocols = execFileSync('tshark', ['-r', file, '-T', 'fields', '-e', 'frame.protocols'], { encoding: 'utf8' }).trim().split('\n');
    // Each frame crossed tx:decode and tx:execute at A, rx:post at B.
    expect(protocols.filter((p) => p === 'eth:ethertype:arp').length).toBe(3);
    expect(protocols.filter((p) => p === 'eth:ethertype:ip:udp:discard').length + protocols.filter((p) => p === 'eth:ethertype:ip:udp:data').length).toBe(6);
    expect(execFileSync('tshark', ['-r', file, '-Y', '_ws.malformed || _ws.expert.severity >= error'], { encoding: 'utf8' }).trim()).toBe('');
    rmSync(dir, { recursive: true });
  });

  it.skipIf(!tshark)('a capture on a switch port records the frames going out to it and coming in from it; tshark reads them on interface switch:<port>', async () => {
    const { a, b, sw, settle } = await rig();
    const sink = new MemorySink();
    const w = new PcapngWriter(sink);
    const portB = sw.list()[1]!;
    const cap = portB.capture(w);
    let got = 0;
    b.onReceive = () => got++;
    a.onReceive = () => got++;
    a.send(arpRequest(a.mac)); // flooded: out to B
    a.send(udp(b.mac, a.mac, 100)); // out to B
    b.send(udp(a.mac, b.mac, 1400)); // in from B
    settle(() => got >= 3);
    cap.stop();
    a.send(udp(b.mac, a.mac, 200)); // after stop(): not recorded
    settle(() => got >= 4);
    w.close();
    const dir = mkdtempSync(join(tmpdir(), 'switch-capture-'));
    const file = join(dir, 'port.pcapng');
    writeFileSync(file, sink.bytes());
    const rows = execFileSync('tshark', ['-r', file, '-T', 'fields', '-e', 'frame.interface_name', '-e', 'eth.src', '-e', 'frame.len'], { encoding: 'utf8' }).trim().split('\n');
    const macOf = (m: Uint8Array) => [...m].map((x) => x.toString(16).padStart(2, '0')).join(':');
    expect(rows).toEqual([`switch:${portB.name}\t${macOf(a.mac)}\t42`, `switch:${portB.name}\t${macOf(a.mac)}\t142`, `switch:${portB.name}\t${macOf(b.mac)}\t1442`]);
    expect(execFileSync('tshark', ['-r', file, '-Y', '_ws.malformed'], { encoding: 'utf8' }).trim()).toBe('');
    rmSync(dir, { recursive: true });
  });
});
