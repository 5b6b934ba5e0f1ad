// The controller's fast lane (reads and writes of up to two pages on a synchronous namespace, run
// straight from the SQ slot to the CQ slot) against the staged pipeline, which a pass-through
// tap forces: the same command stream, valid and hostile, must leave the same CQEs, guest
// memory, disk, SMART counters and error log.
import { describe, expect, it, vi } from 'vitest';
import { seededRandom, TapRegistry } from '../../src/index';
import { Host, PAGE, type Cqe } from './nvme-host';

const BLOCKS = 2048;

/** One command of the stream, as both hosts build it. */
interface Spec {
  opcode: number; flags: number; nsid: number; lba: number; lbaHi: number; blocks: number; at: 'pool' | 'unmapped' | 'window' | 'list';
  offset: number; prp2: 'next' | 'odd' | 'unmapped' | 'zero'; list: 'good' | 'bad'; listOffset: number;
}

function stream(n: number, seed: number): Spec[] {
  const r = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  return Array.from({ length: n }, () => {
    const blocks = r() < 0.7 ? pick([1, 8, 8, 16]) : pick([2, 9, 24, 256, 4096]);
    return {
      // Mostly reads and writes; some flushes and compares (the general path's) in between.
      opcode: pick([0x02, 0x02, 0x02, 0x01, 0x01, 0x01, 0x00, 0x05]),
      flags: r() < 0.9 ? 0 : pick([0x01, 0x40, 0x80]), // fused, SGL, reserved PSDT
      nsid: r() < 0.95 ? 1 : pick([0, 2, 0xffffffff]),
      lba: r() < 0.93 ? Math.floor(r() * Math.max(1, BLOCKS - blocks)) : pick([BLOCKS - 1, BLOCKS, 0xffffffff]),
      lbaHi: r() < 0.97 ? 0 : pick([1, 0x200000]),
      blocks,
      at: r() < 0.1 ? pick(['unmapped', 'window'] as const) : blocks > 16 || r() < 0.2 ? 'list' : 'pool',
      offset: r() < 0.8 ? 0 : pick([512, 1024, 2, 4092, 3584]),
      prp2: r() < 0.9 ? 'next' : pick(['odd', 'unmapped', 'zero'] as const),
      // A list of good entries (pages of the pool, runs of adjacent ones) or one with hostile entries;
      // at its page start, further in (so that a long transfer must chain), or not qword aligned.
      list: r() < 0.7 ? 'good' : 'bad',
      listOffset: r() < 0.6 ? 0 : pick([8, 2048, 4000, 4088, 4]),
    };
  });
}

async function run(specs: Spec[], tapped: boolean, readOnly: boolean) {
  const taps = new TapRegistry();
  if (tapped) taps.attach('nvme:io:fetch', () => {}); // passes every command on: the staged pipeline runs
  const h = new Host({ taps, blocks: BLOCKS, readOnly });
  h.enable();
  await h.createQueuePair(1, 64);
  const lane = vi.spyOn(h.ctrl as unknown as { fastLane: () => number }, 'fastLane');
  const pool = h.pages(64);
  const lists = { good: h.pages(1), bad: h.pages(1) };
  const r = seededRandom(99);
  for (let i = 0; i < 64 * PAGE; i += 4) h.core.dv.setUint32(h.core.guestBase + pool + i, (r() * 2 ** 32) >>> 0, true);
  const hostile = [pool + 0x200, 0x40_000, 0x1f0_0000, 2 ** 32 + pool];
  for (let i = 0; i < 512; i++) {
    const page = pool + ((i % 8 === 7 ? i * 5 : i) % 64) * PAGE; // mostly runs of adjacent pages
    h.core.dv.setBigUint64(h.core.guestBase + lists.good + 8 * i, BigInt(page), true);
    h.core.dv.setBigUint64(h.core.guestBase + lists.bad + 8 * i, BigInt(i % 4 === 1 ? hostile[(i >> 2) % 4]! : page), true);
  }
  if (!readOnly) h.disk.write(0, BLOCKS, h.core.guestBase + pool); // a disk full of known bytes (the pool repeats)
  const cqes: Cqe[] = [];
  for (let b = 0; b < specs.length; b += 24) {
    const sqes = specs.slice(b, b + 24).map((s, i) => {
      const slot = pool + ((b + i) % 60) * PAGE;
      const prp1 = s.at === 'pool' ? slot + s.offset : s.at === 'unmapped' ? 0x40_000 + s.offset : s.at === 'window' ? 0x1f0_0000 : slot;
      const prp2 = s.at === 'list' ? lists[s.list] + s.listOffset : s.prp2 === 'next' ? slot + PAGE : s.prp2 === 'odd' ? slot + PAGE + 8 : s.prp2 === 'unmapped' ? 0x80_000 : 0;
      const sqe = h.sqe(s.opcode, s.nsid, { 10: s.lba, 11: s.lbaHi, 12: s.blocks - 1 }, prp1, prp2);
      sqe[1] = s.flags;
      return sqe;
    });
    h.submit(1, ...sqes);
    for (let spins = 0; cqes.length < Math.min(b + 24, specs.length); spins++) {
      if (spins > 1000) throw new Error('commands never completed');
      cqes.push(...h.reap(1));
      if (cqes.length < Math.min(b + 24, specs.length)) await new Promise((res) => setTimeout(res, 0));
    }
  }
  const laned = lane.mock.results.reduce((s, x) => s + (x.value as number), 0);
  return {
    laned,
    cqes: cqes.sort((a, c) => a.cid - c.cid),
    guest: Buffer.from(h.guest(0x10_0000, 0x100_0000)),
    disk: Buffer.from(h.core.u8.subarray(h.disk.ptr, h.disk.ptr + BLOCKS * 512)),
    health: { ...h.ctrl.health },
    errors: Buffer.from(h.ctrl.errorLog()),
  };
}

describe('NVMe controller: the fast lane', () => {
  for (const readOnly of [false, true]) {
    it(`answers a stream of valid and hostile commands as the staged pipeline does${readOnly ? ' (read-only namespace)' : ''}: CQEs, guest memory, disk, SMART, error log`, async () => {
      const specs = stream(1200, readOnly ? 5 : 4);
      const fast = await run(specs, false, readOnly);
      const staged = await run(specs, true, readOnly);
      expect(staged.laned).toBe(0);
      expect(fast.laned).toBeGreaterThan(readOnly ? 200 : 400); // a good part of the stream took the lane
      expect(fast.health.blocksRead + fast.health.blocksWritten).toBeGreaterThan(3000); // long transfers through list pages among them
      expect(fast.cqes.filter((c) => c.status !== 0).length).toBeGreaterThan(100); // and the hostile part was refused
      expect(fast.cqes).toEqual(staged.cqes);
      expect(fast.health).toEqual(staged.health);
      expect(fast.guest.equals(staged.guest)).toBe(true);
      expect(fast.disk.equals(staged.disk)).toBe(true);
      expect(fast.errors.equals(staged.errors)).toBe(true);
      // Error Count is unique per entry, newest first (the staged pipeline once repeated it when
      // several commands failed before the first of them completed).
      const counts = Array.from({ length: 64 }, (_, i) => Number(staged.errors.readBigUInt64LE(64 * i)));
      expect(counts).toEqual(counts.map((_, i) => counts[0]! - i));
    });
  }
});
