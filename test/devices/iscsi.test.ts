// The iSCSI target (sgring/node) checked two ways: a small initiator written here sends the hostile
// PDUs of hardening items 79 and 80, and libiscsi's own tools and its conformance suite
// (iscsi-test-cu, Debian's libiscsi-bin) log in and drive the disk as any initiator would.
import { execFile } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drop, loadCoreSync, MemoryDisk, MemorySink, PcapngWriter, readOnlyAfter, ScsiDisk, SCSI_STATUS, TapRegistry, traceTap } from '../../src/index';
import { IscsiTarget } from '../../src/node/index';
import { BHS, encodeKeys, makePdu, OPC, parseKeys, PduReader, type Pdu } from '../../src/devices/iscsi/pdu';
import { haveTool } from '../util/tools';

const run = promisify(execFile);
const IQN = 'iqn.2026-12.sgring:test';
const INITIATOR = 'iqn.2026-12.sgring:initiator';

/** A bare initiator: sends PDUs as given and collects what comes back. */
class RawInitiator {
  private readonly reader = new PduReader(1 << 24);
  private readonly queue: Pdu[] = [];
  private waiter: (() => void) | null = null;
  closed = false;
  cmdSn = 0;
  private itt = 1;

  private constructor(private readonly s: Socket) {
    s.on('data', (c: Buffer) => {
      this.reader.push(new Uint8Array(c.buffer, c.byteOffset, c.length));
      for (let p = this.reader.next(); p; p = this.reader.next()) this.queue.push(p);
      this.waiter?.();
    });
    s.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
  }

  static async open(port: number): Promise<RawInitiator> {
    const s = connect(port, '127.0.0.1');
    await new Promise<void>((r) => s.once('connect', () => r()));
    return new RawInitiator(s);
  }

  send(bytes: Uint8Array): void {
    this.s.write(bytes);
  }

  /** The next PDU, or null when the connection closed or nothing came within `ms`. */
  async next(ms = 1000): Promise<Pdu | null> {
    const deadline = Date.now() + ms;
    while (this.queue.length === 0 && !this.closed && Date.now() < deadline) {
      await new Promise<void>((r) => {
        this.waiter = r;
        setTimeout(r, Math.max(1, deadline - Date.now()));
      });
    }
    return this.queue.shift() ?? null;
  }

  async login(target = IQN): Promise<Pdu> {
    const { bytes, dv } = makePdu(OPC.loginRequest | 0x40, 0x87, encodeKeys([['InitiatorName', INITIATOR], ['TargetName', target], ['SessionType', 'Normal'], ['SGRingUnknownKey', '1']]));
    bytes[8] = 0x40; // ISID: random format
    dv.setUint32(16, this.itt++);
    dv.setUint32(24, this.cmdSn);
    this.send(bytes);
    return (await this.next())!;
  }

  /** A SCSI command PDU (immediate data follows the header when given). */
  command(cdb: number[], o: { edtl?: number; write?: boolean; read?: boolean; data?: Uint8Array; cmdSn?: number; itt?: number } = {}): number {
    const flags = 0x80 | (o.read ? 0x40 : 0) | (o.write ? 0x20 : 0);
    const { bytes, dv } = makePdu(OPC.scsiCommand, flags, o.data ?? null);
    const itt = o.itt ?? this.itt++;
    dv.setUint32(16, itt);
    dv.setUint32(20, o.edtl ?? 0);
    dv.setUint32(24, o.cmdSn ?? this.cmdSn++);
    bytes.set(cdb, 32);
    this.send(bytes);
    return itt;
  }

  close(): void {
    this.s.destroy();
  }
}

const write10 = (lba: number, blocks: number) => [0x2a, 0, 0, 0, 0, lba, 0, 0, blocks, 0];
const read10 = (lba: number, blocks: number) => [0x28, 0, 0, 0, 0, lba, 0, 0, blocks, 0];
const TUR = [0, 0, 0, 0, 0, 0];

let target: IscsiTarget;
let backend: MemoryDisk;
let port = 0;
/** The disk's bytes from block `lba` on, `n` blocks (core storage: a view of core memory). */
const blocks = (lba: number, n: number) => backend.core.u8.subarray(backend.ptr + lba * 512, backend.ptr + (lba + n) * 512);

beforeAll(async () => {
  const core = loadCoreSync();
  backend = MemoryDisk.create(core, { blockCount: 32768 }); // 16 MiB: below the suite's 65536-block write, which is more than MAXIMUM TRANSFER LENGTH
  target = new IscsiTarget({ luns: [new ScsiDisk(backend)], iqn: IQN, port: 0 });
  await target.listen();
  port = target.port;
});
afterAll(() => target.close());

