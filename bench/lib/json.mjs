// Writes a run as JSON ({ meta, cases }, schema in DESIGN "Benchmarks"): bench/results/run.json or --out FILE.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export function writeResults(path, meta, cases) {
  mkdirSync(dirname(path), { recursive: true });
  // `rounds`: the ops/s of each interleaved round (lib/isolate.mjs), for ratios paired by round.
  const rows = cases.map(({ suite, name, engine, payloadBytes, opsPerSec, bytesPerSec, rounds }) =>
    ({ suite, name, engine, payloadBytes, opsPerSec, bytesPerSec, ...(rounds ? { rounds } : {}) }));
  writeFileSync(path, `${JSON.stringify({ meta, cases: rows }, null, 2)}\n`);
}
