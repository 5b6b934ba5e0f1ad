// Suite "ring": one VMBus ring endpoint pair moving packets, per packet and in batches, on the
// wasm and reference engines, next to ringbuf.js (the SPSC peer) and the raw copy limit, plus
// a two-thread producer/consumer run over one shared memory.

import { RingBuffer } from 'ringbuf.js';
import { loadCoreSync, VmbusRing, WriteBatch, ReadBatch } from '../../dist/index.mjs';
import { timeCases, makeCase } from '../lib/timing.mjs';
import { runWorkers } from '../lib/threads.mjs';

const SUITE = 'ring';
const PAYLOADS = [64, 1024, 4096, 64 * 1024];
const DATA_SIZE = 4 << 20; // ring data area for the single-thread cases
const PKT_OVERHEAD = 16; // packet header bytes a ReadBatch keeps per packet (payloads are 8-aligned here)
const TYPE_INBAND = 6;

const PER_PACKET = 'round trip, per packet';
const PER_PACKET_OBJECTS = 'round trip, per packet (object API)';
const BATCH = 'round trip, batch';
const CROSS_THREAD = 'cross-thread, batch';

/** Packets per batch: as many as a WriteBatch holds by default, fewer for 64 KiB so a batch fits the ring. */
const batchSizeFor = (n) => (n >= 64 * 1024 ? 32 : 256);

const check = (ok, what) => {
  if (!ok) throw new Error(`ring bench: ${what}`);
};

// ---- case bodies: each returns a function doing `ops` operations ----

/** Allocation-free forms: JS-owned arrays in and out. */
function perPacket(ring, n) {
  const payload = new Uint8Array(n).fill(0xa5);
  const dest = new Uint8Array(n);
  return () => check(ring.write(payload) !== 0 && ring.readInto(dest) === n, 'per-packet round trip lost a packet');
}

/** The object API: a descriptor object in, a packet object with a copied payload out. */
function perPacketObjects(ring, n) {
  const payload = new Uint8Array(n).fill(0xa5);
  return () => check(ring.writePacket({ type: TYPE_INBAND, payload }).written && ring.readPacket()?.payload.length === n,
    'object-API round trip lost a packet');
}

/** K packets referencing one payload region: one writeBatch, one readBatch. */
function batchRoundTrip(core, ring, n, k) {
  const src = core.alloc(n, 8);
  core.u8.fill(0xa5, src, src + n);
  const writes = new WriteBatch(core, { capacity: k, arenaBytes: 0 });
  for (let i = 0; i < k; i++) writes.addRef(src, n);
  const reads = new ReadBatch(core, { bytes: k * (n + PKT_OVERHEAD) });
  return () => {
    writes.cursor = 0;
    check(ring.writeBatch(writes) === k && ring.readBatch(reads) === k, 'batch round trip moved fewer packets than queued');
  };
}

function ringbufRoundTrip(n) {
  const rb = new RingBuffer(RingBuffer.getStorageForCapacity(DATA_SIZE, Uint8Array), Uint8Array);
  const payload = new Uint8Array(n).fill(0xa5);
  const dest = new Uint8Array(n);
  return () => check(rb.push(payload) === n && rb.pop(dest) === n, 'ringbuf.js round trip lost bytes');
}

/** A round trip copies the payload twice (into the ring, out of it): 2K memory.copy of n bytes per K ops. */
function copyLimit(core, n, k) {
  const src = core.alloc(n, 8);
  const dst = core.alloc(n, 8);
  const fn = core.fn.copyLimit;
  return () => check(fn(dst, src, n, 2 * k) === 0, 'copyLimit failed');
}

function rig(engine) {
  const core = loadCoreSync({ engine, initialBytes: 16 << 20 });
  return { core, ring: VmbusRing.create(core, { dataSize: DATA_SIZE }) };
}

