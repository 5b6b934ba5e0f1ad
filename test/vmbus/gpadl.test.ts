// GPADLs (spec §3.6): the header/body split of the guest side, and the host's table that builds a
// GPADL from hostile messages (E: a failed GPADL_CREATED status; I: a stray body is counted).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { constants as K, encodeMessage, decodeMessage, gpadlMessages, GpadlTable, pfnsContiguous, pfnsOf, type ChannelMessage } from '../../src/index';
import { check } from '../util/fc';
import { expectCode } from './helpers';

type Header = ChannelMessage & { type: 'gpadlHeader' };
type Body = ChannelMessage & { type: 'gpadlBody' };
const INVALID = K.VMBUS_STATUS_INVALID_PARAMETER;

describe('GPADL messages (spec §3.6)', () => {
  it.each([1, 26, 27, 26 + 28, 26 + 28 + 1, 8190])('%i pages: a header with min(N, 26) PFNs, bodies of 28, range_buflen 8 + 8N in a u16', (n) => {
    const pfns = Array.from({ length: n }, (_, i) => 0x100000 + 3 * i);
    const [h, ...bodies] = gpadlMessages(7, 42, { pfns, byteCount: n * 4096 });
    expect(h).toMatchObject({ childRelid: 7, gpadl: 42, rangeBufLen: 8 + 8 * n, rangeCount: 1, byteCount: n * 4096, byteOffset: 0 });
    expect(h.pfns.length).toBe(Math.min(n, 26));
    expect(bodies.length).toBe(Math.ceil(Math.max(0, n - 26) / 28));
    bodies.forEach((b, i) => {
      expect(b.msgNumber).toBe(i);
      expect(b.pfns.length).toBe(Math.min(28, n - 26 - 28 * i));
    });
    expect([h.pfns, ...bodies.map((b) => b.pfns)].flat()).toEqual(pfns);
    // Every message fits the SynIC payload: header 28 + 8k <= 236, body 16 + 8m <= 240.
    for (const m of [h, ...bodies]) expect(encodeMessage(m).length).toBeLessThanOrEqual(240);
    if (n === 8190) expect(h.rangeBufLen).toBe(65528);
  });

  it('refuses what the wire cannot carry: 0 or 8191 pages, handle 0, a byte count that disagrees with the PFNs', () => {
    expectCode(() => gpadlMessages(1, 1, { pfns: [], byteCount: 1 }), 'InvalidArgument');
    expectCode(() => gpadlMessages(1, 1, { pfns: new Array(8191).fill(1), byteCount: 8191 * 4096 }), 'InvalidArgument');
    expectCode(() => gpadlMessages(1, 0, { pfns: [1], byteCount: 4096 }), 'InvalidArgument');
    expectCode(() => gpadlMessages(1, 1, { pfns: [1, 2], byteCount: 4096 }), 'InvalidArgument');
    expectCode(() => gpadlMessages(1, 1, { pfns: [1], byteCount: 100, byteOffset: 4096 }), 'InvalidArgument');
    expect(gpadlMessages(1, 1, { pfns: [1, 2], byteCount: 4097, byteOffset: 4095 })[0].byteOffset).toBe(4095);
  });

  it('pfnsOf / pfnsContiguous', () => {
    expect(pfnsOf(0x3000, 3)).toEqual([3, 4, 5]);
    expect(pfnsContiguous([3, 4, 5])).toBe(true);
    expect(pfnsContiguous([3, 5])).toBe(false);
    expectCode(() => pfnsOf(0x3001, 1), 'InvalidArgument');
  });
});

