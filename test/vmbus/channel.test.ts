// The data plane of an open channel in one thread (spec §1.8-1.9, §2): signals raised exactly
// when the ring rules say (counted against a model), the mask / drain / unmask / re-check loop,
// flow control, staged completions, every packet kind, and hostile packets in a live channel.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { constants as K, encodeGpaDirectPacket, encodeGpaPageList, encodeTransferPagePacket, type GuestChannel, type HostChannel, type ReceivedPacket } from '../../src/index';
import { check } from '../util/fc';
import { echoPair, expectCode, hex, unhex } from './helpers';
import { RawRing } from './mock';

async function channelPair(o: { txPages?: number; rxPages?: number; echo?: boolean } = {}) {
  const p = await echoPair({ offer: o.echo === false ? { onOpen: () => {} } : {} });
  const ch = await p.guest.open<number>(1, { txPages: o.txPages ?? 16, rxPages: o.rxPages ?? 16 });
  const host = p.host.channels.get(1)! as HostChannel<number>;
  const tx = new RawRing(p.core, p.core.guestBase + ch.rings.gpa, ch.rings.txPages * 4096);
  const rx = new RawRing(p.core, tx.ptr + tx.totalBytes, ch.rings.rxPages * 4096);
  return { ...p, ch, hostCh: host, tx, rx };
}

