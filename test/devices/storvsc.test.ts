// storvsc end to end in one thread: the guest driver and the storvsp host over real VMBus rings,
// SCSI commands with data through GPA-direct ranges and the host's DMA domain, on memory disks.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  decodeVstorHeader, drop, encodeVstor, VSTOR_OP, type HostChannel, MemorySink, PcapngWriter, randomFailure, readOnlyAfter, TapRegistry, traceTap,
  encodeExecuteSrb, encodeGpaRange, encodeGpaRanges, GuestBus, HostBus, IommuDomain, loadCoreSync, MemoryDisk, MessageTransport, pageAllocator,
  decodeCompleteIo, instanceGuid, SRB_DIRECTION, SRB_STATUS, StorvscDriver, StorvspDevice, VSTOR_VERSION, type StorvspOptions,
} from '../../src/index';
import { haveTool } from '../util/tools';

async function rig(o: Partial<StorvspOptions> & { subChannelsMax?: number } = {}, tamper?: (ch: HostChannel) => void) {
  const core = loadCoreSync({ guestBytes: 16 << 20 });
  const transport = MessageTransport.create(core);
  const dma = IommuDomain.create(core, 'storvsp0', { mode: 'identity' });
  const host = new HostBus(transport, { dma });
  const disk = (blocks: number) => MemoryDisk.create(core, { blockCount: blocks });
  const { subChannelsMax, ...rest } = o;
  const dev = new StorvspDevice({
    dma, targets: [{ target: 0, lun: 0, backend: disk(4096) }, { target: 0, lun: 1, backend: disk(2048) }, { target: 1, lun: 0, backend: disk(1024) }], ...rest,
    ...(subChannelsMax !== undefined ? { subChannels: { bus: host, max: subChannelsMax } } : {}),
  });
  const spec = dev.offer();
  host.offer({ ...spec, onOpen: (ch) => (spec.onOpen!(ch), tamper?.(ch)) });
  const pages = pageAllocator(core);
  const guest = new GuestBus(transport, { allocPages: pages, pump: () => host.poll() });
  await guest.connect();
  return { core, dev, guest, pages, offer: guest.offers.all()[0]! };
}

