import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import typescript from '@rollup/plugin-typescript';
import { dts } from 'rollup-plugin-dts';

const ts = () => typescript({ tsconfig: './tsconfig.json', include: ['src/**/*.ts'], compilerOptions: { noEmit: false, declaration: false, sourceMap: false } });
// fast-check is a dependency of the fuzzer subpath only, never bundled.
const external = [/^node:/, 'fast-check'];
// The main entry and the sgring/fuzz, sgring/node and sgring/v86 subpaths share their common code through chunks/.
const input = { index: 'src/index.ts', fuzz: 'src/fuzz/index.ts', node: 'src/node/index.ts', v86: 'src/embed/v86.ts' };

/** Writes a .d.cts twin of every .d.ts, its imports pointing at the .cjs files (and so at the twins). */
const cjsTypes = () => ({
  name: 'cjs-types',
  writeBundle(opts, bundle) {
    for (const name of Object.keys(bundle).filter((n) => n.endsWith('.d.ts'))) {
      const text = readFileSync(join(opts.dir, name), 'utf8').replace(/(from '\.{1,2}\/[^']+)\.js'/g, "$1.cjs'");
      writeFileSync(join(opts.dir, name.replace(/\.d\.ts$/, '.d.cts')), text);
    }
  },
});

export default [
  {
    input,
    output: [
      { dir: 'dist', format: 'es', entryFileNames: '[name].mjs', chunkFileNames: 'chunks/[name]-[hash].mjs' },
      { dir: 'dist', format: 'cjs', entryFileNames: '[name].cjs', chunkFileNames: 'chunks/[name]-[hash].cjs' },
    ],
    plugins: [ts()],
    external,
  },
  {
    input: 'src/cli/main.ts',
    output: { file: 'dist/cli.mjs', format: 'es', banner: '#!/usr/bin/env node' },
    plugins: [ts()],
    external,
  },
  // Types: .d.ts for import, .d.cts for require (TypeScript's node16 resolution wants both).
  {
    input,
    output: [
      { dir: 'dist', format: 'es', entryFileNames: '[name].d.ts', chunkFileNames: 'chunks/[name]-[hash].d.ts' },
    ],
    plugins: [dts(), cjsTypes()],
  },
];
