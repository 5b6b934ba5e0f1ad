// Serves the "Linux in v86 on sgring's NVMe" page on 127.0.0.1: this folder at /, sgring's dist/
// at /dist/, the v86 package's build at /v86/, and the guest's pieces at /guest/ (SeaBIOS from
// Debian's seabios package, an i386 kernel and an initramfs of your choice).
//   node examples/browser-v86/serve.mjs --bzimage vmlinuz --initrd initrd.cpio [--port 8086]
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const TYPES = { '.html': 'text/html', '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css' };

/**
 * Starts the server. `guest`: { bzimage, initrd, bios?, vgaBios?, cmdline? } (file paths; BIOS
 * default Debian's SeaBIOS). Resolves with { url, close() }.
 */
export async function servePage({ guest, port = 0 }) {
  const v86Build = dirname(createRequire(join(root, 'package.json')).resolve('v86'));
  const files = {
    'bios.bin': guest.bios ?? '/usr/share/seabios/bios.bin',
    'vgabios.bin': guest.vgaBios ?? '/usr/share/seabios/vgabios-stdvga.bin',
    bzImage: guest.bzimage,
    initrd: guest.initrd,
  };
  const cmdline = guest.cmdline ?? 'console=ttyS0,115200 rdinit=/init tsc=reliable mitigations=off quiet';
  const mounts = [['/dist/', join(root, 'dist')], ['/v86/', v86Build], ['/', here]];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    let file = null;
    if (path === '/guest/cmdline') return res.writeHead(200, { 'content-type': 'text/plain' }).end(cmdline);
    if (path.startsWith('/guest/')) file = files[path.slice(7)] ?? null;
    else {
      const [prefix, dir] = mounts.find(([p]) => path.startsWith(p));
      const rel = normalize(path.slice(prefix.length) || 'index.html');
      if (!rel.startsWith('..')) file = join(dir, rel);
    }
    if (!file || !existsSync(file) || !statSync(file).isFile()) return res.writeHead(404).end('not found');
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    createReadStream(file).pipe(res);
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((r) => server.close(r)) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  if (!arg('bzimage') || !arg('initrd')) {
    console.error('usage: node examples/browser-v86/serve.mjs --bzimage FILE --initrd FILE [--port N] [--cmdline TEXT]');
    process.exit(2);
  }
  const { url } = await servePage({ guest: { bzimage: arg('bzimage'), initrd: arg('initrd'), cmdline: arg('cmdline') }, port: Number(arg('port') ?? 8086) });
  console.log(`open ${url}`);
}
