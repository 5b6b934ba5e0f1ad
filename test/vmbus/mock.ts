// Driver-side mocks (the rust-vmm mock.rs idea): write real wire images — SynIC slots carrying
// channel messages, ring records carrying packets — straight into shared memory, and read the
// other end's images back raw, so each bus end is tested against bytes, not objects.
import { constants as K, decodeMessage, encodeMessage, type ChannelMessage, type Core, type MessageTransport } from '../../src/index';

/** Raw access to one side of a transport: the other side is the end under test. */
export class RawPeer {
  readonly core: Core;
  private readonly t: MessageTransport;
  private readonly out: { tail: number; head: number; slots: number };
  private readonly inq: { tail: number; head: number; slots: number };
  private readonly peerBell: number;
  private tail: number;
  private head: number;

  constructor(t: MessageTransport, side: 'guest' | 'host') {
    this.core = t.core;
    this.t = t;
    const n = t.slots;
    const g2h = { tail: t.ptr + K.XPORT_OFF_G2H_TAIL, head: t.ptr + K.XPORT_OFF_G2H_HEAD, slots: t.ptr + K.XPORT_HEADER_SIZE };
    const h2g = { tail: t.ptr + K.XPORT_OFF_H2G_TAIL, head: t.ptr + K.XPORT_OFF_H2G_HEAD, slots: t.ptr + K.XPORT_HEADER_SIZE + n * 256 };
    this.out = side === 'guest' ? g2h : h2g;
    this.inq = side === 'guest' ? h2g : g2h;
    this.peerBell = t.ptr + (side === 'guest' ? K.XPORT_OFF_HOST_BELL : K.XPORT_OFF_GUEST_BELL);
    this.tail = Atomics.load(this.core.u32, this.out.tail >> 2);
    this.head = Atomics.load(this.core.u32, this.inq.head >> 2);
  }

  /** Writes one SynIC slot: type 1, payload_size = bytes.length unless overridden, then publishes it. */
  postRaw(bytes: Uint8Array, o: { synicType?: number; payloadSize?: number; sender?: number } = {}): void {
    const slot = this.out.slots + (this.tail % this.t.slots) * 256;
    const u8 = this.core.u8;
    u8.fill(0, slot, slot + 256);
    const dv = this.core.dv;
    dv.setUint32(slot, o.synicType ?? 1, true);
    dv.setUint8(slot + 4, o.payloadSize ?? bytes.length);
    dv.setUint32(slot + 8, o.sender ?? 0, true);
    u8.set(bytes.subarray(0, 240), slot + 16);
    this.tail = (this.tail + 1) >>> 0;
    Atomics.store(this.core.u32, this.out.tail >> 2, this.tail);
    Atomics.add(this.core.i32, this.peerBell >> 2, 1);
  }

  post(m: ChannelMessage, sender = 0): void {
    this.postRaw(encodeMessage(m), { sender });
  }

  /** Every message the end under test posted since the last call, as raw payload bytes. */
  takeRaw(): Uint8Array[] {
    return this.takeRawSlots().map((s) => s.payload);
  }

  /** Like takeRaw, with each slot's sender / connection id. */
  takeRawSlots(): { payload: Uint8Array; sender: number }[] {
    const out: { payload: Uint8Array; sender: number }[] = [];
    const tail = Atomics.load(this.core.u32, this.inq.tail >> 2);
    while (this.head !== tail) {
      const slot = this.inq.slots + (this.head % this.t.slots) * 256;
      out.push({ payload: this.core.u8.slice(slot + 16, slot + 16 + this.core.u8[slot + 4]!), sender: this.core.u32[(slot + 8) >> 2]! });
      this.head = (this.head + 1) >>> 0;
      Atomics.store(this.core.u32, this.inq.head >> 2, this.head);
    }
    return out;
  }

  /** Messages waiting for this raw peer. */
  peekCount(): number {
    return (Atomics.load(this.core.u32, this.inq.tail >> 2) - this.head) >>> 0;
  }

  take(): ChannelMessage[] {
    return this.takeRaw().map((b) => decodeMessage(b));
  }
}

/** A ring as raw memory: header fields and records, with no VmbusRing in between. */
export class RawRing {
  constructor(readonly core: Core, readonly ptr: number, readonly totalBytes: number) {}
  get dataSize(): number {
    return this.totalBytes - 4096;
  }
  field(off: number, v?: number): number {
    if (v !== undefined) Atomics.store(this.core.u32, (this.ptr + off) >> 2, v >>> 0);
    return Atomics.load(this.core.u32, (this.ptr + off) >> 2);
  }

  /** Appends `image` (a whole packet, len8*8 bytes) and its trailer at the write index, then publishes. */
  writeRecord(image: Uint8Array): void {
    const size = this.dataSize;
    const w = this.field(K.RING_OFF_WRITE_INDEX);
    const data = this.ptr + 4096;
    const rec = new Uint8Array(image.length + 8);
    rec.set(image);
    new DataView(rec.buffer).setUint32(image.length + 4, w, true);
    for (let i = 0; i < rec.length; i++) this.core.u8[data + ((w + i) % size)] = rec[i]!;
    this.field(K.RING_OFF_WRITE_INDEX, (w + rec.length) % size);
  }

  /** Takes every record between the indices (header words as written), advancing the read index. */
  readRecords(): Uint8Array[] {
    const size = this.dataSize;
    const data = this.ptr + 4096;
    const out: Uint8Array[] = [];
    let r = this.field(K.RING_OFF_READ_INDEX);
    const w = this.field(K.RING_OFF_WRITE_INDEX);
    while (r !== w) {
      const byte = (i: number) => this.core.u8[data + ((r + i) % size)]!;
      const tlen = byte(4) | (byte(5) << 8);
      out.push(Uint8Array.from({ length: tlen * 8 }, (_, i) => byte(i)));
      r = (r + tlen * 8 + 8) % size;
    }
    this.field(K.RING_OFF_READ_INDEX, r);
    return out;
  }
}
