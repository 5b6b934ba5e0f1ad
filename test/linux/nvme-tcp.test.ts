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
import { linuxGuestSkip, runGuest } from '../util/linux-guest.mjs';
import { checkHostSide, EXT4_MODULES, EXT4_TOOLS, ext4RoundTrip } from './ext4';

const missing = linuxGuestSkip('the QEMU Linux guest NVMe/TCP test');

const SUBNQN = 'nqn.2026-12.io.sgring:test';

/** A 64 MiB memory disk behind a controller behind the target; with `traced`, taps and a trace of every NVMe stage. */
function rig(traced = false) {
  const core = loadCoreSync({ guestBytes: 32 << 20 });
  const dma = IommuDomain.create(core, 'nvme0', { mode: 'identity' });
  const disk = MemoryDisk.create(core, { blockCount: (64 << 20) / 512 });
  const taps = new TapRegistry();
  const sink = new MemorySink();
  const trace = new PcapngWriter(sink);
  if (traced) taps.attach('nvme:*:*', traceTap(trace));
  const controller = new NvmeController(core, { dma, namespaces: [{ backend: disk }], maxQueues: 4, taps: traced ? taps : undefined });
  const target = new NvmeTcpTarget({ controller, allocPages: pageAllocator(core), subnqn: SUBNQN, port: 0 });
  /** Closes the trace and reads it back with tshark. */
  const decoded = () => {
    trace.close();
    return decode(sink);
  };
  return { core, disk, taps, target, decoded };
}

const up = 'ip link set lo up; ip link set eth0 up; ip addr add 10.0.2.15/24 dev eth0';
const connect = `echo "transport=tcp,traddr=10.0.2.100,trsvcid=4420,nqn=${SUBNQN},hostnqn=nqn.2026-12.io.sgring:linux,nr_io_queues=1,nr_write_queues=1,reconnect_delay=1" > /dev/nvme-fabrics || exit 10`;
const waitDisk = 'for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/nvme0n1 ] && break; sleep 0.5; done';
/** The guest's signal to the test: a direct read of exactly the namespace's last three blocks. */
const LAST = (64 << 20) / 512 - 1;
const signal = `dd if=/dev/nvme0n1 of=/dev/null bs=1536 skip=${(LAST - 2) * 512} count=1 iflag=direct,skip_bytes 2>/dev/null`;
const klog = 'dmesg | grep -E "nvme|EXT4|I/O error|Buffer I/O" | sed "s/^/KLOG /" | head -40';

/**
 * Runs `lines` in a Linux guest whose network reaches `target` (listening from now on; closed
 * after), with ext4 and its tools when asked. Expects exit code 0 and returns the console output.
 */
async function guest(target: NvmeTcpTarget, lines: string[], o: { ext4?: boolean; timeoutMs?: number } = {}): Promise<string> {
  await target.listen();
  try {
    const r = await runGuest({
      modules: ['virtio_pci', 'virtio_net', 'nvme_tcp', ...(o.ext4 ? EXT4_MODULES : [])],
      binaries: o.ext4 ? EXT4_TOOLS : [],
      lines: [up, ...lines],
      args: ['-netdev', `user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:4420-cmd:busybox nc 127.0.0.1 ${target.port}`, '-device', 'virtio-net-pci,netdev=n0,romfile='],
      timeoutMs: o.timeoutMs ?? 120_000,
    });
    expect(r.code, r.output.slice(-6000)).toBe(0);
    return r.output;
  } finally {
    await target.close();
  }
}

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

/** The trace tshark reads: 0 malformed packets, the status of each I/O completion, the frame comments. */
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

/** The kernel's reaction, kept in the test output. */
const showKernelLog = (out: string) => console.log(out.split('\n').filter((l) => /KLOG|READ-/.test(l)).join('\n'));

it.skipIf(missing !== null)('Linux nvme-tcp connects with two I/O queues, writes 1 MiB and reads it back; the disk holds the bytes', async () => {
  const { core, disk, target } = rig();
  const out = await guest(target, [
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
  ], { timeoutMs: 90_000 });
  const log = out.slice(-6000);
  expect(out, log).toMatch(/DISCOVERY nqn.2014-08.org.nvmexpress.discovery/);
  expect(out, log).toMatch(/SIZE 131072 QUEUES 3/); // 64 MiB; the admin queue and two I/O queues
  const w = /W ([0-9a-f]{32})/.exec(out)?.[1];
  const rr = /R ([0-9a-f]{32})/.exec(out)?.[1];
  expect(w, log).toBeDefined();
  expect(rr).toBe(w);
  const bytes = core.u8.slice(disk.ptr + 16 * 4096, disk.ptr + 16 * 4096 + (1 << 20));
  expect(createHash('md5').update(bytes).digest('hex')).toBe(w);
  expect(target.counters.associations).toBe(1);
}, 150_000);

