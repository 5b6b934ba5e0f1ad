// `sgring fuzz`: the bounce-policy fuzzer and hostile-input fuzzers over the core, a device and
// the ring, from the command line. A hostile-input target gets bytes from a seeded generator
// (case i of seed s is always the same bytes); whatever it does with them must end in a result
// or a typed SgringError: any other exception is a finding, written to a replayable JSON file.
// A bounce target searches for a scatter-gather list the policy plans wrongly or wastefully.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  decodeGpaRanges, encodeSglDescriptor, GuestBus, HostBus, Iommu, IommuDomain, loadCoreSync, MemoryDisk, MessageTransport, NetvscDriver,
  NetvspDevice, NvmeController, pageAllocator, SgringError, StorvscDriver, StorvspDevice, VirtualSwitch, VmbusRing, walkPrp, walkSgl,
  type Core, type FreeingPageAllocator, type HostChannel, type HostOfferSpec, type NvmeWalkResult,
} from '../index';
import { bouncePolicies, findCounterexample, formatCounterexample } from '../fuzz/index';

/** A hostile-input target: runs one case on `bytes`; returns (or resolves) normally, or throws SgringError. */
type Runner = (bytes: Uint8Array) => void | Promise<void>;
type InputTarget = { about: string; setup: () => Runner | Promise<Runner> };

/** A guest driver attached to a device over a VMBus channel in one thread, with the host channel at hand for hostile packets. */
async function vmbusRig<D>(device: (core: Core, dma: IommuDomain) => { offer(): HostOfferSpec }, attach: (guest: GuestBus, pages: FreeingPageAllocator) => Promise<D>) {
  const core = loadCoreSync({ guestBytes: 16 << 20 });
  const transport = MessageTransport.create(core);
  const dma = IommuDomain.create(core, 'fuzz', { mode: 'identity' });
  const host = new HostBus(transport, { dma });
  let channel: HostChannel | null = null;
  const spec = device(core, dma).offer();
  host.offer({ ...spec, onOpen: (ch) => (spec.onOpen!(ch), (channel = ch)) });
  const pages = pageAllocator(core);
  const guest = new GuestBus(transport, { allocPages: pages, pump: () => host.poll() });
  await guest.connect();
  const driver = await attach(guest, pages);
  const settle = () => {
    for (let i = 0; i < 8; i++) (host.poll(), guest.poll());
  };
  return { driver, channel: channel! as HostChannel, settle };
}

/** Up to 8 hostile packets cut from `b`: [length byte, bytes...]. */
function packetsOf(b: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 1, n = 0; n < 1 + (b[0]! % 8) && at < b.length; n++) {
    const len = b[at]! % 200;
    out.push(b.slice(at + 1, at + 1 + len));
    at += 1 + len;
  }
  return out;
}

const u32 = (b: Uint8Array, at: number) => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;

const SMALL_GUEST = 65536;

/**
 * A data-pointer walk over a 64 KiB guest whose bytes are the case's from offset 20 (list pages,
 * SGL segments); the walk reads its own arguments from bytes 0..19. A walk that maps data past
 * the guest is a finding.
 */
function walkTarget(about: string, walk: (core: Core, b: Uint8Array) => NvmeWalkResult): InputTarget {
  return {
    about,
    setup: () => {
      const core = loadCoreSync({ guestBytes: SMALL_GUEST });
      return (b) => {
        core.u8.fill(0, core.guestBase, core.guestBase + SMALL_GUEST);
        core.u8.set(b.subarray(20, 20 + SMALL_GUEST), core.guestBase);
        const r = walk(core, b);
        if (r.ok && r.segments.some((s) => s.addr + s.len > SMALL_GUEST)) throw new Error('the walk mapped data outside the guest');
      };
    },
  };
}

