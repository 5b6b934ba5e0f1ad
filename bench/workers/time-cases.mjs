// Times one group of a suite's cases in this worker's own isolate (see lib/isolate.mjs).

import { workerData, parentPort } from 'node:worker_threads';
import { timeCases } from '../lib/timing.mjs';

const { suiteUrl, group, quick } = workerData;
try {
  const suite = (await import(suiteUrl)).default;
  const results = timeCases(suite.cases(group, { quick }), { quick, log: (msg) => console.error(msg) });
  parentPort.postMessage({ results });
} catch (e) {
  parentPort.postMessage({ error: `${suiteUrl} group ${group}: ${e?.stack ?? e}` });
}
