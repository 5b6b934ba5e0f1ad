// Hung requests (hardening P8, checklist 65): outstanding requests are listed with their age; the
// watchdog fails those past a deadline with a typed Timeout exactly once; a late completion is
// counted and ignored; the channel keeps working.
import { describe, expect, it } from 'vitest';
import { Watchdog, type HostChannel, type ReceivedPacket } from '../../src/index';
import { echoPair, expectReject } from './helpers';

/** A guest channel whose device holds every request until told to answer. */
async function heldPair() {
  const held: { ch: HostChannel; lo: number; hi: number }[] = [];
  const p = await echoPair({
    offer: { onOpen: (ch) => (ch.onPacket = (pkt: ReceivedPacket) => held.push({ ch, lo: pkt.transactionIdLo, hi: pkt.transactionIdHi })) },
  });
  const ch = await p.guest.open<string>(1);
  const results: string[] = [];
  ch.onCompletion = (ctx, err) => results.push(`${ctx}:${err ? err.code : 'ok'}`);
  const answerAll = () => {
    for (const h of held.splice(0)) h.ch.completeId(h.lo, h.hi, new Uint8Array(8));
  };
  return { ...p, ch, held, results, answerAll };
}

describe('hung requests', () => {
  it('outstanding() lists every request with an age that is a lower bound, oldest first', async () => {
    const p = await heldPair();
    p.ch.request(new Uint8Array(8), 'a');
    p.ch.transactions.sample(1000);
    p.ch.request(new Uint8Array(8), 'b');
    p.host.poll();
    const list = p.ch.outstanding(1500);
    expect(list.map((t) => [t.id, t.context, t.ageMs])).toEqual([[1, 'a', 500], [2, 'b', 0]]);
    expect(list[0]!.transactionId).toBe(1n);
  });

  it('expire fails only requests past the deadline, with Timeout, once; their late completions are counted and ignored; the channel goes on', async () => {
    const p = await heldPair();
    p.ch.request(new Uint8Array(8), 'old');
    p.ch.transactions.sample(0);
    p.ch.request(new Uint8Array(8), 'young');
    p.ch.transactions.sample(900);
    p.host.poll();
    expect(p.ch.expire(1000, 1000)).toBe(0); // exactly at the deadline: not yet
    expect(p.ch.expire(1000, 1000.5)).toBe(1);
    expect(p.ch.expire(1000, 1000.5)).toBe(0);
    expect(p.results).toEqual(['old:Timeout']);
    p.answerAll(); // the device finally answers both
    p.ch.poll();
    expect(p.results).toEqual(['old:Timeout', 'young:ok']);
    expect(p.ch.transactions.counters).toMatchObject({ timedOut: 1, late: 1, completed: 1 });
    // The channel still works; freed slots come back under a new generation.
    const id = p.ch.request(new Uint8Array(8), 'next');
    expect(p.ch.transactions.generation(id)).toBe(1);
    p.host.poll();
    p.answerAll();
    p.ch.poll();
    expect(p.results.at(-1)).toBe('next:ok');
  });

  it('the Watchdog checks every open channel on a timer and fails hung requests between deadline and deadline + 2 intervals', async () => {
    const p = await heldPair();
    p.host.offer({ classId: 'kvp', relid: 2, onOpen: () => {} });
    p.guest.poll();
    const ch2 = await p.guest.open<string>(2);
    const r2: string[] = [];
    ch2.onCompletion = (ctx, err) => r2.push(`${ctx}:${err?.code}`);
    const wd = new Watchdog(() => p.guest.channels.values(), { deadlineMs: 40, intervalMs: 10 }).start();
    const t0 = performance.now();
    p.ch.request(new Uint8Array(8), 'x');
    ch2.request(new Uint8Array(8), 'y');
    p.host.poll();
    try {
      while (p.results.length + r2.length < 2 && performance.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 5));
    } finally {
      wd.stop();
    }
    const waited = performance.now() - t0;
    expect(p.results).toEqual(['x:Timeout']);
    expect(r2).toEqual(['y:Timeout']);
    expect(wd.timedOut).toBe(2);
    expect(waited).toBeGreaterThanOrEqual(40);
    await new Promise((r) => setTimeout(r, 30));
    expect(wd.timedOut).toBe(2); // stopped, and nothing fails twice
  });

  it('call() gives up with Timeout at its deadline; the late answer is counted', async () => {
    const p = await heldPair();
    const e = await expectReject(p.ch.call(new Uint8Array(8), 30), 'Timeout');
    expect(e.details).toMatchObject({ id: 1 });
    p.answerAll();
    p.ch.poll();
    expect(p.ch.transactions.counters).toMatchObject({ timedOut: 1, late: 1 });
    expect(p.results).toEqual([]); // call() results never reach onCompletion
  });

  it('a watchdog needs a deadline', () => {
    expect(() => new Watchdog([], { deadlineMs: 0 })).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
  });
});
