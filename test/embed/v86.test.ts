// sgring/v86: the NVMe controller as a PCI device of the v86 emulator. A real Linux (Debian's
// i386 kernel) inside v86 binds its own nvme driver to it, makes ext4 on it, checks the files
// after a remount and with e2fsck, and the disk's bytes hold the same files read from the host
// side; then readOnlyAfter is attached while the guest writes, and the guest's kernel log shows
// the write errors. Plus the binding's own refusals (missing hooks, a controller not on v86 RAM).
import { describe, expect, it } from 'vitest';
import { ExternalDmaDomain, loadCoreSync, MemoryDisk, NvmeController, readOnlyAfter, SgringError, TapRegistry } from '../../src/index';
import { attachToV86, V86_TESTED, v86Dma, type V86Attachment } from '../../src/embed/v86';
import { checkHostSide, ext4RoundTrip } from '../linux/ext4';
import { runV86Guest, V86_NVME_MODULES, v86GuestSkip } from '../util/v86-guest.mjs';

const missing = v86GuestSkip('Linux in v86');
const MiB = 1 << 20;

/** A stand-in with every hook v86 has, recording what the binding did. */
function fakeEmulator(ramBytes = 4 * MiB) {
  const memory = new WebAssembly.Memory({ initial: ramBytes / 65536 + 1 });
  const calls: string[] = [];
  const mmio: { r32?: (a: number) => number; w32?: (a: number, v: number) => void } = {};
  const cpu = {
    wasm_memory: memory,
    mem8: new Uint8Array(memory.buffer, 65536, ramBytes),
    jit_dirty_cache: (start: number, end: number) => calls.push(`jit_dirty_cache ${start} ${end - start}`),
    io: { mmap_register: (addr: number, size: number, _r8: unknown, _w8: unknown, r32: (a: number) => number, w32: (a: number, v: number) => void) => (calls.push(`mmap ${addr.toString(16)} ${size}`), Object.assign(mmio, { r32, w32 })) },
    devices: {
      pci: {
        register_device: (d: { pci_id: number; pci_space: number[]; pci_bars: { size: number }[] }) => (calls.push(`pci ${d.pci_id} ${d.pci_space.slice(8, 12).join(',')} ${d.pci_bars[0]!.size}`), new Int32Array(64)),
        raise_irq: (id: number) => calls.push(`raise ${id}`),
        lower_irq: (id: number) => calls.push(`lower ${id}`),
      },
    },
  };
  const machine = { cpu, running: true, next_tick: (ms: number) => calls.push(`next_tick ${ms}`) };
  return { emulator: { v86: machine }, cpu, calls, mmio };
}

const codeOf = (f: () => unknown) => {
  try {
    f();
    return 'ok';
  } catch (e) {
    return e instanceof SgringError ? `${e.code}${e.details?.hook ? ` ${e.details.hook}` : ''}` : String(e);
  }
};

describe('attachToV86 (the binding, on a stand-in emulator)', () => {
  it('refuses an emulator without a hook it needs, naming the hook and the v86 version tested', () => {
    const core = loadCoreSync();
    expect(codeOf(() => v86Dma({}, core))).toBe('EmulatorUnsupported emulator.v86.cpu');
    const { emulator, cpu } = fakeEmulator();
    delete (cpu.devices.pci as Partial<typeof cpu.devices.pci>).lower_irq;
    expect(codeOf(() => v86Dma(emulator, core))).toBe('EmulatorUnsupported cpu.devices.pci.lower_irq');
    expect(() => v86Dma(emulator, core)).toThrow(new RegExp(`tested with v86 ${V86_TESTED.replace(/\./g, '\\.')}`));
  });

  it('registers class 01/08/02 with INTA and a BAR of the register file, routes MMIO, raises the pin after the access (never inside it) and lowers it with the CQ head', async () => {
    const { emulator, calls, mmio, cpu } = fakeEmulator();
    const core = loadCoreSync();
    const other = new NvmeController(core, { dma: new ExternalDmaDomain(core, 'x', { ram: new Uint8Array(4096) }), namespaces: [{ backend: MemoryDisk.create(core, { blockCount: 64 }) }] });
    expect(codeOf(() => attachToV86(emulator, other))).toBe('InvalidArgument'); // not made with v86Dma(emulator)
    const ctrl = new NvmeController(core, { dma: v86Dma(emulator, core), namespaces: [{ backend: MemoryDisk.create(core, { blockCount: 64 }) }], maxQueues: 1 });
    expect(codeOf(() => attachToV86(emulator, ctrl, { bar: 0x1000 }))).toBe('InvalidArgument'); // inside RAM, not 128 KiB aligned
    const att: V86Attachment = attachToV86(emulator, ctrl);
    expect(calls.slice(0, 2)).toEqual([`pci ${0x10 << 3} 0,2,8,1 16384`, 'mmap fea00000 131072']);
    const bar = att.bar | 0; // v86 passes signed addresses
    expect(mmio.r32!(bar + 8)).toBe(0x00010400); // VS
    // Admin queue at 64 KiB / 68 KiB, enable, one Identify whose completion raises the pin.
    mmio.w32!(bar + 0x24, (1 << 16) | 1);
    mmio.w32!(bar + 0x28, 0x10000); mmio.w32!(bar + 0x2c, 0);
    mmio.w32!(bar + 0x30, 0x11000); mmio.w32!(bar + 0x34, 0);
    mmio.w32!(bar + 0x14, 0x00460001);
    expect(mmio.r32!(bar + 0x1c) & 1).toBe(1);
    const sqe = new Uint8Array(64);
    sqe[0] = 0x06; sqe[40] = 1; // Identify controller
    sqe.set([0x00, 0x20, 0x01, 0x00], 24); // PRP1 0x12000
    cpu.mem8.set(sqe, 0x10000);
    mmio.w32!(bar + 0x1000, 1);
    expect(calls.filter((c) => /raise|lower/.test(c) || c === `jit_dirty_cache ${0x12000} 4096`)).toEqual([]); // nothing ran inside the register write
    await new Promise<void>((r) => queueMicrotask(r));
    expect(calls.filter((c) => /raise|lower|next_tick/.test(c))).toEqual([`raise ${0x80}`, 'next_tick 0']); // and a halted guest woken
    expect(calls).toContain(`jit_dirty_cache ${0x12000} 4096`); // compiled code over the data dropped first
    expect(new TextDecoder().decode(cpu.mem8.subarray(0x12000 + 24, 0x12000 + 35))).toBe('sgring NVMe'); // Identify's model number, in guest RAM
    mmio.w32!(bar + 0x1004, 1); // CQ head catches up
    expect(calls.filter((c) => /raise|lower/.test(c))).toEqual([`raise ${0x80}`, `lower ${0x80}`]);
    expect(att.stats).toMatchObject({ irqRaised: 1, irqLowered: 1, mmioIgnored: 0 });
    att.detach();
    expect(mmio.r32!(bar + 8)).toBe(0);
  });
});

