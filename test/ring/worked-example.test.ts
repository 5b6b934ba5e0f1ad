// spec/vmbus.md §1.12, step by step, on both engines.
import { describe, expect, it } from 'vitest';
import { VmbusRing } from '../../src/index';
import { core, ENGINES } from '../util/engines';

const u32At = (b: Uint8Array, off: number) => new DataView(b.buffer, b.byteOffset).getUint32(off, true);

describe.each(ENGINES)('spec §1.12 worked ring example (%s)', (engine) => {
  const setup = () => {
    const c = core(engine);
    const ring = VmbusRing.create(c, { dataSize: 12288 }); // 4-page ring: D = 0x3000
    const setIdx = (w: number, r: number) => {
      c.u32[ring.ptr >> 2] = w;
      c.u32[(ring.ptr >> 2) + 1] = r;
    };
    return { c, ring, setIdx };
  };
  const payload = Uint8Array.from({ length: 40 }, (_, i) => 0xa0 + i);

  it('writes a 40-byte in-band payload into an empty ring: 56-byte packet, zero trailer, w = 64, signal', () => {
    const { ring } = setup();
    expect(ring.totalBytes).toBe(16384);
    expect(ring.writePacket({ type: 6, payload })).toEqual({ written: true, signal: true });
    const d = ring.bytes.subarray(4096);
    expect(Array.from(d.subarray(0, 8))).toEqual([6, 0, 2, 0, 7, 0, 0, 0]); // type 6, hlen 2, tlen 7, flags 0
    expect(Array.from(d.subarray(16, 56))).toEqual(Array.from(payload));
    expect(Array.from(d.subarray(56, 64))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]); // trailer: old_w (0) << 32
    expect(ring.state()).toMatchObject({ writeIndex: 64, readIndex: 0, availableToRead: 64, availableToWrite: 12288 - 64 });
  });

  it('wraps: r = 4096, w = 0x2FE0; 32 bytes at the end, 24 at the start, trailer 0x00002FE0_00000000, w = 32, no signal', () => {
    const { ring, setIdx } = setup();
    setIdx(0x2fe0, 4096);
    expect(ring.availableToWrite).toBe(4128);
    expect(ring.writePacket({ type: 6, payload })).toEqual({ written: true, signal: false });
    const d = ring.bytes.subarray(4096);
    expect(Array.from(d.subarray(0x2fe0, 0x2fe0 + 8))).toEqual([6, 0, 2, 0, 7, 0, 0, 0]);
    expect(Array.from(d.subarray(0x2ff0, 0x3000))).toEqual(Array.from(payload.subarray(0, 16)));
    expect(Array.from(d.subarray(0, 24))).toEqual(Array.from(payload.subarray(16, 40)));
    expect(u32At(d, 24)).toBe(0);
    expect(u32At(d, 28)).toBe(0x2fe0);
    expect(ring.state().writeIndex).toBe(32);
    // The reader takes the wrapped packet back intact.
    setIdx(32, 0x2fe0);
    const p = ring.readPacket()!;
    expect(Array.from(p.payload)).toEqual(Array.from(payload));
    expect(ring.state().readIndex).toBe(32);
  });

  it('refuses a 64-byte record when exactly 64 bytes are free; accepts 56 (48-byte packet + trailer)', () => {
    const { ring, setIdx } = setup();
    setIdx(0, 64);
    expect(ring.availableToWrite).toBe(64);
    expect(ring.writePacket({ type: 6, payload })).toEqual({ written: false, signal: false });
    expect(ring.state().writeIndex).toBe(0);
    expect(ring.writePacket({ type: 6, payload: payload.subarray(0, 32) })).toEqual({ written: true, signal: false });
    expect(ring.state().writeIndex).toBe(56);
  });
});
