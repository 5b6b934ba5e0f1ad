// `npm run docs`: typedoc builds the API reference from the doc comments of every entry point
// (the main entry, sgring/fuzz, sgring/node, sgring/v86), with no warning (broken links fail).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

it('typedoc documents every entry point with no warning', () => {
  const out = mkdtempSync(join(tmpdir(), 'sgring-docs-'));
  try {
    execFileSync(process.execPath, [join(root, 'node_modules/typedoc/bin/typedoc'), '--out', out], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
    for (const page of ['classes/index.NvmeController.html', 'classes/index.ExternalDmaDomain.html', 'functions/index.readPcapng.html', 'functions/embed_v86.attachToV86.html', 'classes/node.NvmeTcpTarget.html', 'functions/fuzz.findCounterexample.html']) {
      expect(existsSync(join(out, page)), page).toBe(true);
    }
    expect(readFileSync(join(out, 'classes/index.NvmeController.html'), 'utf8')).toContain('BAR0 register');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}, 60_000);
