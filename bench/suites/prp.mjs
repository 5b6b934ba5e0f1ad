// Suite "prp": NVMe PRP build and walk (spec/nvme.md §3) for 4 KiB to 2 MiB transfers, with
// PRP1 page aligned and at offset 0x200, plus SGL walks, on the wasm and reference engines
// (each timed in its own isolate, lib/isolate.mjs). Every call is one batch of commands
// (NvmeBuildBatch / NvmeWalkBatch), sized to about 2048 PRP entries, as a device model or a
// driver would run them.
//
// Units: opsPerSec counts PRP entries (SGL rows: data descriptors) per second; payloadBytes is
// the transfer size of one command; bytesPerSec is transfer bytes described per second
// (opsPerSec * transfer / entries per transfer), so both columns are meaningful.

import { loadCoreSync, NvmeBuildBatch, NvmeWalkBatch, prpEntryCount } from '../../dist/index.mjs';
import { timeGroupsIsolated } from '../lib/isolate.mjs';

const SUITE = 'prp';
const K4 = 4096;
const SIZES = [4 * 1024, 64 * 1024, 512 * 1024, 2 * 1024 * 1024];
const SGL_SIZES = [64 * 1024, 2 * 1024 * 1024];
const OFFSETS = [0, 0x200];
const ENTRIES_PER_CALL = 2048;
const GUEST = 16 << 20;
const DATA_BASE = 8 << 20; // data pages: every other 4 KiB page from 8 MiB (nothing merges)
const POOL_BASE = 1 << 20; // list pages, [1 MiB, 8 MiB)

const buildName = (off) => `PRP build, ${off === 0 ? 'aligned' : 'PRP1 offset 0x200'} (entries/s)`;
const walkName = (off) => `PRP walk, ${off === 0 ? 'aligned' : 'PRP1 offset 0x200'} (entries/s)`;
const SGL_WALK = 'SGL walk, one descriptor per 4 KiB (descriptors/s)';

const check = (ok, what) => {
  if (!ok) throw new Error(`prp bench: ${what}`);
};

/** The segments of one transfer of `size` bytes from PRP1 offset `off` (one per page touched). */
function transfer(size, off) {
  const segs = [];
  let left = size;
  for (let i = 0; left > 0; i++) {
    const len = Math.min(left, K4 - (i === 0 ? off : 0));
    segs.push({ addr: DATA_BASE + 2 * i * K4 + (i === 0 ? off : 0), len });
    left -= len;
  }
  return segs;
}

/** Hands out list pages: every rig gets its own, so one case's builds never clobber another's lists. */
function pagePool(core) {
  let next = POOL_BASE;
  return (n) => {
    const pages = Array.from({ length: Math.max(1, n) }, (_, j) => next + j * K4);
    next += Math.max(1, n) * K4;
    check(next <= DATA_BASE, 'list pages ran into the data pages');
    return pages;
  };
}

/** True when command i of a walk batch completed without an NVMe status (a cheap raw read). */
const walked = (core, walks, i) => core.i32[(walks.cmds + i * 32 + 20) >> 2] === 0;

/** Builds `k` PRP transfers once and returns the build batch and a walk batch over the result. */
function prpRig(core, take, size, off) {
  const segs = transfer(size, off);
  const k = Math.max(1, Math.floor(ENTRIES_PER_CALL / segs.length));
  // List pages of n = entries - 1 list entries: 512 fit one page exactly; past that each chained
  // page adds 511 (§3.1 rule 6).
  const n = segs.length - 1;
  const listPerCmd = segs.length <= 2 ? 0 : n <= 512 ? 1 : 1 + Math.ceil((n - 512) / 511);
  const pool = take(k * listPerCmd);
  const builds = new NvmeBuildBatch(core, { format: 'prp', capacity: k, segmentCapacity: k * segs.length, listPages: pool });
  for (let i = 0; i < k; i++) builds.add(segs);
  check(builds.run() === k * listPerCmd, 'build used an unexpected number of list pages');
  const walks = new NvmeWalkBatch(core, { format: 'prp', capacity: k, segmentCapacity: k * segs.length + 16 });
  for (let i = 0; i < k; i++) {
    const dv = new DataView(builds.result(i).dptr.buffer);
    walks.addPrp(dv.getBigUint64(0, true), dv.getBigUint64(8, true), size);
  }
  check(walks.run() === k && walks.status(k - 1) === null && walks.segmentCount(k - 1) === segs.length, 'walk result');
  return { builds, walks, k, entries: segs.length, lists: k * listPerCmd };
}