const INPUT_TARGETS: Record<string, InputTarget> = {
  'gpa-ranges': {
    about: 'GPA range bytes of a VMBus GPA-direct packet, decoded as a host reads them (decodeGpaRanges)',
    setup: () => {
      const core = loadCoreSync();
      return (b) => void decodeGpaRanges(core, b.subarray(1), b[0]! % 8);
    },
  },
  'prp-walk': walkTarget('an NVMe command\'s PRP1/PRP2 and the PRP list pages in a 64 KiB guest, walked as a controller does (walkPrp)', (core, b) => {
    // Mostly addresses and lengths inside the guest (lists get walked), sometimes anything.
    const inside = (v: number, wide: number) => (wide & 1 ? v : v % SMALL_GUEST);
    const prp2 = b[18]! & 1 ? (BigInt(u32(b, 8)) << 32n) | BigInt(u32(b, 4)) : BigInt(u32(b, 4) % SMALL_GUEST);
    return walkPrp(core, { prp1: BigInt(inside(u32(b, 0), b[17]!)), prp2, length: u32(b, 12) % (b[19]! & 1 ? 1 << 22 : 1 << 16), maskPrp1: (b[16]! & 1) === 1 });
  }),
  'sgl-walk': walkTarget('an NVMe command\'s SGL1 and the SGL segments in a 64 KiB guest, walked as a controller does (walkSgl)', (core, b) => {
    const sgl1 = b[16]! & 1 ? b.slice(0, 16) : encodeSglDescriptor({ addr: BigInt(u32(b, 0) % SMALL_GUEST), length: u32(b, 4) % 4096, id: b[8]! & 0xf0 });
    return walkSgl(core, { sgl1, length: u32(b, 12) % (1 << 22) });
  }),
  'ring-read': {
    about: 'a VMBus ring whose header and data a hostile peer wrote, read until empty or broken (VmbusRing.readPacket)',
    setup: () => {
      const core = loadCoreSync();
      const ring = VmbusRing.create(core, { dataSize: 8192 });
      return (b) => {
        ring.bytes.fill(0);
        core.u8.set(b.subarray(0, 8), ring.ptr); // write and read index
        core.u8.set(b.subarray(8, 8 + 8192), ring.ptr + 4096);
        ring.clearError(); // a case starts on a fresh endpoint over the hostile bytes
        for (let i = 0; i < 64 && ring.readPacket() !== null; i++);
      };
    },
  },
  'storvsc-guest': {
    about: 'packets of hostile bytes a host sends the storvsc guest driver, after which a read must still complete',
    setup: async () => {
      const r = await vmbusRig((core, dma) => new StorvspDevice({ dma, targets: [{ target: 0, lun: 0, backend: MemoryDisk.create(core, { blockCount: 64 }) }] }),
        (guest, pages) => StorvscDriver.attach(guest, guest.offers.all()[0]!, { allocPages: pages, scanTargets: [0] }));
      return async (b) => {
        for (const p of packetsOf(b)) r.channel.send(p);
        r.channel.flush();
        r.settle();
        await r.driver.read(0, 0, 0, 1); // the adapter still serves
      };
    },
  },
  'netvsc-guest': {
    about: 'NVSP packets and transfer-page packets of hostile bytes a host sends the netvsc guest driver, after which a frame must still arrive',
    setup: async () => {
      const sw = new VirtualSwitch();
      const peer = sw.addPort('peer', () => true);
      const made = await vmbusRig((_core, dma) => new NetvspDevice({ dma, mac: '00:15:5d:00:00:01', switch: sw }),
        (guest, pages) => NetvscDriver.attach(guest, guest.offers.all()[0]!, { allocPages: pages }));
      let got = 0;
      made.driver.onReceive = () => void got++;
      const frame = new Uint8Array(60);
      frame.set([0x00, 0x15, 0x5d, 0, 0, 1, 0x02, 0, 0, 0, 0, 9, 0x88, 0xb5]);
      return (b) => {
        const ps = packetsOf(b);
        ps.forEach((p, i) => {
          if (i % 2 === 0) made.channel.send(p);
          else made.channel.requestTransferPages({ pageSetId: u32(b, i) & 1 ? 0xcafe : u32(b, i) & 0xffff, senderOwns: false, ranges: [{ byteOffset: u32(b, i + 2), byteCount: u32(b, i + 6) % 8192 }] }, p, []);
        });
        made.channel.flush();
        made.settle();
        const before = got;
        peer.input(frame);
        made.settle();
        if (got !== before + 1) throw new Error('the netvsc guest stopped receiving frames after hostile packets');
      };
    },
  },
  'nvme-admin': {
    about: 'admin commands of hostile bytes submitted to an NVMe controller, then an Identify that must still complete',
    setup: () => {
      const core = loadCoreSync({ guestBytes: 1 << 20 });
      const dma = new Iommu(core).domain('fuzz');
      dma.map(0, 1 << 20);
      const ctrl = new NvmeController(core, { dma, namespaces: [{ backend: MemoryDisk.create(core, { blockCount: 64 }) }], maxQueues: 2 });
      return (b) => {
        ctrl.mmioWrite(0x14, 4, 0); // reset, then an admin queue at 0 (SQ, 16 slots) and 0x1000 (CQ)
        ctrl.mmioWrite(0x24, 4, (15 << 16) | 15);
        ctrl.mmioWrite(0x28, 8, 0n);
        ctrl.mmioWrite(0x30, 8, 0x1000n);
        ctrl.mmioWrite(0x14, 4, 0x00460001);
        core.u8.fill(0, core.guestBase, core.guestBase + (1 << 20));
        const n = 1 + (b[0]! % 8);
        core.u8.set(b.subarray(1, 1 + 64 * n), core.guestBase);
        const identify = new Uint8Array(64);
        identify.set([0x06, 0, 0xee, 0xee], 0);
        identify.set([0, 0, 0x02, 0], 24); // PRP1 0x20000
        identify[40] = 1;
        core.u8.set(identify, core.guestBase + 64 * n);
        ctrl.mmioWrite(0x1000, 4, n + 1);
        const cq = core.u8.subarray(core.guestBase + 0x1000, core.guestBase + 0x2000);
        let found = false;
        for (let i = 0; i < 16; i++) if (cq[16 * i + 12] === 0xee && cq[16 * i + 13] === 0xee) found = true;
        if (ctrl.ready && !found && ctrl.pending === 0) throw new Error('the controller stopped answering after hostile admin commands');
      };
    },
  },
};

