// A pcapng writer (spec/nvme.md §8.2): a section header, one interface per device instance
// (its name, nanosecond timestamps), enhanced packet blocks with comments. Every block is
// written to the sink as soon as it is complete, so a trace of any length takes bounded memory.
// All fields in little endian, which the section's byte-order magic announces.

import { SgringError } from '../engine/errors';

/** Where a trace's bytes go: a buffer, a file, a download. Blocks arrive whole, in order. */
export interface TraceSink {
  write(bytes: Uint8Array): void;
  close?(): void;
}

/** Keeps the trace in memory: `bytes()` is the file so far. */
export class MemorySink implements TraceSink {
  private chunks: Uint8Array[] = [];
  length = 0;
  write(bytes: Uint8Array): void {
    this.chunks.push(bytes.slice());
    this.length += bytes.length;
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    this.chunks = [out];
    return out;
  }
}

/** The part of a Blob a download needs (named here so the types compile without the DOM lib). */
export interface TraceBlob {
  readonly size: number;
  readonly type: string;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/**
 * For a browser download: `blob()` is the trace as an application/vnd.tcpdump.pcap Blob, for
 * `URL.createObjectURL` and an `<a download="trace.pcapng">`.
 */
export class BlobSink implements TraceSink {
  private parts: Uint8Array[] = [];
  write(bytes: Uint8Array): void {
    this.parts.push(bytes.slice());
  }
  blob(): TraceBlob {
    const B = (globalThis as { Blob?: new (parts: Uint8Array[], o: { type: string }) => TraceBlob }).Blob;
    if (!B) throw new SgringError('InvalidArgument', 'this runtime has no Blob: use MemorySink');
    return new B(this.parts, { type: 'application/vnd.tcpdump.pcap' });
  }
}

export const LINKTYPE_ETHERNET = 1;

const BLOCK_SHB = 0x0a0d0d0a;
const BLOCK_IDB = 1;
const BLOCK_EPB = 6;
const OPT_END = 0;
const OPT_COMMENT = 1;
const SHB_USERAPPL = 4;
const IF_NAME = 2;
const IF_DESCRIPTION = 3;
const IF_TSRESOL = 9;
const utf8 = new TextEncoder();

type Option = [code: number, value: Uint8Array];

const pad4 = (n: number) => (n + 3) & ~3;
const optionsBytes = (opts: Option[]) => (opts.length === 0 ? 0 : opts.reduce((n, [, v]) => n + 4 + pad4(v.length), 0) + 4);

/** One block: type, total length, `body` bytes, options, total length. */
function block(type: number, bodyLen: number, fill: (dv: DataView, u8: Uint8Array, at: number) => void, opts: Option[]): Uint8Array {
  const total = 12 + pad4(bodyLen) + optionsBytes(opts);
  const u8 = new Uint8Array(total);
  const dv = new DataView(u8.buffer);
  dv.setUint32(0, type, true);
  dv.setUint32(4, total, true);
  fill(dv, u8, 8);
  let at = 8 + pad4(bodyLen);
  if (opts.length > 0) {
    for (const [code, v] of opts) {
      dv.setUint16(at, code, true);
      dv.setUint16(at + 2, v.length, true);
      u8.set(v, at + 4);
      at += 4 + pad4(v.length);
    }
    dv.setUint16(at, OPT_END, true); // end of options: code 0, length 0
    at += 4;
  }
  dv.setUint32(at, total, true);
  return u8;
}

export interface InterfaceOptions {
  /** Shown by Wireshark as the interface name (e.g. the device instance, 'nvme0'). */
  name: string;
  description?: string;
  /** Link type of the frames (default 1, Ethernet). */
  linktype?: number;
}

/** Writes a pcapng file to a sink, block by block. */
export class PcapngWriter {
  private readonly sink: TraceSink;
  private interfaces = 0;
  private closed = false;
  /** Packets written. */
  packets = 0;
  /** Bytes written to the sink. */
  bytes = 0;

  constructor(sink: TraceSink, opts: { application?: string } = {}) {
    if (!sink || typeof sink.write !== 'function') throw new SgringError('InvalidArgument', 'PcapngWriter needs a sink with write(bytes)');
    this.sink = sink;
    this.emit(block(BLOCK_SHB, 16, (dv, _u8, at) => {
      dv.setUint32(at, 0x1a2b3c4d, true); // byte-order magic
      dv.setUint16(at + 4, 1, true); // version 1.0
      dv.setUint16(at + 6, 0, true);
      dv.setBigInt64(at + 8, -1n, true); // section length: not given
    }, [[SHB_USERAPPL, utf8.encode(opts.application ?? 'sgring')]]));
  }

  /** Adds an interface (one per device instance); returns its id for writePacket. */
  addInterface(o: InterfaceOptions): number {
    this.open();
    const opts: Option[] = [[IF_NAME, utf8.encode(o.name)], [IF_TSRESOL, Uint8Array.of(9)]]; // 10^-9 s
    if (o.description) opts.push([IF_DESCRIPTION, utf8.encode(o.description)]);
    this.emit(block(BLOCK_IDB, 8, (dv, _u8, at) => {
      dv.setUint16(at, o.linktype ?? LINKTYPE_ETHERNET, true);
      dv.setUint16(at + 2, 0, true);
      dv.setUint32(at + 4, 0, true); // snaplen: no limit
    }, opts));
    return this.interfaces++;
  }

