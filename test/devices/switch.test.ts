// The virtual switch on its own: learning, flooding, filtering, a station that moves to another
// port, a port that goes away (the per-port lookups it keeps must follow every table change).
import { describe, expect, it } from 'vitest';
import { VirtualSwitch } from '../../src/index';

const frame = (dst: number, src: number, len = 60) => {
  const f = new Uint8Array(len);
  f.set([0x00, 0x15, 0x5d, 0, 0, dst], 0);
  f.set([0x00, 0x15, 0x5d, 0, 0, src], 6);
  return f;
};

function rig() {
  const sw = new VirtualSwitch();
  const got: number[][] = [[], [], []];
  const ports = [0, 1, 2].map((i) => sw.addPort(`p${i}`, (f) => (got[i]!.push(f[11]!), true)));
  return { sw, got, ports };
}

describe('VirtualSwitch', () => {
  it('floods an unknown destination, then forwards to where the address was learned; a frame back to its own port is filtered', () => {
    const { sw, got, ports } = rig();
    ports[0]!.input(frame(2, 1)); // 2 unknown: flooded to p1 and p2
    expect(got.map((g) => g.length)).toEqual([0, 1, 1]);
    ports[2]!.input(frame(1, 2)); // 1 was learned on p0
    expect(got.map((g) => g.length)).toEqual([1, 1, 1]);
    for (let i = 0; i < 5; i++) ports[0]!.input(frame(2, 1)); // 2 learned on p2 now
    expect(got.map((g) => g.length)).toEqual([1, 1, 6]);
    ports[2]!.input(frame(2, 3)); // to a station on its own port
    expect(sw.counters).toEqual({ flooded: 1, filtered: 1 });
  });

  it('a station that moves to another port gets its frames there from the next frame it sends; a detached port\'s stations are flooded again', () => {
    const { got, ports } = rig();
    ports[1]!.input(frame(9, 5)); // 5 on p1
    ports[0]!.input(frame(5, 1));
    ports[0]!.input(frame(5, 1));
    expect(got[1]).toEqual([1, 1]);
    ports[2]!.input(frame(1, 5)); // 5 moved to p2
    ports[0]!.input(frame(5, 1));
    expect([got[1]!.length, got[2]!.filter((s) => s === 1).length]).toEqual([2, 1]);
    ports[2]!.detach();
    ports[0]!.input(frame(5, 1)); // 5 is forgotten: flooded to what is left (p1)
    expect(got[1]!.length).toBe(3);
  });

  it('counts runts and frames longer than the MTU allows, and forwards neither', () => {
    const { got, ports } = rig();
    ports[0]!.input(new Uint8Array(10));
    ports[0]!.input(frame(2, 1, 1515));
    ports[0]!.input(frame(2, 1, 1514));
    expect([ports[0]!.counters.runt, ports[0]!.counters.oversize, got[1]!.length]).toEqual([1, 1, 1]);
  });
});
