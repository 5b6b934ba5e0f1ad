// Properties: random transfers (PRP1 offsets, lengths, MPS 4K/8K/64K, list pointer offsets,
// contiguous and scattered pages) built with buildPrp must produce exactly the list layout of
// a plain model, and walking the result must give back the transfer's pages (merged or not).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildPrp, NvmeBuildBatch, NvmeWalkBatch, prpEntryCount, walkPrp, type NvmeSegment as Segment } from '../../src/index';
import { check } from '../util/fc';
import { ENGINES, getU64, guestCore, MiB, mergeModel, prpEntriesModel, prpListModel, segmentsOf } from './prp-helpers';

const GUEST = 32 * MiB;
const POOL_BASE = 1 * MiB; // list pages live in [1 MiB, 1.5 MiB)
const DATA_BASE = 4 * MiB; // data pages in [4 MiB, 32 MiB)
const MAX_ENTRIES: Record<number, number> = { 4096: 1100, 8192: 300, 65536: 40 };

/** A transfer: PRP1 at a dword offset, then pages (some contiguous runs), a length, a list offset. */
const transferArb = fc.constantFrom(4096, 8192, 65536).chain((mps) => {
  const dataPages = (GUEST - DATA_BASE) / mps;
  const max = MAX_ENTRIES[mps]!;
  return fc.record({
    mps: fc.constant(mps),
    offset: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: mps / 4 - 1 }).map((d) => d * 4), fc.constant(mps - 4)),
    // Around the list-page sizes (example F / G shapes) where this MPS allows them.
    entries: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max }),
      fc.constantFrom(...[2, 3, 511, 512, 513, 514, 1023, 1024, 1025].filter((n) => n <= max))),
    tail: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: mps - 1 })),
    listOffset: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: mps / 8 - 1 }).map((q) => q * 8), fc.integer({ min: 1, max: 4 }).map((k) => mps - 8 * k)),
    pageSeeds: fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: dataPages - 1 })), { minLength: max, maxLength: max }),
    coalesce: fc.boolean(),
    merge: fc.boolean(),
  });
});

type Transfer = typeof transferArb extends fc.Arbitrary<infer T> ? T : never;

/** The transfer's segments (one per page) and the builder input (contiguous pages coalesced or not). */
function shape(t: Transfer): { pages: Segment[]; input: Segment[]; length: number; pool: number[] } {
  const { mps } = t;
  const addrs: number[] = [];
  let prev = -1;
  for (const [contig, idx] of t.pageSeeds) {
    const page = contig && prev >= 0 && prev + 1 < (GUEST - DATA_BASE) / mps ? prev + 1 : idx;
    addrs.push(DATA_BASE + page * mps);
    prev = page;
  }
  const firstLen = mps - t.offset;
  // entries pages in all: the first from `offset`, the last possibly short (tail), the rest full.
  const pages: Segment[] = [];
  for (let i = 0; i < t.entries; i++) {
    const addr = i === 0 ? addrs[0]! + t.offset : addrs[i]!;
    let len = i === 0 ? firstLen : mps;
    if (i === t.entries - 1 && t.tail > 0) len = Math.min(len, t.tail);
    pages.push({ addr, len });
  }
  const length = pages.reduce((n, s) => n + s.len, 0);
  const input = t.coalesce ? mergeModel(pages) : pages;
  const pool = [POOL_BASE + t.listOffset, ...Array.from({ length: 7 }, (_, j) => POOL_BASE + (j + 1) * mps)];
  return { pages, input, length, pool };
}

describe.each(ENGINES)('PRP build -> walk round trip (%s)', (engine) => {
  const c = guestCore(engine, GUEST);

  it('builds the model\'s PRP1/PRP2/list pages and walks back to the same pages', () => {
    check(fc.property(transferArb, (t) => {
      const { pages, input, length, pool } = shape(t);
      const entries = prpEntriesModel(input, t.mps);
      expect(entries).toEqual(pages);
      expect(prpEntryCount(length, t.offset, t.mps)).toBe(pages.length);
      const b = buildPrp(c, { segments: input, listPages: pool, mps: t.mps });
      expect(b.prp1).toBe(BigInt(pages[0]!.addr));
      expect(b.length).toBe(length);
      expect(b.entries).toBe(pages.length);
      if (pages.length === 1) expect([b.prp2, b.listPages]).toEqual([0n, []]);
      else if (pages.length === 2) expect([b.prp2, b.listPages]).toEqual([BigInt(pages[1]!.addr), []]);
      else {
        expect(b.prp2).toBe(BigInt(pool[0]!));
        const model = prpListModel(pages.slice(1).map((p) => p.addr), pool, t.mps);
        expect(b.listPages).toEqual(model.map((p) => BigInt(p.page)));
        for (const p of model) expect(getU64(c, p.page, p.words.length)).toEqual(p.words.map(BigInt));
      }
      const walked = segmentsOf(walkPrp(c, { prp1: b.prp1, prp2: b.prp2, length, mps: t.mps, merge: t.merge, maxMappings: 2048 }));
      expect(walked).toEqual(t.merge ? mergeModel(pages) : pages);
    }), 150);
  });

  it('the batch forms agree with the one-shot forms, command by command', () => {
    check(fc.property(fc.array(transferArb.filter((t) => t.mps === 4096), { minLength: 1, maxLength: 6 }), fc.boolean(), (ts, merge) => {
      const shapes = ts.map(shape);
      // One pool for the whole batch, taken in order: only its first page may carry an offset.
      const pool = [POOL_BASE + ts[0]!.listOffset, ...Array.from({ length: 4 * ts.length }, (_, j) => POOL_BASE + (j + 1) * 4096)];
      const builds = new NvmeBuildBatch(c, { format: 'prp', capacity: ts.length, listPages: pool, segmentCapacity: 8192 });
      const walks = new NvmeWalkBatch(c, { format: 'prp', capacity: ts.length, merge, maxMappings: 2048 });
      shapes.forEach((s) => builds.add(s.input));
      builds.run();
      shapes.forEach((s, i) => {
        const r = builds.result(i);
        const dv = new DataView(r.dptr.buffer);
        walks.addPrp(dv.getBigUint64(0, true), dv.getBigUint64(8, true), r.length);
        expect(r.length).toBe(s.length);
      });
      let done = 0;
      while (done < walks.count) {
        const next = walks.run(done);
        expect(next).toBeGreaterThan(done);
        for (let i = done; i < next; i++) {
          expect(walks.status(i)).toBeNull();
          expect(walks.segments(i)).toEqual(merge ? mergeModel(shapes[i]!.pages) : shapes[i]!.pages);
        }
        done = next;
      }
    }), 60);
  });
});