describe('IscsiTarget against hostile initiators', () => {
  it('[H79] a PDU before login, or one longer than MaxRecvDataSegmentLength, ends that connection only, counted', async () => {
    const good = await RawInitiator.open(port);
    expect((await good.login()).opcode).toBe(OPC.loginResponse);
    const before = target.counters.protocolErrors;

    const early = await RawInitiator.open(port);
    early.command(TUR);
    expect(await early.next()).toBeNull();
    expect(early.closed).toBe(true);

    const huge = await RawInitiator.open(port);
    await huge.login();
    const { bytes, dv } = makePdu(OPC.scsiCommand, 0xa0);
    dv.setUint32(4, 0x400000); // a 4 MiB data segment announced, far beyond the 256 KiB negotiated
    huge.send(bytes);
    expect(await huge.next()).toBeNull();
    expect(huge.closed).toBe(true);
    expect(target.counters.protocolErrors).toBe(before + 2);

    good.command(TUR); // the other session is unharmed (its first command meets the power-on unit attention)
    const ua = (await good.next())!;
    expect([ua.opcode, ua.bhs[3], ua.data[2 + 2]! & 0xf]).toEqual([OPC.scsiResponse, SCSI_STATUS.checkCondition, 0x6]);
    good.command(TUR);
    const r = (await good.next())!;
    expect([r.opcode, r.bhs[3]]).toEqual([OPC.scsiResponse, SCSI_STATUS.good]);
    good.close();
  });

  it('[H79] login answers an unknown key NotUnderstood, refuses an unknown target; an unknown opcode gets a Reject', async () => {
    const c = await RawInitiator.open(port);
    const r = await c.login();
    expect(r.bhs[36]).toBe(0); // status class: success
    expect(parseKeys(r.data).get('SGRingUnknownKey')).toBe('NotUnderstood');
    const { bytes } = makePdu(0x1c, 0x80); // an opcode no RFC defines
    c.send(bytes);
    const rej = (await c.next())!;
    expect(rej.opcode).toBe(OPC.reject);
    expect(rej.bhs[2]).toBe(0x04); // command not supported
    expect(rej.data.subarray(0, BHS)[0]).toBe(0x1c); // the refused header comes back
    c.close();

    const wrong = await RawInitiator.open(port);
    const no = await wrong.login('iqn.2026-12.sgring:nobody');
    expect([no.bhs[36], no.bhs[37]]).toEqual([2, 3]); // initiator error: target not found
    wrong.close();
  });

  it('[H80] a CmdSN outside the window is ignored, counted; the next in-window command is served', async () => {
    const c = await RawInitiator.open(port);
    await c.login();
    const ignored = target.counters.ignoredCommands;
    c.command(TUR, { cmdSn: c.cmdSn + 1000 });
    c.command(TUR, { cmdSn: c.cmdSn - 1 });
    expect(await c.next(300)).toBeNull();
    expect(target.counters.ignoredCommands).toBe(ignored + 2);
    c.command(TUR);
    expect((await c.next())!.bhs[3]).toBe(SCSI_STATUS.good);
    c.close();
  });

  it('[H80] a CDB transfer length that disagrees with EDTL writes only what both allow, with the residual the RFC says', async () => {
    const c = await RawInitiator.open(port);
    await c.login();
    blocks(0, 2).fill(0x61);
    // One block in the CDB, two in EDTL: one block written, underflow of 512.
    c.command(write10(0, 1), { write: true, edtl: 1024, data: new Uint8Array(1024).fill(0x62) });
    let r = (await c.next())!;
    expect([r.bhs[3], r.flags & 0x06, r.dv.getUint32(44)]).toEqual([SCSI_STATUS.good, 0x02, 512]);
    // Two blocks in the CDB, one in EDTL: one block written, overflow of 512.
    c.command(write10(2, 2), { write: true, edtl: 512, data: new Uint8Array(512).fill(0x63) });
    r = (await c.next())!;
    expect([r.bhs[3], r.flags & 0x06, r.dv.getUint32(44)]).toEqual([SCSI_STATUS.good, 0x04, 512]);
    const disk = blocks(0, 4);
    expect([disk[0], disk[511], disk[512], disk[1023], disk[1024], disk[1535], disk[1536]]).toEqual([0x62, 0x62, 0x61, 0x61, 0x63, 0x63, 0]);
    // A read of one block with EDTL of two: the data and an underflow of 512, the status in the
    // Data-In itself (S bit: phase collapse, no SCSI Response follows).
    c.command(read10(0, 1), { read: true, edtl: 1024 });
    const d = (await c.next())!;
    expect([d.opcode, d.data.length, d.data[0]]).toEqual([OPC.dataIn, 512, 0x62]);
    expect([d.flags & 0x81, d.bhs[3], d.flags & 0x06, d.dv.getUint32(44)]).toEqual([0x81, SCSI_STATUS.good, 0x02, 512]);
    c.command(TUR, {});
    r = (await c.next())!;
    expect(r.opcode).toBe(OPC.scsiResponse); // the next PDU is the next command's: nothing else came for the read
    c.close();
  });

  it('[H80] Data-Out beyond EDTL ends the connection with nothing written; an ITT reused in flight is rejected', async () => {
    const c = await RawInitiator.open(port);
    await c.login();
    blocks(8, 2).fill(0x11);
    const itt = c.command(write10(8, 2), { write: true, edtl: 1024 }); // no immediate data: an R2T comes
    const r2t = (await c.next())!;
    expect(r2t.opcode).toBe(OPC.r2t);
    c.command(TUR, { itt }); // the write's ITT again, while it waits for data
    expect((await c.next())!.opcode).toBe(OPC.reject);
    const { bytes, dv } = makePdu(OPC.dataOut, 0x80, new Uint8Array(1024).fill(0x22));
    dv.setUint32(16, itt);
    dv.setUint32(20, r2t.dv.getUint32(20));
    dv.setUint32(40, 512); // offset 512 + 1024 bytes: past the 1024 expected
    c.send(bytes);
    expect(await c.next()).toBeNull();
    expect(c.closed).toBe(true);
    expect(blocks(8, 2).every((b) => b === 0x11)).toBe(true);
  });
});