function singleThreadCases() {
  const wasm = rig('wasm');
  const reference = rig('reference');
  const cases = [];
  const add = (name, engine, n, ops, fn) => cases.push({ suite: SUITE, name, engine, payloadBytes: n, ops, fn });
  for (const n of PAYLOADS) {
    const k = batchSizeFor(n);
    add(PER_PACKET, 'wasm', n, 1, perPacket(wasm.ring, n));
    add(PER_PACKET, 'reference', n, 1, perPacket(reference.ring, n));
    add(PER_PACKET, 'ringbuf.js', n, 1, ringbufRoundTrip(n));
    add(PER_PACKET_OBJECTS, 'wasm', n, 1, perPacketObjects(wasm.ring, n));
    add(BATCH, 'wasm', n, k, batchRoundTrip(wasm.core, wasm.ring, n, k));
    add(BATCH, 'reference', n, k, batchRoundTrip(reference.core, reference.ring, n, k));
    add(BATCH, 'copy-limit', n, k, copyLimit(wasm.core, n, k));
  }
  return cases;
}

/**
 * The copy limit is measured once per size; it bounds both round-trip forms, so it is listed
 * under both names (ratios are taken between rows of the same name).
 */
function withCopyLimitPerPacket(results) {
  const out = [];
  for (const c of results) {
    if (c.engine === 'copy-limit') {
      const at = out.findLastIndex((o) => o.name === PER_PACKET && o.payloadBytes === c.payloadBytes);
      out.splice(at + 1, 0, { ...c, name: PER_PACKET });
    }
    out.push(c);
  }
  return out;
}

// ---- two threads over one shared memory ----

async function crossThread({ quick, log }) {
  const packets = quick ? 2e6 : 1e7;
  const payloadBytes = 64;
  const core = loadCoreSync({ shared: true, initialBytes: 16 << 20 }); // no growth once workers run
  const ring = VmbusRing.create(core, { dataSize: 1 << 20 });
  const common = { memory: core.memory, ringPtr: ring.ptr, ringBytes: ring.totalBytes, packets, payloadBytes };
  const [writer, reader] = await runWorkers([
    { url: new URL('../workers/ring-writer.mjs', import.meta.url), data: { ...common, batchSize: 256 } },
    { url: new URL('../workers/ring-reader.mjs', import.meta.url), data: { ...common, readBytes: 64 * 1024 } },
  ], { timeoutMs: quick ? 30_000 : 120_000 });
  if (reader.error) throw new Error(`cross-thread: ${reader.error}`);
  if (reader.received !== packets || writer.sent !== packets) {
    throw new Error(`cross-thread: reader got ${reader.received} of ${packets} packets, writer sent ${writer.sent}`);
  }
  const opsPerSec = ((reader.received - reader.firstCount) / reader.ms) * 1000;
  log(`  ${CROSS_THREAD}: ${(opsPerSec / 1e6).toFixed(2)} M packets/s over ${packets} packets ` +
    `(reader ${reader.ms.toFixed(0)} ms, ${reader.emptyPolls} empty polls; writer ${writer.fullPolls} full polls)`);
  return makeCase({ suite: SUITE, name: CROSS_THREAD, engine: 'wasm', payloadBytes }, opsPerSec);
}

const key = (name, engine, payloadBytes) => ({ suite: SUITE, name, engine, payloadBytes });

export default {
  name: SUITE,
  /** The figures the project tracks (DESIGN "Benchmarks"). */
  keyFigures: [
    { label: '64 B batch, wasm / reference', of: key(BATCH, 'wasm', 64), over: key(BATCH, 'reference', 64) },
    { label: '64 B per packet, wasm / ringbuf.js', of: key(PER_PACKET, 'wasm', 64), over: key(PER_PACKET, 'ringbuf.js', 64) },
    { label: '64 KiB batch, wasm / copy-limit', of: key(BATCH, 'wasm', 65536), over: key(BATCH, 'copy-limit', 65536) },
    { label: 'cross-thread 64 B, packets/s', of: key(CROSS_THREAD, 'wasm', 64) },
  ],
  async run(ctx) {
    const cases = withCopyLimitPerPacket(timeCases(singleThreadCases(), ctx));
    try {
      cases.push(await crossThread(ctx));
    } catch (e) {
      ctx.fail(`${SUITE} / ${CROSS_THREAD}: ${e.message}`);
    }
    return cases;
  },
};
