// Main-thread side of the cross-thread tests: one shared core, rings and doorbells made here,
// workers (plain .mjs over dist/) attached to them, and every wait bounded.
import { Worker } from 'node:worker_threads';
import { expect } from 'vitest';
import { Doorbell, loadCoreSync, ReadBatch, VmbusRing, type Core, type EngineName } from '../../src/index';
import { fillRandom, tiedHi, type WorkerErrorInfo } from './workers/common.mjs';

/** Longest any single wait for the peer may take before it counts as a lost wakeup. */
export const WAIT_MS = 5000;

export interface Done {
  type: 'done';
  ok: boolean;
  error?: WorkerErrorInfo;
  [stat: string]: unknown;
}

interface Inbox {
  messages: { type?: string }[];
  exitCode: number | null;
  error: Error | null;
  listeners: Set<() => void>;
}
const inboxes = new WeakMap<Worker, Inbox>();

/**
 * Starts a worker fixture. Its messages are recorded from the start, so a worker that finishes
 * before the test asks for its result is not missed.
 */
export function spawn(name: string, workerData: unknown): Worker {
  const w = new Worker(new URL(`./workers/${name}.mjs`, import.meta.url), { workerData });
  const box: Inbox = { messages: [], exitCode: null, error: null, listeners: new Set() };
  const poke = () => box.listeners.forEach((f) => f());
  w.on('message', (m) => {
    box.messages.push(m);
    poke();
  });
  w.on('error', (e) => {
    box.error = e;
    poke();
  });
  w.on('exit', (code) => {
    box.exitCode = code;
    poke();
  });
  inboxes.set(w, box);
  return w;
}

/**
 * The first message of `type` from `w` (made by spawn). Rejects when the worker fails, exits
 * without sending it, or stays silent for `timeoutMs` (it is then terminated, so a hang fails
 * the test instead of blocking it).
 */
