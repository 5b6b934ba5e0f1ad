// The storvsc guest with the caller's own guest memory as the data buffer (scatter-gather
// segments), against the storvsp host: the page-list rule, planPageList's bounce decision, and
// the seeds' three-segment examples (spec/vmbus.md §4.7), with FreeBSD's historical S/G check as
// the negative oracle.
import { describe, expect, it } from 'vitest';
import {
  bouncePolicies, copyToBounce, decodeCompleteIo, encodeExecuteSrb, GuestBus, HostBus, IommuDomain, loadCoreSync, MemoryDisk,
  MessageTransport, pageAllocator, SRB_DIRECTION, SRB_STATUS, StorvscDriver, StorvspDevice,
} from '../../src/index';

async function rig() {
  const core = loadCoreSync({ guestBytes: 16 << 20 });
  const transport = MessageTransport.create(core);
  const dma = IommuDomain.create(core, 'storvsp0', { mode: 'identity' });
  const host = new HostBus(transport, { dma });
  const dev = new StorvspDevice({ dma, targets: [{ target: 0, lun: 0, backend: MemoryDisk.create(core, { blockCount: 4096 }) }] });
  host.offer(dev.offer());
  const pages = pageAllocator(core);
  const guest = new GuestBus(transport, { allocPages: pages, pump: () => host.poll() });
  await guest.connect();
  const hba = await StorvscDriver.attach(guest, guest.offers.all()[0]!, { allocPages: pages, scanTargets: [0] });
  /** Guest bytes of the segments, in order. */
  const bytesOf = (segs: { addr: number; len: number }[]) => {
    const out = new Uint8Array(segs.reduce((n, s) => n + s.len, 0));
    let at = 0;
    for (const s of segs) {
      out.set(core.u8.subarray(core.guestBase + s.addr, core.guestBase + s.addr + s.len), at);
      at += s.len;
    }
    return out;
  };
  const fill = (segs: { addr: number; len: number }[], data: Uint8Array) => {
    let at = 0;
    for (const s of segs) {
      core.u8.set(data.subarray(at, at + s.len), core.guestBase + s.addr);
      at += s.len;
    }
  };
  return { core, dev, hba, pages, bytesOf, fill };
}

const pattern = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed + (i >> 9)) & 0xff);

