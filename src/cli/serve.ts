// `sgring serve nvme-tcp|iscsi`: a fault-injecting storage target for a user's own initiator.
// The disk is a file (FileDisk) or memory of a given size (MemoryDisk, sparse); injectors attach
// at start (--inject) and at run time through commands on stdin; a status line shows what crossed.

import { createInterface } from 'node:readline';
import {
  corrupt, delay, drop, IommuDomain, loadCore, MemoryDisk, NvmeController, pageAllocator, PcapngWriter, randomFailure, readOnlyAfter,
  reincarnation, ScsiDisk, TapRegistry, temperamental, traceTap, type BlockBackend, type Tap, type TapHandle,
} from '../index';
import { FileDisk, FileSink, IscsiTarget, NvmeTcpTarget } from '../node/index';

export interface ServeOptions {
  kind: 'nvme-tcp' | 'iscsi';
  disk?: string;
  size?: string;
  port?: string;
  nqn?: string;
  inject: string[];
  trace?: string;
  readOnly?: boolean;
  /** Seconds to serve, then stop (default: until Ctrl-C or `quit`). */
  seconds?: string;
  /** Where status lines and command answers go (default stderr). */
  out?: (line: string) => void;
}

export const INJECTORS = 'readOnlyAfter:N  temperamental:P  reincarnation:AFTER,WINDOW  randomFailure:RATE  drop:RATE  delay:MS  corrupt:RATE';

/** An injector from its command-line form, NAME[:ARGS]; throws with the accepted forms otherwise. */
export function parseInjector(spec: string, seed = 1): { tap: Tap; stage: 'decode' | 'execute' } {
  const [name, arg = ''] = spec.split(':', 2) as [string, string?];
  const nums = arg === '' ? [] : arg.split(',').map(Number);
  const need = (n: number) => {
    if (nums.length !== n || nums.some((x) => !Number.isFinite(x) || x < 0)) throw new Error(`--inject ${spec}: ${name} takes ${n} number${n > 1 ? 's' : ''} (${INJECTORS})`);
  };
  switch (name) {
    case 'readOnlyAfter': need(1); return { tap: readOnlyAfter(nums[0]!), stage: 'decode' };
    case 'temperamental': need(1); return { tap: temperamental({ probability: nums[0]!, seed }), stage: 'decode' };
    case 'reincarnation': need(2); return { tap: reincarnation({ after: nums[0]!, window: nums[1]! }), stage: 'decode' };
    case 'randomFailure': need(1); return { tap: randomFailure({ rate: nums[0]!, seed }), stage: 'decode' };
    case 'drop': need(1); return { tap: drop({ rate: nums[0]!, seed }), stage: 'decode' };
    case 'delay': need(1); return { tap: delay({ ms: nums[0]! }), stage: 'decode' };
    case 'corrupt': need(1); return { tap: corrupt({ rate: nums[0]!, seed }), stage: 'execute' };
    default: throw new Error(`--inject ${spec}: unknown injector (${INJECTORS})`);
  }
}

const SIZE = /^(\d+)([KMGT]?)$/i;

function bytesOf(size: string): number {
  const m = SIZE.exec(size);
  if (!m) throw new Error(`--size ${size}: a number of bytes with K, M, G or T`);
  const n = Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase());
  if (n < 1 << 20 || n % 4096 !== 0) throw new Error(`--size ${size}: at least 1M, a multiple of 4K`);
  return n;
}

