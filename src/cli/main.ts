// The `sgring` command. Also the entry of the tour's worker threads (same file, see tour.ts).
import { isMainThread, workerData } from 'node:worker_threads';
import { runTourWorker, tour } from './tour';

const HELP = `usage: sgring [command] [options]

commands:
  demo [--packets N]   a guest and a host exchanging packets over a VMBus ring in two threads (default)
  help                 this text

Benchmarks: npm run bench (in a checkout). Library API: see README.md.`;

async function main(argv: string[]): Promise<number> {
  const [cmd = 'demo', ...rest] = argv;
  if (cmd === 'help' || cmd === '--help' || cmd === '-h') {
    console.log(HELP);
    return 0;
  }
  if (cmd === 'demo') {
    const i = rest.indexOf('--packets');
    const packets = i >= 0 ? Number(rest[i + 1]) : 1_000_000;
    if (!Number.isInteger(packets) || packets <= 0) {
      console.error('--packets needs a positive integer');
      return 2;
    }
    await tour({ packets, script: new URL(import.meta.url) });
    return 0;
  }
  console.error(`unknown command '${cmd}'\n\n${HELP}`);
  return 2;
}

if (!isMainThread && (workerData as { sgringTour?: boolean } | null)?.sgringTour) {
  runTourWorker();
} else if (isMainThread) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err) => {
      console.error(err instanceof Error ? `${err.name}: ${err.message}` : err);
      process.exitCode = 1;
    },
  );
}
