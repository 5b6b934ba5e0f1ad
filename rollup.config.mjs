import typescript from '@rollup/plugin-typescript';
import { dts } from 'rollup-plugin-dts';

const ts = () => typescript({ tsconfig: './tsconfig.json', include: ['src/**/*.ts'], compilerOptions: { noEmit: false, declaration: false, sourceMap: true } });
// fast-check is a dependency (the policy fuzzer), not bundled.
const external = [/^node:/, 'fast-check'];

export default [
  {
    input: 'src/index.ts',
    output: [
      { file: 'dist/index.mjs', format: 'es', sourcemap: true },
      { file: 'dist/index.cjs', format: 'cjs', sourcemap: true },
    ],
    plugins: [ts()],
    external,
  },
  {
    input: 'src/cli/main.ts',
    output: { file: 'dist/cli.mjs', format: 'es', sourcemap: true, banner: '#!/usr/bin/env node' },
    plugins: [ts()],
    external,
  },
  {
    input: 'src/index.ts',
    output: { file: 'dist/index.d.ts', format: 'es' },
    plugins: [dts()],
  },
];
