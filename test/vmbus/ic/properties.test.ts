// fast-check properties of the IC codecs and endpoints: decode(encode(x)) = x for every message
// kind; decoding arbitrary or mutated bytes throws nothing but SgringError; neither end ever
// throws from poll() on hostile traffic through real rings; negotiation picks the highest
// common version (a plain model of Linux's rule).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkNegotiateResponse, chooseVersions, compareVersions, decodeHeartbeat, decodeIcMessage, decodeKvpRequest,
  decodeKvpResponse, decodeNegotiateBody, decodeShutdown, decodeTimesync, encodeHeartbeat, encodeIcMessage,
  encodeKvpRequest, encodeNegotiateBody, encodeShutdown, encodeTimesync, HeartbeatGuest, HeartbeatHost, KvpGuest,
  KvpHost, kvpReplyBody, KvpStore, pumpIc, SgringError, ShutdownGuest, TimesyncGuest, parentTimeToUnixNs, unixNsToParentTime,
  type IcGuest, type IcVersion, type KvpRequest, type KvpValue,
} from '../../../src/index';
import { check } from '../../util/fc';
import { drain, pipes, rawIc } from './wire';

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const version = fc.record({ major: u16, minor: u16 });
const header = fc.record({ frameworkVersion: version, messageType: u16, messageVersion: version, status: u32, transactionId: u8, flags: u8 });
const bytes = (maxLength: number) => fc.uint8Array({ maxLength });
/** Strings that survive UTF-16: whole code points, at most `units` UTF-16 units. */
const wstring = (units: number) => fc.string({ unit: 'binary', maxLength: units }).filter((s) => s.length <= units);
const kvpValue: fc.Arbitrary<KvpValue> = fc.oneof(
  wstring(1023).map((value) => ({ type: 'string' as const, value })),
  wstring(1023).map((value) => ({ type: 'expand-string' as const, value })),
  u32.map((value) => ({ type: 'u32' as const, value })),
  u64.map((value) => ({ type: 'u64' as const, value })),
);
const pool = fc.integer({ min: 0, max: 4 });
const kvpRequest: fc.Arbitrary<KvpRequest> = fc.oneof(
  fc.record({ operation: fc.constant('get' as const), pool, key: wstring(255) }),
  fc.record({ operation: fc.constant('set' as const), pool, key: wstring(255), value: kvpValue }),
  fc.record({ operation: fc.constant('delete' as const), pool, key: wstring(255) }),
  fc.record({ operation: fc.constant('enumerate' as const), pool, index: u32 }),
);

/** undefined five times in six, otherwise a value of `arb` (for fields that are usually left alone). */
const rarely = <T>(arb: fc.Arbitrary<T>) => fc.oneof({ arbitrary: fc.constant(undefined), weight: 5 }, { arbitrary: arb, weight: 1 });

/** Runs fn; anything thrown must be an SgringError. */
function onlySgringErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof SgringError)) throw e;
  }
}

