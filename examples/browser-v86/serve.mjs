// Serves the "Linux in v86 on sgring's NVMe" page on 127.0.0.1 (examples/browser/serve.mjs's
// server): this folder at /, sgring's dist/ at /dist/, the v86 package's build at /v86/, and the
// guest's pieces at /guest/ (SeaBIOS from Debian's seabios package, an i386 kernel and an
// initramfs of your choice).
//   node examples/browser-v86/serve.mjs --bzimage vmlinuz --initrd initrd.cpio [--port 8086]
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveStatic } from '../browser/serve.mjs';

/**
 * Starts the server. `guest`: { bzimage, initrd, bios?, vgaBios?, cmdline? } (file paths; BIOS
 * default Debian's SeaBIOS). Resolves with { url, close() }.
 */
export function servePage({ guest, port = 0 }) {
  const cmdline = guest.cmdline ?? 'console=ttyS0,115200 rdinit=/init tsc=reliable mitigations=off quiet';
  return serveStatic({
    dir: dirname(fileURLToPath(import.meta.url)),
    port,
    files: {
      '/guest/bios.bin': guest.bios ?? '/usr/share/seabios/bios.bin',
      '/guest/vgabios.bin': guest.vgaBios ?? '/usr/share/seabios/vgabios-stdvga.bin',
      '/guest/bzImage': guest.bzimage,
      '/guest/initrd': guest.initrd,
      '/guest/cmdline': () => cmdline,
    },
  });
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
