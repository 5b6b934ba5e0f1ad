// Suite "channel": a VMBus channel (src/vmbus/) between a guest end and a host end — in-band
// 64-byte request/completion round trips in one thread (per request, and 64 requests per poll)
// and across two threads, a GPA-direct request round trip, and GPA-direct packet build + parse —
// on the wasm and reference engines. Targets: >= 5 M round trips/s in one thread, >= 2 M/s
// across two threads.

import { isMainThread, workerData } from 'node:worker_threads';
import {
  loadCoreSync, MessageTransport, GuestBus, HostBus, bumpPageAllocator, encodeGpaRange, encodeGpaDirectPacket, parsePacket, IommuDomain,
} from '../../dist/index.mjs';
import { makeCase } from '../lib/timing.mjs';
import { timeGroupsIsolated } from '../lib/isolate.mjs';
import { runWorkers } from '../lib/threads.mjs';

const SUITE = 'channel';
const ONE_BY_ONE = 'round trip, one thread, per request';
const BATCHED = 'round trip, one thread, 64 per poll';
const GPA_RT = 'GPA-direct round trip (32 pages), one thread';
const GPA_CODEC = 'GPA-direct build + parse (32 pages)';
const CROSS = 'round trip, two threads';
const GROUPS = ['wasm', 'reference'];
// How long each side spins before it sleeps on its doorbell in the two-thread case: ms of
// read-only checks for the guest, empty polls for the host (HostBus.serve's spinPolls). Both
// must outlast the peer's turnaround of one window of requests.
const GUEST_SPIN_MS = Number(process.env.CHANNEL_GUEST_SPIN_MS ?? 5);
const HOST_SPIN = Number(process.env.CHANNEL_HOST_SPIN ?? 100_000);
const PAGES = Array.from({ length: 32 }, (_, i) => 0x10000 + i);

const check = (ok, what) => {
  if (!ok) throw new Error(`channel bench: ${what}`);
};

/** A guest and a host bus in this thread, one storage channel open, its device answering 64 bytes. */
async function channelPair(engine) {
  const core = loadCoreSync({ engine, guestBytes: 8 << 20, initialBytes: 32 << 20 });
  const t = MessageTransport.create(core);
  const dma = IommuDomain.create(core, 'vmbus-host', { mode: 'identity' });
  const host = new HostBus(t, { dma });
  host.offer({ classId: 'storage' }); // the cases set the device's handler
  const guest = new GuestBus(t, { allocPages: bumpPageAllocator(core), pump: () => host.poll() });
  await guest.connect();
  const ch = await guest.open(guest.offers.all()[0], { txPages: 64, rxPages: 64 });
  const hostCh = host.channels.get(ch.relid);
  return { core, ch, hostCh };
}

// Built once per timing isolate (cases() must be synchronous; the open is async).
const pair = !isMainThread && workerData?.suiteUrl === import.meta.url && GROUPS.includes(workerData.group) ? await channelPair(workerData.group) : null;

/** Runs the round-trip paths long enough for the JIT to settle before any case is timed (quick runs time only 250 ms). */
function warmUp() {
  const batched = roundTrips(pair, 64);
  const single = roundTrips(pair, 1);
  for (const until = performance.now() + 300; performance.now() < until;) {
    batched();
    single();
  }
}

/** k requests, one host poll, one guest poll: k round trips. Handlers are set per call: cases share the pair. */
function roundTrips({ ch, hostCh }, k) {
  const payload = new Uint8Array(64);
  const reply = new Uint8Array(64);
  let done = 0;
  const onDone = () => done++;
  const echo = (p) => hostCh.complete(p, reply);
  return () => {
    ch.onCompletion = onDone;
    hostCh.onPacket = echo;
    done = 0;
    for (let i = 0; i < k; i++) ch.request(payload);
    hostCh.poll();
    ch.poll();
    check(done === k, `${done} of ${k} completions`);
  };
}

