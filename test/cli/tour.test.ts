// `npm start` runs `sgring demo`: the built CLI with two worker threads over shared memory.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const cli = fileURLToPath(new URL('../../dist/cli.mjs', import.meta.url));

describe('sgring demo (the tour)', () => {
  it('exchanges a conversation and a stream between a guest and a host thread and reports signals and rates', () => {
    const out = execFileSync(process.execPath, [cli, 'demo', '--packets', '50000'], { encoding: 'utf8', timeout: 60_000 });
    for (const tid of [1, 2, 3, 4]) {
      expect(out).toMatch(new RegExp(`guest -> host  in-band  tid=${tid} `));
      expect(out).toMatch(new RegExp(`guest <- host  completion tid=${tid} "ok: `));
    }
    expect(out).toContain('guest sent 50,000 and got 50,000 completions');
    expect(out).toContain('host checked 50,000 sequence numbers: all in order');
    const raised = [...out.matchAll(/raised (\d+) \(/g)].map((m) => Number(m[1]));
    expect(raised).toHaveLength(2);
    // Signals are decided by the rules, not sent per packet.
    for (const n of raised) expect(n).toBeGreaterThan(0);
    expect(raised[0]! + raised[1]!).toBeLessThan(50_000);
  });

  it('prints help and rejects unknown commands', () => {
    expect(execFileSync(process.execPath, [cli, 'help'], { encoding: 'utf8' })).toContain('usage: sgring');
    expect(() => execFileSync(process.execPath, [cli, 'nope'], { stdio: 'pipe' })).toThrow();
  });
});
