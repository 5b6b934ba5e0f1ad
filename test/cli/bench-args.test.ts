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
    expect(parseBenchArgs(['--json', '--svg', 'c.svg'], SUITES)).toEqual({ quick: false, only: [], jsonPath: DEFAULT_OUT, json: true, svgPath: 'c.svg' });
    expect(parseBenchArgs(['--svg'], SUITES).error).toMatch(/--svg needs a file/);
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

describe('sgring bench', () => {
  it('--json prints the run, --svg writes a bar chart of each case\'s engines; unknown flags are refused', async () => {
    const { spawnSync } = await import('node:child_process');
    const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const cli = new URL('../../dist/cli.mjs', import.meta.url).pathname;
    const dir = mkdtempSync(join(tmpdir(), 'sgring-bench-'));
    try {
      const svg = join(dir, 'b.svg');
      const r = spawnSync(process.execPath, [cli, 'bench', '--quick', '--json', '--svg', svg, '--out', join(dir, 'run.json'), 'prp'], { encoding: 'utf8', timeout: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      const run = JSON.parse(r.stdout);
      expect(new Set(run.cases.map((c: { engine: string }) => c.engine))).toEqual(new Set(['wasm', 'reference']));
      expect(run.keyFigures.length).toBeGreaterThan(0);
      const chart = readFileSync(svg, 'utf8');
      expect(chart).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
      expect(chart).toMatch(/<text[^>]*>prp \| PRP walk, aligned \(entries\/s\) \| 4096 B<\/text>/);
      expect(chart).toMatch(/x wasm\)<\/text>/);
      expect(spawnSync(process.execPath, [cli, 'bench', '--qiuck'], { encoding: 'utf8' }).status).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
