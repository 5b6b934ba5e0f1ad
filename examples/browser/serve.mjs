// A static server on 127.0.0.1 for the browser pages: a page folder at /, sgring's dist/ at /dist/,
// the v86 package's build at /v86/ (when installed), extra files at their own paths, and the
// COOP/COEP headers that make the page cross-origin isolated (shared memory needs them).
//   npm run demo:browser    (this folder's page, isolated, on port 8080)
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const TYPES = { '.html': 'text/html', '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css', '.txt': 'text/plain' };

/**
 * Serves `dir` at /. `files`: { '/path': file or () => string }. `isolated`: send COOP/COEP.
 * Resolves with { url, close() }.
 */
export async function serveStatic({ dir, files = {}, isolated = false, port = 0 }) {
  const mounts = [['/dist/', join(root, 'dist')], ['/', dir]];
  try {
    mounts.unshift(['/v86/', dirname(createRequire(join(root, 'package.json')).resolve('v86'))]);
  } catch {
    // v86 is optional: only the v86 page needs it
  }
  const headers = isolated ? { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' } : {};
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    let file = null;
    const extra = files[path];
    if (typeof extra === 'function') return res.writeHead(200, { 'content-type': 'text/plain', ...headers }).end(extra());
    if (extra) file = extra;
    else {
      const [prefix, base] = mounts.find(([p]) => path.startsWith(p));
      const rel = normalize(path.slice(prefix.length) || 'index.html');
      if (!rel.startsWith('..')) file = join(base, rel);
    }
    if (!file || !existsSync(file) || !statSync(file).isFile()) return res.writeHead(404, headers).end('not found');
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store', ...headers });
    createReadStream(file).pipe(res);
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((r) => server.close(r)) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { url } = await serveStatic({ dir: here, isolated: true, port: Number(process.env.PORT ?? 8080) });
  console.log(`sgring browser demo: open ${url} (Ctrl-C stops)`);
}