describe('signals follow the ring rules exactly (spec §1.9)', () => {
  it('property: for any sequence of requests, sends and polls, each side raises exactly the signals the rules predict, and each doorbell counts them', async () => {
    type Op = { k: 'req'; n: number } | { k: 'send'; n: number } | { k: 'hostPoll' } | { k: 'guestPoll' };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ k: fc.constant('req' as const), n: fc.integer({ min: 1, max: 5 }) }),
      fc.record({ k: fc.constant('send' as const), n: fc.integer({ min: 1, max: 3 }) }),
      fc.constant({ k: 'hostPoll' as const }), fc.constant({ k: 'guestPoll' as const }),
    );
    const pairs = await Promise.all(Array.from({ length: 4 }, () => channelPair()));
    let round = 0;
    check(fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const p = pairs[round++ % pairs.length]!;
      p.ch.poll();
      p.host.poll();
      p.ch.poll(); // start from empty rings
      const g0 = { ...p.ch.stats };
      const h0 = { ...p.hostCh.stats };
      const bells0 = [p.transport.hostBell.value, p.transport.guestBell.value];
      let txPkts = 0;
      let rxPkts = 0;
      const want = { guest: 0, host: 0 };
      let got = 0;
      p.ch.onCompletion = () => got++;
      p.ch.onPacket = () => got++;
      for (const o of ops) {
        if (o.k === 'req') {
          for (let i = 0; i < o.n; i++) {
            expect(p.ch.request(new Uint8Array(64), i)).toBeGreaterThan(0);
            if (txPkts++ === 0) want.guest++; // empty -> non-empty, reader not masked (§1.9.1)
          }
        } else if (o.k === 'send') {
          for (let i = 0; i < o.n; i++) {
            expect(p.hostCh.send(new Uint8Array(32))).toBe(true);
            if (rxPkts++ === 0) want.host++;
          }
        } else if (o.k === 'hostPoll') {
          const completions = txPkts;
          txPkts = 0;
          p.host.poll();
          if (completions > 0 && rxPkts === 0) want.host++; // one staged batch, one decision
          rxPkts += completions;
        } else {
          p.ch.poll();
          rxPkts = 0;
        }
      }
      expect(p.ch.stats.writeSignals - g0.writeSignals).toBe(want.guest);
      expect(p.hostCh.stats.writeSignals - h0.writeSignals).toBe(want.host);
      // Rings never filled, so no flow-control signal is owed (§1.9.2).
      expect(p.ch.stats.readSignals - g0.readSignals + p.hostCh.stats.readSignals - h0.readSignals).toBe(0);
      // Every signal rang the peer's doorbell once; nothing else rang it.
      expect(p.transport.hostBell.value - bells0[0]!).toBe(want.guest);
      expect(p.transport.guestBell.value - bells0[1]!).toBe(want.host);
    }), 150);
  });

  it('batch(): requests sent inside it go out with one index publication and one signal decision', async () => {
    const p = await channelPair();
    const ids = p.ch.batch(() => [1, 2, 3, 4, 5].map((i) => p.ch.request(new Uint8Array(8), i)));
    expect(ids).toEqual([1, 2, 3, 4, 5]);
    expect(p.ch.stats.writeSignals).toBe(1);
    expect(p.ch.backlog).toBe(0);
    expect(p.tx.readRecords().length).toBe(5);
    p.tx.field(K.RING_OFF_READ_INDEX, 0);
    expect(p.host.poll()).toBe(5);
  });

  it('the event bit of the channel\'s relid is set with each signal (spec §1.10)', async () => {
    const p = await channelPair();
    p.ch.request(new Uint8Array(8));
    const seen: number[] = [];
    expect(p.host.end.takeEvents((r) => seen.push(r))).toBe(1);
    expect(seen).toEqual([1]);
  });

  it('writes made while the reader is masked raise no signal and are taken by the re-check before poll returns (spec §1.8)', async () => {
    const p = await channelPair();
    let injected = 0;
    const masks: number[] = [];
    p.hostCh.onPacket = (pkt) => {
      masks.push(p.tx.field(K.RING_OFF_INTERRUPT_MASK));
      p.hostCh.complete(pkt);
      if (injected++ < 3) p.ch.request(new Uint8Array(8)); // the guest writes while the host drains
    };
    p.ch.request(new Uint8Array(8));
    expect(p.ch.stats.writeSignals).toBe(1);
    expect(p.host.poll()).toBe(4);
    expect(masks).toEqual([1, 1, 1, 1]);
    expect(p.ch.stats.writeSignals).toBe(1); // the three writes under the mask did not signal
    expect(p.tx.field(K.RING_OFF_INTERRUPT_MASK)).toBe(0);
    expect(p.ch.poll()).toBe(4);
  });

  it('[H5] flow control: a host blocked on a full RX ring is signalled by the guest read that frees the room it asked for, once (spec §1.9.2)', async () => {
    const p = await channelPair({ rxPages: 2 }); // 4096-byte RX data area
    const msg = new Uint8Array(1000);
    let sent = 0;
    while (p.hostCh.send(msg)) sent++;
    expect(sent).toBe(3); // a 4th 1024-byte record would fill the ring exactly, which §1.5 forbids
    expect(p.rx.field(K.RING_OFF_PENDING_SEND_SIZE)).toBe(1024); // the host asked for one record's room
    const bell = p.transport.hostBell.value;
    let got = 0;
    p.ch.onPacket = () => got++;
    p.ch.poll();
    expect(got).toBe(3);
    expect(p.ch.stats.readSignals).toBe(1);
    expect(p.transport.hostBell.value - bell).toBe(1);
    expect(p.hostCh.send(msg)).toBe(true);
    expect(p.rx.field(K.RING_OFF_PENDING_SEND_SIZE)).toBe(0); // cleared by the successful write
    p.ch.poll();
    expect(p.ch.stats.readSignals).toBe(1); // nobody was blocked this time
  });

  it('completions staged by a handler behind a full ring are kept in order and flushed once the guest makes room', async () => {
    const p = await channelPair({ rxPages: 2, txPages: 16 });
    const order: number[] = [];
    p.ch.onCompletion = (ctx) => order.push(ctx);
    for (let i = 0; i < 60; i++) expect(p.ch.request(new Uint8Array(200), i)).toBeGreaterThan(0);
    p.host.poll(); // 60 completions of 200 bytes: far more than 4 KiB
    expect(p.hostCh.backlog).toBeGreaterThan(0);
    for (let i = 0; i < 40 && order.length < 60; i++) {
      p.ch.poll();
      p.host.poll();
    }
    expect(order).toEqual(Array.from({ length: 60 }, (_, i) => i));
    expect(p.hostCh.backlog).toBe(0);
    expect(p.hostCh.peerInFlight.size).toBe(0);
  });
});