describe('storvsc guest and storvsp host', () => {
  it('initialises (Win10, properties) and finds two targets with three disks by REPORT LUNS and INQUIRY', async () => {
    const { guest, pages, offer } = await rig();
    await expect(StorvscDriver.attach(guest, offer, { allocPages: pages, channels: 4 } as never)).rejects.toMatchObject({ code: 'InvalidArgument' });
    const hba = await StorvscDriver.attach(guest, offer, { allocPages: pages });
    expect(hba.version).toBe(VSTOR_VERSION.win10);
    expect(hba.properties).toEqual({ maxChannels: 0, multiChannel: false, maxTransferBytes: 2 << 20 });
    expect(hba.disks.map((d) => [d.target, d.lun, d.vendor])).toEqual([[0, 0, 'SGRING'], [0, 1, 'SGRING'], [1, 0, 'SGRING']]);
    await hba.detach();
  });

  it('writes and reads back 64 KiB through the GPA range; FLUSH; the staging pages come back on detach', async () => {
    const { guest, pages, offer } = await rig();
    const hba = await StorvscDriver.attach(guest, offer, { allocPages: pages });
    const data = new Uint8Array(65536).map((_, i) => (i * 7 + 3) & 0xff);
    await hba.write(0, 1, 100, data);
    const back = await hba.read(0, 1, 100, 128);
    expect(back.length).toBe(65536);
    expect(back.every((b, i) => b === data[i])).toBe(true);
    expect((await hba.read(0, 0, 100, 1)).every((b) => b === 0)).toBe(true); // another LUN is another disk
    await hba.flush(0, 1);
    const before = pages.stats().usedPages;
    await hba.detach();
    expect(pages.stats().usedPages).toBeLessThan(before);
    expect(pages.stats().usedPages).toBe(0);
  });

  it('32 commands in flight at once each get their own data; a steady load reuses its staging buffers', async () => {
    const { guest, pages, offer } = await rig();
    const hba = await StorvscDriver.attach(guest, offer, { allocPages: pages });
    await hba.scsi(0, 0, new Uint8Array(6));
    await Promise.all(Array.from({ length: 32 }, (_, i) => hba.write(0, 0, i * 8, new Uint8Array(4096).fill(i + 1))));
    let used = 0;
    for (let round = 0; round < 4; round++) {
      const reads = await Promise.all(Array.from({ length: 32 }, (_, i) => hba.read(0, 0, i * 8, 8)));
      reads.forEach((r, i) => expect(r.every((b) => b === i + 1), `block ${i}`).toBe(true));
      // After the first round (as many in flight as the load ever has), no round takes a page more.
      if (round === 0) used = pages.stats().usedPages;
    }
    expect(pages.stats().usedPages).toBe(used);
    await hba.detach();
  });

  it('the fast path moves the copies of a poll in one batch, in command order: writes and reads of the same blocks, guest segments and staged buffers, a general-path command between them', async () => {
    const { core, guest, pages, offer } = await rig();
    const hba = await StorvscDriver.attach(guest, offer, { allocPages: pages });
    await hba.scsi(0, 0, new Uint8Array(6)); // the power-on unit attention, taken
    const block = (v: number) => new Uint8Array(4096).fill(v);
    const seg = pages(2);
    const segs = [{ addr: seg, len: 4096 }];
    core.u8.fill(0x77, core.guestBase + seg, core.guestBase + seg + 4096);
    // All sent before the host polls: one poll serves them, its copies batched.
    const ops = [
      hba.write(0, 0, 8, block(1)), hba.read(0, 0, 8, 8), hba.write(0, 0, 8, block(2)),
      hba.read(0, 0, 8, 8, segs).then(() => core.u8.slice(core.guestBase + seg, core.guestBase + seg + 4096)),
      hba.write(0, 0, 16, 8, segs), // the segments just read, written on
      hba.read(0, 0, 16, 8),
      // WRITE (10) with FUA takes the general path, which writes at once: the batch moves before it.
      hba.scsi(0, 0, Uint8Array.of(0x2a, 0x08, 0, 0, 0, 16, 0, 0, 8, 0), { data: block(4) }),
      hba.read(0, 0, 16, 8), hba.write(0, 0, 16, block(3)), hba.read(0, 0, 16, 8),
    ];
    const r = (await Promise.all(ops)) as (Uint8Array | undefined)[];
    expect(r[1]).toEqual(block(1));
    expect(r[3]).toEqual(block(2));
    expect(r[5]).toEqual(block(2));
    expect(r[7]).toEqual(block(4));
    expect(r[9]).toEqual(block(3));
    await hba.detach();
  });

  it('multi-channel (the D1964 spread): 4 processors ask for 3 sub-channels, and commands spread over all four channels', async () => {
    const { dev, guest, pages, offer } = await rig({ subChannelsMax: 4 });
    const hba = await StorvscDriver.attach(guest, offer, { allocPages: pages, cpus: 4 });
    expect(hba.properties).toMatchObject({ maxChannels: 4, multiChannel: true });
    expect(hba.channels.length).toBe(4);
    await hba.scsi(0, 0, new Uint8Array(6)); // the power-on unit attention, taken
    const before = dev.perChannel;
    await Promise.all(Array.from({ length: 40 }, (_, i) => hba.read(0, 0, i * 8, 8)));
    expect([...dev.perChannel].map(([relid, n]) => n - (before.get(relid) ?? 0))).toEqual([10, 10, 10, 10]);
    await hba.detach();
    expect(pages.stats().usedPages).toBe(0); // sub-channel rings given back too
  });

  it('[H40] the guest asks for min(cpus - 1, host maximum) sub-channels; none from a host without multi-channel', async () => {
    const two = await rig({ subChannelsMax: 2 });
    const a = await StorvscDriver.attach(two.guest, two.offer, { allocPages: two.pages, cpus: 8 });
    expect(a.channels.length).toBe(3);
    await a.detach();
    const none = await rig();
    const b = await StorvscDriver.attach(none.guest, none.offer, { allocPages: none.pages, cpus: 8 });
    expect(b.channels.length).toBe(1);
    await b.detach();
  });

  it('a failed command carries CHECK CONDITION, autosense and the sense data; the typed error names it', async () => {
    const { guest, pages, offer, dev } = await rig();
    const hba = await StorvscDriver.attach(guest, offer, { allocPages: pages });
    expect((await hba.scsi(1, 0, Uint8Array.of(0, 0, 0, 0, 0, 0))).status).toBe(0); // discovery's READ CAPACITY took the power-on unit attention
    dev.disks.get(256)!.reset();
    const ua = await hba.scsi(1, 0, Uint8Array.of(0, 0, 0, 0, 0, 0)); // a reset's unit attention comes first
    expect([ua.status, ua.sense[2]! & 0xf, ua.sense[12]]).toEqual([2, 0x6, 0x29]);
    const r = await hba.scsi(1, 0, Uint8Array.of(0x28, 0, 0, 0, 0x10, 0, 0, 0, 1, 0), { length: 512 }); // LBA 4096 of 1024
    expect([r.status, r.srbStatus, r.transferred, r.sense[2]! & 0xf, r.sense[12]]).toEqual([2, SRB_STATUS.error | SRB_STATUS.autosenseValid, 0, 5, 0x21]);
    await expect(hba.read(1, 0, 1024, 1)).rejects.toMatchObject({ code: 'LbaOutOfRange', details: { asc: 0x21 } });
    const none = await hba.scsi(5, 0, Uint8Array.of(0, 0, 0, 0, 0, 0));
    expect(none.srbStatus).toBe(SRB_STATUS.invalidLun);
    await hba.detach();
  });

  it("two adapters with three disks, told apart by instance GUID (the talk's cfgadm -al listing): each disk is its own", async () => {
    const core = loadCoreSync({ guestBytes: 16 << 20 });
    const transport = MessageTransport.create(core);
    const dma = IommuDomain.create(core, 'storvsp', { mode: 'identity' });
    const host = new HostBus(transport, { dma });
    const disk = () => MemoryDisk.create(core, { blockCount: 2048 });
    const ids = [instanceGuid(0x1001), instanceGuid(0x1002)];
    host.offer(new StorvspDevice({ dma, instanceId: ids[0], name: 'storvsp0', targets: [{ target: 0, lun: 0, backend: disk() }] }).offer());
    host.offer(new StorvspDevice({ dma, instanceId: ids[1], name: 'storvsp1', targets: [{ target: 0, lun: 0, backend: disk() }, { target: 1, lun: 0, backend: disk() }] }).offer());
    const pages = pageAllocator(core);
    const guest = new GuestBus(transport, { allocPages: pages, pump: () => host.poll() });
    await guest.connect();
    const storage = guest.offers.all().filter((o) => o.className === 'storage');
    expect(storage.map((o) => o.instanceId).sort()).toEqual([...ids].sort());
    const hbas = await Promise.all(ids.map((id, i) => StorvscDriver.attach(guest, storage.find((o) => o.instanceId === id)!, { allocPages: pages, name: `storvsc${i}` })));
    const listing = hbas.flatMap((h, c) => h.disks.map((d) => `c${c + 1}::dsk/c${c + 1}t${d.target}d${d.lun}`));
    expect(listing).toEqual(['c1::dsk/c1t0d0', 'c2::dsk/c2t0d0', 'c2::dsk/c2t1d0']);
    await hbas[0]!.write(0, 0, 5, new Uint8Array(512).fill(1));
    await hbas[1]!.write(0, 0, 5, new Uint8Array(512).fill(2));
    await hbas[1]!.write(1, 0, 5, new Uint8Array(512).fill(3));
    expect([(await hbas[0]!.read(0, 0, 5, 1))[0], (await hbas[1]!.read(0, 0, 5, 1))[0], (await hbas[1]!.read(1, 0, 5, 1))[0]]).toEqual([1, 2, 3]);
    for (const h of hbas) await h.detach();
    expect(pages.stats().usedPages).toBe(0);
  });

  it('[H38] [H39] the guest falls back to the newest version the host takes, and fails to attach when it takes none', async () => {
    const old = await rig({ versions: [VSTOR_VERSION.win8] });
    const hba = await StorvscDriver.attach(old.guest, old.offer, { allocPages: old.pages });
    expect(hba.version).toBe(VSTOR_VERSION.win8);
    expect(hba.disks.length).toBe(3);
    await hba.detach();
    const ancient = await rig({ versions: [VSTOR_VERSION.win7] });
    await expect(StorvscDriver.attach(ancient.guest, ancient.offer, { allocPages: ancient.pages })).rejects.toMatchObject({ code: 'HostRefused' });
    expect(ancient.pages.stats().usedPages).toBe(0); // the channel closed, its ring pages returned
  });

  it('the host refuses a data_transfer_length larger than the page list describes, and one it cannot read, counted', async () => {
    const { core, dev, guest, pages, offer } = await rig();
    const hba = await StorvscDriver.attach(guest, offer, { allocPages: pages });
    const buf = pages(1);
    const lie = encodeExecuteSrb({ port: 0, path: 0, target: 0, lun: 0, cdb: Uint8Array.of(0x28, 0, 0, 0, 0, 0, 0, 0, 16, 0), direction: SRB_DIRECTION.read, dataTransferLength: 8192 });
    const reply = await hba.channel.callGpa({ rangeBytes: encodeGpaRange(core, [{ addr: buf, len: 4096 }]), rangeCount: 1 }, lie);
    expect(decodeCompleteIo(reply, 8192).srbStatus).toBe(SRB_STATUS.invalidRequest);
    const bad = lie.slice();
    bad[20] = 0; // CDB length 0
    expect(decodeCompleteIo(await hba.channel.call(bad), 0).srbStatus).toBe(SRB_STATUS.invalidRequest);
    // Header-only packets (12 bytes, padded to 16 by the ring) for operations that carry a field:
    // the version reads as 0 (not accepted), the sub-channel count as 0 (refused and counted).
    for (const operation of [VSTOR_OP.queryProtocolVersion, VSTOR_OP.createSubChannels]) {
      const short = encodeVstor({ operation }).bytes.subarray(0, 12);
      expect(decodeVstorHeader(await hba.channel.call(short)).status).not.toBe(0);
    }
    expect(hba.channel.state).toBe('open');
    expect(dev.counters.invalidRequests).toBe(3);
    // Two GPA ranges (a first segment ending mid-page, a second starting at a page): a buffer with
    // a hole the host would have to guess across. Refused, counted, nothing written.
    const two = encodeGpaRanges(core, [{ addr: buf, len: 1024 }, { addr: buf + 8192, len: 512 }], { perSegment: true });
    const r2 = await hba.channel.callGpa({ rangeBytes: two.bytes, rangeCount: two.rangeCount },
      encodeExecuteSrb({ port: 0, path: 0, target: 0, lun: 0, cdb: Uint8Array.of(0x28, 0, 0, 0, 0, 0, 0, 0, 3, 0), direction: SRB_DIRECTION.read, dataTransferLength: 1536 }));
    expect(decodeCompleteIo(r2, 1536).srbStatus).toBe(SRB_STATUS.invalidRequest);
    expect(dev.counters.pageListRefused).toBe(1);
    expect(core.u8.subarray(core.guestBase + buf, core.guestBase + buf + 4096).every((b) => b === 0)).toBe(true); // nothing written
    await hba.detach();
  });
});

