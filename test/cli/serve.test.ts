// `sgring serve`: the built CLI runs a target a real initiator can use, injectors attach and detach
// from stdin while it runs, and the trace it writes is one tshark decodes.
import { execFile, execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { connectData, cqeDw0, cqeStatus, RawQueue } from '../util/nvme-tcp-host';
import { haveTool } from '../util/tools';

const cli = fileURLToPath(new URL('../../dist/cli.mjs', import.meta.url));
const running: ChildProcessWithoutNullStreams[] = [];
afterEach(() => {
  for (const p of running.splice(0)) p.kill('SIGKILL');
});

/** Starts `sgring serve ...`; resolves with the process, its port, and a way to wait for a line of its output. */
async function start(...args: string[]) {
  const p = spawn(process.execPath, [cli, 'serve', ...args, '--port', '0'], { stdio: 'pipe' });
  running.push(p);
  let out = '';
  p.stderr.on('data', (d) => (out += d));
  const waitFor = async (re: RegExp, from = 0): Promise<RegExpExecArray> => {
    for (let i = 0; i < 200; i++) {
      const m = re.exec(out.slice(from));
      if (m) return m;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`no ${re} in:\n${out}`);
  };
  const port = Number((await waitFor(/on 127\.0\.0\.1:(\d+)/))[1]);
  return { p, port, waitFor, out: () => out };
}

async function cmd(q: RawQueue, sqe: Uint8Array, data?: Uint8Array) {
  q.send(q.capsule(sqe, data));
  for (;;) {
    const r = await q.next();
    if (!r || r.type === 5) return r!;
  }
}

async function nvmeSession(port: number, subnqn: string) {
  const open = async () => {
    const q = await RawQueue.open(port);
    q.send(q.icReq());
    await q.next();
    return q;
  };
  const connect = (q: RawQueue, qid: number, cntlid = 0xffff) => {
    const s = q.sqe(0x7f, { fctype: 0x01, length: 1024, inCapsule: true });
    new DataView(s.buffer).setUint16(42, qid, true);
    new DataView(s.buffer).setUint16(44, 31, true);
    return cmd(q, s, connectData(subnqn, 'nqn.2026-12.io.sgring:cli-test', cntlid));
  };
  const admin = await open();
  const cntlid = cqeDw0(await connect(admin, 0)) & 0xffff;
  await cmd(admin, admin.sqe(0x7f, { fctype: 0x00, cdw: { 11: 0x14, 12: 0x00460001 } }));
  const io = await open();
  expect(cqeStatus(await connect(io, 1, cntlid))).toBe(0);
  const write = (lba: number) => cmd(io, io.sqe(0x01, { nsid: 1, cdw: { 10: lba, 12: 7 }, length: 4096, inCapsule: true }), new Uint8Array(4096).fill(lba));
  return { admin, io, write };
}

describe('sgring serve', () => {
  it('nvme-tcp: serves a memory disk, takes injectors from stdin at run time, writes a trace tshark decodes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sgring-serve-'));
    try {
      const trace = join(dir, 'serve.pcapng');
      const s = await start('nvme-tcp', '--size', '16M', '--nqn', 'nqn.2026-12.io.sgring:cli', '--trace', trace);
      const { io, admin, write } = await nvmeSession(s.port, 'nqn.2026-12.io.sgring:cli');
      expect(cqeStatus(await write(1))).toBe(0);
      s.p.stdin.write('inject readOnlyAfter:0\n');
      await s.waitFor(/attached readOnlyAfter:0/);
      expect(cqeStatus(await write(2))).toBe(0x4182); // Write to Read Only Range, DNR
      s.p.stdin.write('status\n');
      await s.waitFor(/commands \d+, .*faults injected 1; injectors: readOnlyAfter:0/);
      s.p.stdin.write('clear\n');
      await s.waitFor(/injectors detached/);
      expect(cqeStatus(await write(3))).toBe(0);
      io.close();
      admin.close();
      s.p.stdin.write('quit\n');
      const code = await new Promise((r) => s.p.once('exit', r));
      expect(code).toBe(0);
      if (haveTool('tshark', ['-v'], 'tshark', 'the serve trace decode')) {
        const out = execFileSync('tshark', ['-r', trace, '-Y', 'nvme.cqe.status.sc == 0x82', '-T', 'fields', '-e', 'nvme.cqe.status.sct'], { encoding: 'utf8' });
        expect(out.trim()).toBe('0x0001');
        expect(execFileSync('tshark', ['-r', trace, '-Y', '_ws.malformed'], { encoding: 'utf8' }).trim()).toBe('');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a bad kind, both or neither of --disk and --size, an unknown injector, and unknown flags', () => {
    const fails = (...a: string[]) => {
      try {
        execFileSync(process.execPath, [cli, 'serve', ...a], { stdio: 'pipe', timeout: 10_000 });
        return 'ran';
      } catch (e) {
        return String((e as { stderr: Buffer }).stderr);
      }
    };
    expect(fails('floppy', '--size', '16M')).toMatch(/serve needs one kind/);
    expect(fails('nvme-tcp')).toMatch(/--disk FILE or --size SIZE/);
    expect(fails('nvme-tcp', '--size', '16M', '--disk', '/dev/null')).toMatch(/--disk FILE or --size SIZE/);
    expect(fails('nvme-tcp', '--size', '16M', '--inject', 'gremlins:1')).toMatch(/unknown injector/);
    expect(fails('nvme-tcp', '--size', '16M', '--inject', 'readOnlyAfter')).toMatch(/takes 1 number/);
    expect(fails('iscsi', '--size', '16M', '--frobnicate')).toMatch(/Unknown option '--frobnicate'/);
    expect(fails('nvme-tcp', '--size', '17')).toMatch(/at least 1M/);
  });
});

const libiscsi = haveTool('iscsi-inq', ['-h'], 'libiscsi-bin', 'the serve iscsi test');

it.skipIf(!libiscsi)('sgring serve iscsi: libiscsi reads the served disk (iscsi-inq, iscsi-readcapacity16)', async () => {
  const s = await start('iscsi', '--size', '8M');
  const iqn = (await s.waitFor(/iSCSI target (\S+) on/))[1];
  const url = `iscsi://127.0.0.1:${s.port}/${iqn}/0`;
  const run = promisify(execFile);
  expect((await run('iscsi-inq', ['-i', 'iqn.2026-12.sgring:cli-test', url])).stdout).toMatch(/DIRECT_ACCESS/);
  expect((await run('iscsi-readcapacity16', ['-i', 'iqn.2026-12.sgring:cli-test', url])).stdout).toMatch(/RETURNED LOGICAL BLOCK ADDRESS:16383\n/);
  s.p.kill('SIGINT');
  expect(await new Promise((r) => s.p.once('exit', r))).toBe(0);
});
