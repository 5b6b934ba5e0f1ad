import { describe, expect, it } from 'vitest';
import { echoPair } from './helpers';

describe('smoke', () => {
  it('connects, opens, round trips', async () => {
    const p = await echoPair();
    expect(p.guest.version).toBe(0x50003);
    const [offer] = p.guest.offers.all();
    expect(offer!.className).toBe('storage');
    const ch = await p.guest.open(offer!);
    const got: number[] = [];
    ch.onCompletion = (ctx, err, pkt) => { expect(err).toBeNull(); got.push(ctx as number); expect(pkt!.payload()[0]).toBe(ctx as number); };
    for (let i = 1; i <= 10; i++) expect(ch.request(new Uint8Array([i, 2, 3]), i)).toBeGreaterThan(0);
    p.host.poll();
    ch.poll();
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const r = await ch.call(new Uint8Array([42]));
    expect(r[0]).toBe(42);
    await ch.close();
    expect(ch.state).toBe('closed');
    expect(p.host.channels.size).toBe(0);
  });
});
