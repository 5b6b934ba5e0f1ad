// `sgring tour`: the built CLI with two worker threads over one VMBus channel in shared memory.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const cli = fileURLToPath(new URL('../../dist/cli.mjs', import.meta.url));

describe('sgring tour', () => {
  it('exchanges a conversation and a stream between a guest and a host thread and reports signals and rates', () => {
    const out = execFileSync(process.execPath, [cli, 'tour', '--packets', '50000'], { encoding: 'utf8', timeout: 60_000 });
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

  it('prints the conversation in protocol order whatever the threads did, with the sender\'s exact text', () => {
    const lines = (n: number) => execFileSync(process.execPath, [cli, 'tour', '--packets', String(n)], { encoding: 'utf8', timeout: 60_000 })
      .split('\n').filter((l) => / tid=\d /.test(l) || /tid=\d$/.test(l) || /tid=\d \(/.test(l));
    const a = lines(2000);
    expect(a).toHaveLength(16);
    expect(a.map((l) => l.slice(0, 20).trim())).toEqual(Array(4).fill(['guest -> host  in-ba', 'host  <- guest in-ba', 'host  -> guest compl', 'guest <- host  compl']).flat());
    expect(a[3]).toBe('guest <- host  completion tid=1 "ok: hello host"');
    const strip = (ls: string[]) => ls.map((l) => l.replace(/signal=\w+/, ''));
    expect(strip(lines(3000))).toEqual(strip(a));
  });

  it('prints help and the version, and refuses unknown commands and flags', () => {
    const run = (...args: string[]) => execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8', stdio: 'pipe' });
    expect(run('help')).toContain('usage: sgring');
    expect(run('tour', '--help')).toContain('usage: sgring');
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(run('--version').trim()).toBe(pkg.version);
    expect(run('tour', '-v').trim()).toBe(pkg.version);
    for (const bad of [['nope'], ['tour', '--pakcets', '5'], ['tour', '--packets'], ['help', '--packets', '3'], ['tour', 'extra'], ['demo', '--packets', '5']]) {
      expect(() => run(...bad), bad.join(' ')).toThrow();
    }
  });
});
