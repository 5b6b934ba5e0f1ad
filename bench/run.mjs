// npm run bench [-- --quick] [-- --out FILE] [-- --json] [-- --svg FILE] [-- suite...]: runs every
// suite (or the named ones) over the built package, prints meta + a markdown table + key figures
// to stdout (or, with --json, the run's JSON; progress goes to stderr), writes the run's JSON to
// bench/results/run.json (git-ignored) or to --out FILE, and with --svg FILE a bar chart.
// The committed figures the README quotes are bench/results/latest.json: a full run writes them
// only when asked (--out bench/results/latest.json). Exits 1 when any case failed.

import { parseBenchArgs } from './lib/args.mjs';
import { collectMeta } from './lib/meta.mjs';
import { writeResults } from './lib/json.mjs';
import { casesTable, keyFigures, keyFiguresLines, metaLines } from './lib/table.mjs';
import { readdirSync, writeFileSync } from 'node:fs';
import { ratioChart } from './lib/svg.mjs';

/**
 * Every suite: each module in suites/ exports a default { name, keyFigures, run(ctx) -> result
 * rows }, plus cases(group, { quick }) when it times groups in separate isolates (lib/isolate.mjs).
 * Run in file-name order.
 */
const suiteDir = new URL('./suites/', import.meta.url);
const SUITES = await Promise.all(
  readdirSync(suiteDir).filter((f) => f.endsWith('.mjs')).sort().map(async (f) => (await import(new URL(f, suiteDir))).default),
);

const parsed = parseBenchArgs(process.argv.slice(2), SUITES.map((s) => s.name));
if (parsed.error) {
  console.error(parsed.error);
  process.exit(2);
}
const { quick, only, jsonPath, json, svgPath } = parsed;
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
writeResults(jsonPath, meta, cases);
ctx.log(`wrote ${jsonPath}`);
if (json) console.log(JSON.stringify({ meta, cases: cases.map(({ rounds: _, ...c }) => c), keyFigures: keyFigures(cases, figures) }, null, 2));
else console.log(out.join('\n'));
if (svgPath) {
  writeFileSync(svgPath, ratioChart(cases));
  ctx.log(`wrote ${svgPath}`);
}

if (failures.length > 0) {
  console.error(`\n!!! ${failures.length} benchmark case(s) FAILED:`);
  for (const f of failures) console.error(`!!! ${f}`);
  process.exitCode = 1;
}
