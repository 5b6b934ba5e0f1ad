// The `sgring` command. Also the entry of the tour's worker threads (same file, see tour.ts).
// Options are parsed by Node's own util.parseArgs in strict mode: an unknown flag is refused.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isMainThread, workerData } from 'node:worker_threads';
import { tour, runTourWorker } from './tour';

const HELP = `usage: sgring [command] [options]

commands:
  demo [--packets N]   a guest and a host exchanging packets over a VMBus ring in two threads (default)
  help                 this text

options:
  --help, -h           this text (also after a command)
  --version, -v        the version of sgring

Benchmarks: npm run bench (in a checkout). Library API: see README.md.`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  const commands = ['demo', 'help'];
  const cmd = argv[0] !== undefined && !argv[0].startsWith('-') ? argv[0] : 'demo';
  const rest = argv[0] === cmd ? argv.slice(1) : argv;
  if (!commands.includes(cmd)) {
    console.error(`unknown command '${cmd}'\n\n${HELP}`);
    return 2;
  }
  let values: { packets?: string; help?: boolean; version?: boolean };
  try {
    ({ values } = parseArgs({
      args: rest,
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
        packets: { type: 'string' },
      },
    }));
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (cmd !== 'demo' && values.packets !== undefined) {
    console.error(`'${cmd}' takes no --packets\n\n${HELP}`);
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
  const packets = values.packets === undefined ? 1_000_000 : Number(values.packets);
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
  // `sgring demo | head` closes stdout early: that is the reader's choice, not a failure.
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