describe('storvsc guest against a hostile host', () => {
  const TUR = new Uint8Array(6);

  it('[H30] [H31] [H32] [H42] packets the host sends on its own: short, COMPLETE_IO or FCHBA_DATA with id 0, unknown ops are skipped and counted; ENUMERATE_BUS rescans', async () => {
    let hostCh: HostChannel | null = null;
    const { guest, pages, offer } = await rig({}, (ch) => (hostCh = ch));
    const hba = await StorvscDriver.attach(guest, offer, { allocPages: pages });
    const rescans: number[] = [];
    hba.onRescan = (d) => rescans.push(d.length);
    const op = (operation: number) => encodeVstor({ operation, flags: 0 }).bytes;
    for (const p of [new Uint8Array(8), op(VSTOR_OP.completeIo), op(VSTOR_OP.fchbaData), op(99), op(VSTOR_OP.enumerateBus)]) hostCh!.send(p);
    hostCh!.flush();
    await hba.scsi(0, 0, TUR); // polls the channel: the five packets arrive first
    await hba.scsi(0, 0, TUR);
    expect(hba.counters).toEqual({ subChannelOpenFailed: 0, rescans: 1, short: 1, completeIoWithoutId: 1, fchbaWithoutId: 1, unknown: 1, bouncedBytes: 0 });
    await new Promise((r) => setTimeout(r, 50));
    expect(rescans).toEqual([3]);
    await hba.detach();
  });

  it('[H33] a completion whose id matches no outstanding command is refused and counted; the command meets its deadline', async () => {
    let lie = false;
    const { guest, pages, offer } = await rig({}, (ch) => {
      const real = ch.completeId.bind(ch);
      // A completion packet (type 11) for an id the guest never used; the real one is never sent.
      const raw = ch as unknown as { sendInline(p: Uint8Array, type: number, flags: number, lo: number, hi: number): boolean };
      ch.completeId = (lo, hi, payload) => (lie ? (raw.sendInline(payload!, 11, 0, lo + 7, hi), ch.flush()) : real(lo, hi, payload));
    });
    const hba = await StorvscDriver.attach(guest, offer, { allocPages: pages, timeoutMs: 150 });
    lie = true;
    await expect(hba.scsi(0, 0, TUR)).rejects.toMatchObject({ code: 'Timeout' });
    const c = hba.channel.transactions.counters;
    expect(c.outOfRange + c.unknown).toBe(1);
    lie = false;
    expect((await hba.scsi(0, 0, TUR)).srbStatus & 0x3f).toBe(SRB_STATUS.success);
    await hba.detach();
  });

  it('[H30] a reply too short to hold an SRB fails that command with MessageTooShort; its staging buffer is reused', async () => {
    let cut = false;
    const { guest, pages, offer } = await rig({}, (ch) => {
      const real = ch.completeId.bind(ch);
      ch.completeId = (lo, hi, payload) => real(lo, hi, cut ? payload!.subarray(0, 16) : payload);
    });
    const hba = await StorvscDriver.attach(guest, offer, { allocPages: pages });
    await hba.scsi(0, 0, TUR);
    await hba.read(0, 0, 0, 1);
    const used = pages.stats().usedPages;
    cut = true;
    await expect(hba.read(0, 0, 0, 1)).rejects.toMatchObject({ code: 'MessageTooShort' });
    cut = false;
    expect((await hba.read(0, 0, 0, 1)).length).toBe(512);
    expect(pages.stats().usedPages).toBe(used);
    await hba.detach();
  });

  it('[H34] [H36] a reply claiming 255 bytes of sense and more data than asked is clamped: 20 bytes of sense, the requested length', async () => {
    let tamper = false;
    const { guest, pages, offer } = await rig({}, (ch) => {
      const real = ch.completeId.bind(ch);
      ch.completeId = (lo, hi, payload) => {
        if (tamper && payload && payload.length >= 64) {
          payload[21] = 255; // sense_info_length
          new DataView(payload.buffer, payload.byteOffset).setUint32(24, 1 << 30, true); // data_transfer_length
        }
        return real(lo, hi, payload);
      };
    });
    const hba = await StorvscDriver.attach(guest, offer, { allocPages: pages });
    await hba.scsi(0, 0, TUR);
    tamper = true;
    const ok = await hba.scsi(0, 0, Uint8Array.of(0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0), { length: 512 });
    expect([ok.transferred, ok.data!.length]).toEqual([512, 512]);
    const bad = await hba.scsi(0, 0, Uint8Array.of(0x28, 0, 0, 0x10, 0, 0, 0, 0, 1, 0), { length: 512 }); // past the end
    expect([bad.status, bad.sense.length, bad.transferred]).toEqual([2, 20, 0]);
    await hba.detach();
  });
});

