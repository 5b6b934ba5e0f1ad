// needs: /usr/share/seabios/bios-256k.bin (Debian's seabios package; npm v86 ships no BIOS)
// Our NVMe controller as a PCI device of the v86 PC emulator: SeaBIOS inside v86 finds it, brings
// it up through BAR0, reads the boot sector from namespace 1 and runs it; the boot sector prints
// a line on the serial port. For Linux inside v86 on the same device, see test/embed/v86.test.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { V86 } from 'v86';
import { loadCoreSync, MemoryDisk, NvmeController } from 'sgring';
import { attachToV86, v86Dma } from 'sgring/v86';

const file = (path) => ({ buffer: new Uint8Array(readFileSync(path)).buffer });
const emulator = new V86({
  wasm_path: createRequire(import.meta.url).resolve('v86/build/v86.wasm'),
  bios: file('/usr/share/seabios/bios-256k.bin'),                // the SeaBIOS build with NVMe boot
  vga_bios: file('/usr/share/seabios/vgabios-stdvga.bin'),
  memory_size: 32 << 20,
  autostart: false,                                              // devices go in before the BIOS runs
  disable_speaker: true,
});

// A boot sector: DS = 0, then each byte of the message out of COM1 (port 0x3f8), then halt.
const message = 'hello from an sgring NVMe disk\r\n';
const bootSector = new Uint8Array(512);
bootSector.set([0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0xbe, 0x16, 0x7c, 0xba, 0xf8, 0x03, 0xac, 0x84, 0xc0,
  0x74, 0x03, 0xee, 0xeb, 0xf8, 0xf4, 0xeb, 0xfd, ...new TextEncoder().encode(message), 0]);
bootSector.set([0x55, 0xaa], 510);

let serial = '';
emulator.add_listener('serial0-output-byte', (byte) => (serial += String.fromCharCode(byte)));
const loaded = new Promise((resolve) => emulator.add_listener('emulator-loaded', resolve));
await loaded;

const core = loadCoreSync();                                     // the device's memory: disk and staging
const disk = MemoryDisk.create(core, { blockCount: 2048 });      // 1 MiB, 512-byte blocks
core.u8.set(bootSector, disk.ptr);
const controller = new NvmeController(core, { dma: v86Dma(emulator, core), namespaces: [{ backend: disk }] });
const nvme = attachToV86(emulator, controller);                  // slot 0x10, BAR0 at 0xfea00000, INTA
emulator.run();

for (let t = 0; t < 200 && !serial.includes('\n'); t++) await new Promise((r) => setTimeout(r, 50));
await emulator.destroy();
assert.equal(serial, message);
console.log(serial.trim());
console.log(`BAR0 reads ${nvme.stats.mmioReads}, writes ${nvme.stats.mmioWrites}, interrupts ${nvme.stats.irqRaised}`);
