// The one table of wire offsets, sizes, layout slots and status codes, merged from one file
// per engine module in scripts/constants/ (each exports `constants` and `statuses`).
// `npm run gen` turns it into assembly/generated/constants.ts and src/generated/constants.ts,
// so the Wasm engine and the TypeScript side can never disagree about a number.
import { readdirSync } from 'node:fs';

const dir = new URL('./constants/', import.meta.url);
const modules = await Promise.all(
  readdirSync(dir).filter((f) => f.endsWith('.mjs')).sort().map((f) => import(new URL(f, dir)).then((m) => ({ file: f, ...m }))),
);

export const constants = {};
export const statuses = [];
for (const m of modules) {
  for (const [name, value] of Object.entries(m.constants ?? {})) {
    if (name in constants) throw new Error(`constant ${name} defined twice (${m.file})`);
    if (!Number.isInteger(value)) throw new Error(`constant ${name} in ${m.file} is not an integer`);
    constants[name] = value;
  }
  for (const s of m.statuses ?? []) {
    const clash = statuses.find((t) => t.name === s.name || t.value === s.value);
    if (clash) throw new Error(`status ${s.name} (${s.value}) in ${m.file} clashes with ${clash.name} (${clash.value})`);
    statuses.push(s);
  }
}
statuses.sort((a, b) => b.value - a.value);
