// The NVMe controller as a PCI device of the v86 emulator (spec/v86.md): PCI config space
// (class 0x010802, INTA, no capabilities: v86 has no MSI), BAR0 at a fixed address routed to
// mmioRead / mmioWrite, a pin interrupt whose level follows the controller (up while a CQ holds
// completions the guest has not consumed, down when its head doorbell catches up), and DMA into
// v86's guest RAM through an ExternalDmaDomain whose writes first drop JIT-compiled code over
// the range (cpu.jit_dirty_cache, as v86's own write_blob does). The hooks used are v86
// internals, not its typed API: they are feature-tested at attach time.

import type { Core } from '../engine/core';
import { SgringError } from '../engine/errors';
import { optionNames } from '../core/args';
import { ExternalDmaDomain } from '../memory/external';
import type { NvmeController } from '../devices/nvme/controller';

/** The v86 version these hooks were tested with (npm v86, build 5f9a90f). */
export const V86_TESTED = '0.5.462';

/** What the binding reaches inside a v86 emulator (V86 instance): internal, version-pinned. */
interface V86Cpu {
  /** A Proxy over v86's wasm memory (it follows growth): fine for a length, too slow for copies. */
  mem8: Uint8Array;
  wasm_memory: WebAssembly.Memory;
  /** Drops JIT-compiled code over guest-physical [start, end): what write_blob does before it copies. */
  jit_dirty_cache(start: number, end: number): void;
  io: { mmap_register(addr: number, size: number, r8: (a: number) => number, w8: (a: number, v: number) => void, r32: (a: number) => number, w32: (a: number, v: number) => void): void };
  devices: { pci: { register_device(d: object): Int32Array; raise_irq(id: number): void; lower_irq(id: number): void } };
}

/** The emulator's main loop: `next_tick(0)` runs the CPU again at once (a halted guest takes its interrupt). */
interface V86Machine {
  running: boolean;
  next_tick(ms: number): void;
}

/** A v86 `V86` instance (npm v86), created with `autostart: false` and past its 'emulator-loaded' event. */
export interface V86Like {
  v86?: { cpu?: unknown };
}

export interface V86AttachOptions {
  /** PCI slot (default 0x10; v86 itself uses 0, 1, 5-0xc, 0x12, 0x1e). */
  slot?: number;
  /** BAR0 address: a free 128 KiB-aligned block in the PCI hole (default 0xFEA00000). */
  bar?: number;
  /** PCI vendor id (default 0x1b36) and device id (default 0x5367, which no Linux quirk names). */
  vendorId?: number;
  deviceId?: number;
}

export interface V86NvmeStats {
  mmioReads: number;
  mmioWrites: number;
  /** Accesses the controller cannot take (8-bit writes, offsets past its registers in the 128 KiB block). */
  mmioIgnored: number;
  irqRaised: number;
  irqLowered: number;
}

export interface V86Attachment {
  readonly pciId: number;
  readonly bar: number;
  readonly stats: V86NvmeStats;
  /** Stops routing: register accesses read 0 and do nothing, the interrupt line goes down (v86 has no unplug). */
  detach(): void;
}

const BLOCK = 128 * 1024;

function cpuOf(emulator: V86Like): V86Cpu {
  const cpu = (emulator as { v86?: { cpu?: Record<string, unknown> } })?.v86?.cpu as Record<string, any> | undefined;
  const need: [string, boolean][] = [
    ['emulator.v86.cpu', !!cpu],
    ['emulator.v86.next_tick', typeof (emulator as { v86?: { next_tick?: unknown } })?.v86?.next_tick === 'function'],
    ['cpu.mem8', Number.isInteger(cpu?.mem8?.length) && Number.isInteger(cpu?.mem8?.byteOffset)],
    ['cpu.wasm_memory', cpu?.wasm_memory instanceof WebAssembly.Memory],
    ['cpu.jit_dirty_cache', typeof cpu?.jit_dirty_cache === 'function'],
    ['cpu.io.mmap_register', typeof cpu?.io?.mmap_register === 'function'],
    ['cpu.devices.pci.register_device', typeof cpu?.devices?.pci?.register_device === 'function'],
    ['cpu.devices.pci.raise_irq', typeof cpu?.devices?.pci?.raise_irq === 'function'],
    ['cpu.devices.pci.lower_irq', typeof cpu?.devices?.pci?.lower_irq === 'function'],
  ];
  const missing = need.find(([, ok]) => !ok);
  if (missing) {
    throw new SgringError('EmulatorUnsupported', `v86 has no ${missing[0]} (attach after 'emulator-loaded' with autostart: false; tested with v86 ${V86_TESTED})`, { hook: missing[0] });
  }
  return cpu as unknown as V86Cpu;
}

/**
 * The DMA domain for a controller inside this emulator: v86's guest RAM, every device write
 * dropping the JIT-compiled code over its range first. Give it to `new NvmeController(core, { dma, ... })`, then attachToV86.
 */
export function v86Dma(emulator: V86Like, core: Core, device = 'nvme0'): ExternalDmaDomain {
  const cpu = cpuOf(emulator);
  const { byteOffset, length } = cpu.mem8;
  const ram = () => new Uint8Array(cpu.wasm_memory.buffer, byteOffset, length);
  // write_blob's work without its per-call Proxy view: drop JIT-compiled code over the range, then copy.
  const store = (bytes: Uint8Array, gpa: number) => {
    cpu.jit_dirty_cache(gpa, gpa + bytes.length);
    dma.ram.set(bytes, gpa);
  };
  const dma: ExternalDmaDomain = new ExternalDmaDomain(core, device, { ram, store });
  domains.set(dma, cpu);
  return dma;
}

