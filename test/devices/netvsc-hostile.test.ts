// netvsc and netvsp against a hostile peer (hardening §3.6): what a host puts in transfer-page
// packets and RNDIS messages, what a guest puts in SEND_RNDIS_PKT and RNDIS requests. Each case
// is refused or skipped and counted, and the channel keeps carrying frames.
import { describe, expect, it } from 'vitest';
import {
  decodeRndisPktComplete, encodeNvsp, encodeRndisPkt, encodeRndisQuery, encodeRndisSet, GuestBus, HostBus, IommuDomain, loadCoreSync, MessageTransport, NetvscDriver,
  NetvspDevice, NVSP, NVSP_STATUS, pageAllocator, RNDIS_STATUS, VirtualSwitch, writeU32LE, type HostChannel, type NetvspOptions,
} from '../../src/index';

async function rig(o: Partial<NetvspOptions> = {}) {
  const core = loadCoreSync({ guestBytes: 16 << 20 });
  const transport = MessageTransport.create(core);
  const dma = IommuDomain.create(core, 'netvsp', { mode: 'identity' });
  const host = new HostBus(transport, { dma });
  const sw = new VirtualSwitch();
  const dev = new NetvspDevice({ dma, mac: '00:15:5d:00:00:01', switch: sw, ...o });
  let hostCh: HostChannel | null = null;
  const spec = dev.offer();
  host.offer({ ...spec, onOpen: (ch) => (spec.onOpen!(ch), (hostCh = ch)) });
  const peer = sw.addPort('peer', () => true);
  const pages = pageAllocator(core);
  const guest = new GuestBus(transport, { allocPages: pages, pump: () => host.poll() });
  await guest.connect();
  const nic = await NetvscDriver.attach(guest, guest.offers.all()[0]!, { allocPages: pages });
  const settle = () => {
    for (let i = 0; i < 20; i++) {
      host.poll();
      guest.poll();
    }
  };
  return { core, dev, nic, guest, host, peer, hostCh: hostCh! as HostChannel<number[]>, settle, pages };
}

const frame = (len: number, fill = 0x5a) => {
  const f = new Uint8Array(len).fill(fill);
  f.set([0x00, 0x15, 0x5d, 0, 0, 1], 0); // to the adapter
  f.set([0x02, 0, 0, 0, 0, 9], 6);
  return f;
};

