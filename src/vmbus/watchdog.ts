// Hung requests (spec/hardening.md P8, checklist 65): a request whose completion never comes
// must not hold its caller forever. The watchdog fails every request older than a deadline with
// a typed SgringError 'Timeout' — exactly once: the transaction ends, and a completion arriving
// afterwards is counted as late and ignored (transactions.ts). The channel keeps working.
//
// Ages are lower bounds sampled by the check itself (transactions.ts explains why issuing does
// not read the clock), so a request fails between deadlineMs and deadlineMs + 2 * intervalMs
// after it was issued, never before deadlineMs.

import { SgringError } from '../engine/errors';
import type { ChannelEnd } from './channel-end';

export interface WatchdogOptions {
  /** Requests older than this fail with Timeout. */
  deadlineMs: number;
  /** How often start() checks (default deadlineMs / 4, at least 1 ms). */
  intervalMs?: number;
}

type Channels = Iterable<ChannelEnd<any>> | (() => Iterable<ChannelEnd<any>>); // eslint-disable-line @typescript-eslint/no-explicit-any

export class Watchdog {
  readonly deadlineMs: number;
  readonly intervalMs: number;
  /** Requests this watchdog failed. */
  timedOut = 0;
  private readonly channels: Channels;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(channels: Channels, opts: WatchdogOptions) {
    if (!(opts?.deadlineMs > 0)) throw new SgringError('InvalidArgument', 'the watchdog needs deadlineMs > 0');
    this.channels = channels;
    this.deadlineMs = opts.deadlineMs;
    this.intervalMs = Math.max(1, opts.intervalMs ?? opts.deadlineMs / 4);
  }

  /** Fails every request older than the deadline on every open channel; returns how many. */
  check(now = performance.now()): number {
    let n = 0;
    const list = typeof this.channels === 'function' ? this.channels() : this.channels;
    for (const ch of list) if (ch.state === 'open') n += ch.expire(this.deadlineMs, now);
    this.timedOut += n;
    return n;
  }

  /** Checks every intervalMs on a timer that does not keep the process alive. */
  start(): this {
    if (this.timer === null) {
      this.timer = setInterval(() => this.check(), this.intervalMs);
      (this.timer as { unref?: () => void }).unref?.();
    }
    return this;
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
