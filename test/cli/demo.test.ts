// `npm start` runs `sgring demo`: one VM with the three devices, a checked workload, a fault at
// run time, a trace tshark decodes, a table of rates; its flags are checked.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { haveTool } from '../util/tools';

const cli = fileURLToPath(new URL('../../dist/cli.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sgring-demo-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const haveTshark = haveTool('tshark', ['--version'], 'tshark', 'the demo trace decode test');

describe('sgring demo', () => {
  const trace = join(dir, 'demo.pcapng');
  const t0 = performance.now();
  const out = execFileSync(process.execPath, [cli, 'demo', '--seconds', '0.5', '--trace', trace], { encoding: 'utf8', timeout: 60_000, cwd: dir });
  const seconds = (performance.now() - t0) / 1000;

  it('brings up the three devices, runs the checked workload, and answers ARP, ping and UDP', () => {
    expect(out).toMatch(/nvme0 +NVMe 1\.4 controller, namespace 1: 16384 x 512 B, 2 I\/O queue pairs/);
    expect(out).toMatch(/storvsp0 +VMBus SCSI adapter, disk 0:0 16384 x 512 B, disk 0:1 16384 x 512 B/);
    expect(out).toMatch(/ARP: who-has 10\.0\.0\.2 tell 10\.0\.0\.1 -> 10\.0\.0\.2 is-at 00:15:5d:00:00:0b/);
    expect(out).toContain('ping 10.0.0.2: echo reply, 64 bytes');
    expect(out).toMatch(/UDP echo: \d+ datagrams of 512 bytes to 10\.0\.0\.2:7 and back, every one intact/);
    expect(seconds).toBeLessThan(20);
  });

  it('shows the injected fault: two writes taken, then write protected, nothing acknowledged lost, writes again after', () => {
    expect(out).toMatch(/write LBA 16100: ok\n {2}write LBA 16108: ok\n {2}write LBA 16116: ReadOnlyMedium \(CHECK CONDITION, sense key 7 \/ ASC 0x27/);
    expect(out).toMatch(/every acknowledged write read back: \d+ ranges, nothing lost/);
    expect(out).toContain('injector detached: the disk takes writes again');
    const rows = Object.fromEntries([...out.matchAll(/^(nvme|storvsc|netvsc) +(\d+) +(\d+) +([\d.]+) +(\d+) +(\d+)$/gm)].map((m) => [m[1], m.slice(2).map(Number)]));
    expect(Object.keys(rows)).toEqual(['nvme', 'storvsc', 'netvsc']);
    expect(rows.storvsc![4]).toBe(2); // the two refused writes
    for (const r of Object.values(rows)) expect(r[0]).toBeGreaterThan(0);
  });

  it.skipIf(!haveTshark)('writes a trace tshark decodes: NVMe over NVMe/TCP, SCSI over iSCSI, ARP, ICMP and UDP, the faults as comments', () => {
    expect(out).toContain(`read it with: tshark -r ${trace}`);
    const count = (filter: string) => Number(execFileSync('tshark', ['-r', trace, '-Y', filter, '-T', 'fields', '-e', 'frame.number'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n').filter(Boolean).length);
    for (const f of ['nvme', 'scsi', 'arp', 'icmp.type == 0', 'udp.dstport == 7']) expect(count(f), f).toBeGreaterThan(0);
    expect(count('frame.comment contains "fault at storvsc:io:decode"')).toBe(2);
    expect(count('_ws.malformed')).toBe(0);
  });

  it('takes --devices and --inject (failed requests counted, nothing acknowledged lost), refuses unknown flags and bad values', () => {
    const only = execFileSync(process.execPath, [cli, 'demo', '--devices', 'netvsc', '--seconds', '0.2', '--trace', join(dir, 'n.pcapng')], { encoding: 'utf8', timeout: 60_000 });
    expect(only).toContain('UDP echo');
    expect(only).not.toContain('nvme0');
    const faulty = execFileSync(process.execPath, [cli, 'demo', '--devices', 'storvsc', '--seconds', '0.3', '--inject', 'randomFailure:0.1', '--trace', join(dir, 'f.pcapng')], { encoding: 'utf8', timeout: 60_000 });
    expect(faulty).toMatch(/every byte checked; [1-9]\d* requests failed by the injectors given/);
    expect(faulty).toMatch(/every acknowledged write read back: \d+ ranges, nothing lost/);
    for (const bad of [['--devices', 'floppy'], ['--seconds', '0'], ['--inject', 'nope:1'], ['--packets', '5'], ['extra']]) {
      const r = spawnSync(process.execPath, [cli, 'demo', ...bad, '--trace', join(dir, 'x.pcapng')], { encoding: 'utf8' });
      expect(r.status, bad.join(' ')).toBe(2);
    }
  });
});

describe('sgring trace', () => {
  const trace = join(dir, 't.pcapng');
  execFileSync(process.execPath, [cli, 'demo', '--seconds', '0.3', '--trace', trace], { encoding: 'utf8', timeout: 60_000 });

  it('summarises the demo\'s trace per device: commands with counts, failures and latencies, the injected faults', () => {
    const out = execFileSync(process.execPath, [cli, 'trace', trace], { encoding: 'utf8' });
    expect(out).toMatch(/^nvme0 \(NVMe\/TCP\): \d+ frames/m);
    expect(out).toMatch(/^ {2}io Read +[1-9]\d* +0 +[\d.]+ +[\d.]+ +[\d.]+$/m);
    expect(out).toMatch(/^ {2}admin Identify +2 +0 /m);
    expect(out).toMatch(/^storvsp0 \(iSCSI\): \d+ frames/m);
    expect(out).toMatch(/^ {2}WRITE\(16\) +[1-9]\d* +2 /m); // the two writes readOnlyAfter refused
    expect(out).toContain('faults injected at storvsc:io:decode: 2');
    expect(out).toMatch(/^netvsp0 \(Ethernet\): \d+ frames/m);
    expect(out).toMatch(/^ {2}ARP +2 +0$/m);
    expect(out).not.toMatch(/not parsed/);
  });

  it('refuses a file that is not pcapng with the reason, and a missing argument', () => {
    const junk = join(dir, 'junk.pcapng');
    writeFileSync(junk, 'not a trace at all');
    const r = spawnSync(process.execPath, [cli, 'trace', junk], { encoding: 'utf8' });
    expect([r.status, r.stderr.trim()]).toEqual([2, 'not a readable pcapng file: no section header at offset 0']);
    expect(spawnSync(process.execPath, [cli, 'trace'], { encoding: 'utf8' }).status).toBe(2);
  });
});