export const FUZZ_TARGETS = [...Object.keys(INPUT_TARGETS), ...Object.keys(bouncePolicies).map((p) => `bounce:${p}`)];

/** The bytes of case `index` of `seed` (xorshift32 from both). */
export function caseBytes(seed: number, index: number, n = 70_000): Uint8Array {
  let x = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0 || 1;
  const b = new Uint8Array(n);
  // Mostly small values and zeros (the shapes parsers branch on), some pure noise.
  const noise = index % 4 === 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = noise || (x & 7) === 0 ? x & 0xff : (x & 0x30) === 0 ? 0 : (x >>> 8) & 0x1f;
  }
  return b;
}

export interface FuzzRun {
  target: string;
  seed: number;
  runs?: number;
  seconds?: number;
  out: string;
  say: (line: string) => void;
  progress: ((line: string) => void) | null;
}

/** Runs a target; resolves with the findings written. */
export async function fuzz(o: FuzzRun): Promise<string[]> {
  if (!FUZZ_TARGETS.includes(o.target)) throw new SgringError('InvalidArgument', `--target ${o.target}: one of ${FUZZ_TARGETS.join(', ')}`);
  const started = performance.now();
  const deadline = o.seconds !== undefined ? started + o.seconds * 1000 : Infinity;
  const runs = o.runs ?? (o.seconds !== undefined ? Infinity : 1000);
  const found: string[] = [];
  const write = (what: object, i: number) => {
    const file = join(o.out, `sgring-fuzz-${o.target.replace(':', '-')}-${o.seed}-${i}.json`);
    writeFileSync(file, `${JSON.stringify(what, null, 2)}\n`);
    found.push(file);
    return file;
  };
  let done = 0;
  const show = () => {
    const s = (performance.now() - started) / 1000;
    o.progress?.(`${o.target}: ${done} cases, ${(done / Math.max(s, 1e-3)).toFixed(0)} cases/s, ${found.length} finding${found.length === 1 ? '' : 's'}`);
  };
  if (o.target.startsWith('bounce:')) {
    const policy = bouncePolicies[o.target.slice(7) as keyof typeof bouncePolicies];
    // Chunks of 100 lists, each chunk its own seed, so progress shows and a finding replays alone.
    for (let chunk = 0; done < runs && performance.now() < deadline; chunk++) {
      const seed = (o.seed + chunk) >>> 0;
      const n = Math.min(100, runs - done);
      const ce = findCounterexample(policy, { rule: 'hyperv', runs: n, seed, check: 'minimal' });
      done += n;
      if (ce) {
        const file = write({ target: o.target, seed, runs: n, violation: ce.violation, segments: ce.segments }, chunk);
        o.say(`finding: ${ce.violation} -> ${file}\n${formatCounterexample(ce)}`);
        break; // the search shrinks to one minimal list: one is the answer
      }
      show();
    }
  } else {
    const run = await INPUT_TARGETS[o.target]!.setup();
    for (let i = 0; i < runs && performance.now() < deadline; i++) {
      const bytes = caseBytes(o.seed, i);
      try {
        await run(bytes);
      } catch (e) {
        if (!(e instanceof SgringError)) {
          const file = write({ target: o.target, seed: o.seed, index: i, error: String((e as Error)?.message ?? e), input: Buffer.from(bytes).toString('base64') }, i);
          o.say(`finding at case ${i}: ${(e as Error)?.message ?? e} -> ${file}`);
        }
      }
      done++;
      if (i % 200 === 0) show();
    }
  }
  show();
  o.progress?.('');
  const s = (performance.now() - started) / 1000;
  o.say(`${o.target}: ${done} cases in ${s.toFixed(1)} s (${(done / Math.max(s, 1e-3)).toFixed(0)}/s), seed ${o.seed}, ${found.length} finding${found.length === 1 ? '' : 's'}`);
  return found;
}

