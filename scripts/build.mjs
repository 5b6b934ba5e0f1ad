// npm run build: constants -> AssemblyScript (release and threads builds) -> embedded engine ->
// rollup bundles and types in dist/. Skipped when every output is newer than every input, so
// `npm test` after `npm start` does not rebuild (`--force` rebuilds anyway). binaryen's
// "Last converge was suboptimal" (a note that converging stopped early, not a problem) is
// dropped from asc's output; anything else it prints is passed through.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const INPUTS = ['assembly', 'src', 'scripts', 'asconfig.json', 'rollup.config.mjs', 'tsconfig.json', 'package.json', 'package-lock.json'];
const OUTPUTS = ['build/core.wasm', 'build/core-threads.wasm', 'dist/index.mjs', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.d.cts',
  'dist/fuzz.mjs', 'dist/fuzz.cjs', 'dist/node.mjs', 'dist/node.cjs', 'dist/v86.mjs', 'dist/v86.cjs', 'dist/cli.mjs', 'dist/core.wasm', 'dist/core-threads.wasm'];
const GENERATED = [join('src', 'generated'), join('assembly', 'generated')];

/** Newest modification time under `p` (generated files excluded: the build writes them). */
function newest(p) {
  if (GENERATED.some((g) => p.endsWith(g))) return 0;
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  return readdirSync(p).reduce((m, f) => Math.max(m, newest(join(p, f))), st.mtimeMs);
}

function upToDate() {
  const outs = OUTPUTS.map((f) => join(root, f));
  if (!outs.every(existsSync)) return false;
  const oldestOut = Math.min(...outs.map((f) => statSync(f).mtimeMs));
  return INPUTS.every((f) => !existsSync(join(root, f)) || newest(join(root, f)) < oldestOut);
}

function run(cmd, args, filter) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', stdio: filter ? ['inherit', 'pipe', 'pipe'] : 'inherit' });
  if (filter) {
    for (const [text, out] of [[r.stdout, process.stdout], [r.stderr, process.stderr]]) {
      const kept = (text ?? '').split('\n').filter((l) => l.trim() !== '' && !filter.test(l));
      if (kept.length > 0) out.write(kept.join('\n') + '\n');
    }
  }
  if (r.status !== 0) {
    console.error(`build: ${cmd} ${args.join(' ')} failed`);
    process.exit(r.status ?? 1);
  }
}

if (!process.argv.includes('--force') && upToDate()) {
  console.log('build: dist/ is up to date (node scripts/build.mjs --force rebuilds)');
  process.exit(0);
}
const node = process.execPath;
const bin = (m) => join(root, 'node_modules', m);
run(node, [join(root, 'scripts/gen-constants.mjs')]);
for (const target of ['release', 'threads']) {
  run(node, [bin('assemblyscript/bin/asc.js'), 'assembly/index.ts', '--config', 'asconfig.json', '--target', target], /Last converge was suboptimal/);
}
run(node, [join(root, 'scripts/embed-wasm.mjs')]);
run(node, [bin('rollup/dist/bin/rollup'), '-c', '--silent']);
