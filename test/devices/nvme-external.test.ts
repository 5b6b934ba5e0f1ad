// The NVMe controller over guest RAM that is not core memory (ExternalDmaDomain: an emulator's
// RAM, here the guest window of a second core): the driver on that core brings it up and moves
// data through it, PRP lists and SGL segments are read through the domain, every device write
// goes through the store hook, and device windows and addresses past RAM are refused.
import { describe, expect, it } from 'vitest';
import { ExternalDmaDomain, loadCoreSync, MemoryDisk, NvmeController, NvmeDriver, pageAllocator, SgringError } from '../../src/index';
import { firstDiff } from '../util/fc';

const pattern = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed * 13) & 0xff);
const WINDOW = { gpa: 0x3f0_0000, len: 0x10_0000 };

function rig(dataPointer: 'auto' | 'prp' = 'auto') {
  const guest = loadCoreSync({ guestBytes: 64 << 20 }); // the "emulator": its RAM is this core's guest window
  const ram = guest.u8.subarray(guest.guestBase, guest.guestBase + guest.guestBytes);
  const device = loadCoreSync(); // the device's own memory: disk and staging, no guest window
  const stored = { calls: 0, bytes: 0 };
  const dma = new ExternalDmaDomain(device, 'nvme0', {
    ram, windows: [WINDOW], store: (b, gpa) => (stored.calls++, stored.bytes += b.length, ram.set(b, gpa)),
  });
  const disk = MemoryDisk.create(device, { blockCount: 16384 });
  const ctrl = new NvmeController(device, { dma, namespaces: [{ backend: disk }], maxQueues: 2 });
  const drv = new NvmeDriver(guest, ctrl, { allocPages: pageAllocator(guest, { startGpa: 0x10_0000, endGpa: 0x300_0000 }), ioQueues: 2, dataPointer });
  return { guest, device, ram, dma, disk, ctrl, drv, stored };
}

describe('NvmeController over an ExternalDmaDomain', () => {
  it('a driver brings it up and reads and writes 512 B to 1 MiB (PRP lists read through the domain); device writes go through store', async () => {
    const { drv, device, disk, stored } = rig();
    await drv.init();
    expect(drv.namespaces).toEqual([{ nsid: 1, blockSize: 512, blockCount: 16384 }]);
    for (const [lba, bytes] of [[0, 512], [9, 8192], [100, 128 * 1024], [2048, 1 << 20]] as const) {
      const data = pattern(bytes, lba);
      await drv.write(1, lba, data);
      expect(firstDiff(device.u8.slice(disk.ptr + lba * 512, disk.ptr + lba * 512 + bytes), data)).toBe(-1);
      const before = stored.bytes;
      expect(firstDiff(await drv.read(1, lba, bytes / 512), data)).toBe(-1);
      expect(stored.bytes - before).toBe(bytes + 16); // the data and one CQE, nothing else written
    }
    expect(stored.calls).toBeGreaterThan(0);
  });

  it('SGL segments are read through the domain too (a list that breaks the PRP rule goes as an SGL)', async () => {
    const { drv, ram } = rig('auto');
    await drv.init();
    const odd = [{ addr: 0x200_0200, len: 3584 }, { addr: 0x210_0200, len: 1000 }, { addr: 0x220_0000, len: 3608 }];
    const data = pattern(8192, 5);
    let at = 0;
    for (const s of odd) ram.set(data.subarray(at, (at += s.len)), s.addr);
    await drv.write(1, 40, 16, odd);
    expect(firstDiff(await drv.read(1, 40, 16), data)).toBe(-1);
    expect(drv.stats.sglCommands).toBe(1);
  });

  it('data aimed at the device window or past guest RAM fails the command (Data Transfer Error); nothing is written there', async () => {
    const { drv, ram } = rig();
    await drv.init();
    ram.fill(0xee, WINDOW.gpa, WINDOW.gpa + 4096);
    const err = await drv.read(1, 0, 8, [{ addr: WINDOW.gpa, len: 4096 }]).then(() => null, (e) => e);
    expect(err).toBeInstanceOf(SgringError);
    expect([err.code, err.details.sc]).toEqual(['NvmeCommandFailed', 0x04]);
    expect(ram[WINDOW.gpa]).toBe(0xee);
  });

  it('checks in the IommuDomain order: arguments, then guest RAM bounds, then device windows; nothing partial is written', () => {
    const { dma, ram } = rig();
    const code = (f: () => unknown) => { try { f(); return 'ok'; } catch (e) { return (e as SgringError).code; } };
    expect(code(() => dma.read(-1, 8))).toBe('InvalidArgument');
    expect(code(() => dma.read(ram.length - 4, 8))).toBe('OutsideGuestRam');
    expect(code(() => dma.read(WINDOW.gpa - 4, 8))).toBe('DmaDeviceWindow');
    expect(code(() => dma.check(0, 8, 'exec' as 'read'))).toBe('InvalidArgument');
    ram.fill(0, 0x1000, 0x3000);
    expect(code(() => dma.scatter([{ addr: 0x1000, len: 4096 }, { addr: ram.length, len: 4096 }], new Uint8Array(8192).fill(1)))).toBe('OutsideGuestRam');
    expect(ram.subarray(0x1000, 0x2000).every((b) => b === 0)).toBe(true);
    // A transfer longer than its list is an overrun both ways, as an IommuDomain reports it.
    expect(code(() => dma.gather([{ addr: 0x1000, len: 16 }], { length: 32 }))).toBe('DmaOverrun');
    expect(code(() => dma.scatter([{ addr: 0x1000, len: 16 }], new Uint8Array(32)))).toBe('DmaOverrun');
    expect(ram.subarray(0x1000, 0x1010).every((b) => b === 0)).toBe(true);
    expect(dma.copyOut(WINDOW.gpa, new Uint8Array(8))).toBe(false);
    expect(() => new ExternalDmaDomain(loadCoreSync(), 'x', { ram: [] as unknown as Uint8Array })).toThrow(/ram/);
  });
});
