// The NVMe controller of the browser demo, in its own Web Worker: register and doorbell writes
// arrive through an NvmeMmioChannel in the page's shared memory, and serveNvme runs them until
// the page stops it (it sleeps with Atomics.wait, which a worker may do and a page may not).
import { IommuDomain, loadCoreSync, MemoryDisk, NvmeController, NvmeMmioChannel, serveNvme } from '/dist/index.mjs';

self.onmessage = ({ data: { memory, channel } }) => {
  try {
    const core = loadCoreSync({ memory });
    const dma = IommuDomain.create(core, 'nvme0', { mode: 'identity' });
    const ctrl = new NvmeController(core, { dma, namespaces: [{ backend: MemoryDisk.create(core, { blockCount: 8192 }) }], maxQueues: 2 });
    self.postMessage({ ready: true });
    serveNvme(ctrl, NvmeMmioChannel.attach(core, channel));
  } catch (e) {
    self.postMessage({ error: String(e?.stack ?? e) });
  }
};
