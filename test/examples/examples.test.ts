// The README's code is the examples/ folder: every example runs as written (node, importing the
// built package by its name, each checking its own results), and every README block marked
// `<!-- example: examples/NAME.mjs -->` is that file, byte for byte.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const examples = readdirSync(`${root}examples`).filter((f) => f.endsWith('.mjs')).sort();
const readme = readFileSync(`${root}README.md`, 'utf8');

/** What an example needs that npm does not install (a first line `// needs: PATH (how to get it)`), when missing. */
function missingFor(name: string): string | null {
  const need = /^\/\/ needs: (\S+) (.*)$/m.exec(readFileSync(`${root}examples/${name}`, 'utf8').split('\n')[0] ?? '');
  if (!need || existsSync(need[1]!)) return null;
  const why = `examples/${name} needs ${need[1]} ${need[2]}`;
  if (process.env.SGRING_REQUIRE_TOOLS === '1') throw new Error(`must run under CI: ${why}`);
  console.warn(`skipped: ${why}`);
  return why;
}

describe('examples', () => {
  for (const name of examples) {
    it.skipIf(missingFor(name) !== null)(`examples/${name} runs to completion`, () => {
      const out = execFileSync(process.execPath, [`examples/${name}`], { cwd: root, encoding: 'utf8', timeout: 60_000 });
      expect(out.length).toBeGreaterThan(0);
    });
  }

  it('each README block marked as an example is that file, and each such file is in the README', () => {
    const marked = [...readme.matchAll(/<!-- example: examples\/([\w-]+\.mjs)[^>]*-->\n```js\n([\s\S]*?)```\n/g)];
    expect(marked.length).toBeGreaterThanOrEqual(9);
    for (const [, name, body] of marked) expect(body, name).toBe(readFileSync(`${root}examples/${name}`, 'utf8'));
    const inReadme = new Set(marked.map((m) => m[1]));
    expect(examples.filter((e) => !inReadme.has(e) && e !== 'fuzz-bounce-policy.mjs')).toEqual([]);
    expect(readme).toContain('node examples/fuzz-bounce-policy.mjs');
    expect(readme).not.toMatch(/```ts\n/); // every block a user may paste into a .mjs is plain JavaScript
  });
});
