// Suite "guests": Debian's kernel under QEMU (TCG) doing its own I/O on the disks we serve, the
// figures an application inside such a VM would see: 1 MiB direct sequential writes and reads
// and 4 KiB direct reads (one at a time), with busybox dd. The iSCSI disk through QEMU's libiscsi
// driver, from our IscsiTarget and, in the same run, from Debian's tgt; the NVMe/TCP namespace
// through the guest's own nvme-tcp host (bounded by QEMU's user network under TCG: reported, no
// goal). Needs what test/linux needs (qemu-system-x86, qemu-block-extra, busybox-static, cpio,
// kmod; the kernel is fetched once into SGRING_LINUX_CACHE).

import { IommuDomain, loadCoreSync, MemoryDisk, NvmeController, pageAllocator, ScsiDisk } from '../../dist/index.mjs';
import { IscsiTarget, NvmeTcpTarget } from '../../dist/node.mjs';
import { linuxGuestMissing, runGuest } from '../../test/util/linux-guest.mjs';
import { makeCase } from '../lib/timing.mjs';
import { startTgt } from './targets.mjs';

const SUITE = 'guests';
const BLOCKS = 1 << 17; // 64 MiB

/** dd runs in the guest: [case name, request bytes, dd arguments, times over] (long enough for the guest's 10 ms clock). */
const RUNS = [
  ['1 MiB sequential write, direct', 1 << 20, 'if=/dev/zero of=DEV bs=1M count=64 oflag=direct', 2],
  ['1 MiB sequential read, direct', 1 << 20, 'if=DEV of=/dev/null bs=1M count=64 iflag=direct', 8],
  ['4 KiB sequential read, direct, QD 1', 4096, 'if=DEV of=/dev/null bs=4096 count=4096 iflag=direct', 2],
];

/** The same runs, `div` times shorter (for the NVMe/TCP path through QEMU's user network). */
const shorter = (div) => RUNS.map(([n, b, a, t]) => [n, b, a.replace(/count=(\d+)/, (_, c) => `count=${Math.max(1, c / div)}`), 1]);

const lines = (dev, prelude, runs) => [
  ...prelude,
  `for i in $(seq 1 40); do [ -b ${dev} ] && break; sleep 0.25; done`,
  // busybox dd prints no rate: the guest's uptime (10 ms steps) around each run
  ...runs.map(([name, , args, times]) => `a=$(cut -d' ' -f1 /proc/uptime); for i in $(seq ${times}); do dd ${args.replace('DEV', dev)} 2>/dev/null || exit 1; done; echo "RUN ${name}: $a $(cut -d' ' -f1 /proc/uptime) ${times * Number(args.match(/count=(\d+)/)[1])}"`),
];

/** Requests per second of each run, from the "RUN name: start end count" lines. */
function parse(output) {
  const out = new Map();
  for (const m of output.matchAll(/RUN ([^:]+): ([\d.]+) ([\d.]+) (\d+)/g)) out.set(m[1], Number(m[4]) / (Number(m[3]) - Number(m[2])));
  return out;
}

export default {
  name: SUITE,
  keyFigures: [
    { label: 'Linux guest, 1 MiB direct reads through QEMU libiscsi: IscsiTarget / tgt', of: { suite: SUITE, name: 'iSCSI (QEMU libiscsi): 1 MiB sequential read, direct', engine: 'sgring', payloadBytes: 1 << 20 }, over: { suite: SUITE, name: 'iSCSI (QEMU libiscsi): 1 MiB sequential read, direct', engine: 'tgt', payloadBytes: 1 << 20 } },
    { label: 'Linux guest, 4 KiB direct reads through QEMU libiscsi: IscsiTarget / tgt', of: { suite: SUITE, name: 'iSCSI (QEMU libiscsi): 4 KiB sequential read, direct, QD 1', engine: 'sgring', payloadBytes: 4096 }, over: { suite: SUITE, name: 'iSCSI (QEMU libiscsi): 4 KiB sequential read, direct, QD 1', engine: 'tgt', payloadBytes: 4096 } },
  ],
  async run(ctx) {
    const rows = [];
    const missing = linuxGuestMissing();
    if (missing) {
      ctx.log(`  no Linux guest here (${missing}): suite skipped`);
      return rows;
    }
    const boot = async (label, engine, dev, modules, prelude, args, runs = RUNS) => {
      const r = await runGuest({ modules, lines: lines(dev, prelude, runs), args, timeoutMs: 300_000 });
      const rates = parse(r.output);
      if (rates.size !== RUNS.length) throw new Error(`${label} (${engine}): the guest did not finish its runs:\n${r.output.slice(-3000)}`);
      for (const [name, bytes] of RUNS) {
        const rate = rates.get(name);
        rows.push(makeCase({ suite: SUITE, name: `${label}: ${name}`, engine, payloadBytes: bytes }, rate));
        ctx.log(`  ${label}: ${name} (${engine}): ${(rate * bytes / 1e6).toFixed(1)} MB/s, ${rate.toFixed(0)} requests/s`);
      }
    };
    const libiscsi = (url) => ['-iscsi', 'initiator-name=iqn.2026-12.io.sgring:bench', '-drive', `file=${url},if=virtio,format=raw,cache=none`];
    const core = loadCoreSync({ guestBytes: 32 << 20 });
    const iqn = 'iqn.2026-12.io.sgring:bench';
    const ours = new IscsiTarget({ luns: [new ScsiDisk(MemoryDisk.create(core, { blockCount: BLOCKS }))], iqn, port: 0 });
    await ours.listen();
    try {
      await boot('iSCSI (QEMU libiscsi)', 'sgring', '/dev/vda', ['virtio_pci', 'virtio_blk'], [], libiscsi(`iscsi://127.0.0.1:${ours.port}/${iqn}/0`));
    } finally {
      await ours.close();
    }
    const tgt = await startTgt();
    if (!tgt) ctx.log('  tgt not available (apt-get install tgt, as root): its cases skipped');
    else {
      try {
        await boot('iSCSI (QEMU libiscsi)', 'tgt', '/dev/vda', ['virtio_pci', 'virtio_blk'], [], libiscsi(tgt.url));
      } finally {
        await tgt.stop();
      }
    }
    const dma = IommuDomain.create(core, 'nvme0', { mode: 'identity' });
    const controller = new NvmeController(core, { dma, namespaces: [{ backend: MemoryDisk.create(core, { blockCount: BLOCKS }) }] });
    const nvme = new NvmeTcpTarget({ controller, allocPages: pageAllocator(core), subnqn: 'nqn.2026-12.io.sgring:bench', port: 0 });
    await nvme.listen();
    try {
      await boot('NVMe/TCP (guest nvme-tcp, QEMU user network)', 'sgring', '/dev/nvme0n1', ['virtio_pci', 'virtio_net', 'nvme_tcp'], [
        'ip link set lo up; ip link set eth0 up; ip addr add 10.0.2.15/24 dev eth0',
        'echo "transport=tcp,traddr=10.0.2.100,trsvcid=4420,nqn=nqn.2026-12.io.sgring:bench" > /dev/nvme-fabrics',
      ], ['-netdev', `user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:4420-cmd:busybox nc 127.0.0.1 ${nvme.port}`, '-device', 'virtio-net-pci,netdev=n0,romfile='], shorter(16));
    } finally {
      await nvme.close();
    }
    return rows;
  },
};
