// The seeded injectors on the NVMe-shaped device: each models a behaviour of the frankendrive
// talk or of checklist 63, and the same seed gives the same faults.
import { describe, expect, it } from 'vitest';
import {
  corrupt, delay, drop, randomFailure, readOnlyAfter, reincarnation, seededRandom, TapRegistry, temperamental, vendorCommand, type Tap,
} from '../../src/index';
import { expectCode } from '../util/errors';
import { BLOCK, MockNvme, NVME_STATUS, readCmd, sqe, writeCmd } from './mock-nvme';

/** Statuses of `n` writes (then `reads` reads) through a device with `tap` on io decode. */
async function run(tap: Tap, n: number, stage = 'nvme:io:decode') {
  const taps = new TapRegistry();
  const dev = new MockNvme(taps);
  taps.attach(stage, tap);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await dev.submit(1, writeCmd(i & 0xffff, i % 64, 1), new Uint8Array(BLOCK).fill(i & 0xff))).status);
  return { out, dev, taps };
}

const RO = NVME_STATUS.readOnly;

describe('storage injectors (the frankendrive plug-ins)', () => {
  it('readOnlyAfter(5): five writes land, every later one is refused read-only and never reaches the medium; reads go on', async () => {
    const { out, dev } = await run(readOnlyAfter(5), 8);
    expect(out).toEqual([0, 0, 0, 0, 0, RO, RO, RO]);
    expect(dev.disk[5 * BLOCK]).toBe(0);
    expect((await dev.submit(1, readCmd(99, 4, 1))).data![0]).toBe(4);
  });

  it('readOnlyAfter(2, { silent }) answers success and writes nothing: the drive that lied', async () => {
    const { out, dev } = await run(readOnlyAfter(2, { silent: true }), 4);
    expect(out).toEqual([0, 0, 0, 0]);
    expect([dev.disk[1 * BLOCK], dev.disk[2 * BLOCK], dev.disk[3 * BLOCK]]).toEqual([1, 0, 0]);
  });

  it('temperamental: good writes until one flips the medium read-only for good; the same seed flips at the same write', async () => {
    const a = (await run(temperamental({ probability: 0.2, seed: 7 }), 40)).out;
    const b = (await run(temperamental({ probability: 0.2, seed: 7 }), 40)).out;
    expect(a).toEqual(b);
    const first = a.indexOf(RO);
    expect(first).toBeGreaterThan(0);
    expect(a.slice(first).every((s) => s === RO)).toBe(true);
    expect(a.slice(0, first).every((s) => s === 0)).toBe(true);
    const firsts = new Set<number>();
    for (let seed = 1; seed <= 8; seed++) firsts.add((await run(temperamental({ probability: 0.2, seed }), 40)).out.indexOf(RO));
    expect(firsts.size).toBeGreaterThan(2); // other seeds, other moments
  });

  it('reincarnation({ after: 5, window: 3 }): 5 good, 3 refused, then back, repeating', async () => {
    const { out } = await run(reincarnation({ after: 5, window: 3 }), 16);
    expect(out).toEqual([0, 0, 0, 0, 0, RO, RO, RO, 0, 0, 0, 0, 0, RO, RO, RO]);
  });

  it('reincarnation with status mediaError fails the window with a status a driver may retry (no DNR)', async () => {
    const { out } = await run(reincarnation({ after: 2, window: 1, status: 'mediaError' }), 6);
    const ME = NVME_STATUS.mediaError;
    expect(out).toEqual([0, 0, ME, 0, 0, ME]);
    expect(ME & 0x4000).toBe(0);
  });

  it('vendorCommand(0xc0, sum): the talk\'s sum command, answered by the tap with cdw10 + cdw11 in dword 0', async () => {
    const taps = new TapRegistry();
    const dev = new MockNvme(taps);
    expect((await dev.submit(0, sqe(0xc0, 1, 0, { 10: 40, 11: 2 }))).status).not.toBe(0); // Invalid Opcode without the tap
    taps.attach('nvme:admin:decode', vendorCommand(0xc0, (cdw) => cdw[10]! + cdw[11]!));
    expect(await dev.submit(0, sqe(0xc0, 2, 0, { 10: 40, 11: 2 }))).toMatchObject({ status: 0, cdw0: 42 });
    expect((await dev.submit(0, sqe(0xc1, 3, 0))).status).not.toBe(0); // other opcodes untouched
  });

  it('refuses nonsense parameters', () => {
    expectCode(() => readOnlyAfter(-1), 'InvalidArgument');
    expectCode(() => temperamental({ probability: 1.5, seed: 1 }), 'InvalidArgument');
    expectCode(() => reincarnation({ after: 1, window: NaN }), 'InvalidArgument');
    expectCode(() => reincarnation({ after: 1, window: 1, status: 'success' as 'readOnly' }), 'InvalidArgument');
    expectCode(() => randomFailure({ rate: -0.1, seed: 1 }), 'InvalidArgument');
    expectCode(() => vendorCommand(0x100, () => 0), 'InvalidArgument');
  });
});

