// Test scaffolding for the VMBus channel tests: a guest + host bus pair in one thread, the host
// reaching guest RAM through an identity IOMMU domain.
import { expect } from 'vitest';
import {
  bumpPageAllocator, GuestBus, pageAllocator, HostBus, IommuDomain, loadCoreSync, MessageTransport,
  type Core, type EngineName, type GuestBusOptions, type HostBusOptions, type HostOfferSpec,
} from '../../src/index';
import { SgringError } from '../../src/index';
export { expectCode } from '../util/errors';

export interface Pair {
  core: Core;
  transport: MessageTransport;
  guest: GuestBus;
  host: HostBus;
  dma: IommuDomain;
  /** While true the pump does not run the host: it looks hung. */
  hostPaused: boolean;
  /** The guest's page allocator when the pair was made with reusePages. */
  pages: ReturnType<typeof pageAllocator> | null;
}

/** A guest and a host bus in one thread over one transport; the guest pumps the host while it waits. */
export function busPair(o: { engine?: EngineName; shared?: boolean; guestBytes?: number; slots?: number; reusePages?: boolean;
  guest?: Partial<GuestBusOptions>; host?: Partial<HostBusOptions> } = {}): Pair {
  const core = loadCoreSync({ engine: o.engine ?? 'wasm', shared: o.shared, guestBytes: o.guestBytes ?? 4 << 20, initialBytes: 16 << 20 });
  const transport = MessageTransport.create(core, { slots: o.slots });
  const dma = IommuDomain.create(core, 'vmbus-host', { mode: 'identity' });
  const host = new HostBus(transport, { dma, ...o.host });
  const pages = o.reusePages ? pageAllocator(core) : null;
  const pair = { core, transport, host, dma, hostPaused: false, pages } as Pair;
  pair.guest = new GuestBus(transport, { allocPages: pages ?? bumpPageAllocator(core), pump: () => void (pair.hostPaused || host.poll()), timeoutMs: 2000, ...o.guest });
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
