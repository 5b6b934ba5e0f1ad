// The frankendrive plug-ins of BSDCan 2019 (spec/nvme.md §7.4), as seeded injectors for any
// storage device's decode stage: each counts the writes it sees and answers some of them itself,
// with the device's own "write to a read-only medium" status (NVMe SCT 1 / SC 0x82, SCSI DATA
// PROTECT), without the write reaching the medium.

import { SgringError } from '../../engine/errors';
import type { TapContext } from '../context';
import type { Tap } from '../registry';
import { seededRandom } from '../random';

const named = (name: string, fn: (ctx: TapContext) => void): Tap => Object.assign(fn, { tapName: name });

function count(v: unknown, what: string): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw new SgringError('InvalidArgument', `${what} ${String(v)} must be a non-negative integer`);
  return v as number;
}

function probability(v: unknown, what: string): number {
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new SgringError('InvalidArgument', `${what} ${String(v)} must be a probability in [0, 1]`);
  return v;
}

/**
 * "No writes": the first `n` writes go through; every later one is answered with the read-only
 * status (or, with `silent`, with success while nothing is written: the drive that lied).
 */
export function readOnlyAfter(n: number, opts: { silent?: boolean } = {}): Tap {
  let left = count(n, 'readOnlyAfter: n');
  return named(`readOnlyAfter(${n}${opts.silent ? ', silent' : ''})`, (ctx) => {
    if (ctx.io.kind !== 'write') return;
    if (left > 0) {
      left--;
      return;
    }
    ctx.complete(opts.silent ? ctx.statuses.success : ctx.statuses.readOnly);
  });
}

/**
 * "Temperamental": every write succeeds until, after one of them, the medium turns read-only
 * for good, with `probability` per write (the talk's 57 %), from `seed`.
 */
export function temperamental(opts: { probability: number; seed: number }): Tap {
  const p = probability(opts?.probability, 'temperamental: probability');
  const rnd = seededRandom(count(opts.seed, 'temperamental: seed'));
  let readOnly = false;
  return named(`temperamental(${p}, seed ${opts.seed})`, (ctx) => {
    if (ctx.io.kind !== 'write') return;
    if (readOnly) ctx.complete(ctx.statuses.readOnly);
    else if (rnd() < p) readOnly = true; // this write still succeeds
  });
}

/**
 * "Reincarnation": after `after` good writes, the next `window` writes fail read-only, then the
 * device comes back and the cycle starts again (the talk: 5000 good, 12 failing). `status` picks
 * another of the device's statuses: 'mediaError' or 'internal' have no DNR bit, so a driver may
 * retry through the window and recover.
 */
export function reincarnation(opts: { after: number; window: number; status?: 'readOnly' | 'mediaError' | 'internal' }): Tap {
  const after = count(opts?.after, 'reincarnation: after');
  const window = count(opts.window, 'reincarnation: window');
  const status = opts.status ?? 'readOnly';
  if (!['readOnly', 'mediaError', 'internal'].includes(status)) throw new SgringError('InvalidArgument', `reincarnation: status ${String(status)} is not readOnly, mediaError or internal`);
  let n = 0;
  return named(`reincarnation(${after}, ${window}${status === 'readOnly' ? '' : `, ${status}`})`, (ctx) => {
    if (ctx.io.kind !== 'write') return;
    if (n >= after) ctx.complete(ctx.statuses[status]);
    n = n + 1 >= after + window ? 0 : n + 1;
  });
}

export { count, named, probability };
