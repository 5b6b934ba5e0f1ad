// readPcapng reads back what PcapngWriter wrote (interfaces, nanosecond times, bytes, comments),
// and refuses what is not a pcapng file, or is cut short, with a typed error naming the offset.
import { describe, expect, it } from 'vitest';
import { MemorySink, PcapngWriter, readPcapng, SgringError } from '../../src/index';

function sample(): Uint8Array {
  const sink = new MemorySink();
  const w = new PcapngWriter(sink);
  const a = w.addInterface({ name: 'nvme0', description: 'nvme0 (NVMe/TCP, sgring)' });
  const b = w.addInterface({ name: 'netvsp0' });
  w.writePacket(a, 1_700_000_000_123_456_789n, Uint8Array.of(1, 2, 3), ['fault at nvme:io:decode: complete status=0x182']);
  w.writePacket(b, 5n, new Uint8Array(61).fill(7));
  w.close();
  return sink.bytes();
}

describe('readPcapng', () => {
  it('reads back the interfaces, times, bytes and comments PcapngWriter wrote', () => {
    const { interfaces, packets } = readPcapng(sample());
    expect(interfaces).toEqual([{ name: 'nvme0', description: 'nvme0 (NVMe/TCP, sgring)', linktype: 1 }, { name: 'netvsp0', description: '', linktype: 1 }]);
    expect(packets.map((p) => [p.iface, p.timeNs, [...p.data].length, p.comments])).toEqual([
      [0, 1_700_000_000_123_456_789n, 3, ['fault at nvme:io:decode: complete status=0x182']], [1, 5n, 61, []],
    ]);
  });

  it('refuses what is not pcapng, a block cut short, and a packet on an interface never described (InvalidArgument)', () => {
    const good = sample();
    const code = (b: Uint8Array) => {
      try {
        readPcapng(b);
        return 'ok';
      } catch (e) {
        return e instanceof SgringError ? `${e.code}: ${e.message}` : String(e);
      }
    };
    expect(code(new TextEncoder().encode('hello world, no trace'))).toBe('InvalidArgument: not a readable pcapng file: no section header at offset 0');
    expect(code(good.subarray(0, good.length - 6))).toMatch(/^InvalidArgument: not a readable pcapng file: a (block length of \d+|truncated block) at offset \d+$/);
    const bent = good.slice();
    const dv = new DataView(bent.buffer);
    // The first packet block's interface id (after SHB and two IDBs) pointed at interface 9.
    let at = dv.getUint32(4, true);
    at += dv.getUint32(at + 4, true);
    at += dv.getUint32(at + 4, true);
    expect(dv.getUint32(at, true)).toBe(6);
    dv.setUint32(at + 8, 9, true);
    expect(code(bent)).toBe(`InvalidArgument: not a readable pcapng file: a packet on interface 9, which was not described at offset ${at}`);
    expect(code(new Uint8Array(0))).toBe('InvalidArgument: not a readable pcapng file: an empty file at offset 0');
  });
});
