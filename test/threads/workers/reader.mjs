// Host-side consumer of the cross-thread tests. Drains with the mask / drain / unmask / re-check
// loop of spec/vmbus.md §1.8, rings the writer's doorbell only when a read result says `signal`
// (§1.9.2), and sleeps on its own doorbell with a timeout when the ring is empty (a lost wakeup
// fails the test). Every packet is checked against (seed, seq): sequence (lost / duplicated),
// length, padding, checksum, and tied transaction-id halves (torn). It also checks that only it
// ever stores the read index and interrupt_mask (single-writer rule, J8) and that the indices stay
// valid (checklist 69).
//
// workerData: { memory, engine, mode: 'batch'|'packet'|'drain', seed, maxLen, poolPtr, poolBytes,
//   tidMode: 'checksum'|'tied', waitMs, readBytes, phases: [{ ringPtr, ringBytes, hostBell,
//   guestBell, count }], mailbox?, follow?, progressIndex?, signalPolicy?: 'rules' | 'never', poll?: boolean }

import { workerData, parentPort } from 'node:worker_threads';
import { loadCoreSync, VmbusRing, ReadBatch, Doorbell } from '../../../dist/index.mjs';
import { lenOf, offOf, fnv1a, tiedHi, H_WRITE, H_READ, H_MASK, runPhasesAndReport } from './common.mjs';

const d = workerData;
const core = loadCoreSync({ memory: d.memory, engine: d.engine ?? 'wasm' });
const mailbox = d.mailbox ? new Int32Array(d.mailbox) : null;
const stats = {
  received: 0, lost: 0, dup: 0, corrupt: 0, torn: 0, timeouts: 0, guestSignals: 0, sleeps: 0,
  readIndexViolations: 0, maskViolations: 0, badIndices: 0, anomalies: [], phasesDone: 0,
  wraps: 0, spans: 0, exactWraps: 0,
  ringBytesChecked: 0, engine: core.engine,
};
let expected = 0;

function anomaly(what) {
  if (stats.anomalies.length < 10) stats.anomalies.push(what);
}

/** Checks one packet: transaction id halves lo/hi, payload at u8[off, off+n). */
function verify(lo, hi, u8, off, n) {
  if (d.tidMode === 'tied' && hi !== tiedHi(lo)) {
    stats.torn++;
    anomaly(`torn tid lo=${lo.toString(16)} hi=${hi.toString(16)} at packet #${stats.received}`);
  }
  const seq = lo;
  if (seq !== expected) {
    if (seq > expected) stats.lost += seq - expected;
    else stats.dup++;
    anomaly(`seq ${seq} where ${expected} was expected`);
    if (seq < expected) {
      stats.received++;
      return;
    }
  }
  expected = seq + 1;
  stats.received++;
  const len = lenOf(d.seed, seq, d.maxLen);
  const padded = ((len + 16 + 7) & ~7) - 16;
  if (n !== padded) {
    stats.corrupt++;
    anomaly(`seq ${seq}: payload ${n} bytes, expected ${padded} (len ${len})`);
    return;
  }
  for (let i = len; i < n; i++) {
    if (u8[off + i] !== 0) {
      stats.corrupt++;
      anomaly(`seq ${seq}: padding byte ${i} is ${u8[off + i]}`);
      return;
    }
  }
  const c = fnv1a(u8, off, len);
  const want = d.tidMode === 'tied' ? fnv1a(core.u8, d.poolPtr + offOf(d.seed, seq, d.poolBytes, d.maxLen), len) : hi;
  if (c !== want) {
    stats.corrupt++;
    anomaly(`seq ${seq}: checksum ${c.toString(16)} != ${want.toString(16)} (len ${len})`);
  }
}

