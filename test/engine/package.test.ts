// The published shape: one import works from ESM and from CJS through the exports map, with
// the engine embedded (no .wasm file to locate), and the bundled types exist.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
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
    expect(pkg.exports['.']).toMatchObject({ types: './dist/index.d.ts', import: './dist/index.mjs', require: './dist/index.cjs' });
    expect(pkg.bin.sgring).toBe('./dist/cli.mjs');
    for (const f of ['index.d.ts', 'core.wasm', 'core-threads.wasm']) expect(existsSync(`${root}dist/${f}`)).toBe(true);
    const dts = readFileSync(`${root}dist/index.d.ts`, 'utf8');
    for (const name of ['loadCore', 'loadCoreSync', 'VmbusRing', 'SgringError', 'WriteBatch', 'ReadBatch', 'Doorbell']) expect(dts).toContain(name);
    expect(readFileSync(`${root}dist/cli.mjs`, 'utf8').startsWith('#!/usr/bin/env node')).toBe(true);
  });

  it('keeps Node-only modules out of the library bundle (it must run unchanged in a browser)', () => {
    for (const f of ['index.mjs', 'index.cjs']) {
      const code = readFileSync(`${root}dist/${f}`, 'utf8');
      expect(code).not.toMatch(/node:|require\(['"](fs|worker_threads|path)['"]\)|\bBuffer\./);
    }
  });
});