describe('IC codec round trips', () => {
  it('framing: decode(encode(header, body)) gives the header and body back, with any trailing bytes ignored', () => {
    check(fc.property(header, bytes(3000), bytes(16), (h, body, tail) => {
      const img = encodeIcMessage(h, body);
      const padded = new Uint8Array(img.length + tail.length);
      padded.set(img);
      padded.set(tail, img.length);
      const m = decodeIcMessage(padded);
      expect(m.header).toEqual(h);
      expect(m.body).toEqual(body);
    }));
  });

  it('negotiate: decode(encode(lists)) = lists for up to 100 versions each', () => {
    check(fc.property(fc.array(version, { maxLength: 100 }), fc.array(version, { maxLength: 100 }), (fw, msg) => {
      expect(decodeNegotiateBody(encodeNegotiateBody({ frameworkVersions: fw, messageVersions: msg }))).toEqual({ frameworkVersions: fw, messageVersions: msg });
    }));
  });

  it('heartbeat, shutdown and timesync bodies round-trip (both timesync layouts)', () => {
    check(fc.property(u64, (seq) => {
      expect(decodeHeartbeat(encodeHeartbeat(seq))).toBe(seq);
    }));
    check(fc.property(u32, u32, u32, bytes(2048), (reasonCode, timeoutSeconds, flags, message) => {
      const d = decodeShutdown(encodeShutdown({ reasonCode, timeoutSeconds, flags, message }));
      const full = new Uint8Array(2048);
      full.set(message);
      expect(d).toEqual({ reasonCode, timeoutSeconds, flags, message: full });
    }));
    check(fc.property(u64, u64, u8, u8, u8, (parentTime, referenceTime, flags, leapIndicator, stratum) => {
      const v4: IcVersion = { major: 4, minor: 0 };
      expect(decodeTimesync(encodeTimesync({ parentTime, referenceTime, flags, leapIndicator, stratum }, v4), v4)).toEqual({ parentTime, referenceTime, flags, leapIndicator, stratum });
    }));
    check(fc.property(u64, u64, u64, u8, (parentTime, childTime, roundTripTime, flags) => {
      const v3: IcVersion = { major: 3, minor: 0 };
      expect(decodeTimesync(encodeTimesync({ parentTime, childTime, roundTripTime, flags }, v3), v3)).toEqual({ parentTime, childTime, roundTripTime, flags });
    }));
    check(fc.property(fc.bigInt({ min: -(2n ** 60n), max: 2n ** 60n }), (ns) => {
      const t = unixNsToParentTime(ns * 100n);
      expect(parentTimeToUnixNs(t)).toBe(ns * 100n);
    }));
  });

  it('KVP: requests round-trip, and so do the guest\'s answers (GET value, ENUMERATE key and value)', () => {
    check(fc.property(kvpRequest, (req) => {
      expect(decodeKvpRequest(encodeKvpRequest(req))).toEqual(req);
    }));
    check(fc.property(pool, wstring(255), kvpValue, (p, key, value) => {
      const req = encodeKvpRequest({ operation: 'get', pool: p, key });
      expect(decodeKvpResponse('get', kvpReplyBody(req, 'get', { value }))).toEqual({ value });
      const en = encodeKvpRequest({ operation: 'enumerate', pool: p, index: 0 });
      expect(decodeKvpResponse('enumerate', kvpReplyBody(en, 'enumerate', { key, value }))).toEqual({ key, value });
    }));
  });
});

describe('IC decoders on hostile bytes', () => {
  const decoders: [string, (b: Uint8Array) => unknown][] = [
    ['framing', decodeIcMessage],
    ['negotiate', decodeNegotiateBody],
    ['negotiate answer', (b) => checkNegotiateResponse(b, { frameworkVersions: [{ major: 3, minor: 0 }], messageVersions: [{ major: 3, minor: 0 }] })],
    ['heartbeat', decodeHeartbeat],
    ['shutdown', decodeShutdown],
    ['timesync 3', (b) => decodeTimesync(b, null)],
    ['timesync 4', (b) => decodeTimesync(b, { major: 4, minor: 0 })],
    ['kvp request', decodeKvpRequest],
    ...(['get', 'set', 'delete', 'enumerate'] as const).map((op): [string, (b: Uint8Array) => unknown] => [`kvp ${op} answer`, (b) => decodeKvpResponse(op, b)]),
  ];

  it('random bytes: every decoder returns or throws an SgringError, nothing else', () => {
    check(fc.property(bytes(3000), (b) => {
      for (const [, dec] of decoders) onlySgringErrors(() => dec(b));
    }), 300);
  });

  it('mutated valid images (bytes overwritten, truncated): only SgringErrors', () => {
    const seeds = [
      encodeIcMessage({ frameworkVersion: { major: 3, minor: 0 }, messageType: 0, messageVersion: { major: 3, minor: 0 }, status: 0, transactionId: 0, flags: 3 },
        encodeNegotiateBody({ frameworkVersions: [{ major: 1, minor: 0 }, { major: 3, minor: 0 }], messageVersions: [{ major: 3, minor: 0 }] })),
      encodeKvpRequest({ operation: 'set', pool: 1, key: 'key', value: { type: 'string', value: 'value' } }),
      encodeKvpRequest({ operation: 'enumerate', pool: 0, index: 3 }),
      encodeShutdown({ flags: 1 }),
    ];
    const mutation = fc.record({ seed: fc.integer({ min: 0, max: seeds.length - 1 }), edits: fc.array(fc.tuple(fc.nat(), u8), { maxLength: 8 }), cut: fc.nat() });
    check(fc.property(mutation, ({ seed, edits, cut }) => {
      const b = seeds[seed]!.slice(0, seeds[seed]!.length - (cut % 64));
      for (const [at, v] of edits) if (b.length > 0) b[at % b.length] = v;
      for (const [, dec] of decoders) onlySgringErrors(() => dec(b));
      onlySgringErrors(() => decodeNegotiateBody(b.subarray(28)));
    }), 300);
  });
});