describe('netvsc guest against a hostile host', () => {
  it('[H43] transfer-page ranges outside the receive buffer (overflow-safe), larger than a section, or a wrong buffer id are skipped, completed FAIL and counted; good ones still arrive', async () => {
    const { nic, hostCh, settle, peer } = await rig();
    const got: number[] = [];
    nic.onReceive = (f) => got.push(f.length);
    const msg = encodeNvsp(NVSP.sendRndisPkt, 0, 0xffffffff, 0);
    const statuses: number[] = [];
    const device = hostCh.onCompletion!;
    hostCh.onCompletion = (ctx, err, p) => (ctx.length === 0 ? statuses.push(decodeRndisPktComplete(p!.payload())) : device(ctx, err, p)); // ours carry no sections
    for (const ranges of [[{ byteOffset: 0xfffff000, byteCount: 0x2000 }], [{ byteOffset: (1 << 20) - 8, byteCount: 16 }], [{ byteOffset: 0, byteCount: 4096 }]]) {
      hostCh.requestTransferPages({ pageSetId: 0xcafe, senderOwns: false, ranges }, msg, []);
    }
    hostCh.requestTransferPages({ pageSetId: 0xbeef, senderOwns: false, ranges: [{ byteOffset: 0, byteCount: 64 }] }, msg, []);
    hostCh.requestTransferPages({ pageSetId: 0xcafe, senderOwns: false, ranges: [{ byteOffset: 0, byteCount: 64 }] }, encodeNvsp(NVSP.sendRndisPktComplete, 1), []);
    hostCh.flush();
    settle();
    expect(statuses).toEqual([NVSP_STATUS.fail, NVSP_STATUS.fail, NVSP_STATUS.fail, NVSP_STATUS.fail, NVSP_STATUS.fail]);
    expect(nic.counters).toMatchObject({ rxBadRanges: 3, rxBadPackets: 2 });
    peer.input(frame(60));
    settle();
    expect(got).toEqual([60]);
  });

  it('[H44] an RNDIS message in a range whose length or data offset does not fit fails that packet (FAIL), the ring keeps flowing', async () => {
    const { core, nic, hostCh, settle, peer } = await rig();
    const got: number[] = [];
    nic.onReceive = (f) => got.push(f.length);
    // The host writes a PACKET claiming data at offset 7777 of a 64-byte message into section 0.
    const base = core.guestBase + (nic as unknown as { recvGpa: number }).recvGpa;
    const bad = new Uint8Array(64);
    writeU32LE(bad, 0, 1);
    writeU32LE(bad, 4, 64);
    writeU32LE(bad, 8, 7777);
    core.u8.set(bad, base);
    const statuses: number[] = [];
    const device = hostCh.onCompletion!;
    hostCh.onCompletion = (ctx, err, p) => (ctx.length === 0 ? statuses.push(decodeRndisPktComplete(p!.payload())) : device(ctx, err, p)); // ours carry no sections
    hostCh.requestTransferPages({ pageSetId: 0xcafe, senderOwns: false, ranges: [{ byteOffset: 0, byteCount: 64 }] }, encodeNvsp(NVSP.sendRndisPkt, 0, 0xffffffff, 0), []);
    hostCh.flush();
    settle();
    expect([statuses, nic.counters.rxBadRndis]).toEqual([[NVSP_STATUS.fail], 1]);
    peer.input(frame(100));
    settle();
    expect(got).toEqual([100]);
  });

  it('[H47] a send indirection table whose count is not 16 or whose entries overrun the message is refused and counted; a whole one is taken', async () => {
    const { nic, hostCh, settle } = await rig();
    const table = (count: number, offset: number, entries: number) => {
      const m = new Uint8Array(12 + 4 * entries);
      writeU32LE(m, 0, NVSP.sendIndirectionTable);
      writeU32LE(m, 4, count);
      writeU32LE(m, 8, offset);
      for (let i = 0; i < entries; i++) writeU32LE(m, 12 + 4 * i, i & 1);
      return m;
    };
    hostCh.send(table(17, 12, 17));
    hostCh.send(table(0x40000000, 12, 16)); // count x 4 overflows 32 bits
    hostCh.send(table(16, 12, 15)); // one entry short
    settle();
    expect([nic.counters.badIndirectionTables, nic.indirection]).toEqual([3, null]);
    hostCh.send(table(16, 0xfffffff0, 16)); // a wrong offset with a whole table: read right after the header, as Linux does
    settle();
    expect(nic.indirection).toEqual(Array.from({ length: 16 }, (_, i) => i & 1));
  });

  it('[H49] a frame longer than MTU + Ethernet header is dropped before it is handed on', async () => {
    const { nic, peer, settle, dev } = await rig({ recvSectionBytes: 4096 });
    const got: number[] = [];
    nic.onReceive = (f) => got.push(f.length);
    dev.deliver(frame(3000)); // past the switch's MTU check: straight into the receive buffer
    peer.input(frame(1514));
    settle();
    expect([got, nic.counters.rxOversize]).toEqual([[1514], 1]);
  });

  it('a host that accepts none of the NVSP versions offered: attach fails with HostRefused and gives its pages back', async () => {
    const core = loadCoreSync({ guestBytes: 16 << 20 });
    const transport = MessageTransport.create(core);
    const dma = IommuDomain.create(core, 'netvsp', { mode: 'identity' });
    const host = new HostBus(transport, { dma });
    host.offer(new NetvspDevice({ dma, mac: '00:15:5d:00:00:01', versions: [0x10000] }).offer());
    const pages = pageAllocator(core);
    const guest = new GuestBus(transport, { allocPages: pages, pump: () => host.poll() });
    await guest.connect();
    await expect(NetvscDriver.attach(guest, guest.offers.all()[0]!, { allocPages: pages })).rejects.toMatchObject({ code: 'HostRefused' });
    expect(pages.stats().usedPages).toBe(0);
  });
});

describe('netvsp host against a hostile guest', () => {
  it('SEND_RNDIS_PKT with a send section past the buffer, more bytes than a section, or no page buffer: FAIL, counted, nothing read', async () => {
    const { nic, dev } = await rig();
    const call = async (m: Uint8Array) => decodeRndisPktComplete(await nic.channel.call(m));
    expect(await call(encodeRndisPkt(0, 9999, 100))).toBe(NVSP_STATUS.fail);
    expect(await call(encodeRndisPkt(0, 0, 6145))).toBe(NVSP_STATUS.fail);
    expect(await call(encodeRndisPkt(0, 0xffffffff, 0))).toBe(NVSP_STATUS.fail);
    expect(await call(encodeRndisPkt(0, 0, 4))).toBe(NVSP_STATUS.fail);
    expect(dev.counters.badRequests).toBe(4);
    expect(dev.counters.txFrames).toBe(0);
  });

  it('[H48] QUERY of an OID outside the allow-list is NOT_SUPPORTED; a SET whose info buffer lies outside the message is INVALID_DATA; nothing is used as an index', async () => {
    const { nic, dev } = await rig();
    await expect(nic.query(0x00010270)).rejects.toMatchObject({ code: 'HostRefused', details: { status: RNDIS_STATUS.notSupported } });
    expect(dev.counters.unsupportedOids).toBe(1);
    const control = (nic as unknown as { control(m: Uint8Array): Promise<{ status: number }> }).control.bind(nic);
    const set = encodeRndisSet(4242, 0x0001010e, Uint8Array.of(1, 0, 0, 0));
    writeU32LE(set, 20, 0x7ffffff0); // info_buf_offset far past the message
    expect((await control(set)).status).toBe(RNDIS_STATUS.invalidData);
    const q = encodeRndisQuery(4243, 0x01010101);
    writeU32LE(q, 16, 0x1000); // info_buflen past the message
    expect((await control(q)).status).toBe(RNDIS_STATUS.invalidData);
    expect(dev.counters.badRndis).toBe(2);
    await nic.keepalive(); // the adapter goes on
  });
});
