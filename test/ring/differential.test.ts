// Differential properties: every ring function of the Wasm engine against its reference twin,
// called directly (no façade) on identical, partly hostile memory images. Return values and
// every byte they may touch (control block, ring, output and input buffers) must agree.
import fc from 'fast-check';
import { describe, it, expect } from 'vitest';
import { loadCoreSync, type Core } from '../../src/index';
import { check, firstDiff } from '../util/fc';

const D = 4096; // data area of the ring under test
const RING_TOTAL = 4096 + D;
const BUF = 8192;

interface Layout { ctl: number; ring: number; buf: number; src: number; iov: number; desc: number }

function layout(c: Core): Layout {
  return {
    ctl: c.alloc(64, 8), ring: c.alloc(RING_TOTAL, 4096), buf: c.alloc(BUF, 8),
    src: c.alloc(BUF, 8), iov: c.alloc(16 * 8, 8), desc: c.alloc(16 * 24, 8),
  };
}

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const index = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: D / 8 - 1 }).map((i) => i * 8) },
  { weight: 1, arbitrary: u32 },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: D + 16 }) },
);

/** A planted record header: mostly valid, sometimes hostile in one field. */
const recordArb = fc.record({
  type: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(6, 7, 9, 11) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) }),
  hlen: fc.oneof({ weight: 8, arbitrary: fc.constant(2) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 8 }) }),
  payloadWords: fc.integer({ min: 0, max: 40 }),
  flags: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(0, 1) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) }),
  tlenDelta: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -4, max: 600 }) }),
});

const imageArb = fc.record({
  start: index,
  records: fc.array(recordArb, { maxLength: 12 }),
  wDelta: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -64, max: 64 }) }),
  rOverride: fc.oneof({ weight: 8, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: index }),
  mask: fc.constantFrom(0, 1, 0xfffffffe),
  pending: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: D + 64 }), u32),
  feature: fc.constantFrom(0, 1, 3, 0xfffffffe),
  noise: fc.uint8Array({ minLength: 64, maxLength: 64 }),
});

const opArb = fc.oneof(
  fc.record({ op: fc.constant('read' as const), mode: fc.integer({ min: 0, max: 7 }), cap: fc.oneof(fc.constant(BUF), fc.integer({ min: 0, max: 400 })) }),
  fc.record({ op: fc.constant('readBatch' as const), cap: fc.oneof(fc.constant(BUF), fc.integer({ min: 0, max: 600 })), max: fc.integer({ min: 0, max: 20 }) }),
  fc.record({ op: fc.constant('write' as const), len: fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: D })), type: fc.constantFrom(6, 7, 9, 11, 5), flags: fc.constantFrom(0, 1, 0x1ffff), tidLo: u32, tidHi: u32 }),
  fc.record({ op: fc.constant('writev' as const), lens: fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 6 }), type: fc.constantFrom(6, 9), tidLo: u32 }),
  fc.record({ op: fc.constant('writeBatch' as const), lens: fc.array(fc.integer({ min: 0, max: 700 }), { maxLength: 12 }), type: fc.constantFrom(6, 11, 3) }),
  fc.record({
    op: fc.constant('writeRaw' as const), len: fc.oneof(fc.integer({ min: 2, max: 80 }).map((q) => q * 8), fc.integer({ min: 0, max: 700 })),
    type: fc.constantFrom(6, 7, 9, 11, 4), hlen: fc.integer({ min: 0, max: 12 }), flags: fc.constantFrom(0, 1, 2),
  }),
);

type Image = typeof imageArb extends fc.Arbitrary<infer T> ? T : never;
type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

function plant(c: Core, l: Layout, img: Image) {
  const u8 = c.u8;
  u8.fill(0, l.ring, l.ring + RING_TOTAL);
  const dv = new DataView(u8.buffer);
  const data = l.ring + 4096;
  for (let i = 0; i < D; i++) u8[data + i] = img.noise[i % 64]! ^ (i >> 6);
  const start = img.start >>> 0;
  let pos = start < D && (start & 7) === 0 ? start : 0;
  for (const rec of img.records) {
    const tlen = Math.max(0, 2 + rec.payloadWords + rec.tlenDelta);
    const words = [rec.type | (rec.hlen << 16), (tlen & 0xffff) | (rec.flags << 16)];
    for (let k = 0; k < 2; k++) dv.setUint32(data + ((pos + 4 * k) % D), words[k]! >>> 0, true);
    pos = (pos + (2 + rec.payloadWords) * 8 + 8) % D;
  }
  const w = (pos + img.wDelta + D) % D;
  const hdr = l.ring >> 2;
  const u = c.u32;
  u[hdr] = w;
  u[hdr + 1] = img.rOverride ?? start;
  u[hdr + 2] = img.mask;
  u[hdr + 3] = img.pending;
  u[hdr + 16] = img.feature;
  for (let i = 0; i < BUF; i++) u8[l.src + i] = (i * 7 + 3) & 0xff;
}

