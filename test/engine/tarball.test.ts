// The packed tarball, as a user gets it: `npm pack` on this checkout (prepack builds), installed
// into an empty project, imported from ESM and CommonJS (main entry and sgring/fuzz), its wasm
// files reachable through the exports map, and its types checked by tsc for a CommonJS project
// (module node16), an ESM one, and one without the DOM lib.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const tsc = join(root, 'node_modules/typescript/bin/tsc');
let dir = '';
let files: string[] = [];

const node = (args: string[]) => execFileSync(process.execPath, args, { cwd: dir, encoding: 'utf8' });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sgring-pack-'));
  // --ignore-scripts: the build ran before the tests; prepack itself is checked in package.test.ts.
  const out = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: root, encoding: 'utf8' });
  const info = JSON.parse(out)[0] as { filename: string; files: { path: string }[] };
  files = info.files.map((f) => f.path);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(dir, info.filename)], { cwd: dir, encoding: 'utf8' });
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('holds the bundles, both kinds of types, the wasm files, README and LICENSE, and no source maps', () => {
    for (const f of ['LICENSE', 'README.md', 'package.json', 'dist/index.mjs', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.d.cts',
      'dist/fuzz.mjs', 'dist/fuzz.cjs', 'dist/fuzz.d.ts', 'dist/fuzz.d.cts', 'dist/core.wasm', 'dist/core-threads.wasm', 'dist/cli.mjs']) {
      expect(files, f).toContain(f);
    }
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
  });

  it('imports from ESM and CommonJS, main entry and sgring/fuzz, and resolves sgring/core.wasm', () => {
    const use = `const c = sg.loadCoreSync(); const r = sg.VmbusRing.create(c, { dataSize: 4096 });
      r.writePacket({ type: 6, payload: new Uint8Array([5]) });
      console.log(r.readPacket().payload[0], typeof fz.findCounterexample, typeof fz.bouncePolicies.optimal);`;
    expect(node(['--input-type=module', '-e', `import * as sg from 'sgring'; import * as fz from 'sgring/fuzz'; ${use}`]).trim()).toBe('5 function function');
    expect(node(['-e', `const sg = require('sgring'); const fz = require('sgring/fuzz'); ${use}`]).trim()).toBe('5 function function');
    const wasm = node(['--input-type=module', '-e', `import { readFileSync } from 'node:fs'; import { createRequire } from 'node:module';
      const req = createRequire(process.cwd() + '/x.js');
      for (const f of ['sgring/core.wasm', 'sgring/core-threads.wasm']) console.log(WebAssembly.validate(readFileSync(req.resolve(f))));`]);
    expect(wasm.trim().split('\n')).toEqual(['true', 'true']);
  });

  it.each([
    ['a CommonJS project (module node16)', { module: 'node16', moduleResolution: 'node16', lib: ['ES2022', 'DOM'] }, 'cts'],
    ['an ESM project (module node16)', { module: 'node16', moduleResolution: 'node16', lib: ['ES2022', 'DOM'] }, 'mts'],
    ['a project without the DOM lib', { module: 'ESNext', moduleResolution: 'bundler', lib: ['ES2022'], types: [] }, 'ts'],
  ])('type-checks in %s', (_name, options, ext) => {
    const sub = join(dir, `types-${ext}`);
    mkdirSync(sub, { recursive: true });
    const src = `import { loadCoreSync, VmbusRing, type Core } from 'sgring';
      import { findCounterexample } from 'sgring/fuzz';
      const core: Core = loadCoreSync({ guestBytes: 1 << 20 });
      const ring = VmbusRing.create(core, { dataSize: 4096 });
      const ok: boolean = ring.writePacket({ type: 6, payload: new Uint8Array(1) }).written;
      const n: number = core.memory.buffer.byteLength;
      export const out = [ok, n, typeof findCounterexample];\n`;
    writeFileSync(join(sub, `a.${ext}`), src);
    writeFileSync(join(sub, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', strict: true, noEmit: true, skipLibCheck: false, types: [], ...options },
      files: [`a.${ext}`],
    }));
    writeFileSync(join(sub, 'package.json'), JSON.stringify({ name: `t-${ext}`, private: true }));
    let out = '';
    try {
      execFileSync(process.execPath, [tsc, '-p', sub], { cwd: sub, encoding: 'utf8' });
    } catch (e) {
      out = String((e as { stdout?: string }).stdout ?? e);
    }
    expect(out).toBe('');
  });
});
