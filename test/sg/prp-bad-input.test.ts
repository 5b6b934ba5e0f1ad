// Hostile and wrong PRP input: spec/hardening.md §3.3, items 19-25 and 27, on both engines.
// Builder errors are typed SgringErrors that write nothing; walker errors are the NVMe status
// the controller completes with (spec/nvme.md §3.3), never an exception, hang or stray access.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { buildPrp, Core, loadCoreSync, NvmeWalkBatch, walkPrp, type NvmeSegment as Segment } from '../../src/index';
import { ENGINES, getU64, guestCore, MiB, putU64, segmentsOf, statusOf } from './prp-helpers';
import { expectCode } from '../util/errors';

const K4 = 4096;

/** Raw engine access with our own regions, to see exactly which bytes a walk touches. */
function raw(c: Core, o: { maxBytes?: number; maxMappings?: number } = {}) {
  const cfg = c.alloc(48, 8);
  const scratch = c.alloc(K4 + 64, 8);
  const out = c.alloc(64 * 16, 8);
  const dptr = c.alloc(16, 8);
  const u = c.u32;
  u.set([K4, o.maxBytes ?? 0, 0, c.guestBase, c.guestBytes, o.maxMappings ?? 1024, scratch, K4 + 64, 65536], cfg >> 2);
  const sentinel = () => {
    c.u8.fill(0xee, scratch, scratch + K4 + 64);
    c.u8.fill(0xdd, out, out + 64 * 16);
  };
  const untouched = () => c.u8.subarray(scratch, scratch + K4 + 64).every((b) => b === 0xee) && c.u8.subarray(out, out + 1024).every((b) => b === 0xdd);
  const walk = (prp1: number, prp2: number, len: number) => {
    u.set([prp1, 0, prp2, 0], dptr >> 2);
    return c.fn.prpWalk(cfg, dptr, len, out, 64);
  };
  return { sentinel, untouched, walk };
}

