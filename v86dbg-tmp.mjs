import { runV86Guest } from './test/util/v86-guest.mjs';
import { loadCoreSync, MemoryDisk, NvmeController } from './dist/index.mjs';
import { attachToV86, v86Dma } from './dist/v86.mjs';
const mods = process.argv[2].split(',');
const lines = process.argv.slice(3);
const r = await runV86Guest({ modules: mods, lines, ide: new ArrayBuffer(64 << 20), timeoutMs: 120000,
  attach: (em) => { const core = loadCoreSync(); const c = new NvmeController(core, { dma: v86Dma(em, core), namespaces: [{ backend: MemoryDisk.create(core, { blockCount: 131072 }) }] }); attachToV86(em, c); } });
console.log(r.output); console.log('code', r.code, Math.round(r.ms));
