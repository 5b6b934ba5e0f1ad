// Worker helpers: start N workers, release them together, collect one result message from
// each. Timed work should start only after startTogether() returns, so module loading and
// engine compilation stay out of the measurement.

import { Worker } from 'node:worker_threads';

/**
 * Runs one worker per spec ({ url, data }) and resolves with each worker's result message, in
 * spec order, once every worker has reported and exited (so their console output is flushed).
 * Each worker gets workerData = { ...data, gate, parties } for startTogether(). Rejects on a
 * worker error, a result with an `error` field, an exit without a result, or after timeoutMs;
 * the workers are then terminated.
 */
export function runWorkers(specs, { timeoutMs }) {
  const gate = new Int32Array(new SharedArrayBuffer(4));
  const workers = specs.map(({ url, data }) => new Worker(url, { workerData: { ...data, gate, parties: specs.length } }));
  const results = workers.map((w, i) => new Promise((resolve, reject) => {
    let result;
    // A result with an `error` fails the run at once: its peer may be blocked on it forever.
    w.once('message', (m) => (m?.error ? reject(new Error(`worker ${i}: ${m.error}`)) : (result = m)));
    w.once('error', reject);
    w.once('exit', (code) => (result !== undefined ? resolve(result)
      : reject(new Error(`worker ${i} (${specs[i].url}) exited with code ${code} before reporting`))));
  }));
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`workers did not finish within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([Promise.all(results), timeout]).then(
    (r) => (clearTimeout(timer), r),
    (e) => {
      clearTimeout(timer);
      for (const w of workers) w.terminate();
      throw e;
    },
  );
}

/** Worker side: blocks until every party has called it. */
export function startTogether({ gate, parties }) {
  Atomics.add(gate, 0, 1);
  Atomics.notify(gate, 0);
  for (let v = Atomics.load(gate, 0); v < parties; v = Atomics.load(gate, 0)) Atomics.wait(gate, 0, v, 100);
}