function run(c: Core, l: Layout, op: Op): number {
  const f = c.fn;
  const u = c.u32;
  switch (op.op) {
    case 'read':
      return f.ringRead(l.ctl, l.buf, op.cap, op.mode);
    case 'readBatch':
      return f.ringReadBatch(l.ctl, l.buf, op.cap, op.max);
    case 'write':
      return f.ringWrite(l.ctl, l.src, op.len, op.type, op.flags, op.tidLo, op.tidHi);
    case 'writev':
      op.lens.forEach((n, i) => {
        u[(l.iov >> 2) + 2 * i] = l.src + i * 64;
        u[(l.iov >> 2) + 2 * i + 1] = n;
      });
      return f.ringWritev(l.ctl, l.iov, op.lens.length, op.type, 1, op.tidLo, 0);
    case 'writeBatch':
      op.lens.forEach((n, i) => {
        const d = (l.desc >> 2) + 6 * i;
        u[d] = l.src + i * 16;
        u[d + 1] = n;
        u[d + 2] = op.type | ((i & 1) << 16);
        u[d + 4] = i;
        u[d + 5] = ~i >>> 0;
      });
      return f.ringWriteBatch(l.ctl, l.desc, op.lens.length);
    case 'writeRaw':
      u[l.src >> 2] = op.type | (op.hlen << 16);
      u[(l.src >> 2) + 1] = 0xffff | (op.flags << 16); // len8 is the writer's to set
      return f.ringWriteRaw(l.ctl, l.src, op.len);
  }
}

describe('differential: wasm engine == reference engine on hostile ring images', () => {
  it('every ring function returns the same status and leaves the same bytes', () => {
    const cores = [loadCoreSync({ engine: 'wasm' }), loadCoreSync({ engine: 'reference' })];
    const layouts = cores.map(layout);
    expect(layouts[0]).toEqual(layouts[1]);
    const l = layouts[0]!;
    const regions = [[l.ctl, 64], [l.ring, RING_TOTAL], [l.buf, BUF], [l.src, BUF]] as const;
    check(
      fc.property(imageArb, fc.array(opArb, { minLength: 1, maxLength: 8 }), (img, ops) => {
        cores.forEach((c) => {
          plant(c, l, img);
          expect(c.fn.ringInit(l.ctl, l.ring, RING_TOTAL)).toBe(0);
          c.u8.fill(0, l.buf, l.buf + BUF);
        });
        ops.forEach((op, step) => {
          const [a, b] = cores.map((c) => run(c, l, op));
          expect(a, `step ${step} ${JSON.stringify(op)}: status`).toBe(b);
          for (const [ptr, len] of regions) {
            const d = firstDiff(cores[0]!.view(ptr, len), cores[1]!.view(ptr, len));
            expect(d, `step ${step} ${JSON.stringify(op)}: bytes differ at +${d} of region ${ptr}`).toBe(-1);
          }
        });
      }),
      300,
    );
  });

  it('the copy-limit helper agrees and refuses out-of-memory ranges', () => {
    const cores = [loadCoreSync({ engine: 'wasm' }), loadCoreSync({ engine: 'reference' })];
    for (const c of cores) {
      const a = c.alloc(256);
      const b = c.alloc(256);
      c.u8.fill(9, a, a + 256);
      expect(c.fn.copyLimit(b, 0, a, 0, 256, 3)).toBe(0);
      expect(c.u8[b + 255]).toBe(9);
      expect(c.fn.copyLimit(c.byteLength - 10, 0, a, 0, 256, 1)).toBeLessThan(0);
      expect(c.fn.copyLimit(a, 1 << 20, b, 0, 8, 1 << 14)).toBeLessThan(0);
      c.u8.fill(0, b, b + 256);
      expect(c.fn.copyLimit(b, 64, a, 0, 64, 4)).toBe(0);
      expect(c.u8[b + 255]).toBe(9);
    }
  });
});
