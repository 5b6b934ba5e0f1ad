// A real Linux kernel as the peer of a device test (spec/linux-guest.md): Debian's own kernel,
// downloaded once into a cache folder, booted under QEMU (TCG) with a busybox initramfs that
// loads the modules asked for, runs one shell script and powers off, printing the script's exit
// code after a marker. Host sockets only on 127.0.0.1; QEMU is ended by pid. Plain JavaScript
// (types in linux-guest.d.mts) so the bench suites use it too.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, copyFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
/** Why a Linux guest cannot run here (qemu, busybox-static, cpio, apt missing), or null. */
export function linuxGuestMissing() {
  for (const [cmd, args, pkg] of [['qemu-system-x86_64', ['--version'], 'qemu-system-x86'], ['cpio', ['--version'], 'cpio'], ['depmod', ['--version'], 'kmod']]) {
    if (spawnSync(cmd, args).status !== 0)
      return `${cmd} is not installed (apt-get install ${pkg})`;
  }
  if (!existsSync('/bin/busybox') || !/statically linked/.test(spawnSync('file', ['/bin/busybox'], { encoding: 'utf8' }).stdout ?? 'statically linked'))
    return 'a static /bin/busybox is needed (apt-get install busybox-static)';
  return null;
}
/**
 * linuxGuestMissing() with the rule every Linux guest test follows: under SGRING_REQUIRE_TOOLS=1
 * (CI) a missing piece fails the file; elsewhere the test is skipped with the reason printed.
 */
export function linuxGuestSkip(what) {
  return skipUnlessCi(what, linuxGuestMissing());
}
/** The rule for a test whose tool is `missing` (a reason, or null): fail under SGRING_REQUIRE_TOOLS=1, else skip saying why. */
export function skipUnlessCi(what, missing) {
  if (missing && process.env.SGRING_REQUIRE_TOOLS === '1') throw new Error(`${what} must run under CI: ${missing}`);
  if (missing) console.warn(`${what} is skipped: ${missing}`);
  return missing;
}
/**
 * Debian's kernel (the package `meta` depends on: linux-image-amd64, or linux-image-686:i386 for
 * v86), fetched and unpacked once into `cache`.
 */
export function prepareKernel(cache = process.env.SGRING_LINUX_CACHE ?? join(tmpdir(), 'sgring-linux'), meta = 'linux-image-amd64') {
  const root = join(cache, meta === 'linux-image-amd64' ? 'root' : `root-${meta.replace(/[^a-z0-9]+/g, '-')}`);
  if (!existsSync(join(root, 'boot'))) {
    mkdirSync(cache, { recursive: true });
    const deps = execFileSync('apt-cache', ['depends', meta], { encoding: 'utf8' });
    const pkg = /Depends: (linux-image-\d\S*)/.exec(deps)?.[1];
    if (!pkg)
      throw new Error(`no kernel package behind ${meta}:\n${deps}`);
    execFileSync('apt-get', ['download', pkg], { cwd: cache, stdio: 'ignore' });
    const deb = readdirSync(cache).find((f) => f.startsWith(pkg.replace(/:.*$/, '')) && f.endsWith('.deb'));
    execFileSync('dpkg-deb', ['-x', join(cache, deb), root]);
    rmSync(join(cache, deb));
    const v = readdirSync(join(root, 'lib/modules'))[0];
    execFileSync('depmod', ['-b', root, v]);
  }
  const version = readdirSync(join(root, 'lib/modules'))[0];
  return { vmlinuz: join(root, 'boot', `vmlinuz-${version}`), root, version };
}
/** Debian packages fetched and unpacked once into `cache`/`name` (for guest binaries the host does not have installed). */
export function preparePackages(name, pkgs, cache = process.env.SGRING_LINUX_CACHE ?? join(tmpdir(), 'sgring-linux')) {
  const root = join(cache, name);
  if (!existsSync(join(root, '.complete'))) {
    const dl = join(cache, `${name}.download`);
    rmSync(dl, { recursive: true, force: true });
    mkdirSync(dl, { recursive: true });
    execFileSync('apt-get', ['download', ...pkgs], { cwd: dl, stdio: 'ignore' });
    for (const deb of readdirSync(dl).filter((f) => f.endsWith('.deb')))
      execFileSync('dpkg-deb', ['-x', join(dl, deb), root]);
    rmSync(dl, { recursive: true, force: true });
    writeFileSync(join(root, '.complete'), pkgs.join('\n'));
  }
  return root;
}
/** `modules` (names such as 'virtio_net') with everything they need, dependencies first, as paths under lib/modules/VERSION. */
function withDependencies(k, modules) {
  const dep = new Map();
  for (const line of readFileSync(join(k.root, 'lib/modules', k.version, 'modules.dep'), 'utf8').split('\n')) {
    const [m, rest] = line.split(':');
    if (m)
      dep.set(m, rest.trim().split(/\s+/).filter(Boolean));
  }
  const byName = new Map([...dep.keys()].map((p) => [p.slice(p.lastIndexOf('/') + 1).replace(/\.ko.*$/, '').replace(/-/g, '_'), p]));
  const order = [];
  const visit = (p) => {
    if (order.includes(p))
      return;
    for (const d of dep.get(p) ?? [])
      visit(d);
    order.push(p);
  };
  for (const m of modules) {
    const p = byName.get(m.replace(/-/g, '_'));
    if (!p)
      throw new Error(`module ${m} is not in ${k.version}`);
    visit(p);
  }
  return order;
}
/**
 * [host file, guest path] for a binary and each shared library it needs (the loader included):
 * `ldd` for a host binary; for one inside an unpacked package tree (any architecture) its ELF
 * NEEDED entries and interpreter, found in that tree's library folders.
 */
