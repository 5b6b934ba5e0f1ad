// The worker: v86 with a Linux guest, and sgring's NVMe controller on an OPFS disk as its PCI
// device. OPFS sync access handles exist only in dedicated workers, so the device (and v86 with
// it: the controller reaches v86's RAM directly) runs here. The server (serve.mjs) maps
// /v86/ to the v86 package's build, /dist/ to sgring's, and /guest/ to the BIOS, kernel and initrd.
import { V86 } from '/v86/libv86.mjs';
import { loadCoreSync, NvmeController, OpfsDisk } from '/dist/index.mjs';
import { attachToV86, v86Dma } from '/dist/v86.mjs';

self.onmessage = async ({ data: { diskMiB } }) => {
  try {
    self.postMessage({ status: 'fetching the BIOS, the kernel and the initramfs…' });
    const get = async (name) => {
      const r = await fetch(`/guest/${name}`);
      if (!r.ok) throw new Error(`/guest/${name}: ${r.status}`);
      return { buffer: await r.arrayBuffer() };
    };
    const [bios, vgaBios, bzimage, initrd, cmdline] = await Promise.all([get('bios.bin'), get('vgabios.bin'), get('bzImage'), get('initrd'),
      fetch('/guest/cmdline').then((r) => r.text())]);
    const core = loadCoreSync();                                   // the device's memory: staging for the disk's blocks
    const disk = await OpfsDisk.open('sgring-v86.img', { core, createBlocks: diskMiB * 2048 });
    const emulator = new V86({
      wasm_path: '/v86/v86.wasm', bios, vga_bios: vgaBios, bzimage, initrd, cmdline,
      memory_size: 256 << 20, autostart: false, disable_keyboard: true, disable_mouse: true, disable_speaker: true,
    });
    let pending = '';
    emulator.add_listener('serial0-output-byte', (byte) => (pending += String.fromCharCode(byte)));
    emulator.add_listener('emulator-loaded', () => {
      const controller = new NvmeController(core, { dma: v86Dma(emulator, core), namespaces: [{ backend: disk }] });
      const nvme = attachToV86(emulator, controller);
      emulator.run();
      self.postMessage({ status: 'the guest is running' });
      setInterval(() => {
        if (pending) self.postMessage({ serial: pending });
        pending = '';
        self.postMessage({ stats: { ...nvme.stats } });
      }, 100);
    });
  } catch (e) {
    self.postMessage({ error: String(e?.stack ?? e) });
  }
};
