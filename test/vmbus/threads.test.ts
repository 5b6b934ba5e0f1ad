// A channel across two worker threads over one shared memory: the control plane (contact,
// offers, GPADL, open) and 10^6 request/completion pairs, with both ends sleeping only on their
// doorbells, so a lost signal shows as a timeout. Every doorbell ring is accounted for.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { loadCoreSync, MessageTransport } from '../../src/index';

interface Done { type: 'done'; ok: boolean; error?: { message: string; stack?: string }; [k: string]: unknown }

function run(name: string, data: unknown): { worker: Worker; done: Promise<Done> } {
  const worker = new Worker(new URL(`./workers/${name}.mjs`, import.meta.url), { workerData: data });
  const done = new Promise<Done>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`${name} worker exited with ${code} before reporting`)));
  });
  return { worker, done };
}

async function twoThreads(o: { count: number; window: number; pages: number; mode: 'doorbell' | 'work' }) {
  const core = loadCoreSync({ shared: true, guestBytes: 8 << 20, initialBytes: 48 << 20 });
  const transport = MessageTransport.create(core);
  const control = new SharedArrayBuffer(8);
  const common = { memory: core.memory, transport: transport.ptr, control, waitMs: 10_000 };
  const host = run('host', common);
  const guest = run('guest', { ...common, ...o });
  const timer = setTimeout(() => {
    void host.worker.terminate();
    void guest.worker.terminate();
  }, 120_000);
  try {
    const [g, h] = await Promise.all([guest.done, host.done]);
    for (const r of [g, h]) if (!r.ok) throw new Error(`worker failed: ${r.error?.message}\n${r.error?.stack}\n${JSON.stringify(r)}`);
    return { g, h, hostBell: transport.hostBell.value, guestBell: transport.guestBell.value };
  } finally {
    clearTimeout(timer);
    await Promise.all([host.worker.terminate(), guest.worker.terminate()]);
  }
}

type Stats = Record<string, number>;

describe('a channel across two threads', () => {
  it('10^6 request/completion pairs: none lost, none duplicated, none corrupt; both ends woken only by their doorbells', async () => {
    const count = 1_000_000;
    const { g, h, hostBell, guestBell } = await twoThreads({ count, window: 256, pages: 32, mode: 'doorbell' });
    expect({ sent: g.sent, completed: g.completed, dup: g.dup, corrupt: g.corrupt, errors: g.errors }).toEqual({ sent: count, completed: count, dup: 0, corrupt: 0, errors: 0 });
    expect(h.requests).toBe(count);
    expect(h.inFlight).toBe(0);
    const gc = g.channel as Stats;
    const hc = h.channel as Stats;
    expect((g.table as Stats)).toMatchObject({ completed: count, duplicate: 0, unknown: 0, late: 0 });
    expect(hc.duplicateRequests).toBe(0);
    // Every ring of each doorbell is accounted for: the peer's channel signals (each one a ring
    // result that said signal) and its control messages; nothing else rang it.
    const ge = g.end as Stats;
    const he = h.end as Stats;
    expect(ge.signals).toBe(gc.writeSignals! + gc.readSignals!);
    expect(he.signals).toBe(hc.writeSignals! + hc.readSignals!);
    expect(hostBell).toBe(ge.bellRings! + 1); // + the guest's final "stop" ring
    expect(guestBell).toBe(he.bellRings!);
    expect(ge.bellRings! - ge.signals! - ge.posted!).toBeLessThanOrEqual(ge.received!); // a ring per message, or per slot freed
    // Signals stay rare: only empty -> non-empty transitions and unblocking reads.
    expect(gc.writeSignals! + hc.writeSignals!).toBeLessThan(count);
    console.log(`two threads: ${(count / (g.ms as number) / 1000).toFixed(2)} M round trips/s; guest signals ${gc.writeSignals}+${gc.readSignals}, host ${hc.writeSignals}+${hc.readSignals}, guest waits ${g.waits}`);
  }, 150_000);

  it('small rings (flow control on both sides) and waitForWork: every request completes exactly once', async () => {
    const count = 100_000;
    const { g, h } = await twoThreads({ count, window: 200, pages: 2, mode: 'work' });
    expect({ completed: g.completed, dup: g.dup, corrupt: g.corrupt, errors: g.errors }).toEqual({ completed: count, dup: 0, corrupt: 0, errors: 0 });
    expect(h.requests).toBe(count);
    expect((g.channel as Stats).outFull + (h.channel as Stats).outFull).toBeGreaterThan(0); // the rings did fill up
  }, 150_000);
});