/** The emulator each v86Dma domain reaches. */
const domains = new WeakMap<ExternalDmaDomain, V86Cpu>();

/** Plugs `ctrl` (made with dma: v86Dma(emulator, core)) into `emulator` as a PCI NVMe device; call before emulator.run(). */
export function attachToV86(emulator: V86Like, ctrl: NvmeController, opts: V86AttachOptions = {}): V86Attachment {
  optionNames(opts, ['slot', 'bar', 'vendorId', 'deviceId'], 'attachToV86');
  const cpu = cpuOf(emulator);
  const machine = (emulator as { v86: V86Machine }).v86;
  const slot = opts.slot ?? 0x10;
  const bar = opts.bar ?? 0xfea0_0000;
  const vendorId = opts.vendorId ?? 0x1b36;
  const deviceId = opts.deviceId ?? 0x5367;
  if (!Number.isInteger(slot) || slot < 1 || slot > 31) throw new SgringError('InvalidArgument', `attachToV86: slot ${slot} must be in [1, 31]`);
  if (!Number.isInteger(bar) || bar % BLOCK !== 0 || bar < cpu.mem8.length || bar + BLOCK > 0xfec0_0000) {
    throw new SgringError('InvalidArgument', `attachToV86: bar 0x${bar.toString(16)} must be a 128 KiB-aligned block above guest RAM and below the IO-APIC (0xfec00000)`);
  }
  for (const [k, v] of [['vendorId', vendorId], ['deviceId', deviceId]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xfffe) throw new SgringError('InvalidArgument', `attachToV86: ${k} must be a 16-bit id`);
  }
  const dma = ctrl?.dma;
  if (!(dma instanceof ExternalDmaDomain) || domains.get(dma) !== cpu) {
    throw new SgringError('InvalidArgument', 'attachToV86: the controller must be made with dma: v86Dma(emulator, core)');
  }
  const size = 2 ** Math.ceil(Math.log2(ctrl.barSize));
  if (size > BLOCK) throw new SgringError('InvalidArgument', `attachToV86: a BAR of ${size} bytes is more than one 128 KiB block`);

  // Type 0 header: ids, class 01/08/02 (NVM Express), BAR0 32-bit memory, interrupt pin A.
  const space = new Uint8Array(64);
  const dv = new DataView(space.buffer);
  dv.setUint16(0x00, vendorId, true);
  dv.setUint16(0x02, deviceId, true);
  space.set([0x00, 0x02, 0x08, 0x01], 0x08); // revision, prog-if, subclass, class
  dv.setUint32(0x10, bar, true);
  dv.setUint16(0x2c, vendorId, true);
  dv.setUint16(0x2e, deviceId, true);
  space[0x3d] = 1;
  const pciId = slot << 3;
  const pci = cpu.devices.pci;
  pci.register_device({ name: ctrl.name, pci_id: pciId, pci_space: [...space], pci_bars: [{ size }] });

  const stats: V86NvmeStats = { mmioReads: 0, mmioWrites: 0, mmioIgnored: 0, irqRaised: 0, irqLowered: 0 };
  let attached = true;
  let level = false;
  const setLevel = (up: boolean) => {
    if (up === level) return;
    level = up;
    if (up) {
      stats.irqRaised++;
      pci.raise_irq(pciId);
    } else {
      stats.irqLowered++;
      pci.lower_irq(pciId);
    }
  };
  // Nothing runs inside a register access: v86 calls the handlers in the middle of a guest
  // instruction, and an interrupt raised there corrupts the guest (seen: a misaligned kernel
  // stack, then an oops). Doorbells and completions schedule one run after the CPU's slice.
  ctrl.processOnDoorbell = false;
  let scheduled = false;
  const run = () => {
    scheduled = false;
    if (!attached) return;
    ctrl.process();
    const wasUp = level;
    setLevel(ctrl.interruptPending);
    // A guest halted until this interrupt would otherwise sleep until v86's next timer event.
    if (level && !wasUp && machine.running) machine.next_tick(0);
  };
  const schedule = () => {
    if (!scheduled) {
      scheduled = true;
      queueMicrotask(run);
    }
  };
  ctrl.onInterrupt = schedule;
  // v86 hands addresses over as signed 32-bit integers.
  const inBar = (addr: number) => attached && (addr >>> 0) - bar < ctrl.barSize;
  const read32 = (addr: number): number => {
    if (!inBar(addr)) return (stats.mmioIgnored++, 0);
    stats.mmioReads++;
    return (ctrl.mmioRead((addr >>> 0) - bar, 4) as number) | 0;
  };
  const write32 = (addr: number, value: number): void => {
    if (!inBar(addr)) return void stats.mmioIgnored++;
    stats.mmioWrites++;
    const off = (addr >>> 0) - bar;
    ctrl.mmioWrite(off, 4, value >>> 0);
    // Lowering is safe at once. A CQ head doorbell that leaves completions behind (posted while
    // the guest's handler ran) lowers too, and the run raises again: a fresh edge, whatever the
    // trigger mode on the guest's side.
    if (!ctrl.interruptPending || (off >= 0x1000 && ((off - 0x1000) >> 2) % 2 === 1)) setLevel(false);
    schedule();
  };
  cpu.io.mmap_register(bar, BLOCK,
    (addr) => (read32(addr & ~3) >>> ((addr & 3) * 8)) & 0xff,
    () => void stats.mmioIgnored++, // NVMe registers take 32- and 64-bit accesses only
    read32, write32);

  return {
    pciId, bar, stats,
    detach() {
      setLevel(false);
      attached = false;
      ctrl.onInterrupt = null;
    },
  };
}