describe('completions are never lost for lack of room', () => {
  it('a device completing into a ring that never quite drains, with a tiny staging area: every completion arrives, in order', async () => {
    const p = await echoPair({ offer: { channel: { stagingBytes: 256, stagingPackets: 4 } } });
    const ch = await p.guest.open<number>(1, { rxPages: 2, channel: { transactions: 1000 } });
    const order: number[] = [];
    ch.onCompletion = (ctx) => order.push(ctx);
    let next = 0;
    for (let round = 0; round < 400 && order.length < 3000; round++) {
      while (next < 3000 && ch.request(new Uint8Array(100), next) !== 0) next++;
      p.host.poll();
      ch.poll(17); // reads a few at a time: the host keeps finding its ring full
    }
    expect(order).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    expect(p.host.channels.get(1)!.backlog).toBe(0);
  });
});

describe('packet kinds over a channel', () => {
  it('GPA-direct requests (spec §2.5) reach the host with validated ranges; the completion comes back to the right context', async () => {
    const p = await channelPair({ echo: false });
    const got: unknown[] = [];
    p.hostCh.onPacket = (pkt) => {
      got.push({ type: pkt.type, headerBytes: pkt.headerBytes, segments: pkt.gpa!.segments, msg: hex(pkt.payload()) });
      p.hostCh.complete(pkt, Uint8Array.from([1]));
    };
    const { bytes, rangeCount } = encodeGpaPageList(p.core, [{ addr: 0x40000 + 16, len: 100 }, { addr: 0x50000, len: 8192 }]);
    const done: [number, number][] = [];
    p.ch.onCompletion = (ctx, _err, pkt) => done.push([ctx, pkt!.payload()[0]!]);
    const id = p.ch.requestGpa({ rangeBytes: bytes, rangeCount }, Uint8Array.from([0xee, 0xff]), 77);
    expect(id).toBe(1);
    p.host.poll();
    p.ch.poll();
    expect(got).toEqual([{ type: 9, headerBytes: 24 + 48, segments: [{ addr: 0x40010, len: 100, range: 0 }, { addr: 0x50000, len: 4096, range: 1 }, { addr: 0x51000, len: 4096, range: 2 }], msg: 'eeff000000000000' }]);
    expect(done).toEqual([[77, 1]]);
  });

  it('transfer-page packets (spec §2.6) from the host reach the guest, which completes them', async () => {
    const p = await channelPair();
    const xfers: unknown[] = [];
    p.ch.onPacket = (pkt) => {
      xfers.push(pkt.transferPages);
      p.ch.complete(pkt, Uint8Array.from([0x6c, 0, 0, 0, 1, 0, 0, 0]));
    };
    const acks: [string, string][] = [];
    p.hostCh.onCompletion = (ctx, _err, pkt) => acks.push([String(ctx), hex(pkt!.payload())]);
    const ranges = [{ byteCount: 1514, byteOffset: 0 }, { byteCount: 60, byteOffset: 6144 }];
    expect(p.hostCh.requestTransferPages({ pageSetId: 0xcafe, senderOwns: false, ranges }, Uint8Array.from([107, 0, 0, 0, 1, 0, 0, 0]), 5)).toBe(1);
    const rec = p.rx.readRecords();
    expect(hex(rec[0]!.subarray(0, 24))).toBe('0700' + '0500' + '0600' + '0100' + '0100000000000000' + 'feca0000' + '02000000');
    p.rx.field(K.RING_OFF_READ_INDEX, 0); // rewind: the guest reads it for real
    p.ch.poll();
    p.host.poll();
    expect(xfers).toEqual([{ pageSetId: 0xcafe, senderOwns: false, ranges }]);
    expect(acks).toEqual([['5', '6c00000001000000']]);
  });

  it('unsolicited in-band packets (no completion wanted) go to onPacket and need no completion', async () => {
    const p = await channelPair();
    const seen: string[] = [];
    p.ch.onPacket = (pkt) => seen.push(`${pkt.transactionId}:${pkt.completionRequested}:${hex(pkt.payload())}`);
    expect(p.hostCh.send(Uint8Array.from([1, 2]))).toBe(true);
    expect(p.hostCh.send(Uint8Array.from([3]), 99n)).toBe(true);
    p.ch.poll();
    expect(seen).toEqual(['0:false:0102000000000000', '99:false:0300000000000000']);
    expect(p.ch.peerInFlight.size).toBe(0);
  });

  it('a handler that throws stops the poll; the rest of its batch is delivered by the next poll (nothing taken from the ring is lost)', async () => {
    const p = await channelPair();
    const seen: number[] = [];
    p.hostCh.onPacket = (pkt) => {
      seen.push(pkt.payload()[0]!);
      if (pkt.payload()[0] === 2) throw new Error('device bug');
    };
    for (let i = 0; i < 5; i++) p.ch.send(Uint8Array.from([i]));
    expect(() => p.hostCh.poll()).toThrow('device bug');
    expect(p.tx.field(K.RING_OFF_INTERRUPT_MASK)).toBe(0); // not left masked
    expect(p.hostCh.state).toBe('open');
    p.hostCh.poll();
    expect(seen).toEqual([0, 1, 2, 3, 4]);
  });

  it('poll takes at most `budget` packets', async () => {
    const p = await channelPair();
    let n = 0;
    p.hostCh.onPacket = () => n++;
    for (let i = 0; i < 10; i++) p.ch.send(new Uint8Array(8));
    expect(p.hostCh.poll(3)).toBe(3);
    expect(n).toBe(3);
    expect(p.hostCh.hasWork()).toBe(true); // the caller must poll again before sleeping
    expect(p.hostCh.poll(100)).toBe(7);
    expect(n).toBe(10);
  });
});

