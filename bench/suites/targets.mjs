// Suite "targets": the storage targets from a real initiator's side. libiscsi's iscsi-perf (Debian
// libiscsi-bin; 32 requests in flight) against our IscsiTarget serving a memory disk, and, in the
// same run, against Debian's tgt (tgtd, the iSCSI peer to beat) serving a 64 MiB file in /dev/shm:
// 512-byte and 8 KiB requests, random and sequential. Each tool that is missing is said and its
// cases skipped; tgt needs root (apt-get install tgt).

import { spawn, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadCoreSync, MemoryDisk, ScsiDisk } from '../../dist/index.mjs';
import { IscsiTarget } from '../../dist/node.mjs';
import { makeCase } from '../lib/timing.mjs';

const SUITE = 'targets';
const BLOCKS = 1 << 17; // 64 MiB
const CASES = [
  { name: '512 B random, QD 32', blocks: 1, random: true },
  { name: '8 KiB random, QD 32', blocks: 16, random: true },
  { name: '512 B sequential, QD 32', blocks: 1, random: false },
  { name: '8 KiB sequential, QD 32', blocks: 16, random: false },
];

const have = (cmd, args = []) => !spawnSync(cmd, args, { stdio: 'ignore' }).error;

/** Average IOPS iscsi-perf reports for `url` over `ms` (it prints once a second). */
async function iscsiPerf(url, blocks, random, ms) {
  const p = spawn('iscsi-perf', ['-i', 'iqn.2026-12.io.sgring:perf', '-m', '32', '-b', String(blocks), ...(random ? ['-r'] : []), url]);
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  setTimeout(() => p.kill('SIGINT'), Math.max(ms, 2000) + 600);
  await new Promise((r) => p.on('exit', r));
  const avg = [...out.matchAll(/iops average (\d+)/g)].at(-1);
  if (!avg) throw new Error(`iscsi-perf printed no average for ${url}:\n${out}`);
  return Number(avg[1]);
}

const freePort = () => new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});

/** tgtd on 127.0.0.1 with one LUN over a file in /dev/shm; null when it cannot run here. */
export async function startTgt() {
  if (!have('tgtd', ['-V']) || process.getuid?.() !== 0) return null;
  const port = await freePort();
  const control = String(4000 + (port % 1000)); // its own management socket, apart from any system tgtd
  const file = `/dev/shm/sgring-tgt-${port}.img`;
  writeFileSync(file, new Uint8Array(0));
  spawnSync('truncate', ['-s', String(BLOCKS * 512), file]);
  const tgtd = spawn('tgtd', ['-f', '-C', control, '--iscsi', `portal=127.0.0.1:${port}`], { stdio: 'ignore' });
  const iqn = 'iqn.2026-12.io.sgring:tgt';
  const adm = (...a) => spawnSync('tgtadm', ['-C', control, '--lld', 'iscsi', ...a], { encoding: 'utf8' });
  for (let i = 0; i < 50 && adm('--op', 'show', '--mode', 'sys').status !== 0; i++) await new Promise((r) => setTimeout(r, 100));
  adm('--op', 'new', '--mode', 'target', '--tid', '1', '-T', iqn);
  adm('--op', 'new', '--mode', 'logicalunit', '--tid', '1', '--lun', '1', '-b', file);
  adm('--op', 'bind', '--mode', 'target', '--tid', '1', '-I', 'ALL');
  return {
    url: `iscsi://127.0.0.1:${port}/${iqn}/1`,
    async stop() {
      // tgtd ignores SIGTERM while it has targets: offline, delete, then the system.
      adm('--op', 'update', '--mode', 'sys', '--name', 'State', '-v', 'offline');
      adm('--op', 'delete', '--mode', 'target', '--tid', '1', '--force');
      adm('--op', 'delete', '--mode', 'system');
      tgtd.kill('SIGKILL');
      await new Promise((r) => tgtd.once('exit', r));
      rmSync(file, { force: true });
    },
  };
}

export default {
  name: SUITE,
  keyFigures: CASES.slice(0, 2).map((c) => ({
    label: `iSCSI ${c.name}: IscsiTarget / tgt (target >= 1.0)`,
    of: { suite: SUITE, name: c.name, engine: 'sgring', payloadBytes: c.blocks * 512 },
    over: { suite: SUITE, name: c.name, engine: 'tgt', payloadBytes: c.blocks * 512 },
  })),
  async run(ctx) {
    const ms = ctx.quick ? 2000 : 5000;
    const rows = [];
    if (!have('iscsi-perf')) {
      ctx.log('  iscsi-perf not installed (Debian libiscsi-bin): suite skipped');
      return rows;
    }
    const core = loadCoreSync({ guestBytes: 0 });
    const iqn = 'iqn.2026-12.io.sgring:bench';
    const ours = new IscsiTarget({ luns: [new ScsiDisk(MemoryDisk.create(core, { blockCount: BLOCKS }))], iqn, port: 0 });
    await ours.listen();
    const tgt = await startTgt();
    if (!tgt) ctx.log('  tgt not available (apt-get install tgt, as root): its cases skipped');
    try {
      for (const c of CASES) {
        for (const [engine, url] of [['sgring', `iscsi://127.0.0.1:${ours.port}/${iqn}/0`], ...(tgt ? [['tgt', tgt.url]] : [])]) {
          const rate = await iscsiPerf(url, c.blocks, c.random, ms);
          rows.push(makeCase({ suite: SUITE, name: c.name, engine, payloadBytes: c.blocks * 512 }, rate));
          ctx.log(`  ${c.name} (${engine}): ${(rate / 1e3).toFixed(1)} k IOPS, ${((rate * c.blocks * 512) / 1e6).toFixed(1)} MB/s`);
        }
      }
    } finally {
      await ours.close();
      await tgt?.stop();
    }
    return rows;
  },
};
