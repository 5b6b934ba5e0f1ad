// Run as a plain Node main program (child process), not as a worker: a program whose only
// pending work, each time, is `await doorbell.waitUntilAsync(() => false, t)`. Every wait must end
// with false after about t ms, and the program go on to print all the results and exit 0
// (checklist 70: the non-blocking mode returns false on timeout). 30 waits of 20..49 ms: a wait
// whose timeout can lose a race against the event loop's exit check gets many chances to.

import { loadCoreSync, Doorbell } from '../../../dist/index.mjs';

const core = loadCoreSync({ shared: true });
const bell = Doorbell.create(core);
const results = [];
for (let i = 0; i < 30; i++) {
  const t0 = performance.now();
  const woken = await bell.waitUntilAsync(() => false, 20 + i);
  results.push({ woken, ms: Math.round(performance.now() - t0) });
}
console.log(JSON.stringify({ waits: results.length, woken: results.filter((r) => r.woken).length, tooEarly: results.filter((r, i) => r.ms < 19 + i).length }));
