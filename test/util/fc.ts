import fc from 'fast-check';

/** Seed and run count for every property: fixed in CI, overridable to explore (FC_SEED, FC_RUNS). */
export const FC_SEED = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : 0x5a6e1;
export const FC_RUNS = process.env.FC_RUNS !== undefined ? Number(process.env.FC_RUNS) : 100;

/** fc.assert with the project seed; fast-check prints seed and counterexample path on failure. */
export function check<T>(prop: fc.IProperty<T> | fc.IAsyncProperty<T>, runs = FC_RUNS) {
  return fc.assert(prop as fc.IProperty<T>, { seed: FC_SEED, numRuns: runs, verbose: 1 });
}

/** Index of the first differing byte, or -1 (toEqual on large typed arrays is far too slow). */
export function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
