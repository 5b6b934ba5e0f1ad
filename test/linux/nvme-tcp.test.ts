// A real Linux kernel drives our NVMe controller: Debian's kernel under QEMU (TCG) connects its own
// nvme-tcp host to the NvmeTcpTarget through QEMU's user network (guestfwd to 127.0.0.1): raw
// I/O, an ext4 round trip checked from both sides, and the frankendrive faults under a real
// driver (a drive that stops taking writes; a lost command the kernel recovers from). The
// guest's kernel log lines are kept in the test output.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { drop, IommuDomain, loadCoreSync, MemorySink, MemoryDisk, NvmeController, pageAllocator, PcapngWriter, readOnlyAfter, reincarnation, TapRegistry, traceTap } from '../../src/index';
import { NvmeTcpTarget } from '../../src/node/index';
import { bootLinux, initramfs, linuxGuestMissing, prepareKernel } from '../util/linux-guest.mjs';
import { checkHostSide, EXT4_MODULES, EXT4_TOOLS, ext4RoundTrip } from './ext4';

const missing = linuxGuestMissing();
if (missing && process.env.SGRING_REQUIRE_TOOLS === '1') throw new Error(`the QEMU Linux guest test must run under CI: ${missing}`);
if (missing) console.warn(`the QEMU Linux guest NVMe/TCP test is skipped: ${missing}`);

const SUBNQN = 'nqn.2026-12.io.sgring:test';

function rig(taps?: TapRegistry) {
  const core = loadCoreSync({ guestBytes: 32 << 20 });
  const dma = IommuDomain.create(core, 'nvme0', { mode: 'identity' });
  const disk = MemoryDisk.create(core, { blockCount: (64 << 20) / 512 });
  const controller = new NvmeController(core, { dma, namespaces: [{ backend: disk }], maxQueues: 4, taps });
  const target = new NvmeTcpTarget({ controller, allocPages: pageAllocator(core), subnqn: SUBNQN, port: 0 });
  return { core, disk, controller, target };
}

const net = (port: number) => [
  '-netdev', `user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:4420-cmd:busybox nc 127.0.0.1 ${port}`,
  '-device', 'virtio-net-pci,netdev=n0,romfile=',
];
const up = 'ip link set lo up; ip link set eth0 up; ip addr add 10.0.2.15/24 dev eth0';
const connect = `echo "transport=tcp,traddr=10.0.2.100,trsvcid=4420,nqn=${SUBNQN},hostnqn=nqn.2026-12.io.sgring:linux,nr_io_queues=1,nr_write_queues=1,reconnect_delay=1" > /dev/nvme-fabrics || exit 10`;
const waitDisk = 'for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/nvme0n1 ] && break; sleep 0.5; done';
/** The guest's signal to the test: a direct read of exactly the namespace's last three blocks. */
const LAST = (64 << 20) / 512 - 1;
const signal = `dd if=/dev/nvme0n1 of=/dev/null bs=1536 skip=${(LAST - 2) * 512} count=1 iflag=direct,skip_bytes 2>/dev/null`;
const klog = 'dmesg | grep -E "nvme|EXT4|I/O error|Buffer I/O" | sed "s/^/KLOG /" | head -40';

/** Calls `fn` once, when the guest sends its signal. */
function onSignal(taps: TapRegistry, fn: () => void) {
  let fired = false;
  taps.attach('nvme:io:decode', (ctx) => {
    const { lba, blocks, kind } = ctx.io;
    if (!fired && kind === 'read' && lba === BigInt(LAST - 2) && blocks === 3) {
      fired = true;
      fn();
    }
  });
}

