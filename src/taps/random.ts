// Seeded randomness for fault schedules: every injector draws from its own generator, so the
// same seed gives the same faults on every run (checklist 66) whatever else the program does.

/** A deterministic generator of numbers in [0, 1) (mulberry32: small, fast, good enough for schedules). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
