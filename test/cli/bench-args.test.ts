// The bench command line: a run writes to the git-ignored bench/results/run.json unless --out
// names a file, so running the benchmarks never dirties the tree; unknown options are refused.
import { describe, expect, it } from 'vitest';
// @ts-expect-error a plain .mjs module of the bench scripts, without types
import { DEFAULT_OUT, parseBenchArgs } from '../../bench/lib/args.mjs';

const SUITES = ['ring', 'prp'];

describe('bench arguments', () => {
  it('writes to the ignored run.json by default, never to the committed latest.json', () => {
    const r = parseBenchArgs(['--quick'], SUITES);
    expect(r).toEqual({ quick: true, only: [], jsonPath: DEFAULT_OUT });
    expect(DEFAULT_OUT).toMatch(/bench\/results\/run\.json$/);
    expect(parseBenchArgs(['ring'], SUITES).jsonPath).toBe(DEFAULT_OUT);
  });

  it('--out chooses the file; unknown options and suites are refused', () => {
    expect(parseBenchArgs(['--out', '/tmp/x.json', 'prp'], SUITES)).toEqual({ quick: false, only: ['prp'], jsonPath: '/tmp/x.json' });
    expect(parseBenchArgs(['--out'], SUITES).error).toMatch(/needs a file/);
    expect(parseBenchArgs(['--qiuck'], SUITES).error).toMatch(/unknown option --qiuck/);
    expect(parseBenchArgs(['rnig'], SUITES).error).toMatch(/unknown suite rnig/);
  });
});
