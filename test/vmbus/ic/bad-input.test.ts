// Hostile IC traffic, both directions, through real rings: spec/hardening.md §3.2 (items 10,
// 11, 14, 15, 16, 17) and the util-channel checks of spec/vmbus.md §6.4 (items 23-28). Each case
// checks the documented behaviour (drop + count, failure answer, or the one request rejected)
// and that nothing else happened (no answer, no callback, no store change, channel still works).
import { describe, expect, it } from 'vitest';
import {
  HeartbeatGuest, HeartbeatHost, KvpGuest, KvpHost, KvpStore, settleIc, ShutdownGuest, TimesyncGuest, TimesyncHost,
  constants as K, type IcGuest, type RingPipe,
} from '../../../src/index';
import { ENGINES } from '../../util/engines';
import { Bytes, drain, expectReject, negotiateBody, pipes, rawIc } from './wire';

const HB = 1;
const KVP = 2;
const SD = 3;
const TS = 4;
const FAIL = 0x80004005;

/** Sends raw payloads to `guest`, polls it, and returns its answers. */
function feed(engine: 'wasm' | 'reference', make: (gp: RingPipe) => IcGuest, ...payloads: Uint8Array[]) {
  const { hp, gp } = pipes(engine, 65536);
  const guest = make(gp);
  payloads.forEach((p, i) => expect(hp.send(p, BigInt(100 + i))).toBe(true));
  guest.poll();
  return { guest, answers: drain(hp), hp, gp };
}

const hbBody = (seq = 5n) => new Bytes(40).u64(0, seq).u8;
const kvpSet = (key: string, value: string) => new Bytes(2580).u8at(0, 1).u32(4, 1).u32(8, (key.length + 1) * 2).u32(12, (value.length + 1) * 2).utf16z(16, key).utf16z(528, value).u8;

