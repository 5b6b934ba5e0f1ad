// Suite "pagelist": the batch page-list classifier (spec/vmbus.md §4.7) over lists already in
// core memory, and GPA range encode + decode (§2.5) round trips, on the wasm and reference
// engines. Engine entry points are called directly, one call per list, as a planner or a host
// model does; ops are segments (classifier: list entries; encode+decode: page-sized segments
// in, page pieces out), so rates read as segments/s.

import { loadCoreSync } from '../../dist/index.mjs';
import { timeGroupsIsolated } from '../lib/isolate.mjs';

const SUITE = 'pagelist';
const SEG_SIZE = 16;
const PAGE = 4096;
const LIST_SIZES = [1, 8, 32, 256];
const PFN_COUNTS = [1, 8, 64, 512];
const RULE_HYPERV = 0;
const DECODE_PER_PAGE = 1;

const classifyName = (n, aligned) => `classify ${n}-segment list, ${aligned ? 'aligned' : 'misaligned'} (segments/s)`;
const gpaName = (n) => `GPA encode + decode, ${n}-PFN range (segments/s)`;

const check = (ok, what) => {
  if (!ok) throw new Error(`pagelist bench: ${what}`);
};

/** Writes n segments { addr, len } at ptr; PFNs scattered so no two are physically adjacent. */
function stage(core, ptr, n, seg) {
  const u32 = core.u32;
  for (let i = 0; i < n; i++) {
    const { addr, len } = seg(i, 0x10000 + i * 3);
    u32[(ptr >> 2) + 4 * i] = addr % 2 ** 32;
    u32[(ptr >> 2) + 4 * i + 1] = Math.floor(addr / 2 ** 32);
    u32[(ptr >> 2) + 4 * i + 2] = len;
    u32[(ptr >> 2) + 4 * i + 3] = 0;
  }
}

/**
 * Aligned: whole pages (legal). Misaligned: every segment starts at offset 0x200 and runs to
 * its page end, so every segment after the first breaks the rule (the classifier still writes
 * all n class bytes, so the work is the same).
 */
function classifyCase(core, n, aligned) {
  const segs = core.alloc(n * SEG_SIZE, 8);
  const classes = core.alloc(n, 8);
  stage(core, segs, n, (i, pfn) => (aligned ? { addr: pfn * PAGE, len: PAGE } : { addr: pfn * PAGE + 0x200, len: PAGE - 0x200 }));
  const want = aligned || n === 1 ? n : 1;
  const fn = core.fn.pageListClassify;
  return () => check(fn(segs, n, PAGE, RULE_HYPERV, classes) === want, `classify ${n} returned the wrong index`);
}

/**
 * A storvsc-shaped transfer of n pages: the head starts at 0xE00, whole pages in between, a
 * short tail. gpaEncode writes the one-range image; gpaDecode parses it back into per-page
 * segments (the form a host DMAs page by page).
 */
function gpaCase(core, n) {
  const segs = core.alloc(n * SEG_SIZE, 8);
  const img = core.alloc(8 + 8 * n, 8);
  const out = core.alloc(n * SEG_SIZE, 8);
  const res = core.alloc(16, 8);
  stage(core, segs, n, (i, pfn) => {
    const head = i === 0 ? 0xe00 : 0;
    const len = (n > 1 && i === n - 1 ? 0x800 : PAGE) - head;
    return { addr: pfn * PAGE + head, len };
  });
  const { gpaEncode, gpaDecode } = core.fn;
  const bytes = 8 + 8 * n;
  return () => {
    check(gpaEncode(segs, n, img, bytes, res) === bytes, `encode of ${n} PFNs failed`);
    check(gpaDecode(img, bytes, 1, DECODE_PER_PAGE, out, n, res) === n, `decode of ${n} PFNs failed`);
  };
}

const ENGINES = ['wasm', 'reference'];
// The quick run (whole `npm run bench -- --quick` under a minute) times a subset: every list
// size aligned, the misaligned 8- and 256-entry lists, and 1-, 32- and 512-PFN ranges.
const QUICK_MISALIGNED = [8, 256];
const QUICK_PFN_COUNTS = [1, 32, 512];

/** The cases of one engine, built in the worker that times them. */
function cases(engine, { quick = false } = {}) {
  if (!ENGINES.includes(engine)) throw new Error(`pagelist bench: unknown group ${engine}`);
  const core = loadCoreSync({ engine, initialBytes: 4 << 20 });
  const out = [];
  const add = (name, ops, fn) => out.push({ suite: SUITE, name, engine, payloadBytes: SEG_SIZE, ops, fn });
  for (const n of LIST_SIZES) {
    add(classifyName(n, true), n, classifyCase(core, n, true));
    if (!quick || QUICK_MISALIGNED.includes(n)) add(classifyName(n, false), n, classifyCase(core, n, false));
  }
  for (const n of quick ? QUICK_PFN_COUNTS : PFN_COUNTS) add(gpaName(n), n, gpaCase(core, n));
  return out;
}

const key = (name, engine) => ({ suite: SUITE, name, engine, payloadBytes: SEG_SIZE });

export default {
  name: SUITE,
  keyFigures: [
    { label: 'classify 256 aligned segments, wasm segments/s', of: key(classifyName(256, true), 'wasm') },
    { label: 'classify 1 segment, wasm segments/s', of: key(classifyName(1, true), 'wasm') },
    { label: 'classify 256 misaligned, wasm / reference', of: key(classifyName(256, false), 'wasm'), over: key(classifyName(256, false), 'reference') },
    { label: 'GPA encode + decode 512 PFNs, wasm / reference', of: key(gpaName(512), 'wasm'), over: key(gpaName(512), 'reference') },
  ],
  cases,
  async run(ctx) {
    const rows = await timeGroupsIsolated(import.meta.url, ENGINES, ctx);
    // Table order: case, then engine (wasm first).
    const names = [...new Set(rows.map((r) => r.name))];
    return rows.sort((a, b) => names.indexOf(a.name) - names.indexOf(b.name) || ENGINES.indexOf(a.engine) - ENGINES.indexOf(b.engine));
  },
};