describe('IC endpoints on hostile traffic through real rings', () => {
  const kinds: [string, (gp: ReturnType<typeof pipes>['gp']) => IcGuest][] = [
    ['heartbeat', (gp) => new HeartbeatGuest(gp)],
    ['shutdown', (gp) => new ShutdownGuest(gp, { hibernationSupported: true })],
    ['timesync', (gp) => new TimesyncGuest(gp)],
    ['kvp', (gp) => new KvpGuest(gp, { store: new KvpStore({ 0: { a: 'b' } }) })],
  ];

  it('a guest never throws from poll(), answers at most once per message, and echoes the trans_id', () => {
    const lanes = kinds.map(([, make]) => {
      const { hp, gp } = pipes('wasm', 65536);
      return { hp, guest: make(gp) };
    });
    // Valid bodies of each lane's type (and a negotiate offer), then damaged, or random bytes.
    const serviceBody = (lane: number) => [
      u64.map(encodeHeartbeat),
      fc.record({ flags: fc.integer({ min: 0, max: 7 }), reasonCode: u32 }).map(encodeShutdown),
      fc.record({ parentTime: u64, flags: u8 }).map((t) => encodeTimesync(t, { major: 3, minor: 0 })),
      kvpRequest.map(encodeKvpRequest),
    ][lane]!;
    const offer = fc.record({ frameworkVersions: fc.array(version, { maxLength: 4 }), messageVersions: fc.array(version, { maxLength: 4 }) }).map(encodeNegotiateBody);
    const msg = fc.integer({ min: 0, max: lanes.length - 1 }).chain((lane) => fc.record({
      lane: fc.constant(lane),
      negotiate: fc.boolean(),
      service: serviceBody(lane),
      offer,
      random: rarely(fc.oneof(bytes(64), bytes(2700))),
      edits: fc.array(fc.tuple(fc.nat(), u8), { maxLength: 6 }),
      type: rarely(u16),
      flags: u8,
      pipeSize: rarely(u32),
      msgSize: rarely(u16),
      pipeType: rarely(u32),
      tid: u64,
    }));
    check(fc.property(msg, (m) => {
      const { hp, guest } = lanes[m.lane]!;
      const body = (m.random ?? (m.negotiate ? m.offer : m.service)).slice();
      for (const [at, v] of m.edits) if (body.length > 0) body[at % body.length] = v;
      const type = m.type ?? (m.negotiate ? 0 : [1, 3, 4, 2][m.lane]!);
      hp.send(rawIc({ type, flags: m.flags, body, pipeSize: m.pipeSize, msgSize: m.msgSize, pipeType: m.pipeType }), m.tid);
      const before = guest.stats.received;
      guest.poll();
      expect(guest.stats.received).toBe(before + 1);
      const out = drain(hp);
      expect(out.length).toBeLessThanOrEqual(1);
      for (const a of out) {
        expect(a.tid).toBe(m.tid);
        expect(a.msg.header.flags).toBe(5);
      }
    }), 400);
  });

  it('a host never throws from poll(): every hostile answer settles the request with a value or an SgringError', async () => {
    // Mostly plausible answers (the right type, flags, status and trans_id, the request's body
    // lightly damaged), so the hostile bytes reach the service decoders; sometimes anything.
    const mostly = <T>(usual: T, other: fc.Arbitrary<T>) => fc.oneof({ arbitrary: fc.constant(usual), weight: 4 }, { arbitrary: other, weight: 1 });
    const answer = fc.record({
      type: mostly<number | null>(null, fc.constantFrom(0, 1, 2, 7)), flags: mostly(5, fc.constantFrom(4, 3)),
      status: mostly(0, fc.constantFrom(0x80004005, 0x80070103)), body: mostly<Uint8Array | null>(null, fc.oneof(bytes(48), bytes(2700))),
      edits: fc.array(fc.tuple(fc.nat(), u8), { maxLength: 6 }), msgSize: rarely(u16), sameTid: mostly(true, fc.constant(false)),
    });
    await fc.assert(fc.asyncProperty(fc.constantFrom('heartbeat', 'kvp-enumerate', 'kvp-get', 'negotiate'), answer, async (what, a) => {
      const { hp, gp } = pipes('wasm', 65536);
      const kvp = what.startsWith('kvp');
      const host = kvp ? new KvpHost(hp) : new HeartbeatHost(hp);
      const guest = kvp ? new KvpGuest(gp) : new HeartbeatGuest(gp);
      const results: Promise<string>[] = [];
      const settle = (p: Promise<unknown>) => results.push(p.then(() => 'ok', (e: unknown) => (e instanceof SgringError ? e.code : `bad: ${String(e)}`)));
      if (what !== 'negotiate') {
        settle(host.negotiate());
        pumpIc([host, guest]); // a real negotiation first, so the hostile answer meets the service decoder
      }
      settle(what === 'heartbeat' ? (host as HeartbeatHost).beat() : what === 'kvp-get' ? (host as KvpHost).get(0, 'k')
        : what === 'kvp-enumerate' ? (host as KvpHost).enumerate(0, 0) : host.negotiate());
      host.poll();
      const sent = gp.receive()!;
      // Start from a plausible answer (the request's own body) and damage it.
      const request = decodeIcMessage(sent.payload);
      const body = a.body ?? request.body.slice();
      for (const [at, v] of a.edits) if (body.length > 0) body[at % body.length] = v;
      gp.send(rawIc({ type: a.type ?? request.header.messageType, flags: a.flags, status: a.status, body, msgSize: a.msgSize }), a.sameTid ? sent.transactionId : sent.transactionId + 1n);
      host.poll();
      host.abort();
      for (const r of await Promise.all(results)) expect(r).not.toMatch(/^bad/);
    }), { seed: 0x5a6e1, numRuns: 200 });
  });
});

describe('IC negotiation choice', () => {
  const small = fc.record({ major: fc.integer({ min: 0, max: 5 }), minor: fc.integer({ min: 0, max: 3 }) });
  it('picks the highest version listed by both sides (exact major and minor), or fails when there is none', () => {
    check(fc.property(fc.array(small, { maxLength: 8 }), fc.array(small, { maxLength: 8 }), fc.array(small, { maxLength: 8 }), fc.array(small, { maxLength: 8 }), (hf, hm, gf, gm) => {
      const best = (a: IcVersion[], b: IcVersion[]) => a.filter((x) => b.some((y) => compareVersions(x, y) === 0)).sort((x, y) => compareVersions(y, x))[0] ?? null;
      const fw = best(hf, gf);
      const msg = best(hm, gm);
      expect(chooseVersions({ frameworkVersions: hf, messageVersions: hm }, gf, gm)).toEqual(fw && msg ? { framework: fw, message: msg } : null);
    }));
  });
});
