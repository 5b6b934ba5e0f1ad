// The `sgring` command. Also the entry of the tour's worker threads (same file, see tour.ts).
// Options are parsed by Node's own util.parseArgs in strict mode: an unknown flag is refused.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isMainThread, workerData } from 'node:worker_threads';
import { INJECTORS, serve } from './serve';
import { tour, runTourWorker } from './tour';
import { demo, type DemoDevice } from './demo';
import { traceReport } from './trace';
import { fuzz, fuzzTargetHelp, replay } from './fuzz';

const HELP = `usage: sgring [command] [options]

commands:
  demo [--devices nvme,storvsc,netvsc] [--seconds N] [--trace FILE] [--inject NAME[:ARGS]]...
                       one VM with the three devices, both ends of each: a checked storage and
                       network workload, a fault injected at run time, a pcapng trace, the rates (default)
  fuzz --target NAME [--seed N] [--runs N | --seconds S] [--out DIR]
  fuzz --replay FILE   hostile inputs for a parser, device or policy; a finding is written as a
                       replayable JSON file (targets below)
  bench [--quick] [--json] [--svg FILE] [--out FILE] [SUITE]...
                       the benchmark suites of a checkout (wasm, reference, peers and the copy
                       limit in one run): a table, or the run as JSON; --svg writes a bar chart
  trace FILE           what a trace written by sgring holds: per device, commands with their
                       latencies and failures, the faults injected
  tour [--packets N]   a guest and a host exchanging packets over a VMBus ring in two threads
  serve nvme-tcp|iscsi (--disk FILE | --size SIZE) [--port N] [--nqn NAME] [--inject NAME[:ARGS]]...
                       [--trace FILE] [--read-only] [--seconds N]
                       a storage target on 127.0.0.1 for your own initiator, with injected faults;
                       stdin takes 'inject NAME[:ARGS]', 'clear', 'status', 'quit' while it runs
                       (injectors: ${INJECTORS})
  help                 this text

options:
  --help, -h           this text (also after a command)
  --version, -v        the version of sgring

fuzz targets:
${fuzzTargetHelp()}

Benchmarks: npm run bench (in a checkout). Library API: see README.md.`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  const commands = ['demo', 'tour', 'serve', 'trace', 'fuzz', 'bench', 'help'];
  const cmd = argv[0] !== undefined && !argv[0].startsWith('-') ? argv[0] : 'demo';
  const rest = argv[0] === cmd ? argv.slice(1) : argv;
  if (!commands.includes(cmd)) {
    console.error(`unknown command '${cmd}'\n\n${HELP}`);
    return 2;
  }
  const serveOptions = {
    disk: { type: 'string' }, size: { type: 'string' }, port: { type: 'string' }, nqn: { type: 'string' },
    inject: { type: 'string', multiple: true }, trace: { type: 'string' }, 'read-only': { type: 'boolean' }, seconds: { type: 'string' },
  } as const;
  let values: Record<string, unknown>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: rest,
      strict: true,
      allowPositionals: cmd === 'serve' || cmd === 'trace' || cmd === 'bench',
      options: {
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
        ...(cmd === 'tour' ? { packets: { type: 'string' } } as const : {}),
        ...(cmd === 'fuzz' ? { target: { type: 'string' }, seed: { type: 'string' }, runs: { type: 'string' }, seconds: { type: 'string' }, out: { type: 'string' }, replay: { type: 'string' } } as const : {}),
        ...(cmd === 'bench' ? { quick: { type: 'boolean' }, json: { type: 'boolean' }, svg: { type: 'string' }, out: { type: 'string' } } as const : {}),
        ...(cmd === 'demo' ? { devices: { type: 'string' }, seconds: { type: 'string' }, trace: { type: 'string' }, inject: { type: 'string', multiple: true } } as const : {}),
        ...(cmd === 'serve' ? serveOptions : {}),
      },
    }));
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.version) {
    console.log(version());
    return 0;
  }
  if (cmd === 'help' || values.help) {
    console.log(HELP);
    return 0;
  }
  if (cmd === 'serve') {
    const kind = positionals[0];
    if ((kind !== 'nvme-tcp' && kind !== 'iscsi') || positionals.length !== 1) {
      console.error(`serve needs one kind: nvme-tcp or iscsi\n\n${HELP}`);
      return 2;
    }
    const v = values as { disk?: string; size?: string; port?: string; nqn?: string; inject?: string[]; trace?: string; 'read-only'?: boolean; seconds?: string };
    try {
      await serve({ kind, disk: v.disk, size: v.size, port: v.port, nqn: v.nqn, inject: v.inject ?? [], trace: v.trace, readOnly: v['read-only'], seconds: v.seconds });
    } catch (e) {
      console.error((e as Error).message);
      return 2;
    }
    return 0;
  }
  if (cmd === 'fuzz') {
    const v = values as { target?: string; seed?: string; runs?: string; seconds?: string; out?: string; replay?: string };
    try {
      if (v.replay !== undefined) {
        if (v.target !== undefined || v.runs !== undefined || v.seconds !== undefined) throw new Error('--replay FILE takes no other option');
        return (await replay(JSON.parse(readFileSync(v.replay, 'utf8')), (l) => console.log(l))) ? 1 : 0;
      }
      const num = (name: string, s: string | undefined, ok: (n: number) => boolean) => {
        if (s === undefined) return undefined;
        const n = Number(s);
        if (!ok(n)) throw new Error(`--${name} ${s}: out of range`);
        return n;
      };
      if (v.runs !== undefined && v.seconds !== undefined) throw new Error('give --runs or --seconds, not both');
      if (v.target === undefined) throw new Error('fuzz needs --target NAME (see sgring help) or --replay FILE');
      const found = await fuzz({
        target: v.target,
        seed: num('seed', v.seed, (n) => Number.isInteger(n) && n >= 0 && n < 2 ** 32) ?? (Date.now() % 2 ** 31),
        runs: num('runs', v.runs, (n) => Number.isInteger(n) && n > 0),
        seconds: num('seconds', v.seconds, (n) => n > 0),
        out: v.out ?? '.',
        say: (l) => console.log(l),
        progress: process.stderr.isTTY ? (l) => process.stderr.write(`\r\x1b[K${l}`) : null,
      });
      return found.length > 0 ? 1 : 0;
    } catch (e) {
      console.error((e as Error).message);
      return 2;
    }
  }
  if (cmd === 'bench') {
    // The suites live in the repository (bench/, over dist/), not in the published package.
    const runner = fileURLToPath(new URL('../bench/run.mjs', import.meta.url));
    if (!existsSync(runner)) {
      console.error('sgring bench runs the benchmark suites of a checkout (bench/ is not in the package): clone the repository, npm ci, then npx sgring bench');
      return 2;
    }
    const v = values as { quick?: boolean; json?: boolean; svg?: string; out?: string };
    const args = [...(v.quick ? ['--quick'] : []), ...(v.json ? ['--json'] : []), ...(v.svg ? ['--svg', v.svg] : []), ...(v.out ? ['--out', v.out] : []), ...positionals];
    return spawnSync(process.execPath, [runner, ...args], { stdio: 'inherit' }).status ?? 1;
  }
  if (cmd === 'trace') {
    if (positionals.length !== 1) {
      console.error(`trace needs one file\n\n${HELP}`);
      return 2;
    }
    try {
      traceReport(positionals[0]!, (l) => console.log(l));
    } catch (e) {
      console.error((e as Error).message);
      return 2;
    }
    return 0;
  }
  if (cmd === 'demo') {
    const v = values as { devices?: string; seconds?: string; trace?: string; inject?: string[] };
    const devices = (v.devices ?? 'nvme,storvsc,netvsc').split(',').filter(Boolean);
    const seconds = v.seconds === undefined ? 2 : Number(v.seconds);
    if (devices.length === 0 || devices.some((d) => !['nvme', 'storvsc', 'netvsc'].includes(d))) {
      console.error(`--devices ${v.devices}: a comma-separated list of nvme, storvsc, netvsc`);
      return 2;
    }
    if (!(seconds > 0 && seconds <= 60)) {
      console.error(`--seconds ${v.seconds}: a number of seconds in (0, 60]`);
      return 2;
    }
    const tty = process.stderr.isTTY;
    try {
      await demo({
        devices: devices as DemoDevice[], seconds, trace: v.trace ?? 'sgring-demo.pcapng', inject: v.inject ?? [],
        out: (l) => console.log(l),
        progress: tty ? (l) => process.stderr.write(`\r\x1b[K${l}`) : null,
      });
    } catch (e) {
      console.error((e as Error).message);
      return (e as Error).message.startsWith('--inject') ? 2 : 1;
    }
    return 0;
  }
  const packets = values.packets === undefined ? 1_000_000 : Number(values.packets as string);
  if (!Number.isInteger(packets) || packets <= 0) {
    console.error('--packets needs a positive integer');
    return 2;
  }
  await tour({ packets, script: new URL(import.meta.url) });
  return 0;
}

if (!isMainThread && (workerData as { sgringTour?: boolean } | null)?.sgringTour) {
  runTourWorker();
} else if (isMainThread) {
  // `sgring tour | head` closes stdout early: that is the reader's choice, not a failure.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err) => {
      console.error(err instanceof Error ? `${err.name}: ${err.message}` : err);
      process.exitCode = 1;
    },
  );
}
