// OpfsDisk in Debian's Chromium: a dedicated Worker opens a disk in the Origin Private File
// System through a sync access handle, writes, reads back, reopens it read-only; the main
// thread, which has no sync access handles, gets a typed error saying where to open it.
import { describe, expect, it } from 'vitest';
import { loadCoreSync, OpfsDisk, SgringError } from '../../src/index';

describe('OpfsDisk', () => {
  it('round-trips blocks in a Worker, keeps them across opens, and refuses what it should', async () => {
    const worker = new Worker(new URL('./opfs-worker.ts', import.meta.url), { type: 'module' });
    const result = await new Promise<Record<string, unknown>>((resolve) => {
      worker.onmessage = (e) => resolve(e.data as Record<string, unknown>);
      worker.postMessage('go');
    });
    worker.terminate();
    expect(result).toEqual({ same: true, outOfRange: 'LbaOutOfRange', kept: true, readOnly: 'ReadOnlyMedium', blocks: 4096 });
  });

  it('on the main thread it says to open the disk in a Worker', async () => {
    let err: unknown;
    try {
      await OpfsDisk.open('sgring-main.img', { core: loadCoreSync(), createBlocks: 8 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SgringError);
    expect((err as Error).message).toMatch(/only in a dedicated Worker/);
  });
});