function runPhase(ph, seqStart) {
  const ring = VmbusRing.attach(core, ph.ringPtr, ph.ringBytes);
  const hostBell = Doorbell.attach(core, ph.hostBell);
  const guestBell = Doorbell.attach(core, ph.guestBell);
  // The ring's bytes must be reachable from this thread too (e.g. a ring made after growth).
  if (ring.bytes.length !== ph.ringBytes) throw new Error(`ring.bytes has ${ring.bytes.length} bytes, not ${ph.ringBytes}`);
  stats.ringBytesChecked++;
  const D = ring.dataSize;
  const h = ring.ptr >> 2;
  let expR = Atomics.load(core.u32, h + H_READ);
  const end = seqStart + ph.count;
  const batch = d.mode === 'batch' ? new ReadBatch(core, { bytes: d.readBytes ?? 64 * 1024 }) : null;
  const dest = new Uint8Array(d.maxLen + 16);
  let flip = 0;

  // signalPolicy 'never' is a negative control: a reader that ignores `signal` must make the
  // blocked writer's bounded wait time out.
  const signalWriter = () => {
    if (d.signalPolicy === 'never') return;
    guestBell.ring();
    stats.guestSignals++;
  };
  const checkIndices = (masked) => {
    const u32 = core.u32;
    if (Atomics.load(u32, h + H_READ) !== expR) {
      stats.readIndexViolations++;
      anomaly(`read index ${Atomics.load(u32, h + H_READ)} where this reader left ${expR}`);
      expR = Atomics.load(u32, h + H_READ);
    }
    if (masked && Atomics.load(u32, h + H_MASK) !== 1) {
      stats.maskViolations++;
      anomaly('interrupt_mask changed while this reader held it');
    }
    const w = Atomics.load(u32, h + H_WRITE);
    if (w >= D || (w & 7) !== 0) stats.badIndices++;
  };
  // Where this reader's read index must be after consuming a record of `rec` bytes, and how the
  // record sat against the end of the data area (checklist 69).
  const advance = (rec) => {
    const nr = expR + rec;
    if (nr > D) stats.spans++;
    if (nr === D) stats.exactWraps++;
    if (nr >= D) stats.wraps++;
    expR = nr >= D ? nr - D : nr;
  };
  const progress = () => {
    if (mailbox && d.progressIndex !== undefined) Atomics.store(mailbox, d.progressIndex, stats.received);
  };

  /** One read call (several packets for a batch); returns packets taken. */
  const readSome = () => {
    checkIndices(true);
    if (batch) {
      const n = ring.readBatch(batch);
      if (n === 0) return 0;
      const u8 = core.u8;
      let bytes = 0;
      while (batch.next()) {
        verify(batch.transactionIdLo, batch.transactionIdHi, u8, batch.payloadOffset, batch.payloadLength);
        advance(batch.payloadLength + 16 + 8); // our writer's packets have hlen = 2
        bytes += batch.payloadLength + 16;
      }
      if (bytes !== batch.used) anomaly(`batch of ${n} packets used ${batch.used} bytes, packets add up to ${bytes}`);
      if (batch.signal) signalWriter();
      progress();
      return n;
    }
    if ((flip++ & 1) === 0) {
      const p = ring.readPacket();
      if (p === null) return 0;
      verify(Number(p.transactionId & 0xffffffffn), Number(p.transactionId >> 32n), p.payload, 0, p.payload.length);
      advance(ring.lastPacketBytes + 8);
      if (p.signal) signalWriter();
    } else {
      const n = ring.readInto(dest);
      if (n < 0) return 0;
      verify(ring.lastTransactionIdLo, ring.lastTransactionIdHi, dest, 0, n);
      advance(ring.lastPacketBytes + 8);
      if (ring.lastSignal) signalWriter();
    }
    progress();
    return 1;
  };

  while (stats.received < end) {
    if (d.mode === 'drain') {
      // The library's own mask / drain / unmask / re-check loop; signal as soon as a read says so.
      ring.drain((p) => {
        verify(Number(p.transactionId & 0xffffffffn), Number(p.transactionId >> 32n), p.payload, 0, p.payload.length);
        advance(ring.lastPacketBytes + 8);
        checkIndices(true);
        if (p.signal) signalWriter();
        progress();
      });
    } else {
      do {
        ring.beginRead();
        while (stats.received < end && readSome() > 0);
        checkIndices(true);
      } while (ring.endRead() && stats.received < end);
    }
    if (stats.received >= end) break;
    stats.sleeps++;
    let woke;
    if (d.poll) {
      // Busy-poll instead of sleeping: the reader then looks at each packet as soon as its write
      // index is published, which is what the message-passing litmus (checklist 68) wants.
      const deadline = performance.now() + d.waitMs;
      let spins = 0;
      while (ring.availableToRead === 0 && ((++spins & 1023) !== 0 || performance.now() < deadline));
      woke = ring.availableToRead > 0;
    } else {
      woke = hostBell.waitUntil(() => ring.availableToRead > 0, d.waitMs);
    }
    if (!woke) {
      stats.timeouts++;
      throw new Error(`reader: lost wakeup? nothing to read within ${d.waitMs} ms after ${stats.received} packets; ring ${JSON.stringify(ring.state())}`);
    }
  }
  checkIndices(false);
  if (mailbox && d.progressIndex !== undefined) Atomics.store(mailbox, d.progressIndex, stats.received);
  stats.phasesDone++;
}

runPhasesAndReport(d, mailbox, stats, runPhase, parentPort, 'reader');
