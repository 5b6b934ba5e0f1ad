// The guest's KVP pools, kept in memory the way the Linux daemon (tools/hv/hv_kvp_daemon.c)
// keeps its pool files: five pools of string keys and string values, enumerated by index in
// insertion order. The embedder seeds and reads them; the host changes them over the channel.

import { KVP_POOL_COUNT } from '../../generated/constants';
import { SgringError } from '../../engine/errors';
import { isWellFormedUtf16, KVP_MAX_KEY_UNITS, KVP_MAX_STRING_UNITS } from './kvp';

export interface KvpStoreOptions {
  /**
   * Entries allowed per pool (default 1024). The daemon has no cap; one is kept here so a host
   * cannot grow guest memory without bound. A SET beyond it fails like a daemon write error.
   */
  maxEntriesPerPool?: number;
  /** Called after every change made over the channel or through this API. */
  onChange?: (change: { pool: number; key: string; value: string | undefined }) => void;
}

export class KvpStore {
  private readonly pools: Map<string, string>[];
  readonly maxEntriesPerPool: number;
  onChange: KvpStoreOptions['onChange'];

  constructor(seed?: Partial<Record<number, Record<string, string>>>, opts: KvpStoreOptions = {}) {
    this.pools = Array.from({ length: KVP_POOL_COUNT }, () => new Map<string, string>());
    this.maxEntriesPerPool = opts.maxEntriesPerPool ?? 1024;
    this.onChange = opts.onChange;
    for (const [pool, entries] of Object.entries(seed ?? {})) {
      for (const [k, v] of Object.entries(entries ?? {})) this.set(Number(pool), k, v);
    }
  }

  private pool(pool: number): Map<string, string> {
    const p = Number.isInteger(pool) ? this.pools[pool] : undefined;
    if (!p) throw new SgringError('InvalidArgument', `KVP pool ${pool} is not 0..${KVP_POOL_COUNT - 1}`);
    return p;
  }

  /** Whether a key/value pair can be stored and later answered on the wire. */
  static fits(key: string, value: string): boolean {
    return isWellFormedUtf16(key) && isWellFormedUtf16(value) && key.length <= KVP_MAX_KEY_UNITS && value.length <= KVP_MAX_STRING_UNITS;
  }

  get(pool: number, key: string): string | undefined {
    return this.pool(pool).get(key);
  }

  /** Adds or replaces; throws InvalidArgument for a pair that does not fit or a full pool. */
  set(pool: number, key: string, value: string): void {
    const p = this.pool(pool);
    if (!KvpStore.fits(key, value)) throw new SgringError('InvalidArgument', `KVP pair does not fit the wire limits (${KVP_MAX_KEY_UNITS} key, ${KVP_MAX_STRING_UNITS} value UTF-16 units)`);
    if (!p.has(key) && p.size >= this.maxEntriesPerPool) throw new SgringError('InvalidArgument', `KVP pool ${pool} is full (${this.maxEntriesPerPool} entries)`);
    p.set(key, value);
    this.onChange?.({ pool, key, value });
  }

  /** Removes a key; false when it was absent. */
  delete(pool: number, key: string): boolean {
    const had = this.pool(pool).delete(key);
    if (had) this.onChange?.({ pool, key, value: undefined });
    return had;
  }

  /** The index-th pair of a pool in insertion order (what ENUMERATE answers), or undefined. */
  at(pool: number, index: number): [string, string] | undefined {
    const p = this.pool(pool);
    if (!Number.isInteger(index) || index < 0 || index >= p.size) return undefined;
    let i = 0;
    for (const e of p) if (i++ === index) return e;
    return undefined;
  }

  size(pool: number): number {
    return this.pool(pool).size;
  }

  entries(pool: number): [string, string][] {
    return [...this.pool(pool)];
  }
}
