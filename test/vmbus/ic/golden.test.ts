// Byte-exact wire images of every IC message both ends produce, built field by field from the
// offsets in spec/vmbus.md §3.4 and the sources (Linux hyperv.h icmsg_hdr / icmsg_negotiate /
// heartbeat_msg_data / shutdown_msg_data / ictimesync_*; uapi hv_kvp_msg; OpenVMM
// hyperv_ic_protocol), never from the encoders under test. Each image goes through real rings.
import { describe, expect, it } from 'vitest';
import {
  decodeIcMessage, HeartbeatGuest, HeartbeatHost, KvpGuest, KvpHost, KvpStore, ShutdownGuest, ShutdownHost,
  TimesyncGuest, TimesyncHost, type IcGuest, type IcHost, type RingPipe,
} from '../../../src/index';
import { Bytes, hex, pipes, rawIc } from './wire';

/** Reads the one packet waiting on `p`; checks the VMBus framing (in-band, no completion flag). */
function take(p: RingPipe, tid?: bigint): Uint8Array {
  const m = p.receive();
  expect(m).not.toBeNull();
  expect(m!.flags).toBe(0);
  if (tid !== undefined) expect(m!.transactionId).toBe(tid);
  expect(p.receive()).toBeNull();
  return m!.payload;
}

/** The image padded to the 8-byte ring framing (payload = tlen*8 - 16 bytes). */
function padded(u8: Uint8Array): string {
  const out = new Uint8Array((u8.length + 7) & ~7);
  out.set(u8);
  return hex(out);
}

/** A negotiated host/guest pair over real rings, with the negotiate exchange already consumed. */
async function ready<H extends IcHost, G extends IcGuest>(mk: (hp: RingPipe, gp: RingPipe) => [H, G]) {
  const { hp, gp } = pipes('wasm');
  const [host, guest] = mk(hp, gp);
  const done = host.negotiate();
  host.poll();
  guest.poll();
  host.poll();
  await done;
  return { hp, gp, host, guest };
}

