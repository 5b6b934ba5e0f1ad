// Test scaffolding for the VMBus channel tests: an identity DmaDomain over the guest RAM window
// (a stand-in until src/memory/iommu.ts lands), and a guest + host bus pair in one thread.
import { expect } from 'vitest';
import {
  bumpPageAllocator, GuestBus, HostBus, loadCoreSync, MessageTransport, SgringError,
  type Core, type EngineName, type GuestBusOptions, type HostBusOptions, type HostOfferSpec,
} from '../../src/index';
import type { DmaDomain } from '../../src/memory/dma-domain';

/** Guest-physical [gpa, gpa+len) -> core offset, bounds-checked against the guest RAM window. */
export function identityDma(core: Core): DmaDomain & { faults: number } {
  const dom = {
    faults: 0,
    translate(gpa: number, len: number): number {
      if (!(Number.isSafeInteger(gpa) && Number.isInteger(len) && gpa >= 0 && len >= 0 && len <= core.guestBytes && gpa <= core.guestBytes - len)) {
        dom.faults++;
        throw new SgringError('OutsideGuestRam', `DMA [${gpa}, +${len}) is outside guest RAM (${core.guestBytes} bytes)`);
      }
      return core.guestBase + gpa;
    },
    read(gpa: number, len: number, dest?: Uint8Array): Uint8Array {
      const at = dom.translate(gpa, len);
      const out = dest ?? new Uint8Array(len);
      out.set(core.u8.subarray(at, at + len));
      return out;
    },
    write(gpa: number, data: Uint8Array): void {
      core.u8.set(data, dom.translate(gpa, data.length));
    },
  };
  return dom;
}

export interface Pair {
  core: Core;
  transport: MessageTransport;
  guest: GuestBus;
  host: HostBus;
  dma: ReturnType<typeof identityDma>;
  /** While true the pump does not run the host: it looks hung. */
  hostPaused: boolean;
}

/** A guest and a host bus in one thread over one transport; the guest pumps the host while it waits. */
export function busPair(o: { engine?: EngineName; shared?: boolean; guestBytes?: number; slots?: number;
  guest?: Partial<GuestBusOptions>; host?: Partial<HostBusOptions> } = {}): Pair {
  const core = loadCoreSync({ engine: o.engine ?? 'wasm', shared: o.shared, guestBytes: o.guestBytes ?? 4 << 20, initialBytes: 16 << 20 });
  const transport = MessageTransport.create(core, { slots: o.slots });
  const dma = identityDma(core);
  const host = new HostBus(transport, { dma, ...o.host });
  const pair = { core, transport, host, dma, hostPaused: false } as Pair;
  pair.guest = new GuestBus(transport, { allocPages: bumpPageAllocator(core), pump: () => void (pair.hostPaused || host.poll()), timeoutMs: 2000, ...o.guest });
  return pair;
}

/** Connects a pair with one echo device offered (in-band requests answered with the same bytes). */
export async function echoPair(o: Parameters<typeof busPair>[0] & { offer?: Partial<HostOfferSpec> } = {}) {
  const p = busPair(o);
  const hostOffer = p.host.offer({
    classId: 'storage',
    onOpen: (ch) => {
      ch.onPacket = (pkt) => {
        if (pkt.completionRequested) ch.complete(pkt, pkt.payload());
      };
    },
    ...o.offer,
  });
  await p.guest.connect();
  return Object.assign(p, { hostOffer });
}

/** Runs fn and returns the SgringError it throws with `code`. */
export function expectCode(fn: () => unknown, code: string): SgringError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, `expected SgringError ${code}`).toBeInstanceOf(SgringError);
  expect((err as SgringError).code).toBe(code);
  return err as SgringError;
}

/** Awaits p and returns the SgringError it rejects with `code`. */
export async function expectReject(p: Promise<unknown>, code: string): Promise<SgringError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, `expected SgringError ${code}`).toBeInstanceOf(SgringError);
  expect((err as SgringError).code).toBe(code);
  return err as SgringError;
}

export const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
export const unhex = (s: string) => Uint8Array.from(s.replace(/[^0-9a-f]/gi, '').match(/../g) ?? [], (h) => parseInt(h, 16));
