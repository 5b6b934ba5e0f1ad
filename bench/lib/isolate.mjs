// Times groups of cases (an engine, a peer, the copy limit) each in its own worker thread (its
// own V8 isolate): once VmbusRing has driven both the wasm and the reference engine in one
// isolate, its call sites are polymorphic and per-packet numbers shift by 15-40%.
//
// The groups take turns, never two timing at once, in rounds: A B C, A B C, ... Every ratio is
// then taken between samples of the same round, so a slow spell of the shared machine lands on
// both sides of it instead of on one group; the report is the median over rounds and its spread.

import { Worker } from 'node:worker_threads';

const WORKER = new URL('../workers/time-cases.mjs', import.meta.url);

/** Rounds per run: each round times every case once, with 1/rounds of the case's time budget. */
export const roundsFor = (quick) => (quick ? 3 : 5);

/** A worker that builds its group's cases once, then times them whenever asked. */
function groupWorker(data) {
  const w = new Worker(WORKER, { workerData: data });
  const waiting = [];
  let failure = null;
  w.on('message', (m) => {
    const p = waiting.shift();
    if (m?.error) p?.reject(new Error(m.error));
    else p?.resolve(m);
  });
  w.on('error', (e) => {
    failure = e;
    for (const p of waiting.splice(0)) p.reject(e);
  });
  const next = () => new Promise((resolve, reject) => (failure ? reject(failure) : waiting.push({ resolve, reject })));
  return {
    ready: next(),
    time(round) {
      const p = next();
      w.postMessage({ round });
      return p;
    },
    stop: () => w.terminate(),
  };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Each group's worker imports `suiteUrl` and builds `(await import(suiteUrl)).default.cases(group, { quick })`;
 * then the groups are timed round by round. Resolves with one row per case (group order): the
 * median ops/s over the rounds, and `rounds`, the ops/s of each round, for paired ratios.
 */
export async function timeGroupsIsolated(suiteUrl, groups, { quick, log = () => {} }) {
  const rounds = roundsFor(quick);
  const workers = groups.map((group) => groupWorker({ suiteUrl: String(suiteUrl), group, quick, rounds }));
  const timeout = quick ? 120_000 : 900_000;
  let timer;
  try {
    const run = (async () => {
      await Promise.all(workers.map((w) => w.ready));
      const perGroup = groups.map(() => []);
      for (let r = 0; r < rounds; r++) {
        for (let g = 0; g < groups.length; g++) perGroup[g].push((await workers[g].time(r)).results);
        log(`  round ${r + 1}/${rounds} done`);
      }
      return perGroup.flatMap((byRound) => byRound[0].map((row, i) => {
        const samples = byRound.map((rows) => rows[i].opsPerSec);
        const opsPerSec = median(samples);
        return { ...row, opsPerSec, bytesPerSec: opsPerSec * row.payloadBytes, rounds: samples };
      }));
    })();
    return await Promise.race([run, new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timing did not finish within ${timeout} ms`)), timeout);
    })]);
  } finally {
    clearTimeout(timer);
    await Promise.all(workers.map((w) => w.stop()));
  }
}