describe('IC golden wire images', () => {
  it('host negotiate request: header versions 0.0, flags transaction|request, fw [1.0, 3.0], heartbeat [1.0, 3.0]', () => {
    const { hp, gp } = pipes('wasm');
    const host = new HeartbeatHost(hp);
    void host.negotiate();
    expect(host.poll()).toBe(1);
    const want = new Bytes(52)
      .u32(0, 1).u32(4, 44) // pipe: data, 20 + 24 bytes
      .u16(8, 0).u16(10, 0).u16(12, 0).u16(14, 0).u16(16, 0).u16(18, 24).u32(20, 0).u8at(24, 0).u8at(25, 3)
      .u16(28, 2).u16(30, 2).u32(32, 0) // two framework and two message versions, reserved
      .u16(36, 1).u16(38, 0).u16(40, 3).u16(42, 0) // framework 1.0, 3.0
      .u16(44, 1).u16(46, 0).u16(48, 3).u16(50, 0); // heartbeat 1.0, 3.0
    expect(hex(take(gp, 1n))).toBe(padded(want.u8));
  });

  it('guest negotiate answer: one framework and one message version (the highest common), icmsgsize 16, flags transaction|response', () => {
    const { hp, gp } = pipes('wasm');
    const guest = new ShutdownGuest(gp);
    const fwList: [number, number][] = [[1, 0], [3, 0]];
    const msgList: [number, number][] = [[1, 0], [3, 0], [3, 1], [3, 2], [9, 9]];
    const body = new Bytes(8 + 7 * 4).u16(0, 2).u16(2, 5);
    [...fwList, ...msgList].forEach(([a, b], i) => body.u16(8 + i * 4, a).u16(10 + i * 4, b));
    hp.send(rawIc({ type: 0, fw: [0, 0], msg: [0, 0], body: body.u8 }), 77n);
    guest.poll();
    const want = new Bytes(44)
      .u32(0, 1).u32(4, 36)
      .u16(8, 0).u16(10, 0).u16(12, 0).u16(14, 0).u16(16, 0).u16(18, 16).u32(20, 0).u8at(24, 0).u8at(25, 5)
      .u16(28, 1).u16(30, 1).u32(32, 0).u16(36, 3).u16(38, 0).u16(40, 3).u16(42, 2);
    expect(hex(take(hp, 77n))).toBe(padded(want.u8));
    expect(guest.negotiated).toEqual({ framework: { major: 3, minor: 0 }, message: { major: 3, minor: 2 } });
  });

  it('guest negotiate failure answer: counts 0/0, zero versions, status HV_E_FAIL (0x80004005)', () => {
    const { hp, gp } = pipes('wasm');
    const guest = new HeartbeatGuest(gp);
    const body = new Bytes(16).u16(0, 1).u16(2, 1).u16(8, 7).u16(12, 7); // only 7.0 / 7.0 offered
    hp.send(rawIc({ type: 0, fw: [0, 0], msg: [0, 0], body: body.u8 }), 5n);
    guest.poll();
    const want = new Bytes(44).u32(0, 1).u32(4, 36).u16(18, 16).u32(20, 0x80004005).u8at(25, 5);
    expect(hex(take(hp, 5n))).toBe(padded(want.u8));
    expect(guest.negotiated).toBeNull();
  });

  it('heartbeat request and answer: seq_num at 28, 32 reserved bytes, answer = seq + 1 with flags 5', async () => {
    const { hp, gp, host, guest } = await ready((h, g) => [new HeartbeatHost(h), new HeartbeatGuest(g)]);
    const beat = host.beat(0x1122334455667788n);
    host.poll();
    const req = take(gp, 2n);
    const want = new Bytes(68).u32(0, 1).u32(4, 60)
      .u16(8, 3).u16(10, 0).u16(12, 1).u16(14, 3).u16(16, 0).u16(18, 40).u8at(25, 3).u64(28, 0x1122334455667788n);
    expect(hex(req)).toBe(padded(want.u8));
    hp.tx.writePacket({ type: 6, transactionId: 2n, payload: req }); // replay it to the guest
    guest.poll();
    const ans = take(hp, 2n);
    want.u8at(25, 5).u64(28, 0x1122334455667789n);
    expect(hex(ans)).toBe(padded(want.u8));
    host.abort(); // the original request was taken off the ring above
    await expect(beat).rejects.toThrow(/aborted/);
  });

  it('shutdown request: reason 0x80000000 (planned), timeout, flags restart|force = 3, 2048 message bytes', async () => {
    const { gp, host } = await ready((h, g) => [new ShutdownHost(h), new ShutdownGuest(g)]);
    void host.shutdown({ kind: 'reboot', force: true, timeoutSeconds: 30, message: new Uint8Array([0x68, 0x69]) });
    host.poll();
    const want = new Bytes(28 + 2060).u32(0, 1).u32(4, 20 + 2060)
      .u16(8, 3).u16(10, 0).u16(12, 3).u16(14, 3).u16(16, 2).u16(18, 2060).u8at(25, 3)
      .u32(28, 0x80000000).u32(32, 30).u32(36, 3).raw(40, [0x68, 0x69]);
    expect(hex(take(gp, 2n))).toBe(padded(want.u8));
  });

  it('timesync 4.0 request: parent time, VM reference time, flags, leap, stratum, 5 reserved (24 bytes)', async () => {
    const { gp, host } = await ready((h, g) => [new TimesyncHost(h), new TimesyncGuest(g)]);
    void host.sendTime({ parentTime: 133444736000000000n, referenceTime: 0xabcdefn, flags: 1, leapIndicator: 1, stratum: 2 });
    host.poll();
    const want = new Bytes(28 + 24).u32(0, 1).u32(4, 44)
      .u16(8, 3).u16(12, 4).u16(14, 4).u16(18, 24).u8at(25, 3)
      .u64(28, 133444736000000000n).u64(36, 0xabcdefn).u8at(44, 1).u8at(45, 1).u8at(46, 2);
    expect(hex(take(gp, 2n))).toBe(padded(want.u8));
  });

  it('timesync 3.0 request: parent, child, round-trip time, flags at 24 of the body, 3 reserved (28 bytes)', async () => {
    const { gp, host } = await ready((h, g) => [new TimesyncHost(h, { messageVersions: [{ major: 3, minor: 0 }] }), new TimesyncGuest(g)]);
    void host.sendTime({ parentTime: 0x0102030405060708n, flags: 2 });
    host.poll();
    const want = new Bytes(28 + 28).u32(0, 1).u32(4, 48)
      .u16(8, 3).u16(12, 4).u16(14, 3).u16(18, 28).u8at(25, 3).u64(28, 0x0102030405060708n).u8at(52, 2);
    expect(hex(take(gp, 2n))).toBe(padded(want.u8));
  });

  it('KVP SET request: op 1, pool, value struct at 4 (type, key size, value size, UTF-16 key[512], value[2048])', async () => {
    const { gp, host } = await ready((h, g) => [new KvpHost(h), new KvpGuest(g)]);
    void host.set(0, 'ab', 'xyz');
    host.poll();
    const want = new Bytes(28 + 2580).u32(0, 1).u32(4, 2600)
      .u16(8, 3).u16(12, 2).u16(14, 4).u16(18, 2580).u8at(25, 3)
      .u8at(28, 1).u8at(29, 0).u32(32, 1).u32(36, 6).u32(40, 8).utf16z(44, 'ab').utf16z(28 + 4 + 12 + 512, 'xyz');
    expect(hex(take(gp, 2n))).toBe(padded(want.u8));
  });

  it('KVP DELETE request: key size at 4 and key at 8 of the body', async () => {
    const { gp, host } = await ready((h, g) => [new KvpHost(h), new KvpGuest(g)]);
    void host.delete(3, 'k');
    host.poll();
    const want = new Bytes(28 + 2580).u32(0, 1).u32(4, 2600)
      .u16(8, 3).u16(12, 2).u16(14, 4).u16(18, 2580).u8at(25, 3).u8at(28, 2).u8at(29, 3).u32(32, 4).utf16z(36, 'k');
    expect(hex(take(gp, 2n))).toBe(padded(want.u8));
  });

  it('KVP ENUMERATE answer: index kept at 4, REG_SZ key and value written into the value struct at 8, status 0', () => {
    const { hp, gp } = pipes('wasm');
    const guest = new KvpGuest(gp, { store: new KvpStore({ 1: { first: 'one', Key: 'Value' } }) });
    const req = new Bytes(2580).u8at(0, 3).u8at(1, 1).u32(4, 1);
    hp.send(rawIc({ type: 2, msg: [4, 0], body: req.u8 }), 9n);
    guest.poll();
    const want = new Bytes(28 + 2580).u32(0, 1).u32(4, 2600)
      .u16(8, 3).u16(12, 2).u16(14, 4).u16(18, 2580).u8at(25, 5)
      .u8at(28, 3).u8at(29, 1).u32(32, 1)
      .u32(36, 1).u32(40, 8).u32(44, 12).utf16z(48, 'Key').utf16z(28 + 8 + 12 + 512, 'Value');
    expect(hex(take(hp, 9n))).toBe(padded(want.u8));
  });

  it('KVP GET answer: the host\'s key is kept, the value written as REG_SZ; a missing key answers HV_S_CONT (0x80070103) unchanged', () => {
    const { hp, gp } = pipes('wasm');
    const guest = new KvpGuest(gp, { store: new KvpStore({ 0: { Name: 'vm1' } }) });
    const req = new Bytes(2580).u8at(0, 0).u8at(1, 0).u32(8, 10).utf16z(16, 'Name');
    hp.send(rawIc({ type: 2, msg: [4, 0], body: req.u8 }), 3n);
    guest.poll();
    const want = new Bytes(28 + 2580).u32(0, 1).u32(4, 2600).u16(8, 3).u16(12, 2).u16(14, 4).u16(18, 2580).u8at(25, 5)
      .raw(28, req.u8).u32(32, 1).u32(40, 8).utf16z(28 + 4 + 12 + 512, 'vm1');
    expect(hex(take(hp, 3n))).toBe(padded(want.u8));
    const miss = new Bytes(2580).u32(8, 4).utf16z(16, 'X');
    hp.send(rawIc({ type: 2, msg: [4, 0], body: miss.u8 }), 4n);
    guest.poll();
    const got = decodeIcMessage(take(hp, 4n));
    expect(got.header.status).toBe(0x80070103);
    expect(hex(got.body)).toBe(hex(miss.u8));
  });

  it('the host accepts a Linux-style negotiate answer: the request buffer echoed, icmsgsize 0x10, pipe size unchanged, stale pairs after', async () => {
    const { hp, gp } = pipes('wasm');
    const host = new HeartbeatHost(hp);
    const done = host.negotiate();
    host.poll();
    const req = take(gp, 1n).slice(0, 52);
    // vmbus_prep_negotiate_resp: counts 1/1, pairs 0 and 1 overwritten, icmsgsize = 0x10, flags 1|4.
    const echo = new Bytes(52).raw(0, req).u16(18, 16).u8at(25, 5).u16(28, 1).u16(30, 1).u16(36, 3).u16(38, 0).u16(40, 3).u16(42, 0);
    gp.send(echo.u8, 1n);
    host.poll();
    expect(await done).toEqual({ framework: { major: 3, minor: 0 }, message: { major: 3, minor: 0 } });
  });
});