describe.each(ENGINES)('PRP bad input (%s)', (engine) => {
  const c = guestCore(engine);
  const guestImage = (gpa: number, n: number) => c.u8.slice(c.guestBase + gpa, c.guestBase + gpa + n);

  describe('builder (G)', () => {
    const pool = [0x10000, 0x11000, 0x12000];
    const build = (segments: Segment[], listPages = pool, extra = {}) => buildPrp(c, { segments, listPages, ...extra });
    const unchanged = (f: () => void) => {
      putU64(c, 0x10000, [0x1111, 0x2222]);
      const before = guestImage(0x10000, 3 * K4);
      f();
      expect(guestImage(0x10000, 3 * K4)).toEqual(before);
    };

    it('[H19] a buffer start that is not dword aligned is refused (NvmeNotDwordAligned) and nothing is written', () => {
      for (const a of [0x20001, 0x20002, 0x20003]) unchanged(() => expectCode(() => build([{ addr: a, len: 3 * K4 }]), 'NvmeNotDwordAligned'));
    });

    it('[H19] a middle or last element not page aligned at its start is refused (NvmeNotPageAligned)', () => {
      unchanged(() => expectCode(() => build([{ addr: 0x20000, len: K4 }, { addr: 0x30200, len: K4 }, { addr: 0x40000, len: 10 }]), 'NvmeNotPageAligned'));
      unchanged(() => expectCode(() => build([{ addr: 0x20000, len: K4 }, { addr: 0x30000, len: K4 }, { addr: 0x40004, len: 10 }]), 'NvmeNotPageAligned'));
    });

    it('[H19] a non-final element not ending on a page boundary is refused (NvmeNotPageEnd)', () => {
      unchanged(() => expectCode(() => build([{ addr: 0x20100, len: 100 }, { addr: 0x30000, len: K4 }]), 'NvmeNotPageEnd'));
      unchanged(() => expectCode(() => build([{ addr: 0x20000, len: K4 }, { addr: 0x30000, len: 2 * K4 - 8 }, { addr: 0x40000, len: 8 }]), 'NvmeNotPageEnd'));
    });

    it('[H19] more pages than the list pool can describe is refused (NvmeListPoolTooSmall); chaining stretches a pool', () => {
      const pages = (n: number) => [{ addr: 0x100000, len: n * K4 }];
      // One list page: 512 entries after PRP1 (exact fit); 514 pages need a chain.
      expect(build(pages(513), [0x10000]).listPages).toEqual([0x10000n]);
      unchanged(() => expectCode(() => build(pages(514), [0x10000]), 'NvmeListPoolTooSmall'));
      // Two pages: 511 + chain, then 512 (exact fit again): 1 + 1023 entries at most.
      expect(build(pages(1024), [0x10000, 0x11000]).listPages).toEqual([0x10000n, 0x11000n]);
      unchanged(() => expectCode(() => build(pages(1025), [0x10000, 0x11000]), 'NvmeListPoolTooSmall'));
      unchanged(() => expectCode(() => build([{ addr: 0x100800, len: 2 * K4 }], []), 'NvmeListPoolTooSmall'));
    });

    it('[H19] empty elements, transfers past MDTS or 2^32 - 1 bytes, and bad pool pages are refused', () => {
      unchanged(() => expectCode(() => build([{ addr: 0x20000, len: K4 }, { addr: 0x30000, len: 0 }]), 'NvmeEmptySegment'));
      unchanged(() => expectCode(() => build([{ addr: 0x100000, len: 33 * K4 }], pool, { mdts: 5 }), 'NvmeTransferTooLarge'));
      expect(build([{ addr: 0x100000, len: 32 * K4 }], pool, { mdts: 5 }).entries).toBe(32);
      const huge = Array.from({ length: 1025 }, (_, i) => ({ addr: i * 4 * MiB, len: 4 * MiB }));
      expectCode(() => build(huge), 'NvmeTransferTooLarge');
      // The first pool page may carry a qword offset; chained pages may not; all in guest RAM.
      unchanged(() => expectCode(() => build([{ addr: 0x100000, len: 3 * K4 }], [0x10004]), 'NvmeBadListPage'));
      unchanged(() => expectCode(() => build([{ addr: 0x100000, len: 600 * K4 }], [0x10000, 0x11008]), 'NvmeBadListPage'));
      unchanged(() => expectCode(() => build([{ addr: 0x100000, len: 3 * K4 }], [c.guestBytes]), 'NvmeBadListPage'));
      expectCode(() => build([{ addr: 0x100000, len: 3 * K4 }], [2 ** 40]), 'NvmeBadListPage');
    });
  });

  describe('walker (D)', () => {
    const walk = (prp1: number | bigint, prp2: number | bigint, length: number, extra = {}) => walkPrp(c, { prp1, prp2, length, ...extra });
    const expectStatus = (r: ReturnType<typeof walk>, name: string, reason: string, dnr: boolean) =>
      expect(statusOf(r)).toMatchObject({ sct: 0, name, reason, dnr });

    it('[H20] PRP2 used directly but not page aligned: PRP Offset Invalid with DNR', () => {
      for (const p2 of [0xf0010, 0xf0004, 0xf0001, 0xf0800]) {
        const s = statusOf(walk(0xa0000, p2, 8192));
        expect(s).toMatchObject({ sct: 0, sc: 0x13, dnr: true, name: 'PrpOffsetInvalid', reason: 'Prp2NotPageAligned' });
      }
    });

    it('[H20] a PRP list entry or chain pointer not page aligned: PRP Offset Invalid with DNR', () => {
      for (const at of [0, 1, 2]) {
        putU64(c, 0x50000, [0xf0000, 0xf1000, 0xf2000].map((v, i) => (i === at ? v + 0x200 : v)));
        expectStatus(walk(0xa0000, 0x50000, 4 * K4), 'PrpOffsetInvalid', 'ListEntryNotPageAligned', true);
      }
      putU64(c, 0x50000, [...Array.from({ length: 511 }, (_, i) => 0x200000 + i * K4), 0x61008]);
      expectStatus(walk(0xa0000, 0x50000, 514 * K4), 'PrpOffsetInvalid', 'ChainPointerNotPageAligned', true);
      // Our choice: a list pointer must be qword aligned (entries are qwords).
      expectStatus(walk(0xa0000, 0x50004, 4 * K4), 'PrpOffsetInvalid', 'ListPointerNotQwordAligned', true);
    });

    it('[H20] PRP1 bits 1:0: PRP Offset Invalid by default, masked as bhyve does with maskPrp1', () => {
      expectStatus(walk(0xa0002, 0, 100), 'PrpOffsetInvalid', 'Prp1NotDwordAligned', true);
      expect(segmentsOf(walk(0xa0003, 0, 100, { maskPrp1: true }))).toEqual([{ addr: 0xa0000, len: 100 }]);
    });

    it('[H21] the first list is sized from PRP2\'s in-page offset; N, N +- 1 entries with PRP1 aligned and offset', () => {
      const data = (i: number) => 0x400000 + 2 * i * K4;
      for (const listOffset of [0, 8, 0x100, 0xff0, 0xff8]) {
        const slots = (K4 - listOffset) / 8;
        for (const prp1Offset of [0, 0x200]) {
          for (const n of [slots - 1, slots, slots + 1].filter((k) => k >= 2)) {
            // n entries after PRP1; a walker that misjudges the chain slot reads the trap page.
            const length = (K4 - prp1Offset) + n * K4 - (prp1Offset > 0 ? 100 : 0);
            const listAt = 0x300000 + listOffset;
            const chained = n > slots;
            const first = chained ? slots - 1 : n;
            putU64(c, listAt, Array.from({ length: first }, (_, i) => data(i + 1)));
            if (chained) {
              putU64(c, listAt + 8 * (slots - 1), [0x380000]);
              putU64(c, 0x380000, Array.from({ length: n - first }, (_, i) => data(first + i + 1)));
            } else if (slots > n) putU64(c, listAt + 8 * n, [0x3f0000 + 0x10]); // trap: never read
            const segs = segmentsOf(walk(data(0) + prp1Offset, listAt, length, { merge: false }));
            expect(segs.map((s) => s.addr)).toEqual([data(0) + prp1Offset, ...Array.from({ length: n }, (_, i) => data(i + 1))]);
            expect(segs.reduce((a, s) => a + s.len, 0)).toBe(length);
          }
        }
      }
    });

    it('[H21] the last slot chains only when more than one page remains, for MPS 8 KiB and 64 KiB too', () => {
      for (const mps of [8192, 65536]) {
        const slots = mps / 8;
        const data = (i: number) => 0x800000 + (i % 100) * mps;
        const listAt = 0x200000 + mps - 16; // 2 slots
        putU64(c, listAt, [data(1), data(2)]);
        expect(segmentsOf(walk(data(0), listAt, 3 * mps, { mps, merge: false })).length).toBe(3);
        putU64(c, listAt, [data(1), 0x400000]);
        putU64(c, 0x400000, Array.from({ length: slots }, (_, i) => data(i + 2)));
        expect(segmentsOf(walk(data(0), listAt, (slots + 2) * mps, { mps, merge: false, maxMappings: slots + 2 })).length).toBe(slots + 2);
      }
    });

    it('[H22] a chain pointer to its own list page or an earlier one ends in an error (ChainLoop), never a loop', () => {
      const full = (chainTo: number) => [...Array.from({ length: 511 }, (_, i) => 0x400000 + i * K4), chainTo];
      putU64(c, 0x60000, full(0x60000));
      expectStatus(walk(0xa0000, 0x60000, 2000 * K4, { maxMappings: 4096 }), 'InvalidField', 'ChainLoop', true);
      putU64(c, 0x60000, full(0x61000));
      putU64(c, 0x61000, full(0x62000));
      putU64(c, 0x62000, full(0x61000));
      expectStatus(walk(0xa0000, 0x60000, 2000 * K4, { maxMappings: 4096 }), 'InvalidField', 'ChainLoop', true);
      // Back to the first list's page when PRP2 pointed into its middle.
      putU64(c, 0x60800, [...Array.from({ length: 255 }, (_, i) => 0x400000 + i * K4), 0x60000]);
      expectStatus(walk(0xa0000, 0x60800, 600 * K4), 'InvalidField', 'ChainLoop', true);
    });

    it('[H23] PRP1 = 0 and list entries = 0 are addresses; the first segment never merges with a phantom predecessor', () => {
      expect(segmentsOf(walk(0, 0, 100))).toEqual([{ addr: 0, len: 100 }]);
      putU64(c, 0x50000, [0, 0x1000, 0]);
      expect(segmentsOf(walk(0x7000, 0x50000, 4 * K4))).toEqual([{ addr: 0x7000, len: K4 }, { addr: 0, len: 2 * K4 }, { addr: 0, len: K4 }]);
      expect(segmentsOf(walk(0, 0x1000, 2 * K4))).toEqual([{ addr: 0, len: 2 * K4 }]);
      // In a batch, a command that continues where the previous one ended starts its own segment.
      const b = new NvmeWalkBatch(c, { format: 'prp', capacity: 2 });
      b.addPrp(0x20000, 0, K4);
      b.addPrp(0x21000, 0, K4);
      expect(b.run()).toBe(2);
      expect([b.segments(0), b.segments(1)]).toEqual([[{ addr: 0x20000, len: K4 }], [{ addr: 0x21000, len: K4 }]]);
    });

    it('[H24] (guest-window variant) anything outside guest RAM is a Data Transfer Error without DNR', () => {
      const g = c.guestBytes;
      const dte = (r: ReturnType<typeof walk>, reason: string) => expectStatus(r, 'DataTransferError', reason, false);
      dte(walk(g, 0, 1), 'DataOutsideGuest');
      dte(walk(g - 100, g, 200), 'DataOutsideGuest');
      dte(walk(2n ** 40n, 0, 100), 'DataOutsideGuest');
      dte(walk(0xa0000, g, 2 * K4), 'DataOutsideGuest');
      dte(walk(0xa0000, 2n ** 63n, 3 * K4), 'ListOutsideGuest');
      dte(walk(0xa0000, g, 3 * K4), 'ListOutsideGuest');
      putU64(c, 0x50000, [0xf0000, 2n ** 32n]);
      dte(walk(0xa0000, 0x50000, 3 * K4), 'DataOutsideGuest');
      putU64(c, 0x50000, [...Array.from({ length: 511 }, (_, i) => 0x400000 + i * K4), g]);
      dte(walk(0xa0000, 0x50000, 600 * K4), 'ListOutsideGuest');
    });

    it('[H25] length 0 succeeds without touching memory; length > MDTS fails with Invalid Field before any read', () => {
      const r = raw(c, { maxBytes: 64 * K4 });
      r.sentinel();
      expect(r.walk(0xffff_fff3, 0xffff_fff1, 0)).toBe(0);
      expect(r.untouched()).toBe(true);
      putU64(c, 0x50000, Array.from({ length: 70 }, (_, i) => 0x400000 + i * K4));
      const st = r.walk(0x100000, 0x50000, 64 * K4 + 1);
      expect(st).toBeLessThan(-65535);
      expect(r.untouched()).toBe(true);
      expectStatus(walk(0x100000, 0x50000, 64 * K4 + 1, { mdts: 6 }), 'InvalidField', 'TransferExceedsMdts', true);
      expect(segmentsOf(walk(0x100000, 0x50000, 64 * K4, { mdts: 6 })).length).toBe(2); // the list's pages merge
    });

    it('[H25] more entries than the mapping cap: Internal Error with DNR, decided from the length before any read', () => {
      const r = raw(c, { maxMappings: 8 });
      r.sentinel();
      expect(r.walk(0x100000, 0xdead_0000, 9 * K4)).toBeLessThan(-65535);
      expect(r.untouched()).toBe(true);
      expectStatus(walk(0x100000, 0x50000, 1025 * K4), 'InternalError', 'TooManyMappings', true);
      expectStatus(walk(0x100800, 0x50000, 1024 * K4), 'InternalError', 'TooManyMappings', true);
    });
  });
});

