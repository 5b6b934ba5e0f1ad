// The domain image across threads: a device worker attaches by pointer to a strict domain in a
// shared memory and DMAs while this (guest) thread maps, unmaps and resets it. [H68] after the
// guest publishes a change with Atomics, the device's next DMA obeys it; remapping neighbours in
// one table word never transiently revokes another page; the shared-memory build reads the
// generation and the permission table only with atomic loads.
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { Iommu, loadCoreSync } from '../../src/index';
import { ENGINES } from '../util/engines';

const P = 4096;
const BASE = 0x1_0000;
const WAIT_MS = 5000;

interface Done { type: 'done'; ok: boolean; error?: string; rounds: number; mismatches: unknown[]; dmas: number; faults: number }

function run(workerData: Record<string, unknown>): { worker: Worker; done: Promise<Done> } {
  const worker = new Worker(new URL('./workers/dma-device.mjs', import.meta.url), { workerData });
  const done = new Promise<Done>((resolve, reject) => {
    const timer = setTimeout(() => {
      void worker.terminate();
      reject(new Error('device worker did not finish in time'));
    }, 30_000);
    worker.on('message', (m: Done) => {
      clearTimeout(timer);
      resolve(m);
    });
    worker.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  return { worker, done };
}

/** Same function as the worker's: round r's page and bits (page -1: reset). */
function action(r: number): { page: number; bits: number } {
  if (r % 50 === 0) return { page: -1, bits: 0 };
  return { page: r % 8, bits: [3, 0, 1][r % 3]! };
}

/** Blocks this thread until mb[i] leaves `from` (Node allows Atomics.wait on its main thread). */
function waitChange(mb: Int32Array, i: number, from: number, what: string): void {
  const t0 = Date.now();
  while (Atomics.load(mb, i) === from) {
    if (Date.now() - t0 > WAIT_MS) throw new Error(`timed out waiting for ${what}`);
    Atomics.wait(mb, i, from, 50);
  }
}

describe.each(ENGINES)('IOMMU domain across threads (device engine %s)', (engine) => {
  it('[H68] each published map, unmap or reset is obeyed by the device thread\'s next DMA', async () => {
    const core = loadCoreSync({ shared: true, guestBytes: 1 << 20 });
    const d = new Iommu(core).domain('passthrough');
    const mb = new Int32Array(new SharedArrayBuffer(16));
    const rounds = 600;
    const { done } = run({ memory: core.memory, engine, domPtr: d.ptr, mailbox: mb.buffer, phase: 'lockstep', rounds, base: BASE, waitMs: WAIT_MS });
    for (let r = 1; r <= rounds; r++) {
      const a = action(r);
      if (a.page < 0) d.reset();
      else if (a.bits === 0) d.unmap(BASE + a.page * P, P);
      else d.map(BASE + a.page * P, P, { read: (a.bits & 1) !== 0, write: (a.bits & 2) !== 0 });
      Atomics.store(mb, 0, r);
      Atomics.notify(mb, 0);
      waitChange(mb, 1, r - 1, `round ${r}`);
    }
    const res = await done;
    expect(res.error).toBeUndefined();
    expect(res.mismatches).toEqual([]);
    expect(res.rounds).toBe(rounds);
  });

  it('remapping pages that share a table word never revokes a page the device is using', async () => {
    const core = loadCoreSync({ shared: true, guestBytes: 1 << 20 });
    const d = new Iommu(core).domain('hammer');
    const hammerPage = 5;
    d.map(BASE + hammerPage * P, P);
    const mb = new Int32Array(new SharedArrayBuffer(16));
    const { done } = run({ memory: core.memory, engine, domPtr: d.ptr, mailbox: mb.buffer, phase: 'hammer', base: BASE, hammerPage, waitMs: WAIT_MS });
    waitChange(mb, 3, 0, 'the device to start');
    // At least 20000 updates, and long enough that the device DMAs throughout.
    const t0 = Date.now();
    for (let i = 0; i < 20_000 || Date.now() - t0 < 200; i++) {
      const page = i % 16;
      if (page === hammerPage) continue;
      // Runs that start and end inside the hammered page's word, on both sides of it.
      const len = (1 + (i % 3)) * P;
      const at = Math.min(BASE + page * P, BASE + 16 * P - len);
      if (at <= BASE + hammerPage * P && at + len > BASE + hammerPage * P) continue;
      if (i & 1) d.map(at, len, { read: true });
      else d.unmap(at, len);
    }
    Atomics.store(mb, 2, 1);
    const res = await done;
    expect(res.error).toBeUndefined();
    expect(res.dmas).toBeGreaterThan(1000);
    expect(res.mismatches).toEqual([]);
    expect(res.faults).toBe(0);
  });
});

describe('shared-memory build', () => {
  it('[H68] reads the generation and the permission table only with atomic loads', () => {
    const text = readFileSync(new URL('../../build/core-threads.wat', import.meta.url), 'utf8');
    const start = text.indexOf('(func $assembly/dma/check ');
    expect(start).toBeGreaterThanOrEqual(0);
    const body = text.slice(start, text.indexOf('\n (func ', start + 1));
    // DOM_GENERATION is at offset 8 of the image; the table words are loaded at computed addresses.
    expect(body).toMatch(/i32\.atomic\.load offset=8\n/);
    expect(body.match(/i32\.atomic\.load\n/g)?.length ?? 0).toBeGreaterThanOrEqual(2);
  });
});