describe('generic injectors, seeded [H66]', () => {
  it('randomFailure: the same seed fails the same requests; the rate is about right', async () => {
    const a = (await run(randomFailure({ rate: 0.3, seed: 42 }), 200)).out;
    expect((await run(randomFailure({ rate: 0.3, seed: 42 }), 200)).out).toEqual(a);
    const failed = a.filter((s) => s === NVME_STATUS.mediaError).length;
    expect(failed).toBeGreaterThan(35);
    expect(failed).toBeLessThan(85);
    expect((await run(randomFailure({ rate: 0.3, seed: 43 }), 200)).out).not.toEqual(a);
    expect((await run(randomFailure({ rate: 1, seed: 1, status: 0x1234 }), 3)).out).toEqual([0x1234, 0x1234, 0x1234]);
  });

  it('drop: the same seed drops the same requests; dropped requests never complete', async () => {
    const seq = async (seed: number) => {
      const taps = new TapRegistry();
      const dev = new MockNvme(taps);
      taps.attach('nvme:io:decode', drop({ rate: 0.25, seed }));
      const ends = [];
      for (let i = 0; i < 60; i++) ends.push((await dev.submit(1, readCmd(i, 0, 1))).end);
      return ends;
    };
    const a = await seq(5);
    expect(await seq(5)).toEqual(a);
    expect(a.filter((e) => e === 'dropped').length).toBeGreaterThan(5);
  });

  it('delay: every event is held ms plus seeded jitter', async () => {
    const waits: number[] = [];
    const taps = new TapRegistry();
    const dev = new MockNvme(taps);
    taps.attach('nvme:io:decode', delay({ ms: 5, jitter: 10, seed: 3 }));
    for (let i = 0; i < 4; i++) {
      const t0 = performance.now();
      await dev.submit(1, readCmd(i, 0, 1));
      waits.push(performance.now() - t0);
    }
    for (const w of waits) expect(w).toBeGreaterThanOrEqual(4);
  });

  it('corrupt: flips the given number of bits in the data of the chosen events, the same ones for the same seed', async () => {
    const reads = async (seed: number) => {
      const taps = new TapRegistry();
      const dev = new MockNvme(taps);
      taps.attach('nvme:io:writeback', corrupt({ rate: 0.5, bits: 3, seed, kinds: ['read'] }));
      const out = [];
      for (let i = 0; i < 20; i++) out.push((await dev.submit(1, readCmd(i, 0, 1))).data!);
      return out;
    };
    const a = await reads(9);
    const b = await reads(9);
    expect(a.map((d) => d.join())).toEqual(b.map((d) => d.join()));
    const flipped = a.map((d) => d.reduce((n, x) => n + popcount(x), 0));
    expect(flipped.every((n) => n === 0 || (n >= 1 && n <= 3))).toBe(true); // a bit flipped twice cancels
    expect(flipped.filter((n) => n > 0).length).toBeGreaterThan(4);
  });

  it('seededRandom is deterministic and uniform enough', () => {
    const r1 = seededRandom(1);
    const r2 = seededRandom(1);
    const xs = Array.from({ length: 1000 }, () => r1());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => r2()));
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(Math.abs(xs.reduce((a, b) => a + b, 0) / 1000 - 0.5)).toBeLessThan(0.05);
  });
});

function popcount(x: number): number {
  let n = 0;
  for (; x; x &= x - 1) n++;
  return n;
}
