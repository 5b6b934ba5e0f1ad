// The ring façade at its edges: what a caller passes that is not what the engine carries
// (strings, plain arrays, NaN, fractions, negatives, 2^32 and more), a writer refusing what its
// reader would refuse, and errors that name the argument and the limit. Both engines, same answers.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadCoreSync, pageAllocator, planPageList, ReadBatch, SgringError, VmbusRing, WriteBatch, type Core } from '../../src/index';
import { expectCode } from '../util/errors';
import { check } from '../util/fc';
import { ENGINES } from '../util/engines';

/** Values that are not integers in [0, 2^32). */
// (undefined is not among them: it means an optional argument's default.)
const BAD_NUMBERS: unknown[] = [NaN, -1, 0.5, 8192.5, 2 ** 32, 2 ** 32 + 8192, 2 ** 53, Infinity, -0.1, '8', null, 5n];
const notU32 = fc.oneof(fc.constantFrom(...BAD_NUMBERS), fc.double({ noInteger: true }), fc.integer({ min: -(2 ** 31), max: -1 }),
  fc.integer({ min: 2 ** 32, max: 2 ** 52 }));

/** A ring's bytes and the memory size; with `heap`, the control block and the heap's figures too. */
function snapshot(core: Core, ring: VmbusRing, heap = false) {
  const s = { ring: ring.bytes.slice().join(), size: core.byteLength };
  return heap ? { ...s, cb: core.u8.slice(4096, 8192).join(), heap: core.heapStats() } : s;
}

