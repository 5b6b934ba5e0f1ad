// A real Linux kernel on our SCSI disk, two ways: QEMU's own iSCSI block driver (libiscsi, package
// qemu-block-extra) logs in to the IscsiTarget and gives Debian's kernel the disk as a virtio
// block device; and the kernel's own initiator (iscsi_tcp, logged in by open-iscsi's iscsistart)
// reaches it through QEMU's user network. Each time the kernel makes ext4 on it and the host side
// checks the same image.
import { expect, it } from 'vitest';
import { loadCoreSync, MemoryDisk, ScsiDisk } from '../../src/index';
import { IscsiTarget } from '../../src/node/index';
import { linuxGuestSkip, preparePackages, runGuest } from '../util/linux-guest.mjs';
import { checkHostSide, EXT4_MODULES, EXT4_TOOLS, ext4RoundTrip } from './ext4';

const missing = linuxGuestSkip('the QEMU Linux guest iSCSI test');

/** An IscsiTarget serving a 64 MiB memory disk on a free port. */
async function serve() {
  const disk = MemoryDisk.create(loadCoreSync({ guestBytes: 16 << 20 }), { blockCount: (64 << 20) / 512 });
  const target = new IscsiTarget({ luns: [new ScsiDisk(disk)], port: 0 });
  await target.listen();
  return { disk, target };
}

it.skipIf(missing !== null)('Linux makes ext4 on an iSCSI disk served by IscsiTarget through QEMU\'s libiscsi driver: files verify after a remount, e2fsck clean on both sides', async () => {
  const { disk, target } = await serve();
  try {
    const r = await runGuest({
      modules: ['virtio_pci', 'virtio_blk', ...EXT4_MODULES],
      binaries: EXT4_TOOLS,
      lines: ['echo "SIZE $(cat /sys/block/vda/size)"', ...ext4RoundTrip('/dev/vda')],
      args: ['-iscsi', 'initiator-name=iqn.2026-12.io.sgring:qemu', '-drive', `file=iscsi://127.0.0.1:${target.port}/${target.iqn}/0,if=virtio,format=raw,cache=none`],
    });
    expect(r.code, r.output.slice(-6000)).toBe(0);
    expect(r.output).toMatch(/SIZE 131072/);
    checkHostSide(r.output, disk);
    expect(target.counters.logins).toBeGreaterThanOrEqual(1);
  } finally {
    await target.close();
  }
}, 180_000);

it.skipIf(missing !== null)('Linux\'s own iSCSI initiator (iscsistart, iscsi_tcp, sd) logs in to IscsiTarget and makes ext4 on the LUN; files verify, e2fsck clean on both sides', async () => {
  const openIscsi = preparePackages('open-iscsi', ['open-iscsi', 'libopeniscsiusr']);
  const { disk, target } = await serve();
  try {
    const r = await runGuest({
      modules: ['virtio_pci', 'virtio_net', 'iscsi_tcp', 'sd_mod', ...EXT4_MODULES],
      binaries: [...EXT4_TOOLS, { root: openIscsi, path: '/sbin/iscsistart' }],
      lines: [
        'ip link set lo up; ip link set eth0 up; ip addr add 10.0.2.15/24 dev eth0',
        `/sbin/iscsistart -i iqn.2026-12.io.sgring:linux -t ${target.iqn} -g 1 -a 10.0.2.100 -p 3260 || exit 10`,
        'for i in $(seq 1 40); do [ -b /dev/sda ] && break; sleep 0.25; done',
        'echo "SIZE $(cat /sys/block/sda/size) $(cat /sys/block/sda/device/vendor)"',
        ...ext4RoundTrip('/dev/sda'),
      ],
      args: ['-netdev', `user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:3260-cmd:busybox nc 127.0.0.1 ${target.port}`, '-device', 'virtio-net-pci,netdev=n0,romfile='],
      timeoutMs: 170_000,
    });
    expect(r.code, r.output.slice(-6000)).toBe(0);
    expect(r.output).toMatch(/SIZE 131072 SGRING/); // 64 MiB, and the INQUIRY vendor the kernel read
    checkHostSide(r.output, disk);
  } finally {
    await target.close();
  }
}, 200_000);
