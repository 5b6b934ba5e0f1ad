// Suite "dma": a device's gather (guest -> buffer) and scatter (buffer -> guest) of 4 KiB to
// 1 MiB through identity and strict IOMMU domains, one engine call per transfer, against the
// copy limit (memory.copy of the same bytes between the same addresses). The transfer is 4 KiB
// segments on every other guest page, the shape a decoded GPA range or PRP list has, so the
// strict domain checks one permission entry per page. Engines are timed in their own isolates.

import { Iommu, loadCoreSync, writeSegments } from '../../dist/index.mjs';
import { timeGroupsIsolated } from '../lib/isolate.mjs';

const SUITE = 'dma';
const P = 4096;
const STRIDE = 2 * P;
const GUEST = 8 << 20;
const BASE = 1 << 20; // first segment's guest-physical address
const SIZES = [4 << 10, 64 << 10, 1 << 20];
const MODES = ['identity', 'strict'];
const ENGINES = ['wasm', 'reference'];
// The quick run (whole `npm run bench -- --quick` under a minute; this suite about 5 s) times
// gathers only: wasm in both modes and the reference in strict mode at 64 KiB and 1 MiB, the
// 4 KiB strict gather on wasm, the 1 MiB strict scatter on wasm, and their copy limits.
const quickCase = (engine, dir, size, mode) => (dir === 'scatter' ? engine === 'wasm' && mode === 'strict' && size === 1 << 20
  : size > 4 << 10 ? engine === 'wasm' || mode === 'strict' : engine === 'wasm' && mode === 'strict');

const check = (ok, what) => {
  if (!ok) throw new Error(`dma bench: ${what}`);
};

// The size is the payload column; the copy limit has no domain, so its rows say so.
const caseName = (dir, mode) => `${dir} in 4 KiB segments, ${mode === 'none' ? 'no domain (copy limit)' : mode}`;

/** A core with guest RAM, one domain per mode (strict: exactly the transfer's pages mapped), the list and a buffer. */
function rig(engine) {
  const core = loadCoreSync({ engine, guestBytes: GUEST });
  const iommu = new Iommu(core);
  const pages = SIZES[SIZES.length - 1] / P;
  const segments = Array.from({ length: pages }, (_, i) => ({ addr: BASE + i * STRIDE, len: P }));
  const domains = {};
  for (const mode of MODES) {
    const d = iommu.domain(mode, { mode });
    if (mode === 'strict') for (const s of segments) d.map(s.addr, s.len);
    domains[mode] = d;
  }
  const segs = core.alloc(pages * 16, 8);
  writeSegments(core, segs, segments);
  const buf = core.alloc(pages * P, 4096);
  const res = core.alloc(16, 8);
  for (let i = 0; i < GUEST; i += 4096) core.u8[core.guestBase + i] = i >> 12;
  return { core, domains, segs, buf, res };
}

function dmaCase(r, dir, size, mode) {
  const { core, segs, buf, res } = r;
  const d = r.domains[mode];
  const f = dir === 'gather' ? core.fn.dmaGather : core.fn.dmaScatter;
  const n = size / P;
  const args = [d.ptr, d.generation, core.guestBase, core.guestBytes, segs, n, buf, size, res];
  check(f(...args) === size, `${dir} of ${size} bytes (${mode}) failed`);
  return () => check(f(...args) === size, `${dir} failed`);
}

/** The same bytes between the same addresses: n page copies at the list's stride, one call. */
function copyLimitCase(core, buf, dir, size) {
  const fn = core.fn.copyLimit;
  const g = core.guestBase + BASE;
  const n = size / P;
  const args = dir === 'gather' ? [buf, P, g, STRIDE, P, n] : [g, STRIDE, buf, P, P, n];
  check(fn(...args) === 0, 'copyLimit failed');
  return () => check(fn(...args) === 0, 'copyLimit failed');
}

/** The cases of one group ("<engine>" or "copy-limit", with ":quick" for the quick subset). */
function cases(group) {
  const [engine, mode] = group.split(':');
  const quick = mode === 'quick';
  const out = [];
  const add = (name, size, fn) => out.push({ suite: SUITE, name, engine, payloadBytes: size, ops: 1, fn });
  if (engine === 'copy-limit') {
    const core = loadCoreSync({ guestBytes: GUEST });
    const buf = core.alloc(SIZES[SIZES.length - 1], 4096);
    for (const size of SIZES) {
      for (const dir of ['gather', 'scatter']) if (!quick || quickCase('wasm', dir, size, 'strict')) add(caseName(dir, 'none'), size, copyLimitCase(core, buf, dir, size));
    }
    return out;
  }
  if (!ENGINES.includes(engine)) throw new Error(`dma bench: unknown group ${group}`);
  const r = rig(engine);
  for (const size of SIZES) {
    for (const m of MODES) {
      for (const dir of ['gather', 'scatter']) if (!quick || quickCase(engine, dir, size, m)) add(caseName(dir, m), size, dmaCase(r, dir, size, m));
    }
  }
  return out;
}

const key = (dir, mode, engine, size) => ({ suite: SUITE, name: caseName(dir, mode), engine, payloadBytes: size });
const MiB = 1 << 20;
const K64 = 64 << 10;

export default {
  name: SUITE,
  keyFigures: [
    { label: 'gather 1 MiB strict, wasm / copy-limit', of: key('gather', 'strict', 'wasm', MiB), over: key('gather', 'none', 'copy-limit', MiB) },
    { label: 'gather 64 KiB strict, wasm / copy-limit', of: key('gather', 'strict', 'wasm', K64), over: key('gather', 'none', 'copy-limit', K64) },
    { label: 'gather 64 KiB, strict / identity (wasm)', of: key('gather', 'strict', 'wasm', K64), over: key('gather', 'identity', 'wasm', K64) },
    { label: 'gather 1 MiB strict, wasm / reference', of: key('gather', 'strict', 'wasm', MiB), over: key('gather', 'strict', 'reference', MiB) },
  ],
  cases,
  async run(ctx) {
    const groups = [...ENGINES, 'copy-limit'].map((e) => (ctx.quick ? `${e}:quick` : e));
    const rows = await timeGroupsIsolated(import.meta.url, groups, ctx);
    // Table order: size, then case, then engine (wasm, reference, copy limit).
    const order = [...ENGINES, 'copy-limit'];
    return rows.sort((a, b) => a.payloadBytes - b.payloadBytes || a.name.localeCompare(b.name) || order.indexOf(a.engine) - order.indexOf(b.engine));
  },
};
