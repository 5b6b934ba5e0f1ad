// Helpers for the IC tests: a byte builder that writes little-endian fields at literal offsets
// (so golden images come from the spec/source offsets, not from the encoders under test), and a
// host/guest pair over two real VmbusRings.
import { expect } from 'vitest';
import {
  createRingPipePair, decodeIcMessage, SgringError, type Core, type EngineName, type IcMessage, type RingPipe,
} from '../../../src/index';
import { core } from '../../util/engines';
import { expectCode } from '../../util/errors';
export { expectCode };

/** Little-endian field writer over a zeroed buffer of `n` bytes. */
export class Bytes {
  readonly u8: Uint8Array;
  private readonly d: DataView;
  constructor(n: number) {
    this.u8 = new Uint8Array(n);
    this.d = new DataView(this.u8.buffer);
  }
  u8at(off: number, v: number): this {
    this.u8[off] = v;
    return this;
  }
  u16(off: number, v: number): this {
    this.d.setUint16(off, v, true);
    return this;
  }
  u32(off: number, v: number): this {
    this.d.setUint32(off, v >>> 0, true);
    return this;
  }
  u64(off: number, v: bigint): this {
    this.d.setBigUint64(off, v, true);
    return this;
  }
  /** UTF-16LE code units of `s` followed by a NUL unit. */
  utf16z(off: number, s: string): this {
    for (let i = 0; i < s.length; i++) this.u16(off + i * 2, s.charCodeAt(i));
    return this.u16(off + s.length * 2, 0);
  }
  raw(off: number, bytes: ArrayLike<number>): this {
    this.u8.set(bytes, off);
    return this;
  }
}

export interface RawIc {
  pipeType?: number;
  /** Default 20 + body length. */
  pipeSize?: number;
  fw?: [number, number];
  type: number;
  msg?: [number, number];
  /** Default body length. */
  msgSize?: number;
  status?: number;
  icTid?: number;
  flags?: number;
  body?: Uint8Array;
  /** Bytes appended after the message (e.g. padding or garbage). */
  tail?: number;
}

/**
 * A raw IC message laid out from the spec's offsets: pipe {type @0, size @4}, IC header
 * {framework @8, msgtype @12, message version @14, icmsgsize @18, status @20, transaction id @24,
 * flags @25}, body @28. Lengths can be made to lie, for bad-input tests.
 */
export function rawIc(m: RawIc): Uint8Array {
  const body = m.body ?? new Uint8Array(0);
  const b = new Bytes(28 + body.length + (m.tail ?? 0));
  b.u32(0, m.pipeType ?? 1).u32(4, m.pipeSize ?? 20 + body.length);
  b.u16(8, (m.fw ?? [3, 0])[0]).u16(10, (m.fw ?? [3, 0])[1]).u16(12, m.type);
  b.u16(14, (m.msg ?? [3, 0])[0]).u16(16, (m.msg ?? [3, 0])[1]).u16(18, m.msgSize ?? body.length);
  b.u32(20, m.status ?? 0).u8at(24, m.icTid ?? 0).u8at(25, m.flags ?? 3).raw(28, body);
  return b.u8;
}

/** A negotiate body: counts, reserved, then the version pairs. */
export function negotiateBody(fw: [number, number][], msg: [number, number][], counts?: [number, number]): Uint8Array {
  const b = new Bytes(8 + (fw.length + msg.length) * 4);
  b.u16(0, counts?.[0] ?? fw.length).u16(2, counts?.[1] ?? msg.length);
  [...fw, ...msg].forEach(([maj, min], i) => b.u16(8 + i * 4, maj).u16(10 + i * 4, min));
  return b.u8;
}

export function hex(u8: Uint8Array, from = 0, to = u8.length): string {
  return Array.from(u8.subarray(from, to), (x) => x.toString(16).padStart(2, '0')).join(' ');
}

export async function expectReject(p: Promise<unknown>, code: string): Promise<SgringError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a rejection with an SgringError').toBeInstanceOf(SgringError);
  expect((err as SgringError).code).toBe(code);
  return err as SgringError;
}

/** Two real rings between a host pipe and a guest pipe on a fresh core. */
export function pipes(engine: EngineName, dataSize = 16384): { c: Core; hp: RingPipe; gp: RingPipe } {
  const c = core(engine);
  const { host, guest } = createRingPipePair(c, { dataSize });
  return { c, hp: host, gp: guest };
}

/** Everything waiting on a pipe, decoded, with its trans_id. */
export function drain(p: RingPipe): { tid: bigint; msg: IcMessage; payload: Uint8Array }[] {
  const out = [];
  for (let m = p.receive(); m !== null; m = p.receive()) out.push({ tid: m.transactionId, msg: decodeIcMessage(m.payload), payload: m.payload });
  return out;
}