describe('hostile packets in a live channel', () => {
  /** Writes a raw record into the guest's TX ring; the host channel then polls it. */
  const plant = (p: Awaited<ReturnType<typeof channelPair>>, image: string) => p.tx.writeRecord(unhex(image));

  it.each([
    ['[H10] offset8 = 1', '0600 0100 0200 0000 0000000000000000', 'InvalidDescriptorLengths'],
    ['[H10] len8 < offset8', '0600 0300 0200 0000 0000000000000000', 'InvalidDescriptorLengths'],
    ['[H11] packet type 8', '0800 0200 0200 0000 0000000000000000', 'InvalidDescriptorType'],
    ['[H12] flag bit 1', '0600 0200 0200 0200 0000000000000000', 'InvalidDescriptorFlags'],
    ['[H13] GPA-direct with offset8 = 2', '0900 0200 0300 0100 0100000000000000 0000000001000000', 'PacketHeaderTooShort'],
    ['[H13] transfer pages with offset8 = 2', '0700 0200 0300 0100 0100000000000000 feca000000000000', 'PacketHeaderTooShort'],
  ])('%s breaks that channel (B); requests in flight on it fail once; other channels on the bus go on', async (_, image, code) => {
    const p = await channelPair();
    p.host.offer({ classId: 'network', relid: 2, onOpen: (c) => (c.onPacket = (pkt) => c.complete(pkt, pkt.payload())) });
    p.guest.poll();
    const other = await p.guest.open(2);
    const failed: string[] = [];
    p.hostCh.onCompletion = (ctx, err) => failed.push(`${ctx}:${err?.code}`);
    p.hostCh.requestTransferPages({ pageSetId: 1, senderOwns: false, ranges: [] }, new Uint8Array(8), 7); // the host waits on the guest
    plant(p, image);
    p.host.poll(); // the bus polls every channel; a broken one does not stop it
    expect(p.hostCh.state).toBe('broken');
    expect(p.hostCh.broken?.code).toBe(code);
    expect(p.hostCh.broken?.broken).toBe(true);
    expect(failed).toEqual([`7:${code}`]);
    expectCode(() => p.hostCh.poll(), code);
    expectCode(() => p.hostCh.send(new Uint8Array(8)), code);
    expect((await other.call(Uint8Array.from([4])))[0]).toBe(4);
  });

  it.each([
    ['[H14] GPA range_count 0', '0900 0300 0300 0100 0500000000000000 0000000000000000', 'GpaRangeCountZero'],
    ['[H14] GPA ranges past offset8', '0900 0400 0400 0100 0500000000000000 0000000002000000 0010000000000000', 'GpaRangeTooSmall'],
    ['[H14] transfer-page ranges past offset8', '0700 0400 0400 0100 0500000000000000 feca000002000000 0100000000000000', 'GpaRangeTooSmall'],
    ['[H15] GPA byte_count 0', '0900 0500 0500 0100 0500000000000000 0000000001000000 0000000000000000 0700000000000000', 'GpaEmptyByteCount'],
    ['[H15] GPA byte_offset 0x1000', '0900 0500 0500 0100 0500000000000000 0000000001000000 0100000000100000 0700000000000000', 'GpaOffsetTooLarge'],
    ['[H15] GPA offset + count overflow', '0900 0500 0500 0100 0500000000000000 0000000001000000 ffffffffff0f0000 0700000000000000', 'GpaOverflow'],
    ['[H15] GPA PFN 2^40', '0900 0500 0500 0100 0500000000000000 0000000001000000 0010000000000000 0000000000010000', 'GpaPfnTooLarge'],
  ])('%s fails that packet (E): onBadPacket gets it and can answer it; the channel goes on', async (_, image, code) => {
    const p = await channelPair();
    const bad: string[] = [];
    p.hostCh.onBadPacket = (pkt, err) => {
      bad.push(`${pkt.transactionId}:${err.code}:${err.broken}`);
      p.hostCh.complete(pkt, Uint8Array.from([0xe0])); // the device fails the request with its own status
    };
    plant(p, image);
    p.ch.send(Uint8Array.from([1])); // a good packet after it
    let good = 0;
    const prev = p.hostCh.onPacket;
    p.hostCh.onPacket = (pkt) => {
      good++;
      prev?.(pkt);
    };
    p.host.poll();
    expect(bad).toEqual([`5:${code}:false`]);
    expect(good).toBe(1);
    expect(p.hostCh.state).toBe('open');
    expect(p.hostCh.stats.badPackets).toBe(1);
    expect(p.rx.readRecords().map((r) => hex(r.subarray(0, 17)))).toEqual(['0b000200030000000500000000000000e0']);
  });

  it('[H14] without onBadPacket the bad packet is counted and dropped, and its id is not left owed', async () => {
    const p = await channelPair();
    plant(p, '0900 0300 0300 0100 0500000000000000 0000000000000000');
    p.host.poll();
    expect(p.hostCh.stats.badPackets).toBe(1);
    expect(p.hostCh.peerInFlight.size).toBe(0);
  });

  it('[H16] completions with id 0, beyond the table, for a free slot, a stale generation or already completed: counted, no handler runs, table unchanged', async () => {
    const p = await channelPair({ echo: false });
    const calls: unknown[] = [];
    p.ch.onCompletion = (...a) => calls.push(a);
    const id = p.ch.request(new Uint8Array(8), 1);
    const snap = JSON.stringify(p.ch.transactions.snapshot());
    const comp = (lo: number, hi: number) => {
      const dv = new DataView(new ArrayBuffer(16));
      dv.setUint32(0, 0x0002000b, true);
      dv.setUint32(4, 2, true);
      dv.setUint32(8, lo, true);
      dv.setUint32(12, hi, true);
      p.rx.writeRecord(new Uint8Array(dv.buffer));
    };
    comp(0, 0);
    comp(257, 0); // table of 256
    comp(0xffffffff, 0xffffffff);
    comp(9, 0);
    comp(id, 3);
    p.ch.poll();
    expect(calls).toEqual([]);
    expect(JSON.stringify(p.ch.transactions.snapshot())).toBe(snap);
    expect(p.ch.transactions.counters).toMatchObject({ zeroId: 1, outOfRange: 2, unknown: 2, completed: 0 });
    comp(id, 0);
    comp(id, 0); // the host answers twice
    p.ch.poll();
    expect(calls.length).toBe(1);
    expect(p.ch.transactions.counters).toMatchObject({ completed: 1, duplicate: 1 });
  });

  it('[H40] a guest request reusing an id still in flight is refused (never two completions for one id); a second complete() throws', async () => {
    const p = await channelPair({ echo: false });
    const held: ReceivedPacket[] = [];
    const ids: string[] = [];
    p.hostCh.onPacket = (pkt) => {
      ids.push(String(pkt.transactionId));
      held.push(pkt);
    };
    plant(p, '0600 0200 0300 0100 0700000000000000 0100000000000000');
    plant(p, '0600 0200 0300 0100 0700000000000000 0200000000000000'); // id 7 again, first still in flight
    p.host.poll();
    expect(ids).toEqual(['7']);
    expect(p.hostCh.stats.duplicateRequests).toBe(1);
    expect(p.hostCh.completeId(7, 0, Uint8Array.from([1]))).toBe(true);
    expectCode(() => p.hostCh.completeId(7, 0), 'InvalidArgument');
    expect(p.rx.readRecords().length).toBe(1);
    // Once completed, the id may be used again.
    plant(p, '0600 0200 0300 0100 0700000000000000 0300000000000000');
    p.host.poll();
    expect(ids).toEqual(['7', '7']);
  });

  it('a completion-requested packet with id 0 is delivered, but no completion can be sent for it (spec §2.3)', async () => {
    const p = await channelPair({ echo: false });
    let got = 0;
    p.hostCh.onPacket = () => got++;
    plant(p, '0600 0200 0300 0100 0000000000000000 0100000000000000');
    p.host.poll();
    expect(got).toBe(1);
    expectCode(() => p.hostCh.completeId(0, 0), 'InvalidArgument');
  });

  it('[H1] corrupt ring indices break the channel with InvalidRingPointer on both read and write paths', async () => {
    const p = await channelPair();
    p.tx.field(K.RING_OFF_WRITE_INDEX, 12);
    p.host.poll();
    expect(p.hostCh.broken?.code).toBe('InvalidRingPointer');
    const q = await channelPair();
    q.tx.field(K.RING_OFF_READ_INDEX, 0xfff8 * 8 + 4);
    expectCode(() => q.ch.request(new Uint8Array(8)), 'InvalidRingPointer');
    expect(q.ch.state).toBe('broken');
    expect(q.ch.transactions.outstanding).toBe(0);
  });
});

