// Runs in a dedicated Worker of the browser test: an OpfsDisk round trip, reported back.
import { loadCoreSync, OpfsDisk } from '../../src/index';

self.onmessage = async () => {
  try {
    const core = loadCoreSync();
    const disk = await OpfsDisk.open('sgring-test.img', { core, createBlocks: 4096 });
    const buf = core.alloc(8192);
    for (let i = 0; i < 8192; i++) core.u8[buf + i] = (i * 13) & 0xff;
    disk.write(4000, 16, buf);
    disk.flush();
    const back = core.alloc(8192);
    disk.read(4000, 16, back);
    const same = core.u8.subarray(back, back + 8192).every((b, i) => b === ((i * 13) & 0xff));
    let outOfRange = '';
    try {
      disk.read(4095, 2, back);
    } catch (e) {
      outOfRange = (e as { code?: string }).code ?? String(e);
    }
    disk.close();
    const reopened = await OpfsDisk.open('sgring-test.img', { core, readOnly: true });
    reopened.read(4000, 1, back);
    const kept = core.u8[back + 1] === 13;
    let readOnly = '';
    try {
      reopened.write(0, 1, back);
    } catch (e) {
      readOnly = (e as { code?: string }).code ?? String(e);
    }
    reopened.close();
    (self as unknown as Worker).postMessage({ same, outOfRange, kept, readOnly, blocks: reopened.blockCount });
  } catch (e) {
    (self as unknown as Worker).postMessage({ error: String((e as Error)?.stack ?? e) });
  }
};
