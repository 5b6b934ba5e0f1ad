// Batched tinybench timing (spec/ecosystem.md §1.2 #14, §2.7). A single call to a wasm export
// sits at tinybench's ~40 ns timer floor, so every sample runs the case body enough times to
// take about `sampleMs`, and reports the per-operation time through `overriddenDuration`.

import { Bench } from 'tinybench';

const now = () => performance.now();

/** Budgets per task, in ms. Quick runs trade precision for a run of every suite under a minute. */
export function budgets(quick) {
  return quick
    ? { time: 250, warmupTime: 100, sampleMs: 0.5 }
    : { time: 2000, warmupTime: 500, sampleMs: 1 };
}

/**
 * How many calls of `fn` make one sample of about `sampleMs`. Runs `fn` for a while first: the
 * first calls run cold code and may allocate, and one slow call must not set the batch size.
 */
function callsPerSample(fn, sampleMs) {
  for (const until = now() + Math.max(5, 10 * sampleMs); now() < until;) fn();
  for (let calls = 1; ; calls *= 2) {
    const t0 = now();
    for (let i = 0; i < calls; i++) fn();
    const dt = now() - t0;
    if (dt >= sampleMs / 2 || calls >= 1 << 24) return Math.max(1, Math.round((calls * sampleMs) / Math.max(dt, 1e-6)));
  }
}

/**
 * Times the cases one after another, in the order given, and returns them (same order) as
 * result rows. A case is { suite, name, engine, payloadBytes, ops, fn }: one call of `fn`
 * performs `ops` operations (packets, copies...) of `payloadBytes` each; `fn` should throw on
 * a wrong result. opsPerSec is 1000 / median per-op latency: the median shrugs off GC pauses
 * and scheduler hiccups that would pull the mean.
 */
export function timeCases(cases, { quick, log = () => {}, rounds = 1, sizing = new Map() }) {
  const { time, warmupTime, sampleMs } = budgets(quick);
  // A round gets its share of the budget (at least 50 ms of samples after 25 ms of warmup).
  const bench = new Bench({ time: Math.max(50, time / rounds), warmupTime: Math.max(25, warmupTime / rounds), throws: true });
  return cases.map((c) => {
    const { fn, ops } = c;
    // Sized right before the first run, so code warmed by earlier cases doesn't skew the
    // estimate; later rounds keep the size so their samples compare.
    const key = label(c);
    if (!sizing.has(key)) sizing.set(key, callsPerSample(fn, sampleMs));
    const calls = sizing.get(key);
    const opsPerSample = calls * ops;
    bench.add(key, () => {
      const t0 = now();
      for (let i = 0; i < calls; i++) fn();
      const dt = now() - t0;
      return { overriddenDuration: dt / opsPerSample, overriddenIterationCost: dt };
    }, { async: false });
    const task = bench.getTask(label(c));
    if (bench.warmup) task.warmupSync();
    task.runSync();
    const r = task.result;
    if (r.state !== 'completed') throw new Error(`${label(c)}: ${r.state}${r.error ? `: ${r.error.stack ?? r.error}` : ''}`);
    const opsPerSec = 1000 / r.latency.p50;
    log(`  ${label(c)}: ${(opsPerSec / 1e6).toFixed(2)} M ops/s (rme ${r.latency.rme.toFixed(1)}%, ${r.latency.samplesCount} samples)`);
    return makeCase(c, opsPerSec);
  });
}

/** A result row in the JSON schema of DESIGN "Benchmarks". */
export function makeCase({ suite, name, engine, payloadBytes }, opsPerSec) {
  return { suite, name, engine, payloadBytes, opsPerSec, bytesPerSec: opsPerSec * payloadBytes };
}

function label(c) {
  return `${c.suite} | ${c.name} | ${c.payloadBytes} B | ${c.engine}`;
}
