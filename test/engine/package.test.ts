// The published shape: one import works from ESM and from CJS through the exports map, with
// the engine embedded (no .wasm file to locate), and the bundled types exist.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const run = (args: string[]) => execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' });

const program = `
  const core = sg.loadCoreSync();
  const ring = sg.VmbusRing.create(core, { dataSize: 4096 });
  ring.writePacket({ type: 6, payload: new Uint8Array([7, 8, 9]) });
  const p = ring.readPacket();
  console.log(core.engine, Array.from(p.payload.subarray(0, 3)).join(','), typeof sg.SgringError);`;

describe('package', () => {
  it('works as ESM through the package name', () => {
    expect(run(['--input-type=module', '-e', `import * as sg from 'sgring';${program}`]).trim()).toBe('wasm 7,8,9 function');
  });

  it('works as CommonJS through the package name', () => {
    expect(run(['-e', `const sg = require('sgring');${program}`]).trim()).toBe('wasm 7,8,9 function');
  });

  it('ships bundled types, the engine files for CSP users, and a bin', () => {
    const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8'));
    for (const n of ['index', 'fuzz', 'node', 'v86']) {
      expect(pkg.exports[n === 'index' ? '.' : `./${n}`]).toEqual({
        import: { types: `./dist/${n}.d.ts`, default: `./dist/${n}.mjs` }, require: { types: `./dist/${n}.d.cts`, default: `./dist/${n}.cjs` },
      });
    }
    expect(pkg.exports['./core.wasm']).toBe('./dist/core.wasm');
    expect(pkg.exports['./core-threads.wasm']).toBe('./dist/core-threads.wasm');
    expect(pkg.bin.sgring).toBe('./dist/cli.mjs');
    for (const f of ['index.d.ts', 'index.d.cts', 'fuzz.d.ts', 'fuzz.d.cts', 'core.wasm', 'core-threads.wasm']) expect(existsSync(`${root}dist/${f}`)).toBe(true);
    const dts = readFileSync(`${root}dist/index.d.ts`, 'utf8');
    for (const name of ['loadCore', 'loadCoreSync', 'VmbusRing', 'SgringError', 'WriteBatch', 'ReadBatch', 'Doorbell']) expect(dts).toContain(name);
    expect(readFileSync(`${root}dist/cli.mjs`, 'utf8').startsWith('#!/usr/bin/env node')).toBe(true);
  });

  it('keeps Node-only modules out of the library bundle (it must run unchanged in a browser), and fast-check out of the main entry', () => {
    const chunks = readdirSync(`${root}dist/chunks`).map((f) => `chunks/${f}`);
    for (const f of ['index.mjs', 'index.cjs', ...chunks.filter((c) => /\.[cm]js$/.test(c))]) {
      const code = readFileSync(`${root}dist/${f}`, 'utf8');
      expect(code).not.toMatch(/node:|require\(['"](fs|worker_threads|path)['"]\)|\bBuffer\./);
      expect(code, f).not.toMatch(/fast-check/);
    }
    expect(readFileSync(`${root}dist/fuzz.mjs`, 'utf8')).toMatch(/from 'fast-check'/);
    // v86 is an optional peer: sgring/v86 reaches the emulator it is handed and never imports it.
    for (const f of ['v86.mjs', 'v86.cjs', 'index.mjs']) expect(readFileSync(`${root}dist/${f}`, 'utf8'), f).not.toMatch(/from ['"]v86['"]|(import|require)\(['"]v86['"]\)/);
    const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8'));
    expect([pkg.peerDependencies.v86, pkg.peerDependenciesMeta.v86.optional]).toEqual(['>=0.5.462 <0.6.0', true]);
    expect(run(['--input-type=module', '-e', `await import('sgring'); console.log(Object.keys(await import('sgring/fuzz')).sort().join(','))`]).trim())
      .toBe('bouncePolicies,findCounterexample,formatCounterexample,freebsdSgBounce,linuxLegacyBounce');
  });
});