describe('PduReader', () => {
  it('gives the same PDUs whatever the chunking of the stream, and holds only what is not yet a PDU', () => {
    const pdus = [0, 1, 5, 48, 1000, 70000].map((n, i) => {
      const { bytes, dv } = makePdu(OPC.scsiCommand, 0x80, new Uint8Array(n).map((_, j) => (i * 31 + j) & 0xff));
      dv.setUint32(16, i + 1);
      return bytes;
    });
    const stream = new Uint8Array(pdus.reduce((a, p) => a + p.length, 0));
    pdus.reduce((at, p) => (stream.set(p, at), at + p.length), 0);
    for (const seed of [1, 2, 3, 4]) {
      const r = new PduReader(1 << 20);
      const got: Pdu[] = [];
      let x = seed;
      for (let at = 0; at < stream.length;) {
        x = (x * 1103515245 + 12345) >>> 0;
        const n = Math.min(stream.length - at, 1 + (x % (seed === 1 ? 3 : 20000)));
        r.push(stream.subarray(at, at + n));
        at += n;
        for (let p = r.next(); p; p = r.next()) got.push(p);
      }
      expect(r.length).toBe(0);
      expect(got.map((p) => [p.itt, p.data.length])).toEqual([[1, 0], [2, 1], [3, 5], [4, 48], [5, 1000], [6, 70000]]);
      expect(got.every((p, i) => p.data.every((b, j) => b === ((i * 31 + j) & 0xff)))).toBe(true);
    }
  });
});

describe('IscsiTarget resources', () => {
  it('write data outstanding on a connection is capped (maxPendingBytes): a write beyond it gets TASK SET FULL, and goes through once room is back', async () => {
    const core = loadCoreSync();
    const small = new IscsiTarget({ luns: [new ScsiDisk(MemoryDisk.create(core, { blockCount: 64 }))], iqn: IQN, port: 0, maxPendingBytes: 4096 });
    await small.listen();
    const c = await RawInitiator.open(small.port);
    await c.login();
    c.command(TUR);
    await c.next(); // the power-on unit attention
    const itt = c.command(write10(0, 8), { write: true, edtl: 4096 }); // waits for its data: 4 KiB held
    const r2t = (await c.next())!;
    expect(r2t.opcode).toBe(OPC.r2t);
    c.command(write10(8, 1), { write: true, edtl: 512 });
    const full = (await c.next())!;
    expect([full.opcode, full.bhs[3]]).toEqual([OPC.scsiResponse, SCSI_STATUS.taskSetFull]);
    const { bytes, dv } = makePdu(OPC.dataOut, 0x80, new Uint8Array(4096).fill(5));
    dv.setUint32(16, itt);
    dv.setUint32(20, r2t.dv.getUint32(20));
    c.send(bytes);
    expect((await c.next())!.bhs[3]).toBe(SCSI_STATUS.good);
    c.command(write10(8, 1), { write: true, edtl: 512, data: new Uint8Array(512) });
    expect((await c.next())!.bhs[3]).toBe(SCSI_STATUS.good);
    c.close();
    await small.close();
  });
});