  /** One frame at `timeNs` nanoseconds since 1970 (or since any origin of your choosing). */
  writePacket(iface: number, timeNs: bigint, frame: Uint8Array, comments: readonly string[] = []): void {
    this.open();
    if (!Number.isInteger(iface) || iface < 0 || iface >= this.interfaces) throw new SgringError('InvalidArgument', `interface ${iface} was not added`);
    if (typeof timeNs !== 'bigint' || timeNs < 0n || timeNs > 0xffff_ffff_ffff_ffffn) throw new SgringError('InvalidArgument', 'timeNs is a u64 bigint');
    this.emit(block(BLOCK_EPB, 20 + frame.length, (dv, u8, at) => {
      dv.setUint32(at, iface, true);
      dv.setUint32(at + 4, Number(timeNs >> 32n), true);
      dv.setUint32(at + 8, Number(timeNs & 0xffff_ffffn), true);
      dv.setUint32(at + 12, frame.length, true);
      dv.setUint32(at + 16, frame.length, true);
      u8.set(frame, at + 20);
    }, comments.map((c) => [OPT_COMMENT, utf8.encode(c)] as Option)));
    this.packets++;
  }

  /** Ends the trace (closes the sink if it can be closed); later writes throw. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sink.close?.();
  }

  private open(): void {
    if (this.closed) throw new SgringError('InvalidArgument', 'the trace writer is closed');
  }

  private emit(b: Uint8Array): void {
    this.sink.write(b);
    this.bytes += b.length;
  }
}

/** An interface of a pcapng file read back. */
export interface PcapngInterface {
  name: string;
  description: string;
  linktype: number;
}

/** A packet of a pcapng file read back: its interface, time in nanoseconds, bytes and comments. */
export interface PcapngPacket {
  iface: number;
  timeNs: bigint;
  data: Uint8Array;
  comments: string[];
}

const utf8d = new TextDecoder();

/**
 * Reads a pcapng file (sections in either byte order; interfaces with their name, description
 * and timestamp resolution; enhanced packet blocks with comments; other blocks skipped). A file
 * that is not pcapng or is cut short is InvalidArgument, naming the offset.
 */
export function readPcapng(file: Uint8Array): { interfaces: PcapngInterface[]; packets: PcapngPacket[] } {
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const bad = (at: number, why: string) => new SgringError('InvalidArgument', `not a readable pcapng file: ${why} at offset ${at}`);
  const interfaces: PcapngInterface[] = [];
  const resolution: bigint[] = []; // nanoseconds per unit, per interface of the current section
  const packets: PcapngPacket[] = [];
  if (file.length === 0) throw bad(0, 'an empty file');
  let le = true;
  let base = 0; // interfaces of earlier sections
  for (let at = 0; at < file.length;) {
    if (file.length - at < 12) throw bad(at, 'a truncated block');
    if (at === 0 && dv.getUint32(0, true) !== BLOCK_SHB) throw bad(0, 'no section header');
    const type = dv.getUint32(at, le);
    if (type === BLOCK_SHB) {
      if (file.length - at < 28) throw bad(at, 'a truncated section header');
      const magic = dv.getUint32(at + 8, true);
      if (magic !== 0x1a2b3c4d && magic !== 0x4d3c2b1a) throw bad(at, 'an unknown byte-order magic');
      le = magic === 0x1a2b3c4d;
      base = interfaces.length;
      resolution.length = 0;
    }
    const len = dv.getUint32(at + 4, le);
    if (len < 12 || len % 4 !== 0 || len > file.length - at || dv.getUint32(at + len - 4, le) !== len) throw bad(at, `a block length of ${len}`);
    const body = at + 8;
    const end = at + len - 4;
    const options = (from: number): [number, Uint8Array][] => {
      const out: [number, Uint8Array][] = [];
      for (let o = from; o + 4 <= end;) {
        const code = dv.getUint16(o, le);
        const n = dv.getUint16(o + 2, le);
        if (code === OPT_END) break;
        if (o + 4 + n > end) throw bad(o, 'an option past its block');
        out.push([code, file.subarray(o + 4, o + 4 + n)]);
        o += 4 + pad4(n);
      }
      return out;
    };
    if (type === BLOCK_IDB) {
      if (end - body < 8) throw bad(at, 'a truncated interface block');
      const opts = options(body + 8);
      const text = (code: number) => utf8d.decode(opts.find(([c]) => c === code)?.[1] ?? new Uint8Array(0));
      const ts = opts.find(([c]) => c === IF_TSRESOL)?.[1]?.[0] ?? 6;
      const unitNs = ts & 0x80 ? 0n : ts <= 9 ? 10n ** BigInt(9 - ts) : 0n; // finer than 1 ns or binary: not ours, kept as 0
      resolution.push(unitNs === 0n ? 1n : unitNs);
      interfaces.push({ name: text(IF_NAME), description: text(IF_DESCRIPTION), linktype: dv.getUint16(body, le) });
    } else if (type === BLOCK_EPB) {
      if (end - body < 20) throw bad(at, 'a truncated packet block');
      const iface = dv.getUint32(body, le);
      if (iface >= resolution.length) throw bad(at, `a packet on interface ${iface}, which was not described`);
      const caplen = dv.getUint32(body + 12, le);
      if (caplen > end - body - 20) throw bad(at, `a captured length of ${caplen}`);
      const ts = (BigInt(dv.getUint32(body + 4, le)) << 32n) | BigInt(dv.getUint32(body + 8, le));
      const comments = options(body + 20 + pad4(caplen)).filter(([c]) => c === OPT_COMMENT).map(([, v]) => utf8d.decode(v));
      packets.push({ iface: base + iface, timeNs: ts * resolution[iface]!, data: file.subarray(body + 20, body + 20 + caplen), comments });
    }
    at += len;
  }
  return { interfaces, packets };
}