describe.each(ENGINES)('IC bad input, guest side (%s)', (engine) => {
  it('[H10 §6.4] a packet shorter than the pipe header or the 28 header bytes is dropped and counted, never answered', () => {
    // In-band payloads are padded to 8 bytes, so the short cases on a ring are 0, 8 and 24 bytes.
    const good = rawIc({ type: HB, body: hbBody() });
    const { guest, answers } = feed(engine, (gp) => new HeartbeatGuest(gp), new Uint8Array(0), good.slice(0, 8), good.slice(0, 24), good);
    expect(answers.map((a) => a.tid)).toEqual([103n]); // only the whole message is answered
    expect(guest.stats).toMatchObject({ received: 4, answered: 1, dropped: 3, reasons: { IcTruncated: 3 } });
  });

  it('[H10] a pipe size beyond the packet, or an icmsgsize beyond the pipe size, is dropped (IcLengthMismatch)', () => {
    const { guest, answers } = feed(engine, (gp) => new HeartbeatGuest(gp),
      rawIc({ type: HB, body: hbBody(), pipeSize: 65 }), // 68 bytes arrive as 72: 64 after the pipe header
      rawIc({ type: HB, body: hbBody(), msgSize: 41 }),
      rawIc({ type: HB, body: hbBody(), pipeSize: 0xffffffff, msgSize: 0xffff }),
      rawIc({ type: HB, body: hbBody(), pipeSize: 19 }));
    expect(answers).toEqual([]);
    expect(guest.stats.reasons).toEqual({ IcLengthMismatch: 3, IcTruncated: 1 });
  });

  it('[H10] a pipe header whose type is not 1 (data) is dropped (IcBadPipeHeader)', () => {
    const { guest, answers } = feed(engine, (gp) => new HeartbeatGuest(gp), rawIc({ type: HB, body: hbBody(), pipeType: 2 }));
    expect(answers).toEqual([]);
    expect(guest.stats.reasons.IcBadPipeHeader).toBe(1);
  });

  it('[H10] trailing bytes after the message (ring padding, an echoed larger buffer) are ignored', () => {
    const { answers } = feed(engine, (gp) => new HeartbeatGuest(gp), rawIc({ type: HB, body: hbBody(9n), tail: 13 }));
    expect(answers[0]!.msg.body).toEqual(hbBody(10n));
  });

  it('[H17 §6.4] a negotiate body shorter than its two counts gets a failure answer, not a crash (item 23)', () => {
    const { guest, answers } = feed(engine, (gp) => new HeartbeatGuest(gp), rawIc({ type: 0, body: new Uint8Array([1, 0]) }));
    expect(answers[0]!.msg.header.status).toBe(FAIL);
    expect(answers[0]!.msg.body.subarray(0, 4)).toEqual(new Uint8Array(4)); // counts 0/0
    expect(guest.negotiated).toBeNull();
    expect(guest.stats.reasons.IcTruncated).toBe(1);
  });

  it('[H14 §6.4] negotiate counts over 100 or implying more pairs than present get a failure answer (items 24, 25)', () => {
    const { guest, answers } = feed(engine, (gp) => new HeartbeatGuest(gp),
      rawIc({ type: 0, body: negotiateBody([[3, 0]], [[3, 0]], [101, 1]) }),
      rawIc({ type: 0, body: negotiateBody([[3, 0]], [[3, 0]], [1, 2]) }),
      rawIc({ type: 0, body: negotiateBody([[3, 0]], [[3, 0]], [100, 100]) }),
      rawIc({ type: 0, body: negotiateBody([[3, 0]], [[3, 0]], [0xffff, 0xffff]) }));
    expect(answers.map((a) => [a.msg.header.status, a.msg.body[0], a.msg.body[2]])).toEqual(Array(4).fill([FAIL, 0, 0]));
    expect(guest.stats.reasons.IcBadVersionList).toBe(4);
    expect(guest.negotiated).toBeNull();
  });

  it('[H14 §6.4] an offer with no common version (or empty lists) gets counts 0/0 and HV_E_FAIL', () => {
    const { guest, answers } = feed(engine, (gp) => new HeartbeatGuest(gp),
      rawIc({ type: 0, body: negotiateBody([[2, 0]], [[3, 0]]) }),
      rawIc({ type: 0, body: negotiateBody([[3, 0]], [[3, 1]]) }),
      rawIc({ type: 0, body: negotiateBody([], []) }));
    expect(answers.map((a) => a.msg.header.status)).toEqual([FAIL, FAIL, FAIL]);
    expect(guest.stats.reasons.IcNegotiationFailed).toBe(3);
  });

  it('[H17 §6.4] a heartbeat body shorter than 8 bytes is dropped; 8 bytes without the reserved words is answered (item 26)', () => {
    const { guest, answers } = feed(engine, (gp) => new HeartbeatGuest(gp),
      rawIc({ type: HB, body: new Uint8Array(7) }),
      rawIc({ type: HB, body: new Bytes(8).u64(0, 1n).u8 }));
    expect(answers.map((a) => a.tid)).toEqual([101n]);
    expect(answers[0]!.msg.body).toEqual(new Bytes(8).u64(0, 2n).u8);
    expect(guest.stats.reasons.IcTruncated).toBe(1);
  });

  it('[H17 §6.4] a shutdown body shorter than the 2060-byte struct is dropped and the embedder never hears of it (item 28)', () => {
    let calls = 0;
    const body = new Bytes(2060).u32(8, 0).u8;
    const { guest, answers } = feed(engine, (gp) => new ShutdownGuest(gp, { onShutdown: () => calls++ }),
      rawIc({ type: SD, body: body.slice(0, 12) }), rawIc({ type: SD, body: body.slice(0, 2059) }));
    expect(answers).toEqual([]);
    expect(calls).toBe(0);
    expect(guest.stats.reasons.IcTruncated).toBe(2);
  });

  it('[H17 §6.4] timesync bodies shorter than Linux\'s structs (25 bytes before 4.0, 22 from 4.0) are dropped (item 28)', () => {
    let calls = 0;
    const { hp, gp } = pipes(engine);
    const guest = new TimesyncGuest(gp, { onTimeSample: () => calls++ });
    hp.send(rawIc({ type: TS, body: new Uint8Array(24) }), 1n); // not negotiated: pre-4.0 layout
    hp.send(rawIc({ type: TS, body: new Uint8Array(25) }), 2n);
    hp.send(rawIc({ type: 0, body: negotiateBody([[3, 0]], [[4, 0]]) }), 3n);
    hp.send(rawIc({ type: TS, body: new Uint8Array(21) }), 4n);
    hp.send(rawIc({ type: TS, body: new Uint8Array(22) }), 5n);
    guest.poll();
    expect(drain(hp).map((a) => a.tid)).toEqual([2n, 3n, 5n]);
    expect(calls).toBe(2);
    expect(guest.stats.reasons.IcTruncated).toBe(2);
  });

  it('[H11 §6.4] an unknown message type is answered HV_E_FAIL on heartbeat/shutdown/timesync, and dropped on KVP (item 27)', () => {
    const makers: ((gp: RingPipe) => IcGuest)[] = [(gp) => new HeartbeatGuest(gp), (gp) => new ShutdownGuest(gp), (gp) => new TimesyncGuest(gp)];
    for (const make of makers) {
      const { guest, answers } = feed(engine, make, rawIc({ type: 9, body: new Uint8Array([1, 2, 3]) }));
      expect(answers[0]!.msg.header).toMatchObject({ status: FAIL, messageType: 9, flags: 5 });
      expect(answers[0]!.msg.body).toEqual(new Uint8Array([1, 2, 3]));
      expect(guest.stats.reasons.UnknownMessageType).toBe(1);
    }
    const { guest, answers } = feed(engine, (gp) => new KvpGuest(gp), rawIc({ type: HB, body: hbBody() }));
    expect(answers).toEqual([]);
    expect(guest.stats).toMatchObject({ dropped: 1, reasons: { UnknownMessageType: 1 } });
  });

  it('[H11] a packet that is not in-band (type 6) is counted and skipped by the ring pipe', () => {
    const { hp, gp } = pipes(engine);
    const guest = new HeartbeatGuest(gp);
    hp.tx.writePacket({ type: 11, transactionId: 7n, payload: rawIc({ type: HB, body: hbBody() }) });
    hp.send(rawIc({ type: HB, body: hbBody() }), 8n);
    guest.poll();
    expect(gp.stats.skippedNonInband).toBe(1);
    expect(drain(hp).map((a) => a.tid)).toEqual([8n]);
  });

  it('[H17] unknown shutdown flags (anything but 0-5) are refused with HV_E_FAIL and no callback', () => {
    let calls = 0;
    const { answers } = feed(engine, (gp) => new ShutdownGuest(gp, { onShutdown: () => calls++ }),
      rawIc({ type: SD, body: new Bytes(2060).u32(8, 8).u8 }), rawIc({ type: SD, body: new Bytes(2060).u32(8, 0xffffffff).u8 }));
    expect(answers.map((a) => a.msg.header.status)).toEqual([FAIL, FAIL]);
    expect(calls).toBe(0);
  });

  it('[H17 §6.4] a KVP body shorter than its operation\'s struct is dropped; the store is unchanged (item 28)', () => {
    const set = kvpSet('k', 'v');
    const del = new Bytes(520).u8at(0, 2).u32(4, 4).utf16z(8, 'k').u8;
    const store = new KvpStore({ 0: { k: 'old' } });
    const { guest, answers } = feed(engine, (gp) => new KvpGuest(gp, { store }),
      rawIc({ type: KVP, body: set.slice(0, 2575) }), rawIc({ type: KVP, body: set.slice(0, 3) }),
      rawIc({ type: KVP, body: del.slice(0, 519) }), rawIc({ type: KVP, body: new Bytes(2579).u8at(0, 3).u8 }));
    expect(answers).toEqual([]);
    expect(store.entries(0)).toEqual([['k', 'old']]);
    expect(guest.stats.reasons.IcTruncated).toBe(4);
  });

  it('[H15] KVP key/value sizes beyond their field, odd, without a terminator or not UTF-16 fail that request with HV_E_FAIL', () => {
    const store = new KvpStore();
    const bad = [
      kvpSet('k', 'v'), // key size 514 > 512
      kvpSet('k', 'v'), // value size 2050 > 2048
      kvpSet('k', 'v'), // odd key size
      kvpSet('k', 'v'), // key not terminated
      kvpSet('k', 'v'), // value size 0
      kvpSet('k', 'v'), // lone surrogate in the key
      kvpSet('k', 'v'), // unknown value type
      kvpSet('k', 'v'), // u32 value of size 8
      new Bytes(2580).u8at(0, 2).u32(4, 0xfffffffe).u8, // delete, huge key size
    ];
    new DataView(bad[0]!.buffer).setUint32(8, 514, true);
    new DataView(bad[1]!.buffer).setUint32(12, 2050, true);
    new DataView(bad[2]!.buffer).setUint32(8, 3, true);
    new DataView(bad[3]!.buffer).setUint16(18, 0x41, true);
    new DataView(bad[4]!.buffer).setUint32(12, 0, true);
    new DataView(bad[5]!.buffer).setUint16(16, 0xd800, true);
    new DataView(bad[6]!.buffer).setUint32(4, 3, true);
    new DataView(bad[7]!.buffer).setUint32(4, 4, true);
    new DataView(bad[7]!.buffer).setUint32(12, 8, true);
    const { guest, answers } = feed(engine, (gp) => new KvpGuest(gp, { store }), ...bad.map((body) => rawIc({ type: KVP, body })));
    expect(answers.map((a) => a.msg.header.status)).toEqual(Array(bad.length).fill(FAIL));
    expect(store.size(0)).toBe(0);
    expect(guest.stats.reasons.IcBadKvpField).toBe(bad.length);
  });

  it('[H17] KVP operations other than get/set/delete/enumerate, and pools >= 5, fail just that request', () => {
    const { answers } = feed(engine, (gp) => new KvpGuest(gp),
      rawIc({ type: KVP, body: new Bytes(2580).u8at(0, 4).u8 }), // GET_IP_INFO: not modelled
      rawIc({ type: KVP, body: new Bytes(2580).u8at(0, 9).u8 }),
      rawIc({ type: KVP, body: new Bytes(2580).u8at(0, 3).u8at(1, 5).u8 }),
      rawIc({ type: KVP, body: kvpSet('ok', 'yes') }));
    expect(answers.map((a) => a.msg.header.status)).toEqual([K.IC_STATUS_NOT_SUPPORTED, FAIL, FAIL, 0]);
  });
});

