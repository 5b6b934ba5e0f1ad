// The NVMe controller of the browser demo, in its own Web Worker: register and doorbell writes
// arrive through an NvmeMmioChannel in the page's shared memory, and serveNvmeAsync runs them
// until the page stops it (keeping the worker's event loop: the controller's taps finish its
// commands in promises). Its trace goes to the page block by block, a pcapng section of its own.
import { IommuDomain, loadCoreSync, MemoryDisk, NvmeController, NvmeMmioChannel, PcapngWriter, serveNvmeAsync, TapRegistry, traceTap } from '/dist/index.mjs';

self.onmessage = async ({ data: { memory, channel } }) => {
  try {
    const core = loadCoreSync({ memory });
    const dma = IommuDomain.create(core, 'nvme0', { mode: 'identity' });
    const taps = new TapRegistry();
    taps.attach('nvme:*:*', traceTap(new PcapngWriter({ write: (block) => self.postMessage({ traceBlock: block }) }, { application: 'sgring browser demo' })));
    const ctrl = new NvmeController(core, { dma, namespaces: [{ backend: MemoryDisk.create(core, { blockCount: 8192 }) }], maxQueues: 2, taps });
    self.postMessage({ ready: true });
    await serveNvmeAsync(ctrl, NvmeMmioChannel.attach(core, channel));
  } catch (e) {
    self.postMessage({ error: String(e?.stack ?? e) });
  }
};
