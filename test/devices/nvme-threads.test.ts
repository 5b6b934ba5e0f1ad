// NVMe across two threads: the controller in a worker over the shared memory, the driver in
// this thread, register and doorbell writes through the MMIO channel, interrupts back.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { IommuDomain, loadCoreSync, NvmeDriver, NvmeMmioChannel, NvmeRemote, pageAllocator } from '../../src/index';
import { firstDiff } from '../util/fc';

describe('NVMe, controller in a worker', () => {
  it('the driver brings the remote controller up and 200 writes and reads at queue depth 8 come back intact', async () => {
    const core = loadCoreSync({ shared: true, guestBytes: 64 << 20, initialBytes: 160 << 20 });
    const dma = IommuDomain.create(core, 'nvme0', { mode: 'strict' });
    dma.map(0, 64 << 20);
    const channel = NvmeMmioChannel.create(core);
    const worker = new Worker(new URL('./workers/nvme-controller.mjs', import.meta.url), { workerData: { memory: core.memory, channel: channel.ptr, domain: dma.ptr, blocks: 1 << 16 } });
    const report = new Promise<{ health?: { reads: number; writes: number }; error?: string }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    const remote = new NvmeRemote(channel);
    try {
      const drv = new NvmeDriver(core, remote, { allocPages: pageAllocator(core), ioQueues: 2, queueDepth: 32, timeoutMs: 10_000 });
      await drv.init();
      expect(drv.namespaces).toEqual([{ nsid: 1, blockSize: 512, blockCount: 1 << 16 }]);
      const data = (i: number) => Uint8Array.from({ length: 4096 }, (_, k) => (k * 3 + i * 17) & 0xff);
      for (let batch = 0; batch < 25; batch++) {
        await Promise.all(Array.from({ length: 8 }, (_, j) => drv.write(1, (batch * 8 + j) * 8, data(batch * 8 + j))));
      }
      for (let batch = 0; batch < 25; batch++) {
        const got = await Promise.all(Array.from({ length: 8 }, (_, j) => drv.read(1, (batch * 8 + j) * 8, 8)));
        got.forEach((g, j) => expect(firstDiff(g, data(batch * 8 + j))).toBe(-1));
      }
    } finally {
      remote.close();
    }
    const r = await report;
    expect(r.error).toBeUndefined();
    expect(r.health).toEqual({ reads: 200, writes: 200 });
    await worker.terminate();
  });

  it('a controller with taps (its commands finish in promises) served by serveNvmeAsync: writes past readOnlyAfter(50) fail 01/82, reads go on', async () => {
    const core = loadCoreSync({ shared: true, guestBytes: 16 << 20, initialBytes: 64 << 20 });
    const dma = IommuDomain.create(core, 'nvme0', { mode: 'identity' });
    const channel = NvmeMmioChannel.create(core);
    const worker = new Worker(new URL('./workers/nvme-controller.mjs', import.meta.url), { workerData: { memory: core.memory, channel: channel.ptr, domain: dma.ptr, blocks: 4096, readOnlyAfter: 50 } });
    const report = new Promise<{ health?: { reads: number; writes: number }; error?: string }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    const remote = new NvmeRemote(channel);
    try {
      const drv = new NvmeDriver(core, remote, { allocPages: pageAllocator(core), ioQueues: 1, queueDepth: 16, timeoutMs: 10_000 });
      await drv.init();
      const results = await Promise.all(Array.from({ length: 60 }, (_, i) => drv.write(1, i * 8, new Uint8Array(4096).fill(i)).then(() => 'ok', (e) => `${e.code} ${e.details?.sct}/${e.details?.sc}`)));
      expect(results.filter((r) => r === 'ok').length).toBe(50);
      expect(new Set(results.filter((r) => r !== 'ok'))).toEqual(new Set(['NvmeCommandFailed 1/130']));
      expect(await drv.read(1, 0, 8)).toEqual(new Uint8Array(4096).fill(0));
    } finally {
      remote.close();
    }
    const r = await report;
    expect(r.error).toBeUndefined();
    await worker.terminate();
  });
});
