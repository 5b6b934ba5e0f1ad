// The tap registry and the tap contract, on a small NVMe-shaped device (mock-nvme.ts).
import { describe, expect, it } from 'vitest';
import { TapRegistry, type TapContext } from '../../src/index';
import { expectCode } from '../util/errors';
import { MockNvme, NVME_STATUS, readCmd, writeCmd, BLOCK } from './mock-nvme';

const block = (v: number, n = 1) => new Uint8Array(n * BLOCK).fill(v);

describe('tap registry', () => {
  it('declares stages, lists them, and matches exact names and * patterns per component', () => {
    const taps = new TapRegistry();
    new MockNvme(taps, 'nvme0');
    new MockNvme(taps, 'nvme1');
    expect(taps.stages().filter((s) => s.device === 'nvme0').map((s) => s.name)).toEqual(['nvme:admin:decode', 'nvme:admin:writeback', 'nvme:io:decode', 'nvme:io:writeback']);
    expect(taps.attach('nvme:io:decode', () => {}).stages).toEqual(['nvme0/nvme:io:decode', 'nvme1/nvme:io:decode']);
    expect(taps.attach('nvme:*:writeback', () => {}).stages).toHaveLength(4);
    expect(taps.attach('*:*:*', () => {}, { device: 'nvme1' }).stages).toHaveLength(4);
    expect(taps.attach('storvsc:*:*', () => {}).stages).toEqual([]);
    for (const bad of ['nvme:io', 'nvme:io:decode:x', 'NVMe:io:decode', 'nvme:i*:decode', '']) expectCode(() => taps.attach(bad, () => {}), 'InvalidArgument');
    expectCode(() => taps.declare('nvme0', [{ name: 'nvme:io:decode' }]), 'InvalidArgument');
    expectCode(() => taps.declare('x', [{ name: 'bad name' }]), 'InvalidArgument');
  });

  it('a tap attached before the device declares joins when it does; several taps run in attach order', async () => {
    const taps = new TapRegistry();
    const order: string[] = [];
    taps.attach('nvme:io:decode', function first() { order.push('first'); });
    taps.attach('nvme:io:*', function second(ctx) { order.push(`second@${ctx.stage}`); });
    const dev = new MockNvme(taps);
    expect(taps.stages().find((s) => s.name === 'nvme:io:decode')!.taps).toEqual(['first', 'second']);
    await dev.submit(1, writeCmd(1, 0, 1), block(1));
    expect(order).toEqual(['first', 'second@nvme:io:decode', 'second@nvme:io:writeback']);
  });

  it('detach takes effect at once, also between the stages of one request; with nothing attached a stage is null', async () => {
    const taps = new TapRegistry();
    const dev = new MockNvme(taps);
    const seen: string[] = [];
    const h = taps.attach('nvme:io:*', (ctx) => {
      seen.push(ctx.stage);
      if (ctx.stage === 'nvme:io:decode') ctx.delay(Promise.resolve().then(() => h.detach())); // detached mid-request
    });
    await dev.submit(1, writeCmd(1, 0, 1), block(2));
    expect(seen).toEqual(['nvme:io:decode']); // never sees this request's writeback
    expect(h.detached).toBe(true);
    expect(taps.stages().every((s) => s.taps.length === 0)).toBe(true);
    // A tap detached by an earlier tap of the same event is not called for it.
    const late: string[] = [];
    let other: { detach(): void } | null = null;
    taps.attach('nvme:io:decode', () => void other!.detach());
    other = taps.attach('nvme:io:decode', () => {
      late.push('called');
    });
    await dev.submit(1, writeCmd(2, 0, 1), block(3));
    expect(late).toEqual([]);
  });

  it('the contract: complete, drop, delay, corrupt and note; counters', async () => {
    const taps = new TapRegistry();
    const dev = new MockNvme(taps);
    await dev.submit(1, writeCmd(1, 4, 1), block(0x11));
    const h1 = taps.attach('nvme:io:decode', (ctx) => ctx.complete(ctx.statuses.readOnly), { name: 'ro' });
    const r1 = await dev.submit(1, writeCmd(2, 4, 1), block(0x22));
    expect([r1.status, dev.disk[4 * BLOCK]]).toEqual([NVME_STATUS.readOnly, 0x11]); // answered by the tap, never written
    h1.detach();
    const h2 = taps.attach('nvme:io:writeback', (ctx) => {
      if (ctx.io.kind === 'read') {
        ctx.corrupt(3, 0xff);
        ctx.note('flipped byte 3');
      }
    });
    const r2 = await dev.submit(1, readCmd(3, 4, 1));
    expect([r2.data![2], r2.data![3]]).toEqual([0x11, 0x11 ^ 0xff]);
    h2.detach();
    const h3 = taps.attach('nvme:io:decode', (ctx) => ctx.delay(30));
    const t0 = performance.now();
    await dev.submit(1, readCmd(4, 0, 1));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
    h3.detach();
    taps.attach('nvme:io:decode', (ctx) => ctx.drop());
    expect((await dev.submit(1, readCmd(5, 0, 1))).end).toBe('dropped');
    expect(taps.counters).toMatchObject({ completed: 1, dropped: 1, delayed: 1, tapErrors: 0 });
  });

  it('[H65] a tap that throws fails only its own request, with TapFailed naming it, and is counted; the device keeps serving', async () => {
    const taps = new TapRegistry();
    const dev = new MockNvme(taps);
    let calls = 0;
    taps.attach('nvme:io:decode', (ctx: TapContext) => {
      if (++calls === 2) throw new Error(`boom on ${ctx.request}`);
    }, { name: 'flaky' });
    const results = [];
    for (let cid = 1; cid <= 3; cid++) results.push(await dev.submit(1, writeCmd(cid, cid, 1), block(cid)));
    expect(results.map((r) => r.end)).toEqual(['completed', 'tap-error', 'completed']);
    expect(results[1]!.error).toMatchObject({ code: 'TapFailed', details: { tap: 'flaky', stage: 'nvme:io:decode', device: 'nvme0' } });
    expect(String((results[1]!.error as Error).message)).toMatch(/tap 'flaky' at nvme0\/nvme:io:decode threw: boom on 1:2/);
    expect(taps.counters.tapErrors).toBe(1);
    expect([dev.disk[1 * BLOCK], dev.disk[2 * BLOCK], dev.disk[3 * BLOCK]]).toEqual([1, 0, 3]);
  });

  it('bad actions are typed errors inside the tap, which fail its request', async () => {
    const taps = new TapRegistry();
    const dev = new MockNvme(taps);
    taps.attach('nvme:io:decode', (ctx) => ctx.corrupt(10 * BLOCK, 1));
    const r = await dev.submit(1, writeCmd(1, 0, 1), block(1));
    expect(r.end).toBe('tap-error');
    expect(String((r.error as Error).message)).toMatch(/fewer bytes/);
  });
});
