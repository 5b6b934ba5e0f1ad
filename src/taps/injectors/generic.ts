// Seeded faults for any device's stage: fail, drop, delay or corrupt a fraction of the events
// a tap sees (checklist 63: drop a command, delay it, replace or corrupt its completion or data).
// Same seed, same events hit.

import { SgringError } from '../../engine/errors';
import type { IoKind } from '../context';
import type { Tap } from '../registry';
import { seededRandom } from '../random';
import { count, named, probability } from './storage';

interface Selector {
  /** Only events of these kinds (default: all). */
  kinds?: IoKind[];
}

const selected = (kinds: IoKind[] | undefined, kind: IoKind) => kinds === undefined || kinds.includes(kind);

/** Completes a fraction `rate` of the events with `status` (default: the device's media error). */
export function randomFailure(opts: { rate: number; seed: number; status?: number } & Selector): Tap {
  const rate = probability(opts?.rate, 'randomFailure: rate');
  const rnd = seededRandom(count(opts.seed, 'randomFailure: seed'));
  return named(`randomFailure(${rate}, seed ${opts.seed})`, (ctx) => {
    if (selected(opts.kinds, ctx.io.kind) && rnd() < rate) ctx.complete(opts.status ?? ctx.statuses.mediaError);
  });
}

/** Drops a fraction `rate` of the events: the request never completes (the driver's timeout must find it). */
export function drop(opts: { rate: number; seed: number } & Selector): Tap {
  const rate = probability(opts?.rate, 'drop: rate');
  const rnd = seededRandom(count(opts.seed, 'drop: seed'));
  return named(`drop(${rate}, seed ${opts.seed})`, (ctx) => {
    if (selected(opts.kinds, ctx.io.kind) && rnd() < rate) ctx.drop();
  });
}

/** Holds every event `ms` milliseconds, plus up to `jitter` more drawn from the seed. */
export function delay(opts: { ms: number; jitter?: number; seed?: number } & Selector): Tap {
  const ms = opts?.ms;
  const jitter = opts.jitter ?? 0;
  if (typeof ms !== 'number' || !(ms >= 0) || !(jitter >= 0)) throw new SgringError('InvalidArgument', 'delay: ms and jitter must be >= 0');
  const rnd = seededRandom(count(opts.seed ?? 0, 'delay: seed'));
  return named(`delay(${ms}${jitter ? ` + ${jitter}` : ''} ms)`, (ctx) => {
    if (selected(opts.kinds, ctx.io.kind)) ctx.delay(ms + (jitter > 0 ? rnd() * jitter : 0));
  });
}

/** Flips `bits` random bits (default 1) in the data of a fraction `rate` of the events that carry data. */
export function corrupt(opts: { rate: number; seed: number; bits?: number } & Selector): Tap {
  const rate = probability(opts?.rate, 'corrupt: rate');
  const bits = count(opts.bits ?? 1, 'corrupt: bits');
  const rnd = seededRandom(count(opts.seed, 'corrupt: seed'));
  return named(`corrupt(${rate}, ${bits} bits, seed ${opts.seed})`, (ctx) => {
    if (!selected(opts.kinds, ctx.io.kind) || ctx.data === null) return;
    const bytes = ctx.data.reduce((n, d) => n + d.length, 0);
    if (bytes === 0 || !(rnd() < rate)) return;
    for (let i = 0; i < bits; i++) ctx.corrupt(Math.floor(rnd() * bytes), 1 << Math.floor(rnd() * 8));
  });
}
