// The channel-message transport (spec §3.1, §1.10): SynIC-format slots in two queues, event bits
// and doorbells. Hostile counters break the end (TransportBroken, B); a message is read from a
// private copy (hardening L2); SynIC framing errors are typed (checklist 17).
import { describe, expect, it } from 'vitest';
import { constants as K, loadCoreSync, MessageTransport, synicPayload, synicSender } from '../../src/index';
import { expectCode } from './helpers';

function setup(slots = 4) {
  const core = loadCoreSync({ initialBytes: 4 << 20 });
  const t = MessageTransport.create(core, { slots });
  return { core, t, g: t.end('guest'), h: t.end('host'), w: (off: number, v: number) => Atomics.store(core.u32, (t.ptr + off) >> 2, v >>> 0) };
}

describe('message transport', () => {
  it('carries messages in SynIC slot format, in order, and rings the receiver', () => {
    const { core, t, g, h } = setup();
    const before = t.hostBell.value;
    expect(g.post(Uint8Array.from([3, 0, 0, 0, 0, 0, 0, 0]), 1)).toBe(true);
    expect(g.post(Uint8Array.from([4, 0, 0, 0, 0, 0, 0, 0, 9]), 4)).toBe(true);
    expect(t.hostBell.value).toBe(before + 2);
    // The slot bytes are the SynIC layout: type 1 @0, payload_size @4, sender @8, payload @16.
    const slot0 = core.u8.subarray(t.ptr + K.XPORT_HEADER_SIZE, t.ptr + K.XPORT_HEADER_SIZE + 256);
    expect(Array.from(slot0.subarray(0, 17))).toEqual([1, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3]);
    expect(h.readable).toBe(2);
    const a = h.receive()!;
    expect(Array.from(synicPayload(a))).toEqual([3, 0, 0, 0, 0, 0, 0, 0]);
    expect(synicSender(a)).toBe(1);
    const b = h.receive()!;
    expect(synicPayload(b).length).toBe(9);
    expect(synicSender(b)).toBe(4);
    expect(h.receive()).toBeNull();
  });

  it('a full queue refuses the post (nothing written) and consuming from a full queue rings the producer', () => {
    const { t, g, h } = setup(2);
    expect(g.post(new Uint8Array(8))).toBe(true);
    expect(g.post(new Uint8Array(8))).toBe(true);
    expect(g.post(new Uint8Array(8))).toBe(false);
    expect(g.stats.fullPosts).toBe(1);
    const bell = t.guestBell.value;
    h.receive();
    expect(t.guestBell.value).toBe(bell + 1);
    expect(g.writable).toBe(1);
  });

  it('every slot is zeroed before it is written (P10)', () => {
    const { core, t, g, h } = setup(1);
    g.post(new Uint8Array(240).fill(0x77));
    h.receive();
    g.post(Uint8Array.from([1, 2]));
    const slot = core.u8.subarray(t.ptr + K.XPORT_HEADER_SIZE, t.ptr + K.XPORT_HEADER_SIZE + 256);
    expect(Array.from(slot.subarray(18))).toEqual(new Array(238).fill(0));
  });

  it('[H17] a payload_size above 240 is MessageTooLong and a SynIC type other than 1 is UnknownMessageType', () => {
    const slot = new Uint8Array(256);
    slot[0] = 1;
    slot[4] = 241;
    expectCode(() => synicPayload(slot), 'MessageTooLong');
    slot[4] = 240;
    expect(synicPayload(slot).length).toBe(240);
    slot[0] = 2;
    expectCode(() => synicPayload(slot), 'UnknownMessageType');
  });

  it('hardening L2: the receiver parses a private copy; rewriting the slot afterwards changes nothing', () => {
    const { core, t, g, h } = setup();
    g.post(Uint8Array.from([2, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0]));
    const copy = h.receive()!;
    core.u8.fill(0xff, t.ptr + K.XPORT_HEADER_SIZE, t.ptr + K.XPORT_HEADER_SIZE + 256);
    expect(Array.from(synicPayload(copy))).toEqual([2, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0]);
  });

  it('hostile counters: a tail or head that claims more messages than slots breaks that end (TransportBroken, B), and it stays broken', () => {
    const { g, h, w } = setup(4);
    w(K.XPORT_OFF_G2H_TAIL, 5); // the guest claims 5 messages in 4 slots
    const e = expectCode(() => h.receive(), 'TransportBroken');
    expect(e.broken).toBe(true);
    w(K.XPORT_OFF_G2H_TAIL, 0);
    expectCode(() => h.receive(), 'TransportBroken');
    expect(h.broken?.code).toBe('TransportBroken');
    // The guest moves its head of the host's queue backwards: the host's next post sees a gap.
    w(K.XPORT_OFF_H2G_HEAD, 0xfffffff0);
    const s2 = setup(4);
    s2.w(K.XPORT_OFF_H2G_HEAD, 100);
    expectCode(() => s2.h.post(new Uint8Array(8)), 'TransportBroken');
    expect(g.broken).toBeNull();
  });

  it('[H69] counters wrap at 2^32', () => {
    const core = loadCoreSync({ initialBytes: 4 << 20 });
    const t = MessageTransport.create(core, { slots: 3 });
    for (const off of [K.XPORT_OFF_G2H_TAIL, K.XPORT_OFF_G2H_HEAD]) Atomics.store(core.u32, (t.ptr + off) >> 2, 0xfffffffe);
    const g = t.end('guest');
    const h = t.end('host');
    for (let i = 0; i < 10; i++) {
      expect(g.post(Uint8Array.from([i, 0, 0, 0, 0, 0, 0, 0]))).toBe(true);
      expect(synicPayload(h.receive()!)[0]).toBe(i);
    }
    expect(Atomics.load(core.u32, (t.ptr + K.XPORT_OFF_G2H_TAIL) >> 2)).toBe(8);
  });

  it('channel events: a bit per relid, taken once, in relid order; relids >= 2048 are refused', () => {
    const { t, g, h } = setup();
    for (const r of [2047, 0, 33, 33, 64]) g.signalChannel(r);
    const seen: number[] = [];
    expect(h.takeEvents((r) => seen.push(r))).toBe(4);
    expect(seen).toEqual([0, 33, 64, 2047]);
    expect(h.takeEvents(() => {})).toBe(0);
    expect(g.takeEvents(() => {})).toBe(0); // the guest's own inbound bits are separate
    expectCode(() => g.signalChannel(2048), 'RelidOutOfRange');
    expect(t.hostBell.value).toBe(5);
  });

  it('attach finds the same transport from another core over the same memory, and refuses anything else', () => {
    const { core, t } = setup(8);
    const core2 = loadCoreSync({ memory: core.memory });
    const t2 = MessageTransport.attach(core2, t.ptr);
    expect(t2.slots).toBe(8);
    t.end('guest').post(new Uint8Array(8));
    expect(t2.end('host').readable).toBe(1);
    expectCode(() => MessageTransport.attach(core2, t.ptr + 4096), 'InvalidArgument');
    expectCode(() => MessageTransport.create(core, { slots: 0 }), 'InvalidArgument');
    expectCode(() => MessageTransport.create(core, { slots: 257 }), 'InvalidArgument');
  });
});
