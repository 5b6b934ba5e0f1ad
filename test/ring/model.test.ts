// Model-based sequences (fc.commands): every command runs on a wasm ring, on a reference ring
// and on a plain model of spec §1; results, header state and ring bytes must agree after
// each step. Small data areas and starting indices at size-8 / size-16 force frequent wraps.
import fc from 'fast-check';
import { describe, it, expect } from 'vitest';
import { ReadBatch, VmbusRing, WriteBatch, type Core } from '../../src/index';
import { check, firstDiff } from '../util/fc';
import { core } from '../util/engines';

interface Pkt { type: number; flags: number; tid: bigint; payload: Uint8Array }

const pad8 = (n: number) => (n + 7) & ~7;
const recordBytes = (len: number) => pad8(16 + len) + 8;
const fill = (len: number, seed: number) => Uint8Array.from({ length: len }, (_, i) => (seed + i * 31) & 0xff);

/** The plain model: indices, mask, pending_send_sz and the queued packets (payloads padded). */
class Model {
  w: number;
  r: number;
  mask = 0;
  pending = 0;
  q: Pkt[] = [];
  constructor(readonly size: number, start: number, readonly feature: number) {
    this.w = start;
    this.r = start;
  }
  availWrite() {
    return this.w >= this.r ? this.size - (this.w - this.r) : this.r - this.w;
  }
  /** One write; `publishSignal` false inside a batch (one decision per batch). */
  write(p: Pkt): { written: boolean; signal: boolean } {
    const total = recordBytes(p.payload.length);
    if (this.availWrite() <= total) {
      if (this.feature & 1) this.pending = total;
      return { written: false, signal: false };
    }
    const old = this.w;
    this.w = (this.w + total) % this.size;
    const padded = new Uint8Array(pad8(p.payload.length));
    padded.set(p.payload);
    this.q.push({ ...p, payload: padded });
    this.pending = 0;
    return { written: true, signal: this.mask === 0 && this.r === old };
  }
  readSignal(consumed: number): boolean {
    if (!(this.feature & 1) || this.pending === 0) return false;
    const p = Math.min(this.pending, this.size);
    const cur = this.availWrite();
    if ((cur - consumed) >>> 0 > p) return false;
    return cur > p;
  }
  read(peek: boolean): { pkt: Pkt; signal: boolean } | null {
    const pkt = this.q[0];
    if (!pkt) return null;
    if (peek) return { pkt, signal: false };
    this.q.shift();
    const consumed = 16 + pkt.payload.length + 8;
    this.r = (this.r + consumed) % this.size;
    return { pkt, signal: this.readSignal(consumed) };
  }
}

interface Sys { model: Model; rings: VmbusRing[]; cores: Core[]; wb: WriteBatch[]; rb: ReadBatch[] }

function compareState(s: Sys) {
  for (const ring of s.rings) {
    expect(ring.state()).toMatchObject({
      writeIndex: s.model.w, readIndex: s.model.r, interruptMask: s.model.mask, pendingSendSize: s.model.pending, broken: null,
    });
  }
  const [a, b] = s.rings;
  const diff = firstDiff(a!.bytes, b!.bytes);
  expect(diff, `ring bytes differ between engines at ${diff}`).toBe(-1);
}

function expectPacket(got: { type: number; flags: number; transactionId: bigint; payload: Uint8Array } | null, want: Pkt | undefined) {
  if (!want) return expect(got).toBeNull();
  expect(got).not.toBeNull();
  expect({ type: got!.type, flags: got!.flags, tid: got!.transactionId }).toEqual({ type: want.type, flags: want.flags, tid: want.tid });
  expect(firstDiff(got!.payload, want.payload)).toBe(-1);
}

const pktArb = fc.record({
  type: fc.constantFrom(6, 7, 9, 11),
  flags: fc.constantFrom(0, 1),
  tid: fc.bigInt({ min: 0n, max: 0xffff_ffff_ffff_ffffn }),
  len: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 1500 })),
  seed: fc.integer({ min: 0, max: 255 }),
});
type PktArg = { type: number; flags: number; tid: bigint; len: number; seed: number };
const mk = (a: PktArg): Pkt => ({ type: a.type, flags: a.flags, tid: a.tid, payload: fill(a.len, a.seed) });

class WriteCmd implements fc.Command<Model, Sys> {
  constructor(readonly a: PktArg, readonly gather: number) {}
  check() { return true; }
  run(_m: Model, s: Sys) {
    const p = mk(this.a);
    const want = s.model.write(p);
    const payload = this.gather > 1
      ? Array.from({ length: this.gather }, (_, i) => p.payload.subarray(Math.floor((i * p.payload.length) / this.gather), Math.floor(((i + 1) * p.payload.length) / this.gather)))
      : p.payload;
    for (const ring of s.rings) expect(ring.writePacket({ type: p.type, flags: p.flags, transactionId: p.tid, payload })).toEqual(want);
    compareState(s);
  }
  toString() { return `write(${this.a.len}b type ${this.a.type}${this.gather > 1 ? ` in ${this.gather} pieces` : ''})`; }
}

