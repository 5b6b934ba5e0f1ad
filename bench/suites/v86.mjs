// Suite "v86": Debian's i386 kernel inside the v86 emulator (Node), one boot with two disks of
// the same size: namespace 1 of our NvmeController (sgring/v86) and v86's own emulated IDE disk.
// The guest's busybox dd does direct 1 MiB sequential writes and reads of 64 MiB and 4 KiB direct
// reads one at a time on each; the ratio is ours over v86's IDE (goal: 2x; the JIT'd guest CPU
// is the shared limit). Every run goes once untimed on both disks first: v86 compiles the guest
// kernel's paths on first use, and the disk measured first would pay for both. Needs what test/embed/v86.test.ts needs (seabios, apt's i386 packages).

import { loadCoreSync, MemoryDisk, NvmeController } from '../../dist/index.mjs';
import { attachToV86, v86Dma } from '../../dist/v86.mjs';
import { runV86Guest, v86GuestMissing } from '../../test/util/v86-guest.mjs';
import { makeCase } from '../lib/timing.mjs';

const SUITE = 'v86';
const BYTES = 64 << 20;

/** [case name, request bytes, dd arguments, times over] (long enough for the guest's 10 ms clock). */
const RUNS = [
  ['1 MiB sequential write, direct', 1 << 20, 'if=/dev/zero of=DEV bs=1M count=64 oflag=direct', 4],
  ['1 MiB sequential read, direct', 1 << 20, 'if=DEV of=/dev/null bs=1M count=64 iflag=direct', 4],
  ['4 KiB sequential read, direct, QD 1', 4096, 'if=DEV of=/dev/null bs=4096 count=2048 iflag=direct', 2],
];
const DISKS = [['sgring', '/dev/nvme0n1'], ['v86 IDE', '/dev/sda']];

const key = (name, payloadBytes) => ({
  label: `Linux in v86, ${name}: our NVMe / v86's IDE`,
  of: { suite: SUITE, name, engine: 'sgring', payloadBytes },
  over: { suite: SUITE, name, engine: 'v86 IDE', payloadBytes },
});

export default {
  name: SUITE,
  keyFigures: RUNS.map(([name, bytes]) => key(name, bytes)),
  async run(ctx) {
    const rows = [];
    const missing = v86GuestMissing();
    if (missing) {
      ctx.log(`  no Linux in v86 here (${missing}): suite skipped`);
      return rows;
    }
    const lines = [
      'for i in $(seq 1 40); do [ -b /dev/nvme0n1 ] && [ -b /dev/sda ] && break; sleep 0.25; done',
      ...RUNS.flatMap(([, , args]) => DISKS.map(([, dev]) => `dd ${args.replace('DEV', dev)} 2>/dev/null || exit 1`)),
      ...RUNS.flatMap(([name, , args, times]) => DISKS.map(([engine, dev]) =>
        `a=$(cut -d' ' -f1 /proc/uptime); for i in $(seq ${times}); do dd ${args.replace('DEV', dev)} 2>/dev/null || exit 1; done; echo "RUN ${engine}|${name}: $a $(cut -d' ' -f1 /proc/uptime) ${times * Number(args.match(/count=(\d+)/)[1])}"`)),
    ];
    const r = await runV86Guest({
      modules: ['crc64_rocksoft_generic', 'crct10dif_generic', 'nvme', 'ata_piix', 'sd_mod'],
      lines,
      ide: new ArrayBuffer(BYTES),
      attach: (emulator) => {
        const core = loadCoreSync();
        const controller = new NvmeController(core, { dma: v86Dma(emulator, core), namespaces: [{ backend: MemoryDisk.create(core, { blockCount: BYTES / 512 }) }] });
        attachToV86(emulator, controller);
      },
      timeoutMs: 600_000,
    });
    const found = [...r.output.matchAll(/RUN ([^|]+)\|([^:]+): ([\d.]+) ([\d.]+) (\d+)/g)];
    if (found.length !== DISKS.length * RUNS.length) throw new Error(`the guest did not finish its runs:\n${r.output.slice(-3000)}`);
    for (const [, engine, name, a, b, n] of found) {
      const bytes = RUNS.find(([x]) => x === name)[1];
      const rate = Number(n) / (Number(b) - Number(a));
      rows.push(makeCase({ suite: SUITE, name, engine, payloadBytes: bytes }, rate));
      ctx.log(`  ${name} (${engine}): ${(rate * bytes / 1e6).toFixed(1)} MB/s, ${rate.toFixed(0)} requests/s`);
    }
    return rows;
  },
};
