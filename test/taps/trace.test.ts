// Traces: the pcapng structure (blocks, lengths, options), bounded memory over 10^5 packets,
// and captures of each encoder that Debian's unmodified tshark decodes with no malformed packet
// and no expert error, its decoded fields equal to what the model logged.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ethernetEncoder, iscsiEncoder, MemorySink, PcapngWriter, readOnlyAfter, TapRegistry, traceTap, vendorCommand, type DeviceStatuses,
  type TraceSink,
} from '../../src/index';
import { FileSink } from '../../src/node/index';
import { expectCode } from '../util/errors';
import { BLOCK, MockNvme, readCmd, sqe, writeCmd } from './mock-nvme';
import { haveTool } from '../util/tools';

/** The blocks of a pcapng file: type, body, and the options of SHB/IDB/EPB, checking every length. */
function parseBlocks(b: Uint8Array) {
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  const blocks: { type: number; len: number; body: DataView; options: [number, string][] }[] = [];
  for (let at = 0; at < b.length;) {
    const type = dv.getUint32(at, true);
    const len = dv.getUint32(at + 4, true);
    expect(len % 4).toBe(0);
    expect(dv.getUint32(at + len - 4, true)).toBe(len);
    const fixed = type === 0x0a0d0d0a ? 16 : type === 1 ? 8 : type === 6 ? 20 + ((dv.getUint32(at + 20, true) + 3) & ~3) : 0;
    const options: [number, string][] = [];
    for (let o = at + 8 + fixed; o < at + len - 4;) {
      const code = dv.getUint16(o, true);
      const olen = dv.getUint16(o + 2, true);
      if (code === 0) break;
      options.push([code, new TextDecoder().decode(b.subarray(o + 4, o + 4 + olen))]);
      o += 4 + ((olen + 3) & ~3);
    }
    blocks.push({ type, len, body: new DataView(b.buffer, b.byteOffset + at + 8, len - 12), options });
    at += len;
  }
  return blocks;
}

