// spec/nvme.md §3.4, examples A-H (MPS = 4096), on both engines: the walker over planted PRP
// lists, the builder producing exactly the example's PRP1/PRP2/lists, and build -> walk.
import { describe, expect, it } from 'vitest';
import { buildPrp, walkPrp, type Core } from '../../src/index';
import { ENGINES, getU64, guestCore, mergeModel, putU64, segmentsOf } from './prp-helpers';

const K4 = 4096;
/** Data page i of the big examples: every other page from 8 MiB, so nothing merges. */
const dataPage = (i: number) => 0x80_0000 + 2 * i * K4;

describe.each(ENGINES)('spec §3.4 worked PRP examples (%s)', (engine) => {
  let c: Core;
  const fresh = () => (c = guestCore(engine));
  const walk = (prp1: number | bigint, prp2: number | bigint, length: number, merge = false) => walkPrp(c, { prp1, prp2, length, merge });

  it('A: 512 bytes at 0x123400 -> one segment; PRP2 is ignored', () => {
    fresh();
    expect(segmentsOf(walk(0x123400, 0, 512))).toEqual([{ addr: 0x123400, len: 512 }]);
    expect(segmentsOf(walk(0x123400, 0xdead_beef, 512))).toEqual([{ addr: 0x123400, len: 512 }]);
    const b = buildPrp(c, { segments: [{ addr: 0x123400, len: 512 }] });
    expect(b).toMatchObject({ prp1: 0x123400n, prp2: 0n, entries: 1, listPages: [] });
  });

  it('B: 8192 bytes aligned -> PRP2 is the second data pointer', () => {
    fresh();
    expect(segmentsOf(walk(0xa0000, 0xf0000, 8192))).toEqual([{ addr: 0xa0000, len: 4096 }, { addr: 0xf0000, len: 4096 }]);
    const b = buildPrp(c, { segments: [{ addr: 0xa0000, len: 4096 }, { addr: 0xf0000, len: 4096 }], listPages: [0x50000] });
    expect(b).toMatchObject({ prp1: 0xa0000n, prp2: 0xf0000n, entries: 2, listPages: [] });
  });

  it('C: the same 8192 bytes from offset 0x800 need a list of two entries', () => {
    fresh();
    putU64(c, 0x50000, [0xf0000, 0x30000]);
    const want = [{ addr: 0xa0800, len: 2048 }, { addr: 0xf0000, len: 4096 }, { addr: 0x30000, len: 2048 }];
    expect(segmentsOf(walk(0xa0800, 0x50000, 8192))).toEqual(want);
    putU64(c, 0x50000, [0, 0]);
    const b = buildPrp(c, { segments: want, listPages: [0x50000] });
    expect(b).toMatchObject({ prp1: 0xa0800n, prp2: 0x50000n, entries: 3, listPages: [0x50000n] });
    expect(getU64(c, 0x50000, 2)).toEqual([0xf0000n, 0x30000n]);
  });

  it('D: 4096 bytes from offset 0x10 -> PRP2 is a data pointer for the 16-byte tail', () => {
    fresh();
    const want = [{ addr: 0xa0010, len: 4080 }, { addr: 0xf0000, len: 16 }];
    expect(segmentsOf(walk(0xa0010, 0xf0000, 4096))).toEqual(want);
    expect(buildPrp(c, { segments: want })).toMatchObject({ prp1: 0xa0010n, prp2: 0xf0000n, entries: 2 });
  });

  it('E: a list pointer with an in-page offset; contiguous entries merge when asked', () => {
    fresh();
    putU64(c, 0x200100, [0x30000, 0x31000, 0x7000]);
    const pages = [{ addr: 0x100f9c, len: 100 }, { addr: 0x30000, len: 4096 }, { addr: 0x31000, len: 4096 }, { addr: 0x7000, len: 4096 }];
    expect(segmentsOf(walk(0x100f9c, 0x200100, 12388))).toEqual(pages);
    expect(segmentsOf(walk(0x100f9c, 0x200100, 12388, true))).toEqual(mergeModel(pages));
    expect(mergeModel(pages)[1]).toEqual({ addr: 0x30000, len: 8192 });
    putU64(c, 0x200100, [0, 0, 0]);
    const b = buildPrp(c, { segments: [pages[0]!, { addr: 0x30000, len: 8192 }, pages[3]!], listPages: [0x200100] });
    expect(b).toMatchObject({ prp1: 0x100f9cn, prp2: 0x200100n, entries: 4, listPages: [0x200100n] });
    expect(getU64(c, 0x200100, 3)).toEqual([0x30000n, 0x31000n, 0x7000n]);
  });

  it('F: 513 pages, aligned: 512 list entries fill the page exactly and slot 511 is data', () => {
    fresh();
    const entries = Array.from({ length: 512 }, (_, i) => dataPage(i + 1));
    putU64(c, 0x200000, entries);
    putU64(c, 0x201000, [0x123000]); // what a walker that always chains would follow
    const segs = segmentsOf(walk(dataPage(0), 0x200000, 513 * K4));
    expect(segs).toHaveLength(513);
    expect(segs[512]).toEqual({ addr: dataPage(512), len: K4 });
    expect(segs.every((s, i) => s.addr === dataPage(i) && s.len === K4)).toBe(true);
    putU64(c, 0x200000, new Array(512).fill(0));
    const b = buildPrp(c, { addr: dataPage(0), length: 513 * K4, pages: entries, listPages: [0x200000, 0x201000] });
    expect(b.listPages).toEqual([0x200000n]);
    expect(getU64(c, 0x200000, 512)).toEqual(entries.map(BigInt));
  });

  it('G: 514 pages chain: slots 0..510 data, slot 511 -> list page 2 holding entries 512 and 513', () => {
    fresh();
    const entries = Array.from({ length: 513 }, (_, i) => dataPage(i + 1));
    putU64(c, 0x200000, [...entries.slice(0, 511), 0x205000]);
    putU64(c, 0x205000, entries.slice(511));
    const segs = segmentsOf(walk(dataPage(0), 0x200000, 514 * K4));
    expect(segs).toHaveLength(514);
    expect(segs.every((s, i) => s.addr === dataPage(i) && s.len === K4)).toBe(true);
    putU64(c, 0x200000, new Array(512).fill(0));
    putU64(c, 0x205000, [0, 0]);
    const b = buildPrp(c, { addr: dataPage(0), length: 514 * K4, pages: entries, listPages: [0x200000, 0x205000, 0x206000] });
    expect(b).toMatchObject({ prp2: 0x200000n, entries: 514, listPages: [0x200000n, 0x205000n] });
    expect(getU64(c, 0x200000, 512)).toEqual([...entries.slice(0, 511), 0x205000].map(BigInt));
    expect(getU64(c, 0x205000, 2)).toEqual(entries.slice(511).map(BigInt));
    expect(segmentsOf(walk(b.prp1, b.prp2, b.length))).toEqual(segs);
  });

  it('H: 2 MiB from offset 0x200: 512 list entries fit an aligned list exactly, overflow an offset one', () => {
    fresh();
    const length = 2 * 1024 * 1024;
    const prp1 = dataPage(0) + 0x200;
    const entries = Array.from({ length: 512 }, (_, i) => dataPage(i + 1));
    // Aligned list pointer: exact fit (example F again).
    const aligned = buildPrp(c, { addr: prp1, length, pages: entries, listPages: [0x200000, 0x201000] });
    expect(aligned).toMatchObject({ prp2: 0x200000n, entries: 513, listPages: [0x200000n] });
    const want = [{ addr: prp1, len: 3584 }, ...entries.map((a, i) => ({ addr: a, len: i === 511 ? 512 : K4 }))];
    expect(segmentsOf(walk(aligned.prp1, aligned.prp2, length))).toEqual(want);
    // List pointer at offset 0x100: 480 slots, so slot 479 chains and the second page holds 33.
    const offset = buildPrp(c, { addr: prp1, length, pages: entries, listPages: [0x300100, 0x301000] });
    expect(offset).toMatchObject({ prp2: 0x300100n, listPages: [0x300100n, 0x301000n] });
    expect(getU64(c, 0x300100 + 479 * 8, 1)).toEqual([0x301000n]);
    expect(getU64(c, 0x301000, 33)).toEqual(entries.slice(479).map(BigInt));
    expect(segmentsOf(walk(offset.prp1, offset.prp2, length))).toEqual(want);
  });

  it('H (bhyve observation): a walker must size the first list from PRP2\'s offset, not assume 512 slots', () => {
    fresh();
    // Entries planted from offset 0xF00 leave 32 slots; slot 31 chains. A walker that reads 511
    // slots from there would run into the next page and read garbage as data.
    const entries = Array.from({ length: 40 }, (_, i) => dataPage(i + 1));
    putU64(c, 0x400f00, [...entries.slice(0, 31), 0x402000]);
    putU64(c, 0x401000, new Array(16).fill(0x3)); // garbage right after the first list page
    putU64(c, 0x402000, entries.slice(31));
    const segs = segmentsOf(walk(dataPage(0), 0x400f00, 41 * K4));
    expect(segs.map((s) => s.addr)).toEqual([dataPage(0), ...entries]);
  });
});
