// Suite "bounce": the page-list planner on 1 to 1024-segment lists (aligned, and misaligned so
// that it must choose what to bounce), and the bounce copies against the copy limit, on the
// wasm and reference engines. Each engine's cases are timed in their own isolate.

import { loadCoreSync, writeSegments } from '../../dist/index.mjs';
import { timeGroupsIsolated } from '../lib/isolate.mjs';

const SUITE = 'bounce';
const P = 4096;
const SIZES = [1, 8, 32, 256, 1024];
const GROUPS = ['wasm', 'reference', 'copy-limit'];
const GUEST = 64 << 20;
const POOL_BASE = 48 << 20; // above every list frame (16 + 2 * 4095 pages)
const COPY_PAGES = 16;

const check = (ok, what) => {
  if (!ok) throw new Error(`bounce bench: ${what}`);
};

/**
 * Aligned: whole pages at scattered frames (nothing to bounce). Misaligned: pieces at page
 * offset 512 of 3584, 4096, 3584... bytes (the D1964 shape: only the first can stay).
 */
function list(n, misaligned) {
  return Array.from({ length: n }, (_, i) => {
    const frame = 16 + ((i * 37) % 4096) * 2;
    return misaligned ? { addr: frame * P + 512, len: i === 0 || i === n - 1 ? 3584 : 4096 } : { addr: frame * P, len: P };
  });
}

/** A core with the list, a pool and a plan buffer laid out in its memory. */
function rig(engine, segments, poolPages) {
  const core = loadCoreSync({ engine, guestBytes: GUEST });
  const segs = core.alloc(segments.length * 16, 8);
  writeSegments(core, segs, segments);
  const pool = core.alloc(poolPages * 8, 8);
  for (let k = 0; k < poolPages; k++) core.dv.setBigUint64(pool + 8 * k, BigInt(POOL_BASE + k * P), true);
  // As planPageList sizes it: room for the plan, and at least for the bitmap of phases tried.
  const outCap = Math.max(64 + 16 * (2 * poolPages + 4) + 24 * (2 * poolPages + segments.length + 4), 40 + P / 8);
  return { core, segs, pool, out: core.alloc(outCap, 8), outCap };
}

function planCase(engine, n, misaligned) {
  const segments = list(n, misaligned);
  const r = rig(engine, segments, n + 2);
  const plan = r.core.fn.planPages;
  const args = [r.segs, n, P, 0, 0xffffffff, r.pool, n + 2, GUEST, 0, r.out, r.outCap];
  check(plan(...args) === 0, `planning ${n} segments failed`);
  return () => check(plan(...args) === 0, 'planning failed');
}

/**
 * A whole-transfer bounce under the NVMe rule: a first piece at an odd address leaves no dword-
 * aligned offset that keeps anything, so all COPY_PAGES pages are copied (two pieces each).
 */
function copyCase(engine) {
  const segments = [{ addr: 16 * P + 1, len: P - 1 }, ...Array.from({ length: COPY_PAGES - 1 }, (_, i) => ({ addr: (64 + 2 * i) * P, len: P })), { addr: 200 * P, len: 1 }];
  const r = rig(engine, segments, COPY_PAGES + 1);
  check(r.core.fn.planPages(r.segs, segments.length, P, 1, 0xffffffff, r.pool, COPY_PAGES + 1, GUEST, 0, r.out, r.outCap) === 0, 'copy plan failed');
  const bytes = r.core.u32[(r.out + 28) >> 2];
  const out = r.core.fn.bounceCopyOut;
  const args = [r.segs, segments.length, r.out, bytes, r.core.guestBase, GUEST];
  check(out(...args) === COPY_PAGES * P, 'bounce copy moved the wrong byte count');
  return () => check(out(...args) === COPY_PAGES * P, 'bounce copy failed');
}

/** The same bytes as copyCase in whole 4 KiB pages: segment pages -> pool pages, one call. */
function copyLimitCase() {
  const core = loadCoreSync({ guestBytes: GUEST });
  const fn = core.fn.copyLimit;
  const g = core.guestBase;
  return () => check(fn(g + POOL_BASE, P, g + 64 * P, 2 * P, P, COPY_PAGES) === 0, 'copyLimit failed');
}

const planName = (misaligned) => `plan a list (${misaligned ? 'misaligned' : 'aligned'})`;
const COPY_NAME = `bounce copy out, ${COPY_PAGES} pages of 4 KiB`;

/** The quick run plans the 1, 32, 256 and 1024-segment lists (misaligned) and the 32-segment aligned one. */
function cases(group, { quick = false } = {}) {
  const out = [];
  const add = (name, payloadBytes, ops, fn) => out.push({ suite: SUITE, name, engine: group, payloadBytes, ops, fn });
  if (group === 'copy-limit') {
    add(COPY_NAME, COPY_PAGES * P, 1, copyLimitCase());
    return out;
  }
  for (const misaligned of [false, true]) {
    // payloadBytes here is the segment count: ops/s x segments = segments planned per second.
    for (const n of SIZES) {
      if (quick && (misaligned ? n === 8 : n !== 32)) continue;
      add(`${planName(misaligned)}, ${n} segments`, n, 1, planCase(group, n, misaligned));
    }
  }
  add(COPY_NAME, COPY_PAGES * P, 1, copyCase(group));
  return out;
}

const key = (name, engine, payloadBytes) => ({ suite: SUITE, name, engine, payloadBytes });

export default {
  name: SUITE,
  keyFigures: [
    { label: '32-segment planning (misaligned), wasm / reference', of: key(`${planName(true)}, 32 segments`, 'wasm', 32), over: key(`${planName(true)}, 32 segments`, 'reference', 32) },
    { label: '256-segment planning (misaligned), wasm, lists/s', of: key(`${planName(true)}, 256 segments`, 'wasm', 256) },
    { label: '1024-segment planning (misaligned), wasm, lists/s', of: key(`${planName(true)}, 1024 segments`, 'wasm', 1024) },
    { label: 'bounce copy out (4 KiB pages), wasm / copy-limit', of: key(COPY_NAME, 'wasm', COPY_PAGES * P), over: key(COPY_NAME, 'copy-limit', COPY_PAGES * P) },
  ],
  cases,
  async run(ctx) {
    return timeGroupsIsolated(import.meta.url, GROUPS, ctx);
  },
};