/** The trace tshark reads: 0 malformed packets, and the status of each I/O completion. */
function decode(sink: MemorySink): { malformed: string; statuses: string[]; comments: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'sgring-nvme-trace-'));
  try {
    const file = join(dir, 'trace.pcapng');
    writeFileSync(file, sink.bytes());
    const run = (...a: string[]) => execFileSync('tshark', ['-r', file, ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 26 });
    return {
      malformed: run('-Y', '_ws.malformed || _ws.expert.severity >= 0x00800000').trim(),
      statuses: run('-Y', 'nvme.cqe.cid && nvme-tcp.cmd.qid != 0', '-T', 'fields', '-e', 'nvme.cqe.status.sct', '-e', 'nvme.cqe.status.sc').trim().split('\n'),
      comments: run('-Y', 'frame.comment', '-T', 'fields', '-e', 'frame.comment').trim().split('\n').filter(Boolean),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

it.skipIf(missing !== null)('Linux nvme-tcp connects with two I/O queues, writes 1 MiB and reads it back; the disk holds the bytes', async () => {
  const kernel = prepareKernel();
  const { core, disk, target } = rig();
  await target.listen();
  const script = [
    up,
    '(sleep 60; dmesg | tail -40; poweroff -f) &', // a hung step still shows the kernel log
    // the discovery controller first, as `nvme discover` would reach it (the log page itself needs nvme-cli's ioctl)
    `echo "transport=tcp,traddr=10.0.2.100,trsvcid=4420,nqn=nqn.2014-08.org.nvmexpress.discovery" > /dev/nvme-fabrics || exit 9`,
    'echo "DISCOVERY $(cat /sys/class/nvme/nvme0/subsysnqn) $(cat /sys/class/nvme/nvme0/cntrltype 2>/dev/null)"',
    'echo 1 > /sys/class/nvme/nvme0/delete_controller',
    connect,
    waitDisk,
    'echo "SIZE $(cat /sys/block/nvme0n1/size) QUEUES $(cat /sys/class/nvme/nvme0/queue_count)"',
    'dd if=/dev/urandom of=/tmp/a bs=4096 count=256 2>/dev/null',
    'dd if=/tmp/a of=/dev/nvme0n1 bs=4096 seek=16 conv=fsync 2>/dev/null || exit 11',
    'echo 3 > /proc/sys/vm/drop_caches',
    'echo "W $(md5sum < /tmp/a)"',
    'echo "R $(dd if=/dev/nvme0n1 bs=4096 skip=16 count=256 2>/dev/null | md5sum)"',
    'exit 0',
    '',
  ].join('\n');
  const rd = initramfs(kernel, ['virtio_pci', 'virtio_net', 'nvme_tcp'], script);
  try {
    const r = await bootLinux(kernel, rd.path, net(target.port), { timeoutMs: 90_000 });
    const log = r.output.slice(-6000);
    expect(r.code, log).toBe(0);
    expect(r.output, log).toMatch(/DISCOVERY nqn.2014-08.org.nvmexpress.discovery/);
    expect(r.output, log).toMatch(/SIZE 131072 QUEUES 3/); // 64 MiB; the admin queue and two I/O queues
    const w = /W ([0-9a-f]{32})/.exec(r.output)?.[1];
    const rr = /R ([0-9a-f]{32})/.exec(r.output)?.[1];
    expect(w, log).toBeDefined();
    expect(rr).toBe(w);
    const bytes = core.u8.slice(disk.ptr + 16 * 4096, disk.ptr + 16 * 4096 + (1 << 20));
    expect(createHash('md5').update(bytes).digest('hex')).toBe(w);
    expect(target.counters.associations).toBe(1);
  } finally {
    rd.remove();
    await target.close();
  }
}, 150_000);

it.skipIf(missing !== null)('Linux makes an ext4 file system on the namespace, writes files of mixed sizes, remounts and verifies them, e2fsck clean; the host reads the same files from the disk bytes', async () => {
  const kernel = prepareKernel();
  const { core, disk, target } = rig();
  await target.listen();
  const script = [up, '(sleep 100; dmesg | tail -40; poweroff -f) &', connect, waitDisk, ...ext4RoundTrip('/dev/nvme0n1'), 'exit 0', ''].join('\n');
  const rd = initramfs(kernel, ['virtio_pci', 'virtio_net', 'nvme_tcp', ...EXT4_MODULES], script, EXT4_TOOLS);
  try {
    const r = await bootLinux(kernel, rd.path, net(target.port), { timeoutMs: 120_000 });
    expect(r.code, r.output.slice(-6000)).toBe(0);
    checkHostSide(r.output, core.u8.subarray(disk.ptr, disk.ptr + disk.blockCount * 512));
  } finally {
    rd.remove();
    await target.close();
  }
}, 180_000);

it.skipIf(missing !== null)('"No Writes" under a real driver: readOnlyAfter attached while Linux writes; the kernel logs the write errors, ext4 gives up writing, reads go on, the target keeps serving; tshark shows 01/82', async () => {
  const kernel = prepareKernel();
  const taps = new TapRegistry();
  const { target } = rig(taps);
  const sink = new MemorySink();
  const w = new PcapngWriter(sink);
  taps.attach('nvme:*:*', traceTap(w));
  onSignal(taps, () => taps.attach('nvme:io:decode', readOnlyAfter(0)));
  await target.listen();
  const script = [
    up,
    '(sleep 100; dmesg | tail -40; poweroff -f) &',
    connect,
    waitDisk,
    '/usr/sbin/mke2fs -q -t ext4 -F /dev/nvme0n1 || exit 12',
    'mkdir -p /mnt; mount -t ext4 /dev/nvme0n1 /mnt || exit 13',
    'dd if=/dev/urandom of=/mnt/before bs=65536 count=16 2>/dev/null; cd /mnt; md5sum before > /tmp/sums; cd /; sync',
    signal,
    'dd if=/dev/urandom of=/mnt/after bs=65536 count=16 2>/dev/null; sync; sync',
    'echo "WRITE-AFTER-SYNC $?"',
    'sleep 1; echo 3 > /proc/sys/vm/drop_caches',
    'cd /mnt; md5sum -c /tmp/sums >/dev/null; echo "READ-BEFORE $?"; cd /',
    'grep " /mnt " /proc/mounts | sed "s/^/MOUNT /"',
    klog,
    'exit 0',
    '',
  ].join('\n');
  const rd = initramfs(kernel, ['virtio_pci', 'virtio_net', 'nvme_tcp', ...EXT4_MODULES], script, EXT4_TOOLS);
  try {
    const r = await bootLinux(kernel, rd.path, net(target.port), { timeoutMs: 120_000 });
    const log = r.output.slice(-6000);
    console.log(r.output.split('\n').filter((l) => /KLOG|READ-/.test(l)).join('\n')); // the kernel's reaction, kept in the test output
    expect(r.code, log).toBe(0);
    expect(r.output, log).toMatch(/READ-BEFORE 0/);
    expect(r.output, log).toMatch(/KLOG .*nvme0n1: I\/O Cmd\(0x\w+\) @ LBA \d+, \d+ blocks, I\/O Error \(sct 0x1 \/ sc 0x82\) DNR/);
    expect(r.output, log).toMatch(/KLOG .*critical medium error, dev nvme0n1/);
    expect(r.output, log).toMatch(/KLOG .*(Aborting journal on device nvme0n1|Detected aborted journal|Remounting filesystem read-only)/);
    expect(r.output, log).not.toMatch(/sc 0xf\)/); // mke2fs's one-page Dataset Management was accepted
    w.close();
    const t = decode(sink);
    expect(t.malformed).toBe('');
    expect(t.statuses).toContain('0x0001\t0x0082');
    expect(t.comments.length).toBeGreaterThan(0); // the injected faults, as comments on their frames
    expect(t.comments[0]).toMatch(/^fault at nvme:io:decode: /);
    expect(target.counters.terminated).toBe(0);
  } finally {
    rd.remove();
    await target.close();
  }
}, 180_000);

it.skipIf(missing !== null)('a lost command under a real driver: the kernel times it out, recovers by reconnecting, and the read completes; the target serves the new association', async () => {
  const kernel = prepareKernel();
  const taps = new TapRegistry();
  const { target } = rig(taps);
  const sink = new MemorySink();
  const w = new PcapngWriter(sink);
  taps.attach('nvme:*:*', traceTap(w));
  const lose = drop({ rate: 1, seed: 1, kinds: ['read'] });
  onSignal(taps, () => {
    const h = taps.attach('nvme:io:decode', (ctx) => {
      h.detach(); // one read is lost, then the device behaves
      return lose(ctx);
    });
  });
  await target.listen();
  const script = [
    up,
    '(sleep 100; dmesg | tail -40; poweroff -f) &',
    'echo 3 > /sys/module/nvme_core/parameters/io_timeout', // seconds, for the controllers made from now on
    connect,
    waitDisk,
    'dd if=/dev/urandom of=/tmp/a bs=65536 count=16 2>/dev/null',
    'dd if=/tmp/a of=/dev/nvme0n1 bs=65536 conv=fsync 2>/dev/null || exit 11',
    signal,
    'echo 3 > /proc/sys/vm/drop_caches',
    'echo "W $(md5sum < /tmp/a)"',
    'echo "R $(dd if=/dev/nvme0n1 bs=65536 count=16 iflag=direct 2>/dev/null | md5sum)"',
    klog,
    'exit 0',
    '',
  ].join('\n');
  const rd = initramfs(kernel, ['virtio_pci', 'virtio_net', 'nvme_tcp'], script);
  try {
    const r = await bootLinux(kernel, rd.path, net(target.port), { timeoutMs: 120_000 });
    const log = r.output.slice(-6000);
    console.log(r.output.split('\n').filter((l) => /KLOG/.test(l)).join('\n'));
    expect(r.code, log).toBe(0);
    expect(/R ([0-9a-f]{32})/.exec(r.output)?.[1], log).toBe(/W ([0-9a-f]{32})/.exec(r.output)?.[1]);
    expect(r.output, log).toMatch(/KLOG .*nvme nvme0: queue \d: timeout request/);
    expect(r.output, log).toMatch(/KLOG .*nvme nvme0: Successfully reconnected/);
    expect(target.counters.associations).toBeGreaterThanOrEqual(2);
    w.close();
    const t = decode(sink);
    expect(t.malformed).toBe('');
    expect(t.comments.some((c) => /^fault at nvme:io:decode: .*drop/.test(c)), t.comments.join('\n')).toBe(true);
  } finally {
    rd.remove();
    await target.close();
  }
}, 180_000);

it.skipIf(missing !== null)('"Reincarnation" under a real driver: writes fail for a window with a retryable status, the kernel retries through it, ext4 and every file verify', async () => {
  const kernel = prepareKernel();
  const taps = new TapRegistry();
  const { core, disk, target } = rig(taps);
  const sink = new MemorySink();
  const w = new PcapngWriter(sink);
  taps.attach('nvme:*:*', traceTap(w));
  let failed = 0;
  const tap = reincarnation({ after: 6, window: 2, status: 'mediaError' });
  taps.attach('nvme:io:decode', (ctx) => {
    tap(ctx);
    if (ctx.action === 'complete') failed++;
  });
  await target.listen();
  const script = [up, '(sleep 100; dmesg | tail -40; poweroff -f) &', connect, waitDisk, ...ext4RoundTrip('/dev/nvme0n1'), klog, 'exit 0', ''].join('\n');
  const rd = initramfs(kernel, ['virtio_pci', 'virtio_net', 'nvme_tcp', ...EXT4_MODULES], script, EXT4_TOOLS);
  try {
    const r = await bootLinux(kernel, rd.path, net(target.port), { timeoutMs: 120_000 });
    expect(r.code, r.output.slice(-6000)).toBe(0);
    expect(failed).toBeGreaterThanOrEqual(6); // the device refused writes again and again
    expect(r.output).not.toMatch(/KLOG .*(I\/O error|critical medium error)/); // and the kernel's retries hid every one
    checkHostSide(r.output, core.u8.subarray(disk.ptr, disk.ptr + disk.blockCount * 512));
    w.close();
    const t = decode(sink);
    expect(t.malformed).toBe('');
    expect(t.statuses.filter((x) => x === '0x0002\t0x0081')).toHaveLength(failed); // each refusal, and nothing else failed
    expect(t.statuses.filter((x) => x !== '0x0000\t0x0000' && x !== '0x0002\t0x0081')).toEqual([]);
    expect(t.comments.length).toBe(failed);
  } finally {
    rd.remove();
    await target.close();
  }
}, 180_000);