describe('storvsc with scatter-gather segments', () => {
  it('example A: the compliant three-segment list (0x200 at the end of a page, a whole page, 0x800) goes out unbounced; write and read are exact', async () => {
    const { hba, pages, bytesOf, fill } = await rig();
    const segs = [{ addr: pages(1) + 0xe00, len: 0x200 }, { addr: pages(1), len: 0x1000 }, { addr: pages(1), len: 0x800 }];
    const data = pattern(0x1a00, 1);
    fill(segs, data);
    await hba.write(0, 0, 100, 13, segs);
    expect(hba.counters.bouncedBytes).toBe(0);
    expect(await hba.read(0, 0, 100, 13)).toEqual(data);
    fill(segs, new Uint8Array(0x1a00));
    await hba.read(0, 0, 100, 13, segs);
    expect(bytesOf(segs)).toEqual(data);
    expect(hba.counters.bouncedBytes).toBe(0);
    await hba.detach();
  });

  it('example B: a middle segment that starts mid-page is bounced, and only as much as planPageList says; the data is exact both ways', async () => {
    const { hba, pages, bytesOf, fill } = await rig();
    const segs = [{ addr: pages(1), len: 0x1000 }, { addr: pages(1) + 0x100, len: 0x200 }, { addr: pages(1), len: 0x1000 }];
    const data = pattern(0x2200, 2);
    fill(segs, data);
    await hba.write(0, 0, 200, 17, segs);
    const bounced = hba.counters.bouncedBytes;
    expect(bounced).toBeGreaterThan(0);
    expect(bounced).toBeLessThan(0x2200); // never the whole transfer, as Linux's old driver did
    expect(await hba.read(0, 0, 200, 17)).toEqual(data);
    fill(segs, new Uint8Array(0x2200));
    await hba.read(0, 0, 200, 17, segs);
    expect(bytesOf(segs)).toEqual(data);
    expect(hba.counters.bouncedBytes).toBe(2 * bounced);
    await hba.detach();
  });

  it("FreeBSD's S/G check (bouncePolicies.freebsdSgBounce) breaks example A, a list that was already right: the host refuses its page list; planPageList's plan of it is exact", async () => {
    const { core, dev, hba, pages } = await rig();
    const segs = [{ addr: pages(1) + 0xe00, len: 0x200 }, { addr: pages(1), len: 0x1000 }, { addr: pages(1), len: 0x800 }];
    const data = pattern(0x1a00, 3);
    let at = 0;
    for (const s of segs) (core.u8.set(data.subarray(at, at + s.len), core.guestBase + s.addr), (at += s.len));
    const bounce = pages(4);
    const opts = { rule: 'hyperv' as const, core, bouncePages: [0, 1, 2, 3].map((i) => bounce + i * 4096) };
    const send = async (lba: number, plan: { byteCount: number; byteOffset: number; pages: number[] }) => {
      const cdb = Uint8Array.of(0x8a, 0, 0, 0, 0, 0, 0, 0, 0, lba, 0, 0, 0, 13, 0, 0);
      // The range as the driver builds it (our own encoder would refuse FreeBSD's: its PFN count does not match its bytes).
      const rangeBytes = new Uint8Array(8 + 8 * plan.pages.length);
      const dv = new DataView(rangeBytes.buffer);
      dv.setUint32(0, plan.byteCount, true);
      dv.setUint32(4, plan.byteOffset, true);
      plan.pages.forEach((pfn, i) => dv.setUint32(8 + 8 * i, pfn, true));
      const msg = encodeExecuteSrb({ port: 0, path: 0, target: 0, lun: 0, cdb, direction: SRB_DIRECTION.write, dataTransferLength: plan.byteCount }, hba.version);
      return decodeCompleteIo(await hba.channel.callGpa({ rangeBytes, rangeCount: 1 }, msg), plan.byteCount);
    };
    const freebsd = bouncePolicies.freebsdSgBounce(segs, opts);
    expect(freebsd.bounceEntries).toEqual([0]); // segment 0 bounced to the start of a page: its 0x200 bytes now sit at offset 0
    copyToBounce(core, segs, freebsd);
    // 0x1a00 bytes from offset 0 span two pages, the list names three: the host refuses the command, counted.
    expect(await send(10, freebsd)).toMatchObject({ srbStatus: SRB_STATUS.invalidRequest, dataTransferLength: 0 });
    expect(dev.counters.pageListRefused).toBe(1);
    const ours = bouncePolicies.optimal(segs, opts);
    expect(ours.bouncedBytes).toBe(0);
    expect((await send(20, ours)).srbStatus & 0x3f).toBe(SRB_STATUS.success);
    expect(await hba.read(0, 0, 20, 13)).toEqual(data);
    expect(dev.counters.dmaFaults).toBe(0);
    await hba.detach();
  });

  it('segments that do not hold the blocks asked for, or are not an array, are refused before anything is sent', async () => {
    const { dev, hba, pages } = await rig();
    const before = dev.counters.requests;
    await expect(hba.read(0, 0, 0, 2, [{ addr: pages(1), len: 512 }])).rejects.toMatchObject({ code: 'InvalidArgument' });
    await expect(hba.write(0, 0, 0, 1, 'x' as never)).rejects.toMatchObject({ code: 'InvalidArgument' });
    await expect(hba.scsi(0, 0, Uint8Array.of(0x88), { segments: [{ addr: -1, len: 512 }] })).rejects.toMatchObject({ code: 'InvalidArgument' });
    expect(dev.counters.requests).toBe(before);
    await hba.detach();
  });
});