function filesOf(b) {
  if (typeof b === 'string') {
    const out = execFileSync('ldd', [b], { encoding: 'utf8' });
    return [b, ...[...out.matchAll(/(\/\S+\.so[^\s]*)/g)].map((m) => m[1])].map((f) => [f, f]);
  }
  const dirs = ['lib', 'lib/x86_64-linux-gnu', 'lib/i386-linux-gnu', 'usr/lib/x86_64-linux-gnu', 'usr/lib/i386-linux-gnu'];
  const found = new Map(); // guest path -> host file
  // A library comes from the tree, else (a package of the host's architecture) from the host.
  const locate = (guest) => [b.root, '/'].map((r) => join(r, guest)).find((f) => existsSync(f));
  const visit = (guest) => {
    if (found.has(guest)) return;
    const host = locate(guest);
    if (!host) throw new Error(`${b.path} needs ${guest}, which is neither under ${b.root} nor on the host`);
    found.set(guest, host);
    const dyn = execFileSync('readelf', ['-dlW', host], { encoding: 'utf8' });
    const interp = /program interpreter: ([^\]]+)\]/.exec(dyn)?.[1];
    if (interp) visit(interp);
    for (const [, lib] of dyn.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)) {
      // The tree's own folders first: the host's could hold the same name for another architecture.
      const dir = dirs.find((d) => existsSync(join(b.root, d, lib))) ?? dirs.find((d) => existsSync(join('/', d, lib)));
      if (!dir) throw new Error(`${b.path} needs ${lib}, which is neither under ${b.root} nor on the host`);
      visit(`/${dir}/${lib}`);
    }
  };
  visit(b.path.startsWith('/') ? b.path : `/${b.path}`);
  return [...found].map(([to, from]) => [from, to]);
}
/**
* An initramfs: busybox, the modules (loaded in order by /init), host `binaries` (such as
* /sbin/mke2fs) with their libraries at the same paths, and /script.sh, whose exit code /init
* prints after "SGRING-EXIT".
*/
export function initramfs(k, modules, script, binaries = [], o = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'sgring-initrd-'));
  const tree = join(dir, 'tree');
  for (const d of ['bin', 'proc', 'sys', 'dev', 'lib/modules', 'tmp'])
    mkdirSync(join(tree, d), { recursive: true });
  copyFileSync(o.busybox ?? '/bin/busybox', join(tree, 'bin/busybox'));
  const files = new Map(binaries.flatMap(filesOf).map(([from, to]) => [to, from])); // guest path -> host file, once each
  for (const [to, from] of o.files ?? []) files.set(to, from);
  for (const [to, from] of files) {
    mkdirSync(join(tree, dirname(to)), { recursive: true });
    copyFileSync(from, join(tree, to));
    chmodSync(join(tree, to), 0o755);
  }
  const order = withDependencies(k, modules);
  for (const m of order) {
    const to = join(tree, 'lib/modules', m);
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(join(k.root, 'lib/modules', k.version, m), to);
  }
  writeFileSync(join(tree, 'init'), [
    '#!/bin/busybox sh',
    '/bin/busybox --install -s /bin',
    'mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev',
    ...order.map((m) => `insmod /lib/modules/${m}`),
    'sh /script.sh; echo "SGRING-EXIT $?"',
    'poweroff -f',
    '',
  ].join('\n'));
  chmodSync(join(tree, 'init'), 0o755);
  writeFileSync(join(tree, 'script.sh'), script);
  const path = join(dir, 'initrd.cpio');
  execFileSync('sh', ['-c', `cd '${tree}' && find . | cpio -o -H newc --quiet > '${path}'`]);
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
/**
* Boots `k` with `initrd` under QEMU (TCG, 256 MiB, serial console on stdout) plus `args`, while
* `tick` runs between event-loop turns (the Node side of the devices). Resolves with the console
* output and the script's exit code (null when the marker never came: a crash or the timeout).
*/
export async function bootLinux(k, initrd, args, o) {
  const qemu = spawn('qemu-system-x86_64', [
    '-accel', 'tcg', '-cpu', 'max', '-m', '256', '-smp', '1', '-nodefaults', '-no-user-config', '-nographic', '-serial', 'stdio', '-no-reboot',
    '-kernel', k.vmlinuz, '-initrd', initrd, '-append', 'console=ttyS0 panic=-1 quiet', ...args,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  qemu.stdout.on('data', (d) => (output += d));
  qemu.stderr.on('data', (d) => (output += d));
  let exited = false;
  qemu.once('exit', () => (exited = true));
  const deadline = performance.now() + o.timeoutMs;
  while (!exited && performance.now() < deadline) {
    o.tick?.();
    await new Promise((r) => setTimeout(r, 1)); // the CPU is QEMU's meanwhile
  }
  if (!exited) {
    qemu.kill('SIGKILL');
    await new Promise((r) => qemu.once('exit', r));
  }
  const m = /SGRING-EXIT (\d+)/.exec(output);
  return { output, code: m ? Number(m[1]) : null };
}

/**
 * Boots Debian's kernel with an initramfs of `modules` and `binaries` whose script is `lines`,
 * after a watchdog (a step that hangs still prints the kernel log before `timeoutMs` ends) and
 * before `exit 0`; returns what bootLinux returns.
 */
export async function runGuest({ modules, lines, args = [], binaries = [], timeoutMs = 120_000, tick }) {
  const k = prepareKernel();
  const script = [`(sleep ${Math.max(10, Math.floor(timeoutMs / 1000) - 20)}; dmesg | tail -40; poweroff -f) &`, ...lines, 'exit 0', ''].join('\n');
  const rd = initramfs(k, modules, script, binaries);
  try {
    return await bootLinux(k, rd.path, args, { timeoutMs, tick });
  } finally {
    rd.remove();
  }
}