function sglRig(core, take, size) {
  const segs = transfer(size, 0);
  const k = Math.max(1, Math.floor(ENTRIES_PER_CALL / segs.length));
  const perCmd = segs.length > 1 ? Math.ceil((segs.length - 1) / 255) : 0;
  const pool = take(k * perCmd);
  const builds = new NvmeBuildBatch(core, { format: 'sgl', capacity: k, segmentCapacity: k * segs.length, listPages: pool });
  for (let i = 0; i < k; i++) builds.add(segs);
  builds.run();
  const walks = new NvmeWalkBatch(core, { format: 'sgl', capacity: k, segmentCapacity: k * segs.length + 16 });
  for (let i = 0; i < k; i++) walks.addSgl(builds.result(i).dptr, size);
  check(walks.run() === k && walks.status(k - 1) === null && walks.segmentCount(k - 1) === segs.length, 'SGL walk result');
  return { walks, k, entries: segs.length };
}

const GROUPS = ['wasm', 'reference'];

function cases(group) {
  const core = loadCoreSync({ engine: group, guestBytes: GUEST, initialBytes: GUEST + (8 << 20) });
  const take = pagePool(core);
  const out = [];
  const add = (name, payloadBytes, ops, fn) => out.push({ suite: SUITE, name, engine: group, payloadBytes, ops, fn });
  for (const size of SIZES) {
    for (const off of OFFSETS) {
      const { builds, walks, k, entries, lists } = prpRig(core, take, size, off);
      add(buildName(off), size, k * entries, () => check(builds.run() === lists, 'build used other list pages'));
      add(walkName(off), size, k * entries, () => check(walks.run() === k && walked(core, walks, k - 1), 'walk failed'));
    }
  }
  for (const size of SGL_SIZES) {
    const { walks, k, entries } = sglRig(core, take, size);
    add(SGL_WALK, size, k * entries, () => check(walks.run() === k && walked(core, walks, k - 1), 'SGL walk failed'));
  }
  return out;
}

/** Entries (or descriptors) one command of this row describes. */
function entriesOf(row) {
  if (row.name === SGL_WALK) return Math.ceil(row.payloadBytes / K4);
  return prpEntryCount(row.payloadBytes, row.name.includes('0x200') ? 0x200 : 0);
}

const ORDER = [buildName(0), buildName(0x200), walkName(0), walkName(0x200), SGL_WALK];
const key = (name, engine, payloadBytes) => ({ suite: SUITE, name, engine, payloadBytes });
const MiB2 = 2 * 1024 * 1024;

export default {
  name: SUITE,
  keyFigures: [
    { label: 'PRP walk 2 MiB, wasm entries/s', of: key(walkName(0), 'wasm', MiB2) },
    { label: 'PRP build 2 MiB, wasm entries/s', of: key(buildName(0), 'wasm', MiB2) },
    { label: 'PRP walk 4 KiB (batched), wasm entries/s', of: key(walkName(0), 'wasm', 4096) },
    { label: 'PRP walk 64 KiB +0x200, wasm / reference', of: key(walkName(0x200), 'wasm', 65536), over: key(walkName(0x200), 'reference', 65536) },
  ],
  cases,
  async run(ctx) {
    const rows = await timeGroupsIsolated(import.meta.url, GROUPS, ctx);
    for (const r of rows) r.bytesPerSec = (r.opsPerSec * r.payloadBytes) / entriesOf(r);
    return rows.sort((a, b) => a.payloadBytes - b.payloadBytes || ORDER.indexOf(a.name) - ORDER.indexOf(b.name) ||
      GROUPS.indexOf(a.engine) - GROUPS.indexOf(b.engine));
  },
};