it.skipIf(missing !== null)('Linux makes an ext4 file system on the namespace, writes files of mixed sizes, remounts and verifies them, e2fsck clean; the host reads the same files from the disk bytes', async () => {
  const { disk, target } = rig();
  const out = await guest(target, [connect, waitDisk, ...ext4RoundTrip('/dev/nvme0n1')], { ext4: true });
  checkHostSide(out, disk);
}, 180_000);

it.skipIf(missing !== null)('"No Writes" under a real driver: readOnlyAfter attached while Linux writes; the kernel logs the write errors, ext4 gives up writing, reads go on, the target keeps serving; tshark shows 01/82', async () => {
  const { taps, target, decoded } = rig(true);
  onSignal(taps, () => taps.attach('nvme:io:decode', readOnlyAfter(0)));
  const out = await guest(target, [
    connect,
    waitDisk,
    '/usr/sbin/mke2fs -q -t ext4 -F /dev/nvme0n1 || exit 12',
    'mkdir -p /mnt; mount -t ext4 /dev/nvme0n1 /mnt || exit 13',
    'dd if=/dev/urandom of=/mnt/before bs=65536 count=16 2>/dev/null; cd /mnt; md5sum before > /tmp/sums; cd /; sync',
    signal,
    'dd if=/dev/urandom of=/mnt/after bs=65536 count=16 2>/dev/null; sync; sync',
    'sleep 1; echo 3 > /proc/sys/vm/drop_caches',
    'cd /mnt; md5sum -c /tmp/sums >/dev/null; echo "READ-BEFORE $?"; cd /',
    klog,
  ], { ext4: true });
  const log = out.slice(-6000);
  showKernelLog(out);
  expect(out, log).toMatch(/READ-BEFORE 0/);
  expect(out, log).toMatch(/KLOG .*nvme0n1: I\/O Cmd\(0x\w+\) @ LBA \d+, \d+ blocks, I\/O Error \(sct 0x1 \/ sc 0x82\) DNR/);
  expect(out, log).toMatch(/KLOG .*critical medium error, dev nvme0n1/);
  expect(out, log).toMatch(/KLOG .*(Aborting journal on device nvme0n1|Detected aborted journal|Remounting filesystem read-only)/);
  expect(out, log).not.toMatch(/sc 0xf\)/); // mke2fs's one-page Dataset Management was accepted
  const t = decoded();
  expect(t.malformed).toBe('');
  expect(t.statuses).toContain('0x0001\t0x0082');
  expect(t.comments.length).toBeGreaterThan(0); // the injected faults, as comments on their frames
  expect(t.comments[0]).toMatch(/^fault at nvme:io:decode: /);
  expect(target.counters.terminated).toBe(0);
}, 180_000);

it.skipIf(missing !== null)('a lost command under a real driver: the kernel times it out, recovers by reconnecting, and the read completes; the target serves the new association', async () => {
  const { taps, target, decoded } = rig(true);
  const lose = drop({ rate: 1, seed: 1, kinds: ['read'] });
  onSignal(taps, () => {
    const h = taps.attach('nvme:io:decode', (ctx) => {
      h.detach(); // one read is lost, then the device behaves
      return lose(ctx);
    });
  });
  const out = await guest(target, [
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
  ]);
  const log = out.slice(-6000);
  showKernelLog(out);
  expect(/R ([0-9a-f]{32})/.exec(out)?.[1], log).toBe(/W ([0-9a-f]{32})/.exec(out)?.[1]);
  expect(out, log).toMatch(/KLOG .*nvme nvme0: queue \d: timeout request/);
  expect(out, log).toMatch(/KLOG .*nvme nvme0: Successfully reconnected/);
  expect(target.counters.associations).toBeGreaterThanOrEqual(2);
  const t = decoded();
  expect(t.malformed).toBe('');
  expect(t.comments.some((c) => /^fault at nvme:io:decode: .*drop/.test(c)), t.comments.join('\n')).toBe(true);
}, 180_000);

it.skipIf(missing !== null)('"Reincarnation" under a real driver: writes fail for a window with a retryable status, the kernel retries through it, ext4 and every file verify', async () => {
  const { disk, taps, target, decoded } = rig(true);
  let failed = 0;
  const tap = reincarnation({ after: 6, window: 2, status: 'mediaError' });
  taps.attach('nvme:io:decode', (ctx) => {
    tap(ctx);
    if (ctx.action === 'complete') failed++;
  });
  const out = await guest(target, [connect, waitDisk, ...ext4RoundTrip('/dev/nvme0n1'), klog], { ext4: true });
  expect(failed).toBeGreaterThanOrEqual(6); // the device refused writes again and again
  expect(out).not.toMatch(/KLOG .*(I\/O error|critical medium error)/); // and the kernel's retries hid every one
  checkHostSide(out, disk);
  const t = decoded();
  expect(t.malformed).toBe('');
  expect(t.statuses.filter((x) => x === '0x0002\t0x0081')).toHaveLength(failed); // each refusal, and nothing else failed
  expect(t.statuses.filter((x) => x !== '0x0000\t0x0000' && x !== '0x0002\t0x0081')).toEqual([]);
  expect(t.comments.length).toBe(failed);
}, 180_000);
