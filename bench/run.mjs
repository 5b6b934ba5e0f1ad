// npm run bench [-- --quick] [-- suite...]: runs every suite (or the named ones) over the built
// package, prints meta + a markdown table + key figures to stdout (progress goes to stderr),
// and writes bench/results/latest.json (a run of named suites writes partial.json instead, so the
// full record is not replaced by a part of it). Exits 1 when any case failed.

import { fileURLToPath } from 'node:url';
import { collectMeta } from './lib/meta.mjs';
import { writeResults } from './lib/json.mjs';
import { casesTable, keyFigures, keyFiguresLines, metaLines } from './lib/table.mjs';
import { readdirSync } from 'node:fs';

/**
 * Every suite: each module in suites/ exports a default { name, keyFigures, run(ctx) -> result
 * rows }, plus cases(group, { quick }) when it times groups in separate isolates (lib/isolate.mjs).
 * Run in file-name order.
 */
const suiteDir = new URL('./suites/', import.meta.url);
const SUITES = await Promise.all(
  readdirSync(suiteDir).filter((f) => f.endsWith('.mjs')).sort().map(async (f) => (await import(new URL(f, suiteDir))).default),
);

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.filter((a) => !a.startsWith('--'));
const unknown = only.filter((n) => !SUITES.some((s) => s.name === n));
if (unknown.length > 0) {
  console.error(`unknown suite(s): ${unknown.join(', ')}; known: ${SUITES.map((s) => s.name).join(', ')}`);
  process.exit(2);
}
const suites = only.length > 0 ? SUITES.filter((s) => only.includes(s.name)) : SUITES;

const failures = [];
const ctx = {
  quick,
  log: (msg) => console.error(msg),
  fail: (msg) => failures.push(msg),
};

const meta = collectMeta({ quick });
const cases = [];
const figures = [];
for (const suite of suites) {
  const t0 = performance.now();
  ctx.log(`suite ${suite.name}${quick ? ' (quick)' : ''}`);
  try {
    cases.push(...(await suite.run(ctx)));
  } catch (e) {
    ctx.fail(`${suite.name}: ${e.stack ?? e}`);
  }
  figures.push(...(suite.keyFigures ?? []));
  ctx.log(`suite ${suite.name} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

const out = [
  '## sgring benchmarks', '', ...metaLines(meta), '',
  ...casesTable(cases), '',
  '### Key figures', '', ...keyFiguresLines(keyFigures(cases, figures)), '',
  ...(failures.length > 0 ? ['### FAILED', '', ...failures.map((f) => `- ${f.split('\n')[0]}`), ''] : []),
];
console.log(out.join('\n'));

const jsonPath = fileURLToPath(new URL(only.length > 0 ? './results/partial.json' : './results/latest.json', import.meta.url));
writeResults(jsonPath, meta, cases);
ctx.log(`wrote ${jsonPath}`);

if (failures.length > 0) {
  console.error(`\n!!! ${failures.length} benchmark case(s) FAILED:`);
  for (const f of failures) console.error(`!!! ${f}`);
  process.exitCode = 1;
}
