// The bench command line: [--quick] [--out FILE] [--json] [--svg FILE] [suite...]. Unknown options and suites are
// refused. A run's JSON goes to bench/results/run.json (git-ignored) unless --out names a file,
// so a local run never rewrites the committed bench/results/latest.json by accident.

import { fileURLToPath } from 'node:url';

export const DEFAULT_OUT = fileURLToPath(new URL('../results/run.json', import.meta.url));

/**
 * Returns { quick, only, jsonPath } (plus json: true for --json, the run's JSON on stdout instead
 * of the table, and svgPath for --svg FILE, a bar chart) or { error } for argv (without node and
 * the script).
 */
export function parseBenchArgs(argv, suiteNames) {
  let quick = false;
  let jsonPath = DEFAULT_OUT;
  const extra = {};
  const only = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') quick = true;
    else if (a === '--json') extra.json = true;
    else if (a === '--out' || a === '--svg') {
      const f = argv[++i];
      if (!f || f.startsWith('--')) return { error: `${a} needs a file name` };
      if (a === '--out') jsonPath = f;
      else extra.svgPath = f;
    } else if (a.startsWith('--')) return { error: `unknown option ${a}; known: --quick, --out FILE, --json, --svg FILE` };
    else if (!suiteNames.includes(a)) return { error: `unknown suite ${a}; known: ${suiteNames.join(', ')}` };
    else only.push(a);
  }
  return { quick, only, jsonPath, ...extra };
}