export function message<T = Done>(w: Worker, type: string, timeoutMs: number): Promise<T> {
  const box = inboxes.get(w);
  if (!box) throw new Error('message() needs a worker made by spawn()');
  return new Promise<T>((resolve, reject) => {
    const check = () => {
      const m = box.messages.find((x) => x?.type === type);
      if (m) {
        cleanup();
        resolve(m as T);
      } else if (box.error) {
        cleanup();
        reject(box.error);
      } else if (box.exitCode !== null) {
        cleanup();
        reject(new Error(`worker exited with code ${box.exitCode} before sending '${type}'`));
      }
    };
    const timer = setTimeout(() => {
      cleanup();
      void w.terminate();
      reject(new Error(`worker sent no '${type}' message within ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      box.listeners.delete(check);
    };
    box.listeners.add(check);
    check();
  });
}

/** Runs workers to their 'done' message (all of them, even when one fails) and terminates them. */
export async function finish(workers: Worker[], timeoutMs: number): Promise<Done[]> {
  const settled = await Promise.allSettled(workers.map((w) => message<Done>(w, 'done', timeoutMs)));
  await Promise.all(workers.map((w) => w.terminate()));
  return settled.map((s) => {
    if (s.status === 'rejected') throw s.reason;
    return s.value;
  });
}

/** Throws with the worker's own error report when it did not finish cleanly. */
export function assertOk(...results: Done[]): void {
  for (const r of results) {
    if (!r.ok) {
      const { error, ...stats } = r;
      throw new Error(`worker failed: ${error?.name}: ${error?.message}\n${error?.stack ?? ''}\nstats: ${JSON.stringify(stats)}`);
    }
  }
}

export interface RingSetup {
  core: Core;
  ring: VmbusRing;
  /** Rung by the guest writer, slept on by the host reader. */
  hostBell: Doorbell;
  /** Rung by the host reader (flow control), slept on by the guest writer. */
  guestBell: Doorbell;
  poolPtr: number;
  poolBytes: number;
  seed: number;
  /** A phase of the reader/writer workers over this ring. */
  phase(count: number): { ringPtr: number; ringBytes: number; hostBell: number; guestBell: number; count: number };
  /** workerData fields common to writer and reader. */
  common(engine: EngineName, extra?: Record<string, unknown>): Record<string, unknown>;
}

/**
 * A shared core with one ring, two doorbells and a pool of seeded random payload bytes (never
 * the canary byte) that the writer's packets are cut from.
 */
export function setupRing(opts: { dataSize: number; seed?: number; maxLen?: number; initialBytes?: number }): RingSetup {
  const core = loadCoreSync({ shared: true, initialBytes: opts.initialBytes ?? 32 << 20 });
  const ring = VmbusRing.create(core, { dataSize: opts.dataSize });
  const hostBell = Doorbell.create(core);
  const guestBell = Doorbell.create(core);
  const poolBytes = 64 * 1024;
  const poolPtr = core.alloc(poolBytes, 8);
  const seed = opts.seed ?? 0x5eed1;
  fillRandom(core.u8, poolPtr, poolBytes, seed);
  const maxLen = opts.maxLen ?? 300;
  return {
    core, ring, hostBell, guestBell, poolPtr, poolBytes, seed,
    phase: (count) => ({ ringPtr: ring.ptr, ringBytes: ring.totalBytes, hostBell: hostBell.ptr, guestBell: guestBell.ptr, count }),
    common: (engine, extra = {}) => ({
      memory: core.memory, engine, seed, maxLen, poolPtr, poolBytes, waitMs: WAIT_MS, tidMode: 'checksum', ...extra,
    }),
  };
}

/** Runs a writer worker and a reader worker over `s.ring` for `count` packets; returns [writer, reader]. */
export async function runPair(
  s: RingSetup,
  o: { engine: EngineName; count: number; writerMode: 'batch' | 'packet'; readerMode: 'batch' | 'packet' | 'drain';
       tidMode?: 'checksum' | 'tied'; batchSize?: number; readBytes?: number; timeoutMs?: number;
       writer?: Record<string, unknown>; reader?: Record<string, unknown> },
): Promise<[Done, Done]> {
  const tid = { tidMode: o.tidMode ?? 'checksum' };
  const reader = spawn('reader', {
    ...s.common(o.engine, tid), mode: o.readerMode, readBytes: o.readBytes, phases: [s.phase(o.count)], ...o.reader,
  });
  const writer = spawn('writer', {
    ...s.common(o.engine, tid), mode: o.writerMode, batchSize: o.batchSize, phases: [s.phase(o.count)], ...o.writer,
  });
  const [w, r] = await finish([writer, reader], o.timeoutMs ?? 40_000);
  return [w, r];
}

/** Asserts the reader got exactly `count` packets, all intact and in order, and nobody timed out. */
export function expectClean(w: Done, r: Done, count: number): void {
  assertOk(w, r);
  const summary = {
    sent: w.sent, received: r.received, lost: r.lost, dup: r.dup, corrupt: r.corrupt, torn: r.torn,
    writerTimeouts: w.timeouts, readerTimeouts: r.timeouts, readIndexViolations: r.readIndexViolations,
    writeIndexViolations: w.writeIndexViolations, maskViolations: r.maskViolations, badIndices: r.badIndices,
    anomalies: r.anomalies,
  };
  const want = {
    sent: count, received: count, lost: 0, dup: 0, corrupt: 0, torn: 0, writerTimeouts: 0, readerTimeouts: 0,
    readIndexViolations: 0, writeIndexViolations: 0, maskViolations: 0, badIndices: 0, anomalies: [],
  };
  if (JSON.stringify(summary) !== JSON.stringify(want)) {
    throw new Error(`stream not clean:\n got ${JSON.stringify(summary)}\nwant ${JSON.stringify(want)}`);
  }
}

export const sleep = (ms: number) => new Promise<void>((res) => setTimeout(res, ms));

/**
 * Starts the flipper worker on the 8-aligned word at `addr` and waits until it runs. Returns
 * `stop()`, which ends it and resolves to its flip count.
 */
export async function startFlipper(memory: WebAssembly.Memory, addr: number, values: bigint[]): Promise<{ stop: () => Promise<number> }> {
  const control = new SharedArrayBuffer(8);
  const ctl = new Int32Array(control);
  const w = spawn('flipper', { memory, addr, values, control });
  const done = finish([w], 60_000);
  for (const stop = performance.now() + WAIT_MS; Atomics.load(ctl, 1) === 0;) {
    if (performance.now() > stop) throw new Error('the flipper worker did not start');
    await sleep(1);
  }
  return {
    stop: async () => {
      Atomics.store(ctl, 0, 1);
      const [r] = await done;
      return r.flips as number;
    },
  };
}

/** Tied 64-bit transaction ids (hi = lo ^ 0xdeadbeef) whose halves all differ from each other's. */
export function tiedTids(count: number): bigint[] {
  const out: bigint[] = [];
  for (let i = 0; i < count; i++) {
    const lo = (Math.imul(0x01010101, i + 1) ^ (i << 28)) >>> 0;
    out.push((BigInt(tiedHi(lo)) << 32n) | BigInt(lo));
  }
  return out;
}

/**
 * Checklist 67 with a hostile writer: one published packet whose transaction id a flipper worker
 * rewrites in place between tied values, while this thread reads it over and over for `ms`
 * through every read form (peekPacket; readPacket, readInto and readBatch, rewinding the read
 * index after each, which the consumer may do). Counts the reads whose id is torn.
 */
export async function readFlippingTid(engine: EngineName, ms: number) {
  const s = setupRing({ dataSize: 4096 });
  const core = loadCoreSync({ memory: s.core.memory, engine });
  const rx = VmbusRing.attach(core, s.ring.ptr, s.ring.totalBytes);
  expect(s.ring.write(new Uint8Array(40), 6, 0, 1, tiedHi(1))).toBe(3);
  const rSlot = (s.ring.ptr >> 2) + 1;
  const flipper = await startFlipper(s.core.memory, s.ring.ptr + 4096 + 8, tiedTids(16));
  const torn = { peekPacket: 0, readPacket: 0, readInto: 0, readBatch: 0 };
  const batch = new ReadBatch(core, { bytes: 4096 });
  const dest = new Uint8Array(64);
  const isTorn = (lo: number, hi: number) => (hi !== tiedHi(lo) ? 1 : 0);
  const split = (t: bigint) => [Number(t & 0xffffffffn), Number(t >> 32n)] as const;
  let reads = 0;
  let flips = 0;
  try {
    for (const stop = performance.now() + ms; performance.now() < stop;) {
      for (let i = 0; i < 256; i++, reads += 4) {
        torn.peekPacket += isTorn(...split(rx.peekPacket()!.transactionId));
        torn.readPacket += isTorn(...split(rx.readPacket()!.transactionId));
        Atomics.store(core.u32, rSlot, 0);
        rx.readInto(dest);
        torn.readInto += isTorn(rx.lastTransactionIdLo, rx.lastTransactionIdHi);
        Atomics.store(core.u32, rSlot, 0);
        rx.readBatch(batch);
        batch.next();
        torn.readBatch += isTorn(batch.transactionIdLo, batch.transactionIdHi);
        Atomics.store(core.u32, rSlot, 0);
      }
    }
  } finally {
    flips = await flipper.stop();
  }
  return { reads, torn, flips };
}
