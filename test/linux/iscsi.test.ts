// A real Linux kernel on our SCSI disk: QEMU's own iSCSI block driver (libiscsi, package
// qemu-block-extra) logs in to the IscsiTarget on 127.0.0.1 and gives Debian's kernel the disk as
// a virtio block device; the kernel makes ext4 on it and the host side checks the same image.
import { expect, it } from 'vitest';
import { loadCoreSync, MemoryDisk, ScsiDisk } from '../../src/index';
import { IscsiTarget } from '../../src/node/index';
import { bootLinux, initramfs, linuxGuestMissing, prepareKernel } from '../util/linux-guest';
import { checkHostSide, EXT4_MODULES, EXT4_TOOLS, ext4RoundTrip } from './ext4';

const missing = linuxGuestMissing();
if (missing && process.env.SGRING_REQUIRE_TOOLS === '1') throw new Error(`the QEMU Linux guest test must run under CI: ${missing}`);
if (missing) console.warn(`the QEMU Linux guest iSCSI test is skipped: ${missing}`);

it.skipIf(missing !== null)('Linux makes ext4 on an iSCSI disk served by IscsiTarget through QEMU\'s libiscsi driver: files verify after a remount, e2fsck clean on both sides', async () => {
  const kernel = prepareKernel();
  const core = loadCoreSync({ guestBytes: 16 << 20 });
  const disk = MemoryDisk.create(core, { blockCount: (64 << 20) / 512 });
  const target = new IscsiTarget({ luns: [new ScsiDisk(disk)], port: 0 });
  await target.listen();
  const script = ['(sleep 100; dmesg | tail -40; poweroff -f) &', 'echo "SIZE $(cat /sys/block/vda/size)"', ...ext4RoundTrip('/dev/vda'), 'exit 0', ''].join('\n');
  const rd = initramfs(kernel, ['virtio_pci', 'virtio_blk', ...EXT4_MODULES], script, EXT4_TOOLS);
  try {
    const r = await bootLinux(kernel, rd.path, [
      '-iscsi', 'initiator-name=iqn.2026-12.io.sgring:qemu',
      '-drive', `file=iscsi://127.0.0.1:${target.port}/${target.iqn}/0,if=virtio,format=raw,cache=none`,
    ], { timeoutMs: 120_000 });
    expect(r.code, r.output.slice(-6000)).toBe(0);
    expect(r.output).toMatch(/SIZE 131072/);
    checkHostSide(r.output, core.u8.subarray(disk.ptr, disk.ptr + disk.blockCount * 512));
    expect(target.counters.logins).toBeGreaterThanOrEqual(1);
  } finally {
    rd.remove();
    await target.close();
  }
}, 180_000);
