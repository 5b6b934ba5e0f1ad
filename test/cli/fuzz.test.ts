// `sgring fuzz`: every hostile-input target runs its cases to a result or a typed error, the
// bounce targets find FreeBSD's known waste and pass the optimal planner, a finding is a JSON
// file that --replay runs again, and bad options are refused.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { caseBytes } from '../../src/cli/fuzz';

const cli = fileURLToPath(new URL('../../dist/cli.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sgring-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const run = (...args: string[]) => spawnSync(process.execPath, [cli, 'fuzz', ...args, '--out', dir], { encoding: 'utf8', timeout: 60_000 });

describe('sgring fuzz', () => {
  it.each(['gpa-ranges', 'prp-walk', 'sgl-walk', 'ring-read', 'nvme-admin', 'storvsc-guest', 'netvsc-guest', 'bounce:optimal'])('%s: 300 cases end in a result or a typed error (no finding)', (target) => {
    const r = run('--target', target, '--seed', '11', '--runs', '300');
    expect(r.stdout, r.stderr).toMatch(new RegExp(`^${target}: 300 cases in [\\d.]+ s \\(\\d+/s\\), seed 11, 0 findings$`, 'm'));
    expect(r.status).toBe(0);
  });

  it('bounce:freebsdSgBounce: finds a list FreeBSD bounces more than needed, writes it, and --replay finds it again', () => {
    const r = run('--target', 'bounce:freebsdSgBounce', '--seed', '7', '--runs', '500');
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^finding: .+ -> .+sgring-fuzz-bounce-freebsdSgBounce-7-0\.json$/m);
    const file = readdirSync(dir).find((f) => f.startsWith('sgring-fuzz-bounce-freebsdSgBounce-'))!;
    const saved = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    expect(saved).toMatchObject({ target: 'bounce:freebsdSgBounce', seed: 7 });
    const again = spawnSync(process.execPath, [cli, 'fuzz', '--replay', join(dir, file)], { encoding: 'utf8' });
    expect([again.status, again.stdout.split('\n')[0]]).toEqual([1, `still fails: ${saved.violation}`]);
  });

  it('a case is the same bytes for the same seed and index; --replay runs a saved input again', () => {
    expect(caseBytes(5, 3)).toEqual(caseBytes(5, 3));
    expect(caseBytes(5, 3)).not.toEqual(caseBytes(5, 4));
    const file = join(dir, 'saved.json');
    writeFileSync(file, JSON.stringify({ target: 'prp-walk', seed: 5, index: 3, input: Buffer.from(caseBytes(5, 3)).toString('base64') }));
    const r = spawnSync(process.execPath, [cli, 'fuzz', '--replay', file], { encoding: 'utf8' });
    expect([r.status, r.stdout.trim()]).toMatchObject([0, expect.stringMatching(/^passes now/)]);
  });

  it('refuses an unknown target, --runs with --seconds, bad numbers, unknown flags', () => {
    for (const bad of [['--target', 'nope'], ['--target', 'prp-walk', '--runs', '5', '--seconds', '1'], ['--target', 'prp-walk', '--runs', '-1'], ['--target', 'prp-walk', '--bogus'], []]) {
      expect(run(...bad).status, bad.join(' ')).toBe(2);
    }
    expect(execFileSync(process.execPath, [cli, 'help'], { encoding: 'utf8' })).toMatch(/nvme-admin +admin commands of hostile bytes/);
  });
});