describe.each(ENGINES)('ring arguments (%s)', (engine) => {
  it('[H12] a writer refuses every flag bit its reader would refuse: flags 2 is an InvalidArgument on every write path, and nothing reaches the ring', () => {
    const core = loadCoreSync({ engine });
    const ring = VmbusRing.create(core, { dataSize: 8192 });
    const before = snapshot(core, ring);
    for (const flags of [2, 3, 0x8000, 0xffff]) {
      expect(expectCode(() => ring.writePacket({ type: 6, flags, payload: new Uint8Array(8) }), 'InvalidArgument').message).toMatch(/flags .*only 0 and 1/);
      expectCode(() => ring.writePacket({ type: 6, flags, payload: [new Uint8Array(8), new Uint8Array(3)] }), 'InvalidArgument');
      expectCode(() => ring.write(new Uint8Array(8), 6, flags), 'InvalidArgument');
      const wb = new WriteBatch(core, { capacity: 2, arenaBytes: 64 });
      expectCode(() => wb.add(new Uint8Array(8), 6, flags), 'InvalidArgument');
      wb.dispose();
    }
    expect(snapshot(core, ring)).toEqual(before);
    expect(ring.writePacket({ type: 6, flags: 1, payload: new Uint8Array(8) }).written).toBe(true);
    expect(ring.readPacket()!.flags).toBe(1);
  });

  it('[H11] a writer refuses the packet types its reader refuses, and the error lists the valid ones', () => {
    const ring = VmbusRing.create(loadCoreSync({ engine }), { dataSize: 8192 });
    for (const type of [0, 5, 8, 10, 12, 99, 0x10006]) {
      const e = expectCode(() => ring.writePacket({ type, payload: new Uint8Array(8) }), 'InvalidArgument');
      expect(e.message).toMatch(new RegExp(`type ${type} is not a packet type.*6 in-band, 7 transfer pages, 9 GPA direct, 11 completion`));
    }
    const wb = new WriteBatch(ring.core, { capacity: 2, arenaBytes: 64 });
    expectCode(() => wb.add(new Uint8Array(8), 0x10006), 'InvalidArgument'); // not masked to 6
  });

  it('a payload that is not a Uint8Array is refused, not written as zeros or as an empty packet', () => {
    const core = loadCoreSync({ engine });
    const ring = VmbusRing.create(core, { dataSize: 8192 });
    const before = snapshot(core, ring);
    for (const payload of ['hello', [1, 2, 3], 42, null, undefined, { length: 3 }, new Uint16Array(4)] as unknown[]) {
      expect(expectCode(() => ring.writePacket({ type: 6, payload } as never), 'InvalidArgument').message).toMatch(/payload(\[0\])? must be a Uint8Array/);
      expectCode(() => ring.write(payload as Uint8Array), 'InvalidArgument');
      expectCode(() => ring.writeRaw(payload as Uint8Array), 'InvalidArgument');
      expectCode(() => new WriteBatch(core).add(payload as Uint8Array), 'InvalidArgument');
    }
    expectCode(() => ring.writePacket({ type: 6, payload: [new Uint8Array(2), 'x'] } as never), 'InvalidArgument');
    expectCode(() => ring.writePacket('packet' as never), 'InvalidArgument');
    expect(snapshot(core, ring)).toEqual(before);
  });

  it('a pointer, length or header value that is not a u32 is refused by every entry before it reaches the engine; memory and heap unchanged', () => {
    const core = loadCoreSync({ engine });
    const ring = VmbusRing.create(core, { dataSize: 8192 });
    const wb = new WriteBatch(core, { capacity: 4, arenaBytes: 64 });
    const src = core.alloc(64);
    ring.write(new Uint8Array(8)); // the endpoint's scratch is allocated on first use: do that now
    ring.readPacket();
    const before = snapshot(core, ring, true);
    const entries: [string, (v: number) => unknown][] = [
      ['attach ptr', (v) => VmbusRing.attach(core, v, 8192)],
      ['attach totalBytes', (v) => VmbusRing.attach(core, 8192, v)],
      ['writeFrom ptr', (v) => ring.writeFrom(v, 8)],
      ['writeFrom len', (v) => ring.writeFrom(src, v)],
      ['writeFrom type', (v) => ring.writeFrom(src, 8, v)],
      ['writeFrom flags', (v) => ring.writeFrom(src, 8, 6, v)],
      ['writeFrom tidLo', (v) => ring.writeFrom(src, 8, 6, 0, v)],
      ['writeFrom tidHi', (v) => ring.writeFrom(src, 8, 6, 0, 0, v)],
      ['write flags', (v) => ring.write(new Uint8Array(8), 6, v)],
      ['writeRawFrom ptr', (v) => ring.writeRawFrom(v, 16)],
      ['writeRawFrom len', (v) => ring.writeRawFrom(src, v)],
      ['readAt ptr', (v) => ring.readAt(v, 8)],
      ['readAt cap', (v) => ring.readAt(src, v)],
      ['addRef ptr', (v) => wb.addRef(v, 8)],
      ['addRef len', (v) => wb.addRef(src, v)],
      ['addRef type', (v) => wb.addRef(src, 8, v)],
      ['addRef tidLo', (v) => wb.addRef(src, 8, 6, 0, v)],
    ];
    check(fc.property(notU32, fc.integer({ min: 0, max: entries.length - 1 }), (v, k) => {
      let err: unknown = null;
      try {
        entries[k]![1](v as number);
      } catch (e) {
        err = e;
      }
      if (!(err instanceof SgringError && ['InvalidArgument', 'InvalidRingMemory'].includes(err.code) && wb.length === 0)) {
        throw new Error(`${entries[k]![0]} = ${String(v)}: ${String(err)}`);
      }
      return true;
    }), 300);
    expect(snapshot(core, ring, true)).toEqual(before);
  });

  it('[H3] VmbusRing.attach refuses a NaN pointer, a 4 GiB ring and a fractional size before laying anything over the control block', () => {
    const core = loadCoreSync({ engine });
    const cb = core.u8.slice(0, 8192).join();
    expectCode(() => VmbusRing.attach(core, NaN, 8192), 'InvalidRingMemory');
    expectCode(() => VmbusRing.attach(core, 8192, 2 ** 32 + 8192), 'InvalidRingMemory');
    expectCode(() => VmbusRing.attach(core, 8192, 8192.5), 'InvalidRingMemory');
    expect(core.u8.slice(0, 8192).join()).toBe(cb);
  });

  it('a ring attached through a core whose memory does not hold it is refused, with a hint', () => {
    const big = loadCoreSync({ engine, initialBytes: 8 << 20 });
    const ring = VmbusRing.create(big, { dataSize: 4096 });
    const far = big.alloc(3 << 20, 4096);
    const small = loadCoreSync({ engine });
    expect(expectCode(() => VmbusRing.attach(small, far + (3 << 20) - 8192, 8192), 'InvalidRingMemory').message).toMatch(/not inside this core's memory.*Core over the memory/);
    expect(ring.totalBytes).toBe(8192);
  });

  it('misuse of the constructors names what is wrong instead of a raw TypeError', () => {
    expect(expectCode(() => VmbusRing.create(undefined as never, { dataSize: 4096 }), 'InvalidArgument').message).toMatch(/Core from loadCore/);
    expect(expectCode(() => VmbusRing.create({} as never, { dataSize: 4096 }), 'InvalidArgument').message).not.toMatch(/object Object/);
    expect(expectCode(() => VmbusRing.create(loadCoreSync({ engine }), {} as never), 'InvalidRingMemory').message).toMatch(/dataSize undefined must be a positive multiple of 4096/);
    expectCode(() => new ReadBatch(loadCoreSync({ engine }), { bytes: NaN }), 'InvalidArgument');
  });

  it('[H4] "can never fit" says the largest payload the ring takes (4064 for one page)', () => {
    const ring = VmbusRing.create(loadCoreSync({ engine }), { dataSize: 4096 });
    expect(ring.maxPayload).toBe(4064);
    const e = expectCode(() => ring.writePacket({ type: 6, payload: new Uint8Array(5000) }), 'InvalidMessageLength');
    expect(e.message).toMatch(/largest payload it takes is 4064 bytes/);
    expect(e.details).toMatchObject({ maxPayload: 4064 });
    expect(ring.writePacket({ type: 6, payload: new Uint8Array(4064) }).written).toBe(true);
  });
});

describe('option names', () => {
  it('a misspelt option is refused by name, not ignored', () => {
    const core = loadCoreSync({ guestBytes: 1 << 20 });
    expect(expectCode(() => VmbusRing.create(core, { dataSize: 4096, featurebits: 0 } as never), 'InvalidArgument').message)
      .toMatch(/VmbusRing.create: unknown option 'featurebits'; known: dataSize, featureBits/);
    expectCode(() => new WriteBatch(core, { capacty: 4 } as never), 'InvalidArgument');
    expectCode(() => new ReadBatch(core, { byte: 4096 } as never), 'InvalidArgument');
    expectCode(() => planPageList([{ addr: 0, len: 8 }], { rule: 'hyperv', core, bouncepages: [] } as never), 'InvalidArgument');
    expectCode(() => pageAllocator(core, { start: 0 } as never), 'InvalidArgument');
  });
});