describe.each(ENGINES)('IC bad input, host side (%s)', (engine) => {
  /** A negotiated heartbeat host whose guest is driven by hand (gp). */
  async function handHost() {
    const { hp, gp } = pipes(engine);
    const host = new HeartbeatHost(hp);
    const guest = new HeartbeatGuest(gp);
    await settleIc(host.negotiate(), [host, guest]);
    return { hp, gp, host, guest };
  }

  it('[H16] an answer with another trans_id, or with nothing outstanding, is ignored; the request stays pending', async () => {
    const { gp, host, guest } = await handHost();
    gp.send(rawIc({ type: HB, flags: 5, body: hbBody(1n) }), 99n); // nothing outstanding
    host.poll();
    const beat = host.beat();
    host.poll();
    const req = gp.receive()!;
    gp.send(rawIc({ type: HB, flags: 5, body: hbBody(1n) }), req.transactionId + 1n);
    host.poll();
    expect(host.pending).toBe(1);
    expect(host.stats.reasons).toEqual({ NoRequestOutstanding: 1, TransactionIdMismatch: 1 });
    gp.send(rawIc({ type: HB, flags: 5, body: hbBody(1n) }), req.transactionId);
    host.poll();
    expect(await beat).toBe(1n);
    void guest;
  });

  it('[H10] an answer whose icmsgsize overruns the packet rejects that request (IcLengthMismatch); the next one works', async () => {
    const { gp, host, guest } = await handHost();
    const beat = host.beat();
    host.poll();
    const req = gp.receive()!;
    gp.send(rawIc({ type: HB, flags: 5, body: hbBody(1n), msgSize: 400 }), req.transactionId);
    host.poll();
    await expectReject(beat, 'IcLengthMismatch');
    expect(await settleIc(host.beat(), [host, guest])).toBe(1n);
    expect(host.stats).toMatchObject({ failed: 1, reasons: { IcLengthMismatch: 1 } });
  });

  it('[H17] answers that are not responses, of another type, wrong IC transaction id, wrong seq or too short reject the request', async () => {
    const { gp, host } = await handHost();
    const cases: [Uint8Array, string][] = [
      [rawIc({ type: HB, flags: 3, body: hbBody(1n) }), 'IcUnexpectedMessage'],
      [rawIc({ type: SD, flags: 5, body: hbBody(1n) }), 'IcUnexpectedMessage'],
      [rawIc({ type: HB, flags: 5, icTid: 4, body: hbBody(1n) }), 'IcUnexpectedMessage'],
      [rawIc({ type: HB, flags: 5, body: hbBody(7n) }), 'IcUnexpectedMessage'],
      [rawIc({ type: HB, flags: 5, body: new Uint8Array(7) }), 'IcTruncated'],
      [rawIc({ type: HB, flags: 5, status: FAIL, body: hbBody(1n) }), 'IcPeerStatus'],
    ];
    for (const [answer, code] of cases) {
      const beat = host.beat(0n);
      host.poll();
      gp.send(answer, gp.receive()!.transactionId);
      host.poll();
      await expectReject(beat, code);
    }
    expect(host.stats.failed).toBe(cases.length);
  });

  it('[H14] negotiate answers with counts other than 1/1, versions not offered, or bad counts fail the negotiation', async () => {
    const answers: [Uint8Array, string][] = [
      [negotiateBody([[3, 0], [1, 0]], [[3, 0]]), 'IcNegotiationFailed'],
      [negotiateBody([[2, 0]], [[3, 0]]), 'IcNegotiationFailed'],
      [negotiateBody([[3, 0]], [[3, 7]]), 'IcNegotiationFailed'],
      [negotiateBody([[3, 0]], [[3, 0]], [1, 200]), 'IcBadVersionList'],
      [negotiateBody([[3, 0]], [[3, 0]], [2, 2]), 'IcBadVersionList'],
    ];
    for (const [body, code] of answers) {
      const { hp, gp } = pipes(engine);
      const host = new HeartbeatHost(hp);
      const nego = host.negotiate();
      host.poll();
      gp.send(rawIc({ type: 0, flags: 5, body }), gp.receive()!.transactionId);
      host.poll();
      await expectReject(nego, code);
      expect(host.negotiated).toBeNull();
    }
  });

  it('[H15] a KVP answer whose key lacks its terminator or whose value size runs past its field rejects with IcBadKvpField', async () => {
    const { hp, gp } = pipes(engine);
    const host = new KvpHost(hp);
    await settleIc(host.negotiate(), [host, new KvpGuest(gp)]);
    const noNul = new Bytes(2580).u8at(0, 3).u32(8, 1).u32(12, 2).u32(16, 4).u16(20, 0x61).u16(22, 0x62).utf16z(532, 'v').u8;
    const longValue = new Bytes(2580).u8at(0, 0).u32(4, 1).u32(12, 4096).u8;
    for (const [p, body] of [[host.enumerate(0, 0), noNul], [host.get(0, 'k'), longValue]] as const) {
      host.poll();
      gp.send(rawIc({ type: KVP, msg: [4, 0], flags: 5, body }), gp.receive()!.transactionId);
      host.poll();
      await expectReject(p, 'IcBadKvpField');
    }
  });

  it('[H17] a guest that drops a request leaves it pending: settleIc gives up with Timeout and abort() rejects it', async () => {
    const { hp, gp } = pipes(engine);
    const host = new TimesyncHost(hp);
    const guest = new TimesyncGuest(gp);
    await settleIc(host.negotiate(), [host, guest]);
    // A guest that never answers: take the request off the ring and say nothing.
    const p = host.sendTime({ parentTime: 1n });
    host.poll();
    expect(gp.receive()).not.toBeNull();
    await expectReject(settleIc(p, [host, guest], 3), 'Timeout');
    expect(host.abort()).toBe(1);
    await expectReject(p, 'IcAborted');
    expect(host.pending).toBe(0);
  });
});
