// The ext4 round trip a Linux guest runs on a disk we serve: mkfs, files of mixed sizes, remount,
// checksums, e2fsck; then the same image checked from the host side out of the backend's bytes.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { MemoryDisk } from '../../src/index';

export const SIZES = [1, 7, 4096, 65537, 1 << 20, 3_000_000];
/** Host binaries the guest script needs (copied into the initramfs with their libraries). */
export const EXT4_TOOLS = ['/usr/sbin/mke2fs', '/usr/sbin/e2fsck'];
export const EXT4_MODULES = ['ext4', 'crc32c_generic'];

/** Guest script lines: the round trip on `dev`, exit codes 12..18 naming the step that failed, "SUM md5  name" lines at the end. */
export function ext4RoundTrip(dev: string): string[] {
  return [
    `/usr/sbin/mke2fs -q -t ext4 -F ${dev} || exit 12`,
    `mkdir -p /mnt; mount -t ext4 ${dev} /mnt || exit 13`,
    ...SIZES.map((n) => `dd if=/dev/urandom of=/mnt/f${n} bs=${n} count=1 2>/dev/null || exit 14`),
    'cd /mnt; md5sum f* > /tmp/sums; cd /',
    'sync; umount /mnt || exit 15',
    'echo 3 > /proc/sys/vm/drop_caches',
    `mount -t ext4 ${dev} /mnt || exit 16`,
    'cd /mnt; md5sum -c /tmp/sums >/dev/null || exit 17; cd /',
    'umount /mnt',
    `/usr/sbin/e2fsck -fn ${dev} >/dev/null 2>&1 || exit 18`,
    'sed "s/^/SUM /" /tmp/sums',
  ];
}

/** Checks the guest's checksums came out, and that the disk's bytes are a clean ext4 holding the same files. */
export function checkHostSide(output: string, disk: MemoryDisk): void {
  const image = disk.core.u8.subarray(disk.ptr, disk.ptr + disk.blockCount * disk.blockSize);
  const log = output.slice(-6000);
  const sums = new Map([...output.matchAll(/SUM ([0-9a-f]{32}) {2}(f\d+)/g)].map((m) => [m[2]!, m[1]!]));
  expect([...sums.keys()].sort(), log).toEqual(SIZES.map((n) => `f${n}`).sort());
  const dir = mkdtempSync(join(tmpdir(), 'sgring-ext4-'));
  try {
    const file = join(dir, 'disk.img');
    writeFileSync(file, image);
    execFileSync('e2fsck', ['-fn', file], { stdio: 'pipe' });
    for (const [name, sum] of sums) {
      const bytes = execFileSync('debugfs', ['-R', `cat /${name}`, file], { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 24 });
      expect(createHash('md5').update(bytes).digest('hex'), name).toBe(sum);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