it.skipIf(missing !== null)('Linux in v86: its nvme driver brings the controller up, ext4 round trip, the host side holds the files; readOnlyAfter while it writes shows in its kernel log', async () => {
  const LAST = (32 * MiB) / 512 - 1; // namespace 2: the fault's
  const taps = new TapRegistry();
  let disk: MemoryDisk | null = null;
  let att: V86Attachment | null = null;
  let fired = false;
  // The guest's signal: a direct read of exactly namespace 2's last three blocks; then writes fail.
  taps.attach('nvme:io:decode', (ctx) => {
    if (!fired && ctx.io.kind === 'read' && ctx.io.lba === BigInt(LAST - 2) && ctx.io.blocks === 3) {
      fired = true;
      taps.attach('nvme:io:decode', readOnlyAfter(0));
    }
  });
  const r = await runV86Guest({
    modules: V86_NVME_MODULES,
    attach: (emulator: object) => {
      const core = loadCoreSync();
      disk = MemoryDisk.create(core, { blockCount: (64 * MiB) / 512 });
      const second = MemoryDisk.create(core, { blockCount: (32 * MiB) / 512 });
      const ctrl = new NvmeController(core, { dma: v86Dma(emulator, core), namespaces: [{ backend: disk }, { backend: second }], maxQueues: 2, taps });
      att = attachToV86(emulator, ctrl);
    },
    lines: [
      'for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/nvme0n2 ] && break; sleep 0.5; done',
      'echo "SIZE $(cat /sys/block/nvme0n1/size) $(cat /sys/block/nvme0n2/size)"',
      ...ext4RoundTrip('/dev/nvme0n1'),
      '/usr/sbin/mke2fs -q -t ext4 -F /dev/nvme0n2 || exit 20',
      'mkdir -p /mnt2; mount -t ext4 /dev/nvme0n2 /mnt2 || exit 21',
      'dd if=/dev/urandom of=/mnt2/before bs=65536 count=8 2>/dev/null; cd /mnt2; md5sum before > /tmp/sums2; cd /; sync',
      `dd if=/dev/nvme0n2 of=/dev/null bs=1536 skip=${(LAST - 2) * 512} count=1 iflag=direct,skip_bytes 2>/dev/null`,
      'dd if=/dev/urandom of=/mnt2/after bs=65536 count=8 2>/dev/null; sync; sync',
      'sleep 1; echo 3 > /proc/sys/vm/drop_caches',
      'cd /mnt2; md5sum -c /tmp/sums2 >/dev/null; echo "READ-BEFORE $?"; cd /',
      'dmesg | grep -E "nvme|EXT4|I/O error" | sed "s/^/KLOG /" | head -30',
    ],
    timeoutMs: 150_000,
  });
  const log = r.output.slice(-6000);
  console.log(`v86 boot + run: ${(r.ms / 1000).toFixed(1)} s; ${JSON.stringify(att!.stats)}`);
  console.log(r.output.split('\n').filter((l) => /KLOG|READ-|SIZE/.test(l)).join('\n'));
  expect(r.code, log).toBe(0);
  expect(r.output).toMatch(/SIZE 131072 65536/);
  checkHostSide(r.output, disk!);
  expect(r.output, log).toMatch(/READ-BEFORE 0/);
  expect(r.output, log).toMatch(/KLOG .*nvme0n2: I\/O Cmd\(0x1\) @ LBA \d+, \d+ blocks, I\/O Error \(sct 0x1 \/ sc 0x82\) DNR/);
  expect(r.output, log).toMatch(/KLOG .*critical medium error, dev nvme0n2/);
  expect(att!.stats.irqRaised).toBeGreaterThan(10);
}, 180_000);