describe('IscsiTarget taps', () => {
  it('iscsi:io:decode takes the injectors (readOnlyAfter(1): the second write is DATA PROTECT; a dropped command gets no response) and the trace records each command', async () => {
    const taps = new TapRegistry();
    const sink = new MemorySink();
    const w = new PcapngWriter(sink);
    taps.attach('iscsi:io:*', traceTap(w));
    const disk = MemoryDisk.create(loadCoreSync(), { blockCount: 64 });
    const t = new IscsiTarget({ luns: [new ScsiDisk(disk)], iqn: IQN, port: 0, taps });
    await t.listen();
    expect(taps.stages().map((s) => s.name)).toEqual(['iscsi:io:decode', 'iscsi:io:execute', 'iscsi:io:writeback']);
    const ini = await RawInitiator.open(t.port);
    await ini.login();
    ini.command(TUR); // the power-on unit attention
    await ini.next();
    const ro = taps.attach('iscsi:io:decode', readOnlyAfter(1));
    ini.command(write10(1, 1), { write: true, edtl: 512, data: new Uint8Array(512).fill(7) });
    expect((await ini.next())!.bhs[3]).toBe(SCSI_STATUS.good);
    ini.command(write10(2, 1), { write: true, edtl: 512, data: new Uint8Array(512).fill(8) });
    const refused = (await ini.next())!;
    expect([refused.bhs[3], refused.data[2 + 2]! & 0xf, refused.data[2 + 12]]).toEqual([SCSI_STATUS.checkCondition, 0x7, 0x27]);
    expect(disk.core.u8[disk.ptr + 2 * 512]).toBe(0); // never reached the disk
    ro.detach();
    const d = taps.attach('iscsi:io:decode', drop({ rate: 1, seed: 1 }));
    ini.command(read10(1, 1), { read: true, edtl: 512 });
    expect(await ini.next(300)).toBeNull(); // dropped: no Data-In, no response
    d.detach();
    ini.command(read10(1, 1), { read: true, edtl: 512 });
    const data = (await ini.next())!;
    expect([data.opcode, data.data[0]]).toEqual([OPC.dataIn, 7]);
    ini.close();
    await t.close();
    expect(taps.stages()).toEqual([]);
    w.close();
    expect(sink.bytes().length).toBeGreaterThan(1000); // the pcapng of the commands (decoded by tshark in the storvsc trace test)
  });
});

const libiscsi = haveTool('iscsi-test-cu', ['-l'], 'libiscsi-bin', 'the libiscsi tests');

describe.skipIf(!libiscsi)('libiscsi drives the target', () => {
  const url = () => `iscsi://127.0.0.1:${port}/${IQN}/0`;

  it('iscsi-ls discovers it (SendTargets), iscsi-inq and iscsi-readcapacity16 read it', async () => {
    const ls = await run('iscsi-ls', ['-i', INITIATOR, `iscsi://127.0.0.1:${port}`]);
    expect(ls.stdout).toContain(`Target:${IQN}`);
    const inq = await run('iscsi-inq', ['-i', INITIATOR, url()]);
    expect(inq.stdout).toMatch(/Peripheral Device Type:\s*DIRECT_ACCESS/);
    const cap = await run('iscsi-readcapacity16', ['-i', INITIATOR, url()]);
    expect(cap.stdout).toMatch(/RETURNED LOGICAL BLOCK ADDRESS:32767\n/);
    expect(cap.stdout).toMatch(/LOGICAL BLOCK LENGTH IN BYTES:512\n/);
    expect(cap.stdout).toMatch(/LBPME:1 LBPRZ:1/);
  });

  it('passes every test of iscsi-test-cu ALL (the SBC commands it lacks are reported as skipped, never failed)', async () => {
    const { stdout } = await run('iscsi-test-cu', ['--dataloss', '-i', INITIATOR, '-t', 'ALL', url()], { maxBuffer: 64 << 20, timeout: 120_000 }).catch((e) => e);
    const tests = /tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(stdout);
    const asserts = /asserts\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(stdout);
    expect(tests, stdout.slice(-2000)).not.toBeNull();
    const failedLines = stdout.split('\n').filter((l: string) => /^\s*Test: .*FAILED|\[FAILED\]/.test(l) && !/command failed with status 2 \/ sense key COMMAND ABORTED/.test(l));
    expect({ failed: Number(tests![4]), failedAsserts: Number(asserts![4]) }, failedLines.join('\n')).toEqual({ failed: 0, failedAsserts: 0 });
    expect(Number(tests![3])).toBeGreaterThanOrEqual(200);
  }, 150_000);
});
