// Where and when a run happened: the "meta" object of a run's JSON (bench/results/*.json).

import { execFileSync } from 'node:child_process';
import os from 'node:os';

function commit() {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || 'unknown';
  } catch {
    return 'unknown';
  }
}

export function collectMeta({ quick }) {
  return {
    node: process.version,
    cpu: os.cpus()[0]?.model?.trim() ?? 'unknown',
    commit: commit(),
    date: new Date().toISOString(),
    quick: !!quick,
  };
}