/** Runs a target until stopped; resolves when it has closed. */
export async function serve(o: ServeOptions): Promise<void> {
  const say = o.out ?? ((l: string) => process.stderr.write(`${l}\n`));
  if ((o.disk === undefined) === (o.size === undefined)) throw new Error('give --disk FILE or --size SIZE (one of them)');
  const prefix = o.kind === 'nvme-tcp' ? 'nvme' : 'iscsi';
  const injectors = o.inject.map((s, i) => ({ spec: s, ...parseInjector(s, i + 1) })); // all checked before anything starts
  const port = o.port === undefined ? (o.kind === 'nvme-tcp' ? 4420 : 3260) : Number(o.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port ${o.port}: a TCP port`);
  const seconds = o.seconds === undefined ? Infinity : Number(o.seconds);
  if (!(seconds > 0)) throw new Error(`--seconds ${o.seconds}: a positive number`);

  const core = await loadCore({ guestBytes: 64 << 20 });
  const backend: BlockBackend = o.disk !== undefined
    ? FileDisk.open(o.disk, { core, readOnly: o.readOnly })
    : MemoryDisk.create(core, { blockCount: bytesOf(o.size!) / 512, storage: 'sparse', readOnly: o.readOnly });
  const taps = new TapRegistry();
  let faults = 0;
  const attached: { spec: string; handle: TapHandle }[] = [];
  const inject = (spec: string, tap: Tap, stage: string) => {
    const counted: Tap = (ctx) => {
      const before = ctx.action;
      const r = tap(ctx);
      if (ctx.action !== before) faults++;
      return r;
    };
    attached.push({ spec, handle: taps.attach(`${prefix}:io:${stage}`, counted) });
  };
  let writer: PcapngWriter | null = null;
  if (o.trace) {
    writer = new PcapngWriter(new FileSink(o.trace));
    taps.attach(`${prefix}:*:*`, traceTap(writer));
  }
  for (const i of injectors) inject(i.spec, i.tap, i.stage);

  let status: () => string;
  let close: () => Promise<void>;
  if (o.kind === 'nvme-tcp') {
    const dma = IommuDomain.create(core, 'nvme0', { mode: 'identity' });
    const controller = new NvmeController(core, { dma, namespaces: [{ backend }], maxQueues: 8, taps });
    const target = new NvmeTcpTarget({ controller, allocPages: pageAllocator(core), port, subnqn: o.nqn });
    await target.listen();
    say(`NVMe/TCP target ${target.subnqn} on 127.0.0.1:${target.port}, ${backend.blockCount * backend.blockSize} bytes`);
    say(`  Linux: nvme connect -t tcp -a 127.0.0.1 -s ${target.port} -n ${target.subnqn}`);
    const c = target.counters;
    status = () => `connections ${c.connections}, associations ${c.associations}, commands ${c.commands}, in ${mb(c.bytesIn)}, out ${mb(c.bytesOut)}, faults injected ${faults}`;
    close = () => target.close();
  } else {
    const target = new IscsiTarget({ luns: [new ScsiDisk(backend)], port, taps, iqn: o.nqn });
    await target.listen();
    say(`iSCSI target ${target.iqn} on 127.0.0.1:${target.port}, ${backend.blockCount * backend.blockSize} bytes`);
    say(`  Linux: iscsiadm -m discovery -t st -p 127.0.0.1:${target.port}; iscsiadm -m node -T ${target.iqn} -p 127.0.0.1:${target.port} --login`);
    const c = target.counters;
    status = () => `connections ${c.connections}, logins ${c.logins}, commands ${c.commands}, faults injected ${faults}`;
    close = () => target.close();
  }
  say(`  stdin: inject NAME[:ARGS] | clear | status | quit   (injectors: ${INJECTORS})`);

  await new Promise<void>((resolve) => {
    let done = false;
    const stop = () => {
      if (done) return;
      done = true;
      clearInterval(ticker);
      clearTimeout(timer);
      rl.close();
      process.stdin.destroy(); // an open stdin pipe would keep the process alive
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    const ticker = setInterval(() => say(status()), 2000);
    const timer = setTimeout(stop, Number.isFinite(seconds) ? seconds * 1000 : 2 ** 31 - 1);
    const rl = createInterface({ input: process.stdin });
    rl.on('line', (line) => {
      const [cmd, arg] = line.trim().split(/\s+/, 2);
      try {
        if (cmd === 'inject' && arg) {
          const i = parseInjector(arg, attached.length + 1);
          inject(arg, i.tap, i.stage);
          say(`attached ${arg}`);
        } else if (cmd === 'clear') {
          for (const a of attached.splice(0)) a.handle.detach();
          say('injectors detached');
        } else if (cmd === 'status') say(`${status()}; injectors: ${attached.map((a) => a.spec).join(', ') || 'none'}`);
        else if (cmd === 'quit') stop();
        else if (cmd) say(`unknown command '${line.trim()}' (inject NAME[:ARGS] | clear | status | quit)`);
      } catch (e) {
        say((e as Error).message);
      }
    });
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  say(status());
  await close();
  writer?.close();
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
