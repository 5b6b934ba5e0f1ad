// One group of a suite's cases in this worker's own isolate (see lib/isolate.mjs): builds the
// cases, says it is ready, then times all of them once per { round } message it gets.

import { workerData, parentPort } from 'node:worker_threads';
import { timeCases } from '../lib/timing.mjs';

const { suiteUrl, group, quick, rounds } = workerData;
const fail = (e) => parentPort.postMessage({ error: `${suiteUrl} group ${group}: ${e?.stack ?? e}` });
try {
  const suite = (await import(suiteUrl)).default;
  const cases = suite.cases(group, { quick });
  const sizing = new Map(); // calls per sample, found in the first round and kept
  parentPort.postMessage({ ready: true });
  parentPort.on('message', ({ round }) => {
    try {
      const results = timeCases(cases, { quick, rounds, sizing, log: round === 0 ? (msg) => console.error(msg) : () => {} });
      parentPort.postMessage({ results });
    } catch (e) {
      fail(e);
    }
  });
} catch (e) {
  fail(e);
}
