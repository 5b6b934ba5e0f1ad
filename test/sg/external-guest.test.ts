// The NVMe walkers over guest RAM outside core memory (walk option `guest`, as an emulator's
// RAM is): walking the same bytes through guest.copyOut must give exactly what walking them in
// the core's own guest window gives (segments or status), on both engines; a range copyOut
// refuses fails the command as a list outside the guest; data past guest.bytes likewise.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeSglDescriptor, loadCoreSync, walkPrp, walkSgl, type Core, type NvmeWalkResult } from '../../src/index';
import { check } from '../util/fc';
import { ENGINES } from './prp-helpers';

const GUEST = 256 * 1024;
const PAGES = GUEST / 4096;

/** An external view of `owner`'s guest window, as an emulator's RAM would be; `refuse` pages fail copyOut. */
function externalOf(owner: Core, refuse = new Set<number>()) {
  return {
    bytes: owner.guestBytes,
    reads: 0,
    copyOut(gpa: number, dst: Uint8Array): boolean {
      this.reads++;
      for (let p = Math.floor(gpa / 4096); p * 4096 < gpa + dst.length; p++) if (refuse.has(p)) return false;
      dst.set(owner.u8.subarray(owner.guestBase + gpa, owner.guestBase + gpa + dst.length));
      return true;
    },
  };
}

const summary = (r: NvmeWalkResult) => (r.ok ? { ok: true, segments: r.segments } : { ok: false, status: r.status });

/** Page-aligned addresses mostly inside the window, some not (hostile entries and chains). */
const entryArb = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: PAGES - 1 }).map((p) => BigInt(p * 4096)) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: PAGES * 2 }).map((p) => BigInt(p * 4096 + (p % 3) * 8)) },
  { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) },
);

describe.each(ENGINES)('%s engine: walks over external guest RAM', (engine) => {
  const owner = loadCoreSync({ engine, guestBytes: GUEST });
  const walker = loadCoreSync({ engine }); // no guest window of its own

  function plant(words: bigint[], at: number) {
    const dv = owner.dv;
    words.forEach((w, i) => dv.setBigUint64(owner.guestBase + at + 8 * i, w, true));
  }

  it('PRP: the same segments or status as a walk of the core guest window (lists, chains, hostile entries)', () => {
    check(fc.property(
      fc.integer({ min: 0, max: 1023 }).map((d) => d * 4), fc.integer({ min: 1, max: 700 * 4096 }),
      fc.integer({ min: 0, max: PAGES - 1 }), fc.integer({ min: 0, max: 511 }), fc.array(entryArb, { minLength: 1024, maxLength: 1024 }),
      (off, length, listPage, listSlot, entries) => {
        owner.u8.fill(0, owner.guestBase, owner.guestBase + GUEST);
        // Two list pages' worth of entries, the second where the first's last slot may chain to.
        plant(entries.slice(0, 512 - listSlot), listPage * 4096 + listSlot * 8);
        plant(entries.slice(512), Number(entries[511 - listSlot]! % BigInt(GUEST)) & ~4095);
        const input = { prp1: BigInt(4096 * 3 + off), prp2: BigInt(listPage * 4096 + listSlot * 8), length, mdts: 0, maxMappings: 4096 };
        const own = walkPrp(owner, input);
        const ext = externalOf(owner);
        const far = walkPrp(walker, { ...input, guest: ext });
        expect(summary(far)).toEqual(summary(own));
        expect(walker.external).toBe(null);
      }));
  });

  it('SGL: the same segments or status as a walk of the core guest window', () => {
    check(fc.property(fc.integer({ min: 1, max: 64 }), fc.array(fc.tuple(entryArb, fc.integer({ min: 0, max: 9000 }), fc.constantFrom(0, 0, 0, 0x20, 0x30, 0x10)), { minLength: 64, maxLength: 64 }),
      fc.integer({ min: 1, max: 200_000 }), (n, descs, length) => {
        owner.u8.fill(0, owner.guestBase, owner.guestBase + GUEST);
        descs.slice(0, n).forEach(([addr, len, id], i) => owner.u8.set(encodeSglDescriptor({ addr, length: len, id }), owner.guestBase + 8192 + 16 * i));
        const sgl1 = encodeSglDescriptor({ addr: 8192n, length: n * 16, id: 0x30 });
        const own = walkSgl(owner, { sgl1, length });
        const far = walkSgl(walker, { sgl1, length, guest: externalOf(owner) });
        expect(summary(far)).toEqual(summary(own));
      }));
  });

  it('a list page the guest may not read fails the command (Data Transfer Error, list outside the guest), a readable one walks', () => {
    owner.u8.fill(0, owner.guestBase, owner.guestBase + GUEST);
    plant([0x10000n, 0x11000n, 0x12000n], 0x5000);
    const input = { prp1: 0x4000n, prp2: 0x5000n, length: 4 * 4096 };
    const refused = walkPrp(walker, { ...input, guest: externalOf(owner, new Set([5])) });
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect([refused.status.name, refused.status.reason]).toEqual(['DataTransferError', 'ListOutsideGuest']);
    const ext = externalOf(owner);
    const r = walkPrp(walker, { ...input, guest: ext });
    expect(summary(r)).toEqual({ ok: true, segments: [{ addr: 0x4000, len: 4096 }, { addr: 0x10000, len: 3 * 4096 }] });
    expect(ext.reads).toBe(1); // one snapshot of the list, nothing else read
  });

  it('data past guest.bytes is outside the guest, whatever the walking core has', () => {
    const r = walkPrp(walker, { prp1: BigInt(GUEST - 4096), prp2: BigInt(GUEST), length: 8192, guest: externalOf(owner) });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.status.reason).toBe('DataOutsideGuest');
    expect(() => walkPrp(walker, { prp1: 0n, prp2: 0n, length: 8, guest: { bytes: 2 ** 33, copyOut: () => true } })).toThrow(/guest must be/);
  });
});