describe('pcapng writer', () => {
  it('writes a section header, named ns-resolution interfaces and enhanced packets with comments, every length consistent', () => {
    const sink = new MemorySink();
    const w = new PcapngWriter(sink);
    const a = w.addInterface({ name: 'nvme0', description: 'an NVMe controller' });
    const b = w.addInterface({ name: 'netvsc0' });
    w.writePacket(b, 1_700_000_000_123_456_789n, Uint8Array.of(1, 2, 3), ['first', 'second note']);
    w.writePacket(a, 5n, new Uint8Array(64));
    w.close();
    expectCode(() => w.writePacket(a, 6n, new Uint8Array(1)), 'InvalidArgument');
    const blocks = parseBlocks(sink.bytes());
    expect(blocks.map((x) => x.type)).toEqual([0x0a0d0d0a, 1, 1, 6, 6]);
    expect(blocks[0]!.body.getUint32(0, true)).toBe(0x1a2b3c4d);
    expect(blocks[0]!.options).toEqual([[4, 'sgring']]);
    expect(blocks[1]!.body.getUint16(0, true)).toBe(1); // Ethernet
    expect(blocks[1]!.options).toEqual([[2, 'nvme0'], [9, '\t'], [3, 'an NVMe controller']]); // if_tsresol 9: ns
    const epb = blocks[3]!;
    expect(epb.body.getUint32(0, true)).toBe(b);
    expect((BigInt(epb.body.getUint32(4, true)) << 32n) | BigInt(epb.body.getUint32(8, true))).toBe(1_700_000_000_123_456_789n);
    expect([epb.body.getUint32(12, true), epb.body.getUint32(16, true)]).toEqual([3, 3]);
    expect(epb.options).toEqual([[1, 'first'], [1, 'second note']]);
    expect(w.packets).toBe(2);
    expectCode(() => new PcapngWriter(new MemorySink()).writePacket(0, 0n, new Uint8Array(1)), 'InvalidArgument');
  });

  it('FileSink (sgring/node) writes each block to the file as it comes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sgring-file-'));
    try {
      const sink = new FileSink(join(dir, 't.pcapng'));
      const w = new PcapngWriter(sink);
      const i = w.addInterface({ name: 'dev' });
      for (let k = 0; k < 100; k++) w.writePacket(i, BigInt(k), new Uint8Array(60).fill(k));
      expect(statSync(sink.path).size).toBe(w.bytes); // on disk before close
      w.close();
      const blocks = parseBlocks(new Uint8Array(readFileSync(sink.path)));
      expect(blocks.filter((b) => b.type === 6)).toHaveLength(100);
      expect(() => sink.write(new Uint8Array(4))).toThrow(/closed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('streams 10^5 packets through a sink with bounded memory: each block is handed over whole, nothing is kept', () => {
    let bytes = 0;
    let blocks = 0;
    const sink: TraceSink = {
      write(b) {
        expect(new DataView(b.buffer, b.byteOffset).getUint32(4, true)).toBe(b.length); // one whole block per write
        bytes += b.length;
        blocks++;
      },
    };
    const w = new PcapngWriter(sink);
    const i = w.addInterface({ name: 'dev' });
    const frame = new Uint8Array(1024);
    globalThis.gc?.();
    const before = process.memoryUsage().heapUsed;
    for (let k = 0; k < 100_000; k++) w.writePacket(i, BigInt(k), frame);
    const grown = process.memoryUsage().heapUsed - before;
    expect(blocks).toBe(100_002);
    expect(bytes).toBe(w.bytes);
    expect(bytes).toBeGreaterThan(100_000 * 1024);
    expect(grown).toBeLessThan(48 << 20); // 100 MB went through; the writer keeps none of it
  });
});

const haveTshark = haveTool('tshark', ['--version'], 'tshark', 'the decode tests');

describe.skipIf(!haveTshark)('tshark decodes the traces', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sgring-trace-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs tshark on `bytes`; returns the rows of the fields asked for (tab-separated). */
  function decode(name: string, bytes: Uint8Array, filter: string, fields: string[]): string[][] {
    const file = join(dir, name);
    writeFileSync(file, bytes);
    const out = execFileSync('tshark', ['-r', file, '-Y', filter, '-T', 'fields', ...fields.flatMap((f) => ['-e', f])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return out.trim().split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
  }

  /** No malformed packet and no expert message of error severity in the whole file. */
  function clean(name: string, bytes: Uint8Array) {
    const file = join(dir, name);
    writeFileSync(file, bytes);
    expect(execFileSync('tshark', ['-r', file, '-Y', '_ws.malformed || _ws.expert.severity >= 0x00800000'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()).toBe('');
    const all = execFileSync('tshark', ['-r', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(all).not.toMatch(/Malformed|Unreassembled/);
  }

  it('NVMe as NVMe/TCP: every command and completion, with the injected read-only status, the vendor command and latency', async () => {
    const taps = new TapRegistry();
    const dev = new MockNvme(taps);
    const sink = new MemorySink();
    const w = new PcapngWriter(sink);
    taps.attach('nvme:io:decode', readOnlyAfter(2));
    taps.attach('nvme:admin:decode', vendorCommand(0xc0, (c) => c[10]! + c[11]!));
    const trace = traceTap(w);
    taps.attach('*:*:*', trace);
    await dev.submit(0, sqe(0xc0, 1, 0, { 10: 40, 11: 2 }));
    for (let i = 0; i < 4; i++) await dev.submit(1, writeCmd(10 + i, i * 8, 8), new Uint8Array(8 * BLOCK).fill(i));
    await dev.submit(1, readCmd(20, 0, 8));
    await dev.submit(1, readCmd(21, 0, 200)); // 100 KiB: four data PDUs
    await dev.submit(2, readCmd(7, 16, 1)); // a second I/O queue: its own connection
    w.close();
    expect(trace.stats.events).toBe(16);
    const bytes = sink.bytes();
    const cmds = decode('nvme.pcapng', bytes, 'nvme.cmd.opc && !nvme.fabrics.cmd.connect.qid && !(nvme.cmd.opc == 0x7f)', ['nvme-tcp.cmd.qid', 'nvme.cmd.opc', 'nvme.cmd.cid', 'nvme.cmd.nsid', 'nvme.cmd.slba', 'nvme.cmd.nlb']);
    clean('nvme.pcapng', bytes);
    expect(cmds.map(([qid, opc, cid, nsid, slba, nlb]) => ({
      qid: Number(qid), opcode: Number(opc), cid: Number(cid), nsid: Number(nsid), ...(slba ? { slba: Number(slba), nlb: Number(nlb) - 1 } : {}),
    }))).toEqual(dev.log.map(({ qid, opcode, cid, nsid, slba, nlb }) => ({ qid, opcode, cid, nsid, ...(slba !== undefined ? { slba, nlb } : {}) })));
    const cqes = decode('nvme.pcapng', bytes, 'nvme.cqe.cid && nvme.cqe.cid != 0xfffe', ['nvme.cqe.cid', 'nvme.cqe.status.sct', 'nvme.cqe.status.sc', 'nvme.cqe.status.dnr', 'nvme.cqe.dword0', 'nvme.cmd_latency']);
    expect(cqes.map(([cid, sct, sc, dnr, dw0]) => ({ cid: Number(cid), status: Number(sc) | (Number(sct) << 8) | (dnr === '1' || dnr === 'True' ? 0x4000 : 0), cdw0: Number(dw0) })))
      .toEqual(dev.log.map(({ cid, status, cdw0 }) => ({ cid, status, cdw0 })));
    expect(cqes.every((r) => Number(r[5]) > 0)).toBe(true); // Wireshark matched each response to its command
    const data = decode('nvme.pcapng', bytes, 'nvme-tcp.type == 7', ['nvme-tcp.data.offset', 'nvme-tcp.data.length']);
    expect(data.map((r) => r.map(Number))).toEqual([[0, 4096], [0, 32768], [32768, 32768], [65536, 32768], [98304, 4096], [0, 512]]);
    const comments = decode('nvme.pcapng', bytes, 'frame.comment', ['nvme.cmd.cid', 'frame.comment']);
    expect(comments).toEqual([
      ['0x0001', 'fault at nvme:admin:decode: complete status=0x0'],
      ['0x000c', 'fault at nvme:io:decode: complete status=0x4182'],
      ['0x000d', 'fault at nvme:io:decode: complete status=0x4182'],
    ]);
    expect(decode('nvme.pcapng', bytes, 'nvme.fabrics.cmd.connect.qid', ['nvme.fabrics.cmd.connect.qid']).flat().map(Number)).toEqual([0, 1, 2]);
  });

  it('SCSI as iSCSI: commands, data in and out, responses with status and sense', () => {
    const taps = new TapRegistry();
    const [dec, wb] = taps.declare('storvsc0', [{ name: 'storvsc:io:decode' }, { name: 'storvsc:io:writeback' }], { encoder: iscsiEncoder });
    const sink = new MemorySink();
    const w = new PcapngWriter(sink);
    taps.attach('*:*:*', traceTap(w));
    const statuses: DeviceStatuses = { success: 0, readOnly: 2, mediaError: 2, internal: 2 };
    let t = 1_700_000_000_000_000_000n;
    const log: { itt: number; opcode: number; lun: number; lba?: number; blocks?: number; status: number; senseKey?: number }[] = [];
    const io = (kind: 'read' | 'write' | 'other', cdb: Uint8Array, lun: number, bytes: number, status: number, sense?: Uint8Array) => {
      const req = `r${log.length}`;
      const base = { device: 'storvsc0', queue: 0, io: { kind, opcode: cdb[0]! }, command: cdb, statuses, request: req };
      taps.run(dec!, { ...base, completion: { status: 0, cdw0: 0 }, data: kind === 'write' ? [new Uint8Array(bytes).fill(9)] : null, timeNs: (t += 10_000n), detail: { lun, transferBytes: bytes } });
      taps.run(wb!, { ...base, completion: { status, cdw0: 0 }, data: kind === 'read' ? [new Uint8Array(bytes).fill(7)] : null, timeNs: (t += 10_000n), detail: { lun, sense } });
      const rw10 = cdb[0] === 0x28 || cdb[0] === 0x2a;
      log.push({ itt: log.length + 1, opcode: cdb[0]!, lun, ...(rw10 ? { lba: new DataView(cdb.buffer).getUint32(2), blocks: new DataView(cdb.buffer).getUint16(7) } : {}), status, ...(sense ? { senseKey: sense[2]! & 0xf } : {}) });
    };
    const sense = new Uint8Array(18);
    sense.set([0x70, 0, 0x07, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x27]);
    io('read', Uint8Array.of(0x28, 0, 0, 0, 0, 8, 0, 0, 4, 0), 1, 2048, 0);
    io('write', Uint8Array.of(0x2a, 0, 0, 0, 0, 16, 0, 0, 2, 0), 1, 1024, 2, sense); // DATA PROTECT / WRITE PROTECTED
    io('other', new Uint8Array(6), 0, 0, 0); // TEST UNIT READY
    io('read', Uint8Array.of(0x28, 0, 0, 1, 0, 0, 0, 0, 160, 0), 2, 160 * 512, 0); // 80 KiB: three Data-In PDUs
    w.close();
    const bytes = sink.bytes();
    clean('iscsi.pcapng', bytes);
    const cmds = decode('iscsi.pcapng', bytes, 'iscsi.opcode == 0x01', ['iscsi.initiatortasktag', 'scsi.lun', 'scsi_sbc.opcode', 'scsi_sbc.rdwr10.lba', 'scsi_sbc.rdwr10.xferlen', 'iscsi.scsicommand.expecteddatatransferlength']);
    expect(cmds.map(([itt, lun, opc, lba, len]) => ({ itt: Number(itt), lun: Number(lun.split(',')[0]), opcode: opc ? Number(opc) : 0, ...(lba ? { lba: Number(lba), blocks: Number(len) } : {}) })))
      .toEqual(log.map(({ itt, lun, opcode, lba, blocks }) => ({ itt, lun, opcode, ...(lba !== undefined ? { lba, blocks } : {}) })));
    const resp = decode('iscsi.pcapng', bytes, 'iscsi.opcode == 0x21', ['iscsi.initiatortasktag', 'iscsi.scsiresponse.status', 'scsi.sns.key']);
    expect(resp.map(([itt, st, key]) => ({ itt: Number(itt), status: Number(st), ...(key ? { senseKey: Number(key) } : {}) })))
      .toEqual(log.map(({ itt, status, senseKey }) => ({ itt, status, ...(senseKey !== undefined ? { senseKey } : {}) })));
    const dataIn = decode('iscsi.pcapng', bytes, 'iscsi.opcode == 0x25', ['iscsi.initiatortasktag', 'iscsi.bufferOffset', 'iscsi.datasegmentlength']);
    expect(dataIn.map((r) => r.map(Number))).toEqual([[1, 0, 2048], [4, 0, 32768], [4, 32768, 32768], [4, 65536, 16384]]);
  });

  it('network frames as themselves: Ethernet type and addresses as sent; a control stage (RNDIS messages) writes nothing', () => {
    const taps = new TapRegistry();
    const [rx, ctl] = taps.declare('netvsc0', [{ name: 'netvsc:rx:deliver' }, { name: 'netvsc:ctl:decode' }], { encoder: ethernetEncoder });
    const sink = new MemorySink();
    const w = new PcapngWriter(sink);
    taps.attach('netvsc:*:*', traceTap(w));
    const statuses: DeviceStatuses = { success: 0, readOnly: 1, mediaError: 1, internal: 1 };
    const frames = [
      // ARP request from 00:15:5d:00:00:01 for 10.0.0.2
      Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x15, 0x5d, 0, 0, 1, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1, 0x00, 0x15, 0x5d, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2),
      // an IPv6 frame with an empty payload header claimed: only the Ethernet layer is compared
      Uint8Array.of(0x33, 0x33, 0, 0, 0, 1, 0x00, 0x15, 0x5d, 0, 0, 2, 0x86, 0xdd, 0x60, 0, 0, 0, 0, 0, 59, 64, ...new Array(32).fill(0)),
    ];
    frames.forEach((f, i) => taps.run(rx!, { device: 'netvsc0', queue: 0, io: { kind: 'other', opcode: 0 }, command: null, completion: { status: 0, cdw0: 0 }, data: [f], statuses, request: `f${i}`, timeNs: BigInt(i) * 1000n }));
    // An RNDIS QUERY as netvsp's ctl:decode sees it: 28 bytes that are not an Ethernet frame.
    taps.run(ctl!, { device: 'netvsc0', queue: 0, io: { kind: 'other', opcode: 0 }, command: null, completion: { status: 0, cdw0: 0 }, data: [new Uint8Array(28).fill(4)], statuses, request: 'ctl0', timeNs: 5000n });
    w.close();
    const bytes = sink.bytes();
    clean('eth.pcapng', bytes);
    expect(decode('eth.pcapng', bytes, 'eth', ['eth.src', 'eth.dst', 'eth.type'])).toEqual([
      ['00:15:5d:00:00:01', 'ff:ff:ff:ff:ff:ff', '0x0806'],
      ['00:15:5d:00:00:02', '33:33:00:00:00:01', '0x86dd'],
    ]);
    expect(decode('eth.pcapng', bytes, 'arp', ['arp.dst.proto_ipv4'])).toEqual([['10.0.0.2']]);
    expect(decode('eth.pcapng', bytes, 'frame', ['frame.number'])).toHaveLength(2);
  });
});
