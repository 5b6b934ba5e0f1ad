// Runs groups of timed cases each in a fresh worker thread (its own V8 isolate), one group at
// a time. Engines must not share a process while being timed: once VmbusRing has driven both
// the wasm and the reference engine, its call sites are polymorphic and per-packet numbers
// shift by 15-40% depending on which ran first.

import { runWorkers } from './threads.mjs';

const WORKER = new URL('../workers/time-cases.mjs', import.meta.url);

/**
 * For each group, a worker imports `suiteUrl`, builds `(await import(suiteUrl)).default.cases(group, { quick })`
 * and times them with timeCases. Resolves with every group's result rows, in group order.
 */
export async function timeGroupsIsolated(suiteUrl, groups, { quick }) {
  const rows = [];
  for (const group of groups) {
    const [{ results }] = await runWorkers([{ url: WORKER, data: { suiteUrl: String(suiteUrl), group, quick } }],
      { timeoutMs: quick ? 60_000 : 600_000 });
    rows.push(...results);
  }
  return rows;
}