describe('channel end misc', () => {
  it('request returns 0 (nothing sent, nothing allocated) when the table or the ring is full', async () => {
    const p = await echoPair();
    const ch: GuestChannel = await p.guest.open(1, { txPages: 2, channel: { transactions: 3 } });
    expect([1, 2, 3].map(() => ch.request(new Uint8Array(8)))).toEqual([1, 2, 3]);
    expect(ch.request(new Uint8Array(8))).toBe(0);
    expect(ch.stats.tableFull).toBe(1);
    const big: GuestChannel = await (async () => {
      p.host.offer({ classId: 'kvp', relid: 5 });
      p.guest.poll();
      return p.guest.open(5, { txPages: 2 });
    })();
    let n = 0;
    while (big.request(new Uint8Array(1000)) !== 0) n++;
    expect(n).toBe(3);
    expect(big.transactions.outstanding).toBe(3);
    expect(big.stats.outFull).toBe(1);
    expectCode(() => big.request(new Uint8Array(5000)), 'InvalidMessageLength');
    expect(big.transactions.outstanding).toBe(3);
  });

  it('descriptor packets leave the sender with zero reserved bytes and padding even after a longer packet (P10): the same image as the encoders', async () => {
    const { ch, hostCh } = await channelPair({ echo: false });
    const images: Uint8Array[] = [];
    hostCh.onPacket = (p) => images.push(p.core.u8.slice(p.start, p.start + p.totalBytes));
    const rangeBytes = encodeGpaPageList(ch.core, [{ addr: 0x5000, len: 4096 }]).bytes;
    // A long packet of 0xff bytes first: whatever it leaves behind must not reach the next ones.
    expect(ch.requestGpa({ rangeBytes, rangeCount: 1 }, new Uint8Array(300).fill(0xff), 1)).toBeGreaterThan(0);
    const gpaId = ch.requestGpa({ rangeBytes, rangeCount: 1 }, Uint8Array.of(1, 2, 3), 2);
    const xfer = { pageSetId: 7, senderOwns: true, ranges: [{ byteOffset: 8, byteCount: 100 }] };
    const xferId = ch.requestTransferPages(xfer, Uint8Array.of(9), 3);
    hostCh.poll();
    expect(images.length).toBe(3);
    const tid = (id: number) => BigInt(ch.transactions.transactionId(id));
    expect(hex(images[1]!)).toBe(hex(encodeGpaDirectPacket({ gpa: { rangeBytes, rangeCount: 1 }, message: Uint8Array.of(1, 2, 3), transactionId: tid(gpaId) })));
    expect(hex(images[2]!)).toBe(hex(encodeTransferPagePacket({ transferPages: xfer, message: Uint8Array.of(9), transactionId: tid(xferId) })));
  });
});
