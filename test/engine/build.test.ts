// The built Wasm modules: the export surface, no data segments or globals (no AssemblyScript
// statics a second instance could re-initialise, ecosystem §1.2 #8), the memory import per
// build, and [H9] atomic index publication in the shared-memory build.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadCoreSync } from '../../src/index';

const root = new URL('../../', import.meta.url);
const wasm = (name: string) => new WebAssembly.Module(readFileSync(new URL(`build/${name}`, root)));
const wat = (name: string) => readFileSync(new URL(`build/${name}`, root), 'utf8');

/** The body of one function in a .wat file. */
function func(text: string, name: string): string {
  const start = text.indexOf(`(func $assembly/ring/${name} `);
  expect(start, `function ${name} in the wat`).toBeGreaterThanOrEqual(0);
  const next = text.indexOf('\n (func ', start + 1);
  return text.slice(start, next < 0 ? undefined : next);
}

const RING_FUNCS = ['ringWrite', 'ringWritev', 'ringWriteBatch', 'ringRead', 'ringReadBatch'];

describe('engine build artifacts', () => {
  it('both builds export the same functions, each with a reference twin, import one memory and the external-guest read, and define no data or globals', () => {
    const reference = Object.keys(loadCoreSync({ engine: 'reference' }).fn).sort();
    for (const [file, shared] of [['core.wasm', false], ['core-threads.wasm', true]] as const) {
      const m = wasm(file);
      const names = WebAssembly.Module.exports(m).map((e) => e.name).sort();
      expect(names).toEqual(reference);
      for (const ring of RING_FUNCS) expect(names).toContain(ring);
      expect(WebAssembly.Module.imports(m).map((i) => `${i.module}.${i.name}:${i.kind}`).sort()).toEqual(['env.guestRead:function', 'env.memory:memory']);
      const text = wat(file.replace('.wasm', '.wat'));
      expect(text).not.toMatch(/\(data /);
      expect(text).not.toMatch(/\(global /);
      expect(text.includes('shared)')).toBe(shared);
    }
  });

  it('[H9] the shared-memory build publishes and samples ring indices only with atomic accesses', () => {
    const text = wat('core-threads.wat');
    for (const name of RING_FUNCS) {
      const body = func(text, name);
      // The write index sits at header offset 0, the read index at 4: no plain store may hit them.
      expect(body, name).toMatch(/i32\.atomic\.store( offset=4)?\n/);
      expect(body, name).toMatch(/i32\.atomic\.load/);
      expect(body, `${name} has a plain store at offset 0 or 4`).not.toMatch(/\bi32\.store( offset=4)?\n/);
    }
    expect(func(text, 'ringRead')).toMatch(/i32\.atomic\.store offset=4\n/);
    expect(func(text, 'ringWrite')).toMatch(/i32\.atomic\.store\n/);
  });
});

describe('npm run build', () => {
  it('does nothing when dist/ is newer than every input (npm test after npm start does not rebuild)', () => {
    const out = execFileSync(process.execPath, [fileURLToPath(new URL('scripts/build.mjs', root))], { cwd: fileURLToPath(root), encoding: 'utf8' });
    expect(out).toMatch(/dist\/ is up to date/);
  });
});