describe('storvsc taps', () => {
  it('readOnlyAfter(1) at storvsc:io:decode: the second write fails DATA PROTECT (ReadOnlyMedium), reads go on', async () => {
    const taps = new TapRegistry();
    const { guest, pages, offer } = await rig({ taps });
    const hba = await StorvscDriver.attach(guest, offer, { allocPages: pages });
    taps.attach('storvsc:io:decode', readOnlyAfter(1));
    await hba.write(0, 0, 0, new Uint8Array(512).fill(1));
    const err = await hba.write(0, 0, 8, new Uint8Array(512).fill(2)).catch((e) => e);
    expect(err).toMatchObject({ code: 'ReadOnlyMedium', details: { status: 2, senseKey: 0x7, asc: 0x27 } });
    expect((await hba.read(0, 0, 0, 1))[0]).toBe(1);
    expect((await hba.read(0, 0, 8, 1))[0]).toBe(0); // the refused write never reached the disk
    await hba.detach();
  });

  it('guest stages: readOnlyAfter(1) at storvsc:io:submit fails the second write in the guest, before the host sees it; a drop at storvsc:io:complete loses the answer (Timeout)', async () => {
    const taps = new TapRegistry();
    const { guest, pages, offer, dev } = await rig();
    const hba = await StorvscDriver.attach(guest, offer, { allocPages: pages, taps, timeoutMs: 200 });
    expect(taps.stages().map((s) => `${s.device} ${s.name}`)).toEqual(['storvsc0 storvsc:io:submit', 'storvsc0 storvsc:io:complete']);
    const ro = taps.attach('storvsc:io:submit', readOnlyAfter(1));
    await hba.write(0, 0, 0, new Uint8Array(512).fill(1));
    const served = dev.counters.requests;
    await expect(hba.write(0, 0, 8, new Uint8Array(512).fill(2))).rejects.toMatchObject({ code: 'ReadOnlyMedium', details: { senseKey: 0x7, asc: 0x27 } });
    expect(dev.counters.requests).toBe(served); // decided in the guest
    ro.detach();
    const d = taps.attach('storvsc:io:complete', drop({ rate: 1, seed: 1 }));
    await expect(hba.read(0, 0, 0, 1)).rejects.toMatchObject({ code: 'Timeout' });
    expect(dev.counters.requests).toBe(served + 1); // the host served it; the guest never took the answer
    d.detach();
    expect((await hba.read(0, 0, 0, 1))[0]).toBe(1);
    expect((await hba.read(0, 0, 8, 1))[0]).toBe(0);
    await hba.detach();
    expect(taps.stages()).toEqual([]); // detach takes the guest's stages away
  });

  it('randomFailure gives MEDIUM ERROR with its sense; drop leaves the request to the deadline (Timeout) and the next one is served', async () => {
    const taps = new TapRegistry();
    const { guest, pages, offer, dev } = await rig({ taps });
    const hba = await StorvscDriver.attach(guest, offer, { allocPages: pages, timeoutMs: 200 });
    const h = taps.attach('storvsc:io:execute', randomFailure({ rate: 1, seed: 7 }));
    const err = await hba.read(0, 0, 0, 1).catch((e) => e);
    expect(err).toMatchObject({ code: 'MediumError', details: { senseKey: 0x3, asc: 0x11 } });
    h.detach();
    const d = taps.attach('storvsc:io:decode', drop({ rate: 1, seed: 1 }));
    await expect(hba.read(0, 0, 0, 1)).rejects.toMatchObject({ code: 'Timeout' });
    d.detach();
    expect(hba.leakedPages).toBe(1); // the dropped read's staging page is never reused: the host may still write it
    expect((await hba.read(0, 0, 0, 1)).length).toBe(512);
    expect(dev.counters.failed).toBe(4); // the three power-on unit attentions (met by discovery) and the injected MEDIUM ERROR
    await hba.detach();
  });

  const haveTshark = haveTool('tshark', ['--version'], 'tshark', 'the storvsc trace decode test');
  it.skipIf(!haveTshark)('a trace at the storvsc stages is iSCSI that tshark decodes as SCSI: opcodes, LBAs, status and sense', async () => {
    const taps = new TapRegistry();
    const sink = new MemorySink();
    const w = new PcapngWriter(sink);
    taps.attach('storvsc:io:*', traceTap(w));
    const { guest, pages, offer } = await rig({ taps });
    const hba = await StorvscDriver.attach(guest, offer, { allocPages: pages });
    await hba.write(0, 1, 64, new Uint8Array(4096).fill(3));
    await hba.read(0, 1, 64, 8);
    await hba.read(1, 0, 5000, 1).catch(() => undefined); // past the end: CHECK CONDITION, ILLEGAL REQUEST
    await hba.detach();
    w.close();
    const dir = mkdtempSync(join(tmpdir(), 'storvsc-trace-'));
    const file = join(dir, 'storvsc.pcapng');
    writeFileSync(file, sink.bytes());
    const rows = (filter: string, fields: string[]) => execFileSync('tshark', ['-r', file, '-Y', filter, '-T', 'fields', ...fields.flatMap((f) => ['-e', f])], { encoding: 'utf8' })
      .trim().split('\n').filter(Boolean).map((l) => l.split('\t'));
    const cmds = rows('iscsi.opcode == 0x01 && scsi_sbc.opcode', ['scsi_sbc.opcode', 'scsi_sbc.rdwr16.lba', 'iscsi.scsicommand.expecteddatatransferlength']);
    // Discovery's READ CAPACITY met each disk's power-on unit attention; these commands go through once.
    const lba = (n: number) => n.toString(16).padStart(16, '0');
    expect(cmds).toEqual([['0x8a', lba(64), '4096'], ['0x88', lba(64), '4096'], ['0x88', lba(5000), '512']]);
    const resp = rows('iscsi.opcode == 0x21', ['iscsi.scsiresponse.status', 'scsi.sns.key']);
    expect(resp.at(-1)).toEqual(['0x02', '0x05']);
    expect(execFileSync('tshark', ['-r', file, '-Y', '_ws.malformed'], { encoding: 'utf8' }).trim()).toBe('');
    rmSync(dir, { recursive: true });
  });
});