describe('host GPADL table', () => {
  const build = (t: GpadlTable, n: number, handle = 9) => {
    const [h, ...bodies] = gpadlMessages(3, handle, { pfns: Array.from({ length: n }, (_, i) => 100 + i), byteCount: n * 4096 });
    const verdicts = [t.header(h, true), ...bodies.map((b) => t.body(b))];
    return verdicts;
  };

  it('answers GPADL_CREATED with status 0 only after the last body', () => {
    const t = new GpadlTable();
    const v = build(t, 100);
    expect(v.slice(0, -1).every((x) => x.reply === 'none')).toBe(true);
    expect(v.at(-1)).toEqual({ reply: 'created', relid: 3, handle: 9, status: 0 });
    expect(t.get(9)).toMatchObject({ state: 'created', byteCount: 100 * 4096 });
    expect(t.get(9)!.pfns.length).toBe(100);
  });

  it('property: decoding the guest messages and feeding them to the table rebuilds the PFN list', () => {
    check(fc.property(fc.array(fc.nat({ max: 2 ** 40 - 1 }), { minLength: 1, maxLength: 300 }), fc.nat({ max: 4095 }), (pfns, off) => {
      const t = new GpadlTable();
      const count = pfns.length * 4096 - off - (pfns.length > 1 ? 1 : 0);
      if (count < 1) return;
      const msgs = gpadlMessages(1, 5, { pfns, byteCount: count, byteOffset: off }).map((m) => decodeMessage(encodeMessage(m)));
      const verdicts = [t.header(msgs[0] as Header, true), ...msgs.slice(1).map((m) => t.body(m as Body))];
      expect(verdicts.at(-1)).toMatchObject({ reply: 'created', status: 0 });
      expect(t.get(5)).toMatchObject({ pfns, byteOffset: off, byteCount: count });
    }), 200);
  });

  const header = (over: Partial<Header>): Header => ({
    type: 'gpadlHeader', childRelid: 3, gpadl: 9, rangeBufLen: 8 + 8 * 2, rangeCount: 1, byteCount: 8192, byteOffset: 0, pfns: [1, 2], trailingBytes: 0, ...over,
  });

  it('[H18] a GPADL for a channel that cannot take one (unknown or rescinded relid) fails with a status', () => {
    const t = new GpadlTable();
    expect(t.header(header({}), false)).toEqual({ reply: 'created', relid: 3, handle: 9, status: K.VMBUS_STATUS_INVALID_DEVICE_STATE });
    expect(t.size).toBe(0);
  });

  it.each([
    ['handle 0', { gpadl: 0 }],
    ['range_count 0', { rangeCount: 0 }],
    ['range_count 2', { rangeCount: 2 }],
    ['range_buflen below one PFN', { rangeBufLen: 8 }],
    ['range_buflen not a multiple of 8', { rangeBufLen: 21 }],
    ['byte_offset of a whole page', { byteOffset: 4096 }],
    ['byte_count 0', { byteCount: 0 }],
    ['byte_count that needs another page count', { byteCount: 8193 }],
    ['offset + count overflowing 32 bits', { byteCount: 0xffffffff, byteOffset: 1 }],
    ['more PFNs in the header than range_buflen says', { rangeBufLen: 16, byteCount: 4096, pfns: [1, 2] }],
    ['a PFN of 2^40', { pfns: [1, 2 ** 40] }],
    ['a ragged PFN list', { trailingBytes: 4 }],
  ] as const)('a hostile header (%s) fails that GPADL with a non-zero status and records nothing', (_, over) => {
    const t = new GpadlTable();
    const v = t.header(header(over as Partial<Header>), true);
    expect(v.reply).toBe('created');
    expect(v.reply === 'created' && v.status).toBe(INVALID);
    expect(t.size).toBe(0);
  });

  it('a duplicate handle fails; the first GPADL is untouched', () => {
    const t = new GpadlTable();
    expect(t.header(header({}), true)).toMatchObject({ status: 0 });
    expect(t.header(header({ pfns: [7, 8] }), true)).toMatchObject({ status: INVALID });
    expect(t.get(9)!.pfns).toEqual([1, 2]);
  });

  it('bodies: too many PFNs, a PFN of 2^40, an empty body fail the GPADL; a body for no GPADL is counted and unanswered', () => {
    for (const bad of [[1, 2, 3], [2 ** 40], []]) {
      const t = new GpadlTable();
      expect(t.header(header({ rangeBufLen: 8 + 8 * 4, byteCount: 4 * 4096, pfns: [1, 2] }), true).reply).toBe('none');
      expect(t.body({ type: 'gpadlBody', msgNumber: 0, gpadl: 9, pfns: bad, trailingBytes: 0 })).toMatchObject({ reply: 'created', status: INVALID });
      expect(t.get(9)).toBeUndefined();
      // Its remaining bodies now belong to no GPADL.
      expect(t.body({ type: 'gpadlBody', msgNumber: 1, gpadl: 9, pfns: [3, 4], trailingBytes: 0 })).toMatchObject({ reply: 'ignore' });
      expect(t.strayBodies).toBe(1);
    }
  });

  it('limits owned by the host: GPADLs at once and pages in all of them (P4, P11)', () => {
    const t = new GpadlTable({ maxGpadls: 2, maxPages: 10 });
    expect(t.header(header({ gpadl: 1 }), true)).toMatchObject({ status: 0 });
    expect(t.header(header({ gpadl: 2, rangeBufLen: 8 + 8 * 9, byteCount: 9 * 4096 }), true)).toMatchObject({ status: K.VMBUS_STATUS_INSUFFICIENT_RESOURCES });
    expect(t.header(header({ gpadl: 2 }), true)).toMatchObject({ status: 0 });
    expect(t.header(header({ gpadl: 3 }), true)).toMatchObject({ status: K.VMBUS_STATUS_INSUFFICIENT_RESOURCES });
    expect(t.teardown(3, 1)).toEqual({ ok: true });
    expect(t.header(header({ gpadl: 3 }), true)).toMatchObject({ status: 0 });
  });

  it('teardown: only the owning channel, never while a ring uses it; dropRelid forgets a channel\'s GPADLs', () => {
    const t = new GpadlTable();
    t.header(header({}), true);
    expect(t.teardown(4, 9)).toEqual({ ok: false, why: 'unknown' });
    t.get(9)!.inUse = true;
    expect(t.teardown(3, 9)).toEqual({ ok: false, why: 'inUse' });
    t.get(9)!.inUse = false;
    expect(t.teardown(3, 9)).toEqual({ ok: true });
    t.header(header({ gpadl: 10 }), true);
    t.dropRelid(3);
    expect(t.size).toBe(0);
  });
});