class ReadCmd implements fc.Command<Model, Sys> {
  constructor(readonly mode: 'read' | 'peek' | 'skip') {}
  check() { return true; }
  run(_m: Model, s: Sys) {
    const want = s.model.read(this.mode === 'peek');
    for (const ring of s.rings) {
      if (this.mode === 'skip') {
        const got = ring.skipPacket();
        expect(got === null ? null : got.signal).toEqual(want === null ? null : want.signal);
      } else {
        const got = this.mode === 'peek' ? ring.peekPacket() : ring.readPacket();
        expectPacket(got, want?.pkt);
        if (got) expect(got.signal).toBe(want!.signal);
      }
    }
    compareState(s);
  }
  toString() { return this.mode; }
}

class MaskCmd implements fc.Command<Model, Sys> {
  constructor(readonly on: boolean) {}
  check() { return true; }
  run(_m: Model, s: Sys) {
    s.model.mask = this.on ? 1 : 0;
    for (const ring of s.rings) {
      if (this.on) ring.beginRead();
      else expect(ring.endRead()).toBe(s.model.q.length > 0);
    }
    compareState(s);
  }
  toString() { return this.on ? 'mask' : 'unmask'; }
}

class BatchWriteCmd implements fc.Command<Model, Sys> {
  constructor(readonly pkts: PktArg[]) {}
  check() { return true; }
  run(_m: Model, s: Sys) {
    const m = s.model;
    const startW = m.w;
    const startR = m.r;
    let n = 0;
    for (const a of this.pkts) {
      if (!m.write(mk(a)).written) break;
      n++;
    }
    const signal = n > 0 && m.mask === 0 && startR === startW;
    s.rings.forEach((ring, i) => {
      const b = s.wb[i]!;
      b.clear();
      for (const a of this.pkts) expect(b.add(mk(a).payload, a.type, a.flags, a.tid)).toBe(true);
      expect(ring.writeBatch(b)).toBe(n);
      expect(b.signal).toBe(signal);
      expect(b.remaining).toBe(this.pkts.length - n);
      if (n < this.pkts.length) expect(b.needed).toBe(recordBytes(this.pkts[n]!.len));
    });
    compareState(s);
  }
  toString() { return `writeBatch(${this.pkts.map((p) => p.len).join(',')})`; }
}

class BatchReadCmd implements fc.Command<Model, Sys> {
  constructor(readonly max: number) {}
  check() { return true; }
  run(_m: Model, s: Sys) {
    const m = s.model;
    const cap = s.rb[0]!.bytes;
    const want: Pkt[] = [];
    let used = 0;
    let consumed = 0;
    while (want.length < this.max && m.q.length > 0) {
      const bytes = 16 + m.q[0]!.payload.length;
      if (bytes > cap - used) break;
      used += bytes;
      consumed += bytes + 8;
      want.push(m.q.shift()!);
    }
    m.r = (m.r + consumed) % m.size;
    const signal = want.length > 0 && m.readSignal(consumed);
    s.rings.forEach((ring, i) => {
      const b = s.rb[i]!;
      expect(ring.readBatch(b, this.max)).toBe(want.length);
      expect(b.signal).toBe(signal);
      let k = 0;
      for (const p of b) expectPacket(p, want[k++]);
      expect(k).toBe(want.length);
    });
    compareState(s);
  }
  toString() { return `readBatch(${this.max})`; }
}

const commands = [
  fc.tuple(pktArb, fc.integer({ min: 1, max: 4 })).map(([a, g]) => new WriteCmd(a, g)),
  fc.constantFrom('read', 'peek', 'skip').map((m) => new ReadCmd(m as 'read' | 'peek' | 'skip')),
  fc.boolean().map((on) => new MaskCmd(on)),
  fc.array(pktArb, { minLength: 1, maxLength: 12 }).map((p) => new BatchWriteCmd(p)),
  fc.integer({ min: 1, max: 16 }).map((m) => new BatchReadCmd(m)),
];

describe('ring model-based sequences: wasm == reference == model', () => {
  it.each([
    { dataSize: 4096, start: 0 },
    { dataSize: 4096, start: 4096 - 8 },
    { dataSize: 8192, start: 8192 - 16 },
    { dataSize: 12288, start: 12288 - 8 },
  ])('data area $dataSize bytes, indices starting at $start', ({ dataSize, start }) => {
    check(
      fc.property(fc.commands(commands, { maxCommands: 60 }), fc.constantFrom(0, 1), (cmds, feature) => {
        const cores = [core('wasm'), core('reference')];
        const rings = cores.map((c) => {
          const r = VmbusRing.create(c, { dataSize, featureBits: feature });
          c.u32[r.ptr >> 2] = start;
          c.u32[(r.ptr >> 2) + 1] = start;
          return r;
        });
        const sys: Sys = {
          model: new Model(dataSize, start, feature), rings, cores,
          wb: cores.map((c) => new WriteBatch(c, { capacity: 16, arenaBytes: 16 * 1600 })),
          rb: cores.map((c) => new ReadBatch(c, { bytes: 2048 })),
        };
        fc.modelRun(() => ({ model: sys.model, real: sys }), cmds);
      }),
      60,
    );
  });
});
