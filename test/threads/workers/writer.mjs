// Guest-side producer of the cross-thread tests. Writes packets whose length, bytes and
// transaction id are pure functions of (seed, seq) (see common.mjs), following the signalling
// rules of spec/vmbus.md §1.9 exactly:
//  - rings the host's doorbell only when a write result says `signal`;
//  - when the ring is full (written=false: pending_send_sz is now set), sleeps on its own
//    doorbell until availableToWrite is enough, with a timeout, so a lost wakeup fails the test;
//  - checks that nobody else ever stores the write index (single-writer rule, J8).
//
// workerData: { memory, engine, mode: 'batch'|'packet', seed, maxLen, poolPtr, poolBytes,
//   tidMode: 'checksum'|'tied', waitMs, batchSize, phases: [{ ringPtr, ringBytes, hostBell,
//   guestBell, count }], mailbox?: SharedArrayBuffer, follow?: boolean, grow?: { at, bytes, times },
//   gate?: { at, index }, signalPolicy?: 'rules' | 'never', storeReadIndexOnFull?: boolean }
// Mailbox words (Int32): [0] next ring published, [1] ptr, [2] bytes, [3] hostBell, [4] guestBell,
// [5] count; [gate.index] set non-zero by the main thread to let the writer pass `gate.at`.

import { workerData, parentPort } from 'node:worker_threads';
import { loadCoreSync, VmbusRing, WriteBatch, Doorbell } from '../../../dist/index.mjs';
import { recordBytes, lenOf, offOf, fnv1a, tiedHi, H_WRITE, waitMailbox, runPhasesAndReport } from './common.mjs';

const d = workerData;
const core = loadCoreSync({ memory: d.memory, engine: d.engine ?? 'wasm' });
const mailbox = d.mailbox ? new Int32Array(d.mailbox) : null;
const stats = {
  sent: 0, hostSignals: 0, fullEpisodes: 0, timeouts: 0, writeIndexViolations: 0,
  grew: null, phasesDone: 0, engine: core.engine,
};

function runPhase(ph, seqStart) {
  const ring = VmbusRing.attach(core, ph.ringPtr, ph.ringBytes);
  const hostBell = Doorbell.attach(core, ph.hostBell);
  const guestBell = Doorbell.attach(core, ph.guestBell);
  const D = ring.dataSize;
  const wSlot = (ring.ptr >> 2) + H_WRITE;
  let expW = Atomics.load(core.u32, wSlot);
  const end = seqStart + ph.count;
  const tidOf = (seq, len, off) => (d.tidMode === 'tied' ? tiedHi(seq) : fnv1a(core.u8, d.poolPtr + off, len));
  const checkW = () => {
    if (Atomics.load(core.u32, wSlot) !== expW) {
      stats.writeIndexViolations++;
      expW = Atomics.load(core.u32, wSlot);
    }
  };
  // signalPolicy 'never' is a negative control: a writer that ignores `signal` must make the
  // reader's bounded wait time out (the harness can see a lost wakeup).
  const signalHost = () => {
    if (d.signalPolicy === 'never') return;
    hostBell.ring();
    stats.hostSignals++;
  };
  const waitRoom = (need) => {
    stats.fullEpisodes++;
    // Negative control for the single-writer rule (J8): a producer that "helps" by storing back
    // the read index it saw, as the ring in moq-dev/moq PR #1295 did. The reader must notice.
    const staleRead = d.storeReadIndexOnFull ? Atomics.load(core.u32, (ring.ptr >> 2) + 1) : -1;
    if (!guestBell.waitUntil(() => ring.availableToWrite > need, d.waitMs)) {
      stats.timeouts++;
      throw new Error(`writer: lost wakeup? no room for ${need} bytes within ${d.waitMs} ms; ring ${JSON.stringify(ring.state())}`);
    }
    if (staleRead >= 0) Atomics.store(core.u32, (ring.ptr >> 2) + 1, staleRead);
  };
  const maybeGrowOrGate = (seq) => {
    if (d.grow && stats.grew === null && seq >= d.grow.at) {
      const before = core.byteLength;
      const regions = [];
      for (let i = 0; i < d.grow.times; i++) regions.push(core.alloc(d.grow.bytes, 4096));
      stats.grew = { before, after: core.byteLength, regions };
    }
    if (d.gate && seq >= d.gate.at && !stats.gated) {
      stats.gated = true;
      waitMailbox(mailbox, d.gate.index, d.waitMs, 'writer');
    }
  };

  if (d.mode === 'batch') {
    const B = d.batchSize ?? 64;
    const batch = new WriteBatch(core, { capacity: B, arenaBytes: 0 });
    const lens = new Int32Array(B);
    for (let seq = seqStart; seq < end;) {
      maybeGrowOrGate(seq);
      batch.clear();
      const k = Math.min(B, end - seq);
      for (let i = 0; i < k; i++) {
        const s = seq + i;
        const len = lenOf(d.seed, s, d.maxLen);
        const off = offOf(d.seed, s, d.poolBytes, d.maxLen);
        lens[i] = len;
        batch.addRef(d.poolPtr + off, len, 6, 0, s, tidOf(s, len, off));
      }
      let done = 0;
      while (batch.remaining > 0) {
        checkW();
        const n = ring.writeBatch(batch);
        for (let j = done; j < done + n; j++) expW = (expW + recordBytes(lens[j])) % D;
        done += n;
        if (batch.signal) signalHost();
        if (batch.remaining > 0) waitRoom(batch.needed);
      }
      seq += k;
      stats.sent += k;
    }
  } else {
    for (let seq = seqStart; seq < end; seq++) {
      maybeGrowOrGate(seq);
      const len = lenOf(d.seed, seq, d.maxLen);
      const off = offOf(d.seed, seq, d.poolBytes, d.maxLen);
      const lo = seq;
      const hi = tidOf(seq, len, off);
      for (;;) {
        checkW();
        const at = d.poolPtr + off;
        const payload = core.u8.subarray(at, at + len);
        let written;
        let signal;
        switch (seq % 3) {
          case 0: {
            const r = ring.writePacket({ type: 6, transactionId: (BigInt(hi) << 32n) | BigInt(lo), payload });
            written = r.written;
            signal = r.signal;
            break;
          }
          case 1: {
            const cut = len >> 1; // gather write: two pieces, the second may be empty
            const r = ring.writePacket({ type: 6, transactionId: (BigInt(hi) << 32n) | BigInt(lo), payload: [payload.subarray(0, cut), payload.subarray(cut)] });
            written = r.written;
            signal = r.signal;
            break;
          }
          default: {
            const bits = ring.write(payload, 6, 0, lo, hi);
            written = (bits & 1) !== 0;
            signal = (bits & 2) !== 0;
          }
        }
        if (written) {
          expW = (expW + recordBytes(len)) % D;
          if (signal) signalHost();
          break;
        }
        waitRoom(recordBytes(len));
      }
      stats.sent++;
    }
  }
  checkW();
  stats.phasesDone++;
}

runPhasesAndReport(d, mailbox, stats, runPhase, parentPort, 'writer');
