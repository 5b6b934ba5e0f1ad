// A host device behind a strict IOMMU domain: it reaches only the guest pages the guest granted
// (its rings and the buffers of requests it is allowed to serve). A GPA-direct request naming
// other pages fails that request with the IOMMU's error; nothing is written and the channel goes on.
import { describe, expect, it } from 'vitest';
import {
  bumpPageAllocator, encodeGpaRange, GuestBus, HostBus, IommuDomain, loadCoreSync, MessageTransport, SgringError,
} from '../../src/index';

const PAGE = 4096;

describe.each(['wasm', 'reference'] as const)('a VMBus device behind a strict IOMMU (%s)', (engine) => {
  it('serves granted buffers, faults ungranted ones without writing, and keeps the channel', async () => {
    const core = loadCoreSync({ engine, guestBytes: 4 << 20, initialBytes: 16 << 20 });
    const transport = MessageTransport.create(core);
    const dma = IommuDomain.create(core, 'storvsp0', { mode: 'strict' });
    const host = new HostBus(transport, { dma });
    const results: string[] = [];
    host.offer({
      classId: 'storage',
      onOpen: (ch) => {
        ch.onPacket = (p) => {
          // A "read": the device fills the request's buffer, then completes with a status byte.
          try {
            dma.scatter(p.gpa!.segments, new Uint8Array(p.gpa!.segments.reduce((a, s) => a + s.len, 0)).fill(0xab));
            ch.complete(p, Uint8Array.of(0));
          } catch (e) {
            results.push((e as SgringError).code);
            ch.complete(p, Uint8Array.of(1));
          }
        };
      },
    });
    // The guest grants the device its ring pages as it allocates them.
    const alloc = bumpPageAllocator(core, { startGpa: 0x10_0000 });
    const guest = new GuestBus(transport, {
      allocPages: (n) => {
        const gpa = alloc(n);
        dma.map(gpa, n * PAGE);
        return gpa;
      },
      pump: () => void host.poll(),
    });
    await guest.connect();
    const ch = await guest.open(guest.offers.all()[0]!, { txPages: 4, rxPages: 4 });
    const status: number[] = [];
    ch.onCompletion = (_ctx, err, pkt) => status.push(err ? -1 : pkt!.payload()[0]!);

    const granted = 0x20_0000;
    const denied = 0x30_0000;
    dma.map(granted, 2 * PAGE);
    core.u8.fill(0x11, core.guestBase + denied, core.guestBase + denied + PAGE);
    const send = (addr: number, len: number) => {
      const rangeBytes = encodeGpaRange(core, [{ addr, len }]);
      expect(ch.requestGpa({ rangeBytes, rangeCount: 1 }, new Uint8Array(8))).toBeGreaterThan(0);
      host.poll();
      ch.poll();
    };
    send(granted + 0x200, PAGE); // two granted pages
    send(denied, 512); // never granted
    expect(core.u8[core.guestBase + granted + 0x200]).toBe(0xab);
    core.u8.fill(0x22, core.guestBase + granted, core.guestBase + granted + 2 * PAGE);
    send(granted + 2 * PAGE - 16, 32 + PAGE); // starts in a granted page, runs into ungranted ones
    send(granted, 64); // the channel still serves
    expect(status).toEqual([0, 1, 1, 0]);
    expect(results).toEqual(['IommuFault', 'IommuFault']);
    expect(core.u8.subarray(core.guestBase + denied, core.guestBase + denied + PAGE).every((b) => b === 0x11)).toBe(true);
    // The third request's fault wrote nothing, not even into the granted page it starts in.
    expect(core.u8.subarray(core.guestBase + granted + 2 * PAGE - 16, core.guestBase + granted + 2 * PAGE).every((b) => b === 0x22)).toBe(true);
    expect(core.u8[core.guestBase + granted]).toBe(0xab); // request 4
    expect(ch.state).toBe('open');
  });
});
