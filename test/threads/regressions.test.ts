// Regression tests for library bugs the cross-thread tests found. (The [H67] torn-id and [H73]
// length-race regressions live beside the tests that found them: stress.test.ts, faults.test.ts.)
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

describe('regressions found by the thread tests', () => {
  // Doorbell.waitUntilAsync awaits Atomics.waitAsync(...).value. In Node (20, and still in 25:
  // nodejs/node#61941, #44409) a pending waitAsync does not keep the event loop alive, so a
  // program whose only pending work was that wait exited on the spot (exit code 13, "unsettled
  // top-level await"). A keep-alive timer due at the wait's own deadline was not enough (it can
  // fire first: about 1 wait in 5 still exited); the fix holds an interval until the wait ends.
  it('[H70] waitUntilAsync returns false on timeout in a Node program with nothing else pending, every time (30 waits in a row)', () => {
    const fixture = fileURLToPath(new URL('./workers/async-timeout-main.mjs', import.meta.url));
    const res = spawnSync(process.execPath, [fixture], { encoding: 'utf8', timeout: 20_000 });
    expect({ status: res.status, stdout: res.stdout.trim(), stderr: res.stderr.trim() }).toEqual({
      status: 0, stdout: '{"waits":30,"woken":0,"tooEarly":0}', stderr: '',
    });
  });
});