function gpaRoundTrip({ core, ch, hostCh }) {
  const rangeBytes = encodeGpaRange(core, { byteCount: 32 * 4096, byteOffset: 0, pfns: PAGES });
  const gpa = { rangeBytes, rangeCount: 1 };
  const message = new Uint8Array(64);
  const reply = new Uint8Array(64);
  let done = 0;
  const onDone = () => done++;
  const serve = (p) => (check(p.gpa.segments.length === 1, 'GPA ranges'), hostCh.complete(p, reply));
  return () => {
    ch.onCompletion = onDone;
    hostCh.onPacket = serve;
    done = 0;
    ch.requestGpa(gpa, message);
    hostCh.poll();
    ch.poll();
    check(done === 1, 'GPA completion');
  };
}

function gpaCodec(core) {
  const message = new Uint8Array(64);
  const range = { byteCount: 32 * 4096, byteOffset: 0, pfns: PAGES };
  return () => {
    const img = encodeGpaDirectPacket({ gpa: { rangeBytes: encodeGpaRange(core, range), rangeCount: 1 }, message, transactionId: 1 });
    const p = parsePacket(core, img);
    check(p.gpa.ranges[0].pfns.length === 32, 'GPA parse');
  };
}

function cases(group) {
  if (!pair) throw new Error(`channel bench: no channel for group ${group}`);
  warmUp();
  const add = (name, ops, fn) => ({ suite: SUITE, name, engine: group, payloadBytes: 64, ops, fn });
  return [
    add(ONE_BY_ONE, 1, roundTrips(pair, 1)),
    add(BATCHED, 64, roundTrips(pair, 64)),
    add(GPA_RT, 1, gpaRoundTrip(pair)),
    add(GPA_CODEC, 1, gpaCodec(pair.core)),
  ];
}

/**
 * One guest worker and one host worker over a fresh shared memory; returns round trips/s. The
 * median of several runs is reported: on a small machine one descheduled worker turns spinning
 * into sleeping and a run can come out several times slower.
 */
async function crossThreadOnce({ count, log }) {
  const core = loadCoreSync({ shared: true, guestBytes: 8 << 20, initialBytes: 48 << 20 });
  const t = MessageTransport.create(core);
  const control = new SharedArrayBuffer(8);
  const common = { memory: core.memory, transport: t.ptr, control };
  const [g] = await runWorkers([
    { url: new URL('../workers/channel-guest.mjs', import.meta.url), data: { ...common, count, warmup: 200_000, window: 256, pages: 64, spinMs: GUEST_SPIN_MS } },
    { url: new URL('../workers/channel-host.mjs', import.meta.url), data: { ...common, spinPolls: HOST_SPIN } },
  ], { timeoutMs: 60_000 });
  const rate = (g.timed / g.ms) * 1000;
  log(`  ${CROSS}: ${(rate / 1e6).toFixed(2)} M round trips/s (${g.timed} in ${g.ms.toFixed(0)} ms; ${g.waits} guest sleeps, ${g.signals} guest signals)`);
  return rate;
}

async function crossThread({ quick, log }) {
  const runs = quick ? 5 : 7;
  const rates = [];
  for (let i = 0; i < runs; i++) rates.push(await crossThreadOnce({ count: quick ? 300_000 : 2_000_000, log }));
  rates.sort((a, b) => a - b);
  return makeCase({ suite: SUITE, name: CROSS, engine: 'wasm', payloadBytes: 64 }, rates[runs >> 1]);
}

const key = (name, engine = 'wasm') => ({ suite: SUITE, name, engine, payloadBytes: 64 });

export default {
  name: SUITE,
  keyFigures: [
    { label: 'channel 64 B round trips/s, one thread, 64 per poll (target 5 M)', of: key(BATCHED) },
    { label: 'channel 64 B round trips/s, one thread, per request', of: key(ONE_BY_ONE) },
    { label: 'channel 64 B round trips/s, two threads (target 2 M)', of: key(CROSS) },
    { label: 'GPA-direct build + parse, wasm / reference', of: key(GPA_CODEC), over: key(GPA_CODEC, 'reference') },
  ],
  cases,
  async run(ctx) {
    const rows = await timeGroupsIsolated(import.meta.url, GROUPS, ctx);
    try {
      rows.push(await crossThread(ctx));
    } catch (e) {
      ctx.fail(`${SUITE} / ${CROSS}: ${e.message}`);
    }
    return rows;
  },
};
