// Linux inside the v86 emulator (spec/v86.md) as the peer of a device test: Debian's i386 kernel
// and busybox, e2fsprogs for the guest (fetched once from Debian's archive into the cache, the
// i386 architecture added to apt by .ci/run), SeaBIOS from Debian's seabios package, v86 from npm.
// /init loads the modules, runs the script and prints its exit code after "SGRING-EXIT". Plain
// JavaScript (types in v86-guest.d.mts) so the bench suites use it too.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { initramfs, prepareKernel, preparePackages, skipUnlessCi } from './linux-guest.mjs';

const require = createRequire(import.meta.url);
const SEABIOS = '/usr/share/seabios';
/** The guest's user space: busybox and e2fsprogs with their libraries (i386). */
const TOOLS = ['busybox-static:i386', 'e2fsprogs:i386', 'libblkid1:i386', 'libc6:i386', 'libcom-err2:i386', 'libext2fs2:i386', 'libss2:i386', 'libuuid1:i386'];
/** The NVMe stack and ext4 with the crypto modules their checksums load on demand. */
export const V86_NVME_MODULES = ['crc64_rocksoft_generic', 'crct10dif_generic', 'nvme', 'ext4', 'crc32c_generic'];

/** Why Linux cannot run in v86 here (the v86 package, SeaBIOS, cpio, i386 packages from apt), or null. */
export function v86GuestMissing() {
  try {
    require.resolve('v86');
  } catch {
    return 'the v86 package is not installed (npm ci installs it as a dev dependency)';
  }
  if (!existsSync(join(SEABIOS, 'bios.bin')) || !existsSync(join(SEABIOS, 'vgabios-stdvga.bin'))) return 'SeaBIOS is not installed (apt-get install seabios)';
  if (spawnSync('cpio', ['--version']).status !== 0) return 'cpio is not installed (apt-get install cpio)';
  if (spawnSync('readelf', ['--version']).status !== 0) return 'readelf is not installed (apt-get install binutils)';
  const arch = spawnSync('dpkg', ['--print-foreign-architectures'], { encoding: 'utf8' }).stdout ?? '';
  if (!/\bi386\b/.test(arch)) return "apt has no i386 architecture (dpkg --add-architecture i386 && apt-get update)";
  return null;
}

/** v86GuestMissing(), failing under SGRING_REQUIRE_TOOLS=1 and warning (the test skipped) elsewhere. */
export function v86GuestSkip(what) {
  return skipUnlessCi(what, v86GuestMissing());
}

const bufferOf = (file) => {
  const b = readFileSync(file);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
};

/**
 * The pieces a boot needs: Debian's i386 kernel and an initramfs of `modules` whose script is
 * `lines` (after a watchdog that prints the kernel log, before `exit 0`), busybox and e2fsprogs
 * inside. remove() deletes the initramfs.
 */
export function v86GuestFiles({ modules, lines, timeoutMs = 120_000 }) {
  const k = prepareKernel(undefined, 'linux-image-686:i386');
  const tools = preparePackages('i386-tools', TOOLS);
  const script = [`(sleep ${Math.max(10, Math.floor(timeoutMs / 1000) - 25)}; dmesg | tail -40; echo SGRING-EXIT 124) &`, ...lines, 'exit 0', ''].join('\n');
  const rd = initramfs(k, modules, script, ['/sbin/mke2fs', '/sbin/e2fsck'].map((path) => ({ root: tools, path })), {
    busybox: join(tools, 'bin/busybox'),
    files: [['/usr/sbin/mke2fs', join(tools, 'sbin/mke2fs')], ['/usr/sbin/e2fsck', join(tools, 'sbin/e2fsck')]],
  });
  return { bzimage: k.vmlinuz, initrd: rd.path, bios: join(SEABIOS, 'bios.bin'), vgaBios: join(SEABIOS, 'vgabios-stdvga.bin'), remove: rd.remove };
}

/** The kernel command line the guests boot with. */
export const V86_CMDLINE = 'console=ttyS0,115200 rdinit=/init tsc=reliable mitigations=off nvme_core.admin_timeout=5 quiet';

/**
 * Boots the i386 kernel in v86 (256 MiB, serial console) with the pieces of v86GuestFiles. `attach`
 * runs once the emulator is loaded and before it runs: the place to plug devices in; `ide` (an
 * ArrayBuffer) becomes v86's own IDE disk. Resolves with the console output, the exit code (null
 * on a crash or the timeout) and the boot time in ms.
 */
export async function runV86Guest({ modules, lines, attach, timeoutMs = 120_000, memoryMiB = 256, ide, onOutput }) {
  const { V86 } = await import('v86');
  const files = v86GuestFiles({ modules, lines, timeoutMs });
  let emulator;
  try {
    emulator = new V86({
      wasm_path: require.resolve('v86/build/v86.wasm'),
      bios: { buffer: bufferOf(files.bios) },
      vga_bios: { buffer: bufferOf(files.vgaBios) },
      bzimage: { buffer: bufferOf(files.bzimage) },
      initrd: { buffer: bufferOf(files.initrd) },
      cmdline: V86_CMDLINE,
      memory_size: memoryMiB << 20,
      autostart: false,
      disable_speaker: true,
      disable_keyboard: true,
      disable_mouse: true,
      ...(ide ? { hda: { buffer: ide } } : {}), // v86's own IDE disk (the peer the bench compares with)
    });
    const start = performance.now();
    let output = '';
    let settle;
    const ended = new Promise((r) => (settle = r));
    emulator.add_listener('serial0-output-byte', (b) => {
      const ch = String.fromCharCode(b);
      output += ch;
      onOutput?.(ch);
      if (ch === '\n' && /SGRING-EXIT \d+\r?\n$/.test(output.slice(-20))) settle();
    });
    emulator.add_listener('emulator-loaded', () => {
      try {
        attach?.(emulator);
        emulator.run();
      } catch (e) {
        output += `\nattach failed: ${e.stack}\n`;
        settle();
      }
    });
    const timer = setTimeout(settle, timeoutMs);
    await ended;
    clearTimeout(timer);
    const m = /SGRING-EXIT (\d+)/.exec(output);
    return { output, code: m ? Number(m[1]) : null, ms: performance.now() - start };
  } finally {
    await emulator?.destroy?.();
    files.remove();
  }
}
