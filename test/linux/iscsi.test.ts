// A real Linux kernel on our SCSI disk, two ways: QEMU's own iSCSI block driver (libiscsi, package
// qemu-block-extra) logs in to the IscsiTarget and gives Debian's kernel the disk as a virtio
// block device; and the kernel's own initiator (iscsi_tcp, logged in by open-iscsi's iscsistart)
// reaches it through QEMU's user network. Each time the kernel makes ext4 on it and the host side
// checks the same image.
import { expect, it } from 'vitest';
import { loadCoreSync, MemoryDisk, ScsiDisk } from '../../src/index';
import { IscsiTarget } from '../../src/node/index';
import { bootLinux, initramfs, linuxGuestMissing, prepareKernel, preparePackages } from '../util/linux-guest.mjs';
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

it.skipIf(missing !== null)('Linux\'s own iSCSI initiator (iscsistart, iscsi_tcp, sd) logs in to IscsiTarget and makes ext4 on the LUN; files verify, e2fsck clean on both sides', async () => {
  const kernel = prepareKernel();
  const openIscsi = preparePackages('open-iscsi', ['open-iscsi', 'libopeniscsiusr']);
  const core = loadCoreSync({ guestBytes: 16 << 20 });
  const disk = MemoryDisk.create(core, { blockCount: (64 << 20) / 512 });
  const target = new IscsiTarget({ luns: [new ScsiDisk(disk)], port: 0 });
  await target.listen();
  const script = [
    'ip link set lo up; ip link set eth0 up; ip addr add 10.0.2.15/24 dev eth0',
    '(sleep 150; dmesg | tail -40; poweroff -f) &',
    `/sbin/iscsistart -i iqn.2026-12.io.sgring:linux -t ${target.iqn} -g 1 -a 10.0.2.100 -p 3260 || exit 10`,
    'for i in $(seq 1 40); do [ -b /dev/sda ] && break; sleep 0.25; done',
    'echo "SIZE $(cat /sys/block/sda/size) $(cat /sys/block/sda/device/vendor)"',
    ...ext4RoundTrip('/dev/sda'),
    'exit 0',
    '',
  ].join('\n');
  const rd = initramfs(kernel, ['virtio_pci', 'virtio_net', 'iscsi_tcp', 'sd_mod', ...EXT4_MODULES], script, [...EXT4_TOOLS, { root: openIscsi, path: '/sbin/iscsistart' }]);
  try {
    const r = await bootLinux(kernel, rd.path, [
      '-netdev', `user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:3260-cmd:busybox nc 127.0.0.1 ${target.port}`,
      '-device', 'virtio-net-pci,netdev=n0,romfile=',
    ], { timeoutMs: 170_000 });
    expect(r.code, r.output.slice(-6000)).toBe(0);
    expect(r.output).toMatch(/SIZE 131072 SGRING/); // 64 MiB, and the INQUIRY vendor the kernel read
    checkHostSide(r.output, core.u8.subarray(disk.ptr, disk.ptr + disk.blockCount * 512));
  } finally {
    rd.remove();
    await target.close();
  }
}, 200_000);