/** Runs a finding file's case again; resolves whether it still fails. */
export async function replay(file: { target: string; seed: number; index?: number; runs?: number; input?: string }, say: (l: string) => void): Promise<boolean> {
  if (!FUZZ_TARGETS.includes(file.target)) throw new SgringError('InvalidArgument', `replay: unknown target ${file.target}`);
  if (file.target.startsWith('bounce:')) {
    const ce = findCounterexample(bouncePolicies[file.target.slice(7) as keyof typeof bouncePolicies], { rule: 'hyperv', runs: file.runs ?? 100, seed: file.seed, check: 'minimal' });
    say(ce ? `still fails: ${ce.violation}\n${formatCounterexample(ce)}` : 'passes now');
    return ce !== null;
  }
  if (typeof file.input !== 'string') throw new SgringError('InvalidArgument', 'replay: the file has no input');
  try {
    await (await INPUT_TARGETS[file.target]!.setup())(new Uint8Array(Buffer.from(file.input, 'base64')));
    say('passes now');
    return false;
  } catch (e) {
    if (e instanceof SgringError) {
      say(`passes now (a typed error: ${e.code})`);
      return false;
    }
    say(`still fails: ${(e as Error)?.message ?? e}`);
    return true;
  }
}

export const fuzzTargetHelp = (): string => [
  ...Object.entries(INPUT_TARGETS).map(([k, t]) => `    ${k.padEnd(26)} ${t.about}`),
  ...Object.keys(bouncePolicies).map((p) => `    ${`bounce:${p}`.padEnd(26)} a scatter-gather list the ${p} policy bounces wrongly or more than the optimum`),
].join('\n');
