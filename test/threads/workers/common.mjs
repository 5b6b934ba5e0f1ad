// Helpers shared by the cross-thread tests and their workers (plain JS: workers cannot load TS).
// Everything a writer puts in a packet is a pure function of (seed, seq), so the reader can
// check any packet on its own: length, bytes, checksum, transaction id.

/** Bytes of a ring record (packet + trailer) carrying `len` payload bytes (spec §1.4). */
export const recordBytes = (len) => ((len + 16 + 7) & ~7) + 8;

/** A 32-bit integer hash (lowbias32): a counter-based PRNG, so either side can compute it for any seq. */
export function mix32(x) {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** Payload length of packet `seq`: 0..maxLen, from the seeded hash (so every alignment shows up). */
export function lenOf(seed, seq, maxLen) {
  return mix32((seq ^ seed) >>> 0) % (maxLen + 1);
}

/** Offset into the payload pool of packet `seq`'s bytes. */
export function offOf(seed, seq, poolBytes, maxLen) {
  return mix32((mix32(seq + 0x9e3779b9) ^ seed) >>> 0) % (poolBytes - maxLen);
}

/** FNV-1a over u8[off, off+len). */
export function fnv1a(u8, off, len) {
  let h = 0x811c9dc5;
  for (let i = off, end = off + len; i < end; i++) h = Math.imul(h ^ u8[i], 0x01000193);
  return h >>> 0;
}

/** The "tied halves" transaction id of H67: hi is a function of lo, so a torn value shows. */
export const TIE = 0xdeadbeef;
export const tiedHi = (lo) => (lo ^ TIE) >>> 0;

/** Seeded xorshift32 stream. */
export function xorshift(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>>= 0);
  };
}

/**
 * The byte no writer, pool or scribbler ever produces: regions around a ring are filled with it,
 * so a payload holding it was read from outside the ring.
 */
export const CANARY = 0xee;

/** Fills u8[off, off+len) with seeded random bytes, never CANARY. */
export function fillRandom(u8, off, len, seed) {
  const next = xorshift(seed);
  for (let i = 0; i < len; i++) {
    const b = next() & 0xff;
    u8[off + i] = b === CANARY ? 0x11 : b;
  }
}

/** Ring header word indices (u32) relative to the ring pointer (spec §1.2). */
export const H_WRITE = 0;
export const H_READ = 1;
export const H_MASK = 2;
export const H_PENDING = 3;

/** Worker results are posted as { ok: true, ...stats } or { ok: false, error, ...stats }. */
export function describeError(e) {
  if (e && typeof e === 'object') {
    return {
      name: e.name,
      message: e.message,
      code: e.code,
      broken: e.broken,
      isRuntimeError: e instanceof WebAssembly.RuntimeError,
      stack: e.stack,
    };
  }
  return { name: typeof e, message: String(e) };
}

/**
 * What is wrong with a received packet of the checksum-carrying stream (tid lo = seq,
 * tid hi = FNV-1a of the payload), or null: payload length (padded to 8), zero padding, checksum.
 */
export function packetProblem(seed, maxLen, seq, hi, u8, off, n) {
  const len = lenOf(seed, seq, maxLen);
  const padded = ((len + 16 + 7) & ~7) - 16;
  if (n !== padded) return `seq ${seq}: payload ${n} bytes, expected ${padded}`;
  for (let i = len; i < n; i++) if (u8[off + i] !== 0) return `seq ${seq}: padding byte ${i} is ${u8[off + i]}`;
  const c = fnv1a(u8, off, len);
  return c === hi ? null : `seq ${seq}: checksum ${c.toString(16)} != ${hi.toString(16)}`;
}

/** Blocks until mailbox word `index` becomes non-zero; `who` names the worker in the error. */
export function waitMailbox(mailbox, index, waitMs, who) {
  const deadline = performance.now() + waitMs;
  while (Atomics.load(mailbox, index) === 0) {
    const left = deadline - performance.now();
    if (left <= 0) throw new Error(`${who}: mailbox word ${index} was not set within ${waitMs} ms`);
    Atomics.wait(mailbox, index, 0, left);
  }
}

/**
 * Runs the worker's phases in order (sequence numbers continue across them), then, with
 * d.follow, one more phase on a ring the main thread announces in the mailbox; posts the stats.
 */
export function runPhasesAndReport(d, mailbox, stats, runPhase, parentPort, who) {
  try {
    let seq = 0;
    for (const ph of d.phases) {
      runPhase(ph, seq);
      seq += ph.count;
    }
    if (d.follow) {
      waitMailbox(mailbox, 0, d.waitMs, who);
      runPhase({ ringPtr: mailbox[1], ringBytes: mailbox[2], hostBell: mailbox[3], guestBell: mailbox[4], count: mailbox[5] }, seq);
    }
    parentPort.postMessage({ type: 'done', ok: true, ...stats });
  } catch (e) {
    parentPort.postMessage({ type: 'done', ok: false, error: describeError(e), ...stats });
  }
}