describe('[H27] TOCTOU: a PRP list page rewritten after the walker read it', () => {
  it('[H27] the reference walker parses its private snapshot; a hook rewriting the list mid-walk changes nothing', () => {
    const c = guestCore('reference', 4 * MiB);
    const list = [0x200000, 0x201000, 0x202000, 0x203000];
    putU64(c, 0x50000, list);
    const view = Object.getOwnPropertyDescriptor(Core.prototype, 'u8')!.get!;
    let hooked = 0;
    // The hook: right after the engine copies the list out of guest memory, the "guest"
    // rewrites every entry with hostile values (misaligned, outside RAM).
    Object.defineProperty(c, 'u8', {
      configurable: true,
      get() {
        const v = view.call(c) as Uint8Array;
        const copyWithin = Uint8Array.prototype.copyWithin;
        Object.defineProperty(v, 'copyWithin', {
          configurable: true,
          value(this: Uint8Array, t: number, s: number, e: number) {
            copyWithin.call(this, t, s, e);
            if (s === c.guestBase + 0x50000) {
              hooked++;
              new DataView(this.buffer, c.guestBase).setBigUint64(0x50000 + 8 * (hooked % 4), 0xffff_ffff_0203n, true);
              new DataView(this.buffer, c.guestBase).setBigUint64(0x50000, 0x7n, true);
            }
            return this;
          },
        });
        return v;
      },
    });
    const r = walkPrp(c, { prp1: 0x100000, prp2: 0x50000, length: 5 * 4096, merge: false });
    expect(hooked).toBe(1);
    expect(getU64(c, 0x50000, 1)).toEqual([7n]);
    expect(segmentsOf(r).map((s) => s.addr)).toEqual([0x100000, ...list]);
  });

  it('[H27] the Wasm walker under a thread flipping a list entry: every result is one consistent snapshot', async () => {
    const c = loadCoreSync({ shared: true, guestBytes: 4 * MiB });
    putU64(c, 0x50000, [0x200000, 0x201000, 0x202000]);
    const stop = new Int32Array(new SharedArrayBuffer(4));
    // The "guest": flips entry 1 between a good page and a misaligned one as fast as it can.
    const flipper = new Worker(`
      const { workerData: d } = require('node:worker_threads');
      const u32 = new Uint32Array(d.memory.buffer);
      for (let n = 0; Atomics.load(d.stop, 0) === 0; n++) Atomics.store(u32, d.index, n & 1 ? 0x201003 : 0x201000);
    `, { eval: true, workerData: { memory: c.memory, index: (c.guestBase + 0x50008) >> 2, stop } });
    try {
      await new Promise((r) => setTimeout(r, 50));
      const seen = { ok: 0, misaligned: 0 };
      for (let i = 0; i < 20000; i++) {
        const r = walkPrp(c, { prp1: 0x100000, prp2: 0x50000, length: 4 * 4096, merge: false });
        if (r.ok) {
          expect(r.segments.map((s) => s.addr)).toEqual([0x100000, 0x200000, 0x201000, 0x202000]);
          seen.ok++;
        } else {
          expect(r.status.reason).toBe('ListEntryNotPageAligned');
          seen.misaligned++;
        }
      }
      expect(seen.ok + seen.misaligned).toBe(20000);
    } finally {
      Atomics.store(stop, 0, 1);
      await flipper.terminate();
    }
  });
});
