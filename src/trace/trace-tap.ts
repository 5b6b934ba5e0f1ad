// traceTap(writer): a tap that records every event at the stages it is attached to, through
// the device's encoder, into a pcapng writer: one interface per device instance, the frames of
// each event after all its taps ran, and what the taps did (faults, notes, a tap's error) as
// comments on the event's first frame.

import { SgringError } from '../engine/errors';
import type { EventContext, TapContext } from '../taps/context';
import type { Tap } from '../taps/registry';
import type { PcapngWriter } from './pcapng';
import { firstEventFrame } from './encoder';

export interface TraceTapStats {
  /** Events recorded. */
  events: number;
  /** Events whose device has no encoder, or that gave no frames (their notes are lost). */
  skipped: number;
}

export function traceTap(writer: PcapngWriter, opts: { name?: string } = {}): Tap & { stats: TraceTapStats } {
  if (!writer || typeof writer.writePacket !== 'function') throw new SgringError('InvalidArgument', 'traceTap needs a PcapngWriter');
  const devices = new Map<string, { iface: number; state: unknown }>();
  const stats: TraceTapStats = { events: 0, skipped: 0 };
  const tap = ((ctx: TapContext) => {
    const c = ctx as EventContext;
    c.afterTaps(() => {
      const enc = c.encoder;
      if (!enc) {
        stats.skipped++;
        return;
      }
      let d = devices.get(c.device);
      if (!d) {
        d = { iface: writer.addInterface({ name: c.device, description: `${c.device} (${enc.protocol}, sgring)`, linktype: enc.linktype }), state: enc.createState(c.device) };
        devices.set(c.device, d);
      }
      const frames = enc.encode(c, d.state);
      if (frames.length === 0) {
        stats.skipped++;
        return;
      }
      const comments = [
        ...c.faults.map((f) => `fault at ${c.stage}: ${f}`),
        ...c.outcome.notes.map((n) => `note at ${c.stage}: ${n}`),
        ...(c.outcome.error ? [`error at ${c.stage}: ${c.outcome.error.message}`] : []),
      ];
      const at = firstEventFrame(frames);
      frames.forEach((f, i) => writer.writePacket(d.iface, c.timeNs, f, i === at ? comments : []));
      stats.events++;
    });
  }) as Tap & { stats: TraceTapStats };
  tap.tapName = opts.name ?? 'trace';
  tap.stats = stats;
  return tap;
}
