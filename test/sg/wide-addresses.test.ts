// 64-bit exactness: bus addresses near 2^53, 2^63 and 2^64 - 4096 go through the PRP and SGL
// builders and the descriptor codec, and every address a result reports equals the bytes on the
// wire, to the last bit. The walkers never report such an address: they fail the command first.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildPrp, buildSgl, decodeSglDescriptor, encodeSglDescriptor, walkPrp, walkSgl } from '../../src/index';
import { check } from '../util/fc';
import { ENGINES, getU64, guestCore, statusOf } from './prp-helpers';

const K4 = 4096;
const EDGES = [2n ** 53n - 8192n, 2n ** 53n, 2n ** 53n + 4n, 2n ** 63n - 4096n, 2n ** 63n, 2n ** 64n - 8192n, 2n ** 64n - 4096n];
/** A page-aligned address near one of the edges (kept at least two pages below 2^64). */
const wideAddress = fc.tuple(fc.constantFrom(...EDGES), fc.bigInt({ min: -64n, max: 0n })).map(([e, d]) => {
  const a = ((e + d * 4096n) / 4096n) * 4096n;
  return a > 2n ** 64n - 8192n ? 2n ** 64n - 8192n : a;
});

describe.each(ENGINES)('64-bit results are exact (%s)', (engine) => {
  const c = guestCore(engine);
  const listPage = 0x10000;

  it('the example of the issue: prp1 keeps its low bits', () => {
    expect(buildPrp(c, { segments: [{ addr: 0x0100000000000004n, len: 4 }] }).prp1).toBe(0x0100000000000004n);
    expect(buildSgl(c, { segments: [{ addr: 0x0100000000000004n, len: 4 }] }).sgl1.addr).toBe(0x0100000000000004n);
  });

  it('buildPrp: prp1, prp2 and the list entries equal the addresses given, near 2^53, 2^63 and 2^64', () => {
    check(fc.property(wideAddress, fc.integer({ min: 0, max: 1023 }), fc.integer({ min: 1, max: 4 }), (base, off4, pages) => {
      const offset = BigInt(off4 * 4);
      const segs = [{ addr: base + offset, len: K4 - Number(offset) }];
      for (let i = 1; i < pages; i++) segs.push({ addr: base - BigInt(i) * 0x10_0000n, len: K4 });
      const b = buildPrp(c, { segments: segs, listPages: [listPage] });
      expect(b.prp1).toBe(base + offset);
      if (pages === 2) expect(b.prp2).toBe(segs[1]!.addr);
      if (pages > 2) {
        expect(b.prp2).toBe(BigInt(listPage));
        expect(getU64(c, listPage, pages - 1)).toEqual(segs.slice(1).map((s) => s.addr));
      }
      return true;
    }), 200);
  });

  it('buildSgl and the descriptor codec: the address field round-trips bit for bit', () => {
    check(fc.property(wideAddress, fc.integer({ min: 1, max: 3 }), (base, n) => {
      const segs = Array.from({ length: n }, (_, i) => ({ addr: base - BigInt(i) * 0x2000n + 3n, len: 100 + i }));
      const b = buildSgl(c, { segments: segs, listPages: [listPage] });
      const wire = new DataView(b.sgl1Bytes.buffer, b.sgl1Bytes.byteOffset).getBigUint64(0, true);
      expect(b.sgl1.addr).toBe(wire);
      if (n === 1) expect(b.sgl1.addr).toBe(segs[0]!.addr);
      else getU64(c, listPage, 2 * n).filter((_, k) => k % 2 === 0).forEach((a, i) => expect(a).toBe(segs[i]!.addr));
      expect(decodeSglDescriptor(encodeSglDescriptor({ addr: base + 5n, length: 1 })).addr).toBe(base + 5n);
      return true;
    }), 200);
  });

  it('[H23] the walkers fail such an address with Data Transfer Error instead of reporting a rounded one', () => {
    for (const a of EDGES) {
      expect(statusOf(walkPrp(c, { prp1: a, prp2: 0, length: 8 })).name).toBe('DataTransferError');
      expect(statusOf(walkSgl(c, { sgl1: { addr: a, length: 8 }, length: 8 })).name).toBe('DataTransferError');
    }
  });
});
