// `sgring trace FILE`: what a pcapng trace the library wrote holds, per device: frames, bytes and
// time span, commands by name with counts, failures and latencies, and the faults injected.

import { readFileSync } from 'node:fs';
import { summarizeTrace } from '../trace/summary';

const us = (ns: number) => (ns / 1000).toFixed(ns < 10_000 ? 1 : 0);
const pick = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

export function traceReport(path: string, say: (line: string) => void): void {
  const devices = summarizeTrace(new Uint8Array(readFileSync(path)));
  say(`${path}: ${devices.length} device${devices.length === 1 ? '' : 's'}`);
  for (const d of devices) {
    say('');
    say(`${d.name} (${d.protocol}): ${d.frames} frames, ${d.bytes} bytes over ${(d.spanNs / 1e9).toFixed(3)} s${d.unparsed ? `, ${d.unparsed} not parsed` : ''}`);
    const rows = [...d.commands].sort((a, b) => b[1].count - a[1].count);
    if (rows.length > 0) {
      const timed = rows.some(([, s]) => s.latenciesNs.length > 0);
      say(`  ${'command'.padEnd(24)} ${'count'.padStart(7)} ${'failed'.padStart(6)}${timed ? `  ${'p50 us'.padStart(8)} ${'p99 us'.padStart(8)} ${'max us'.padStart(8)}` : ''}`);
      for (const [name, s] of rows) {
        const l = s.latenciesNs;
        const lat = timed ? (l.length ? `  ${us(pick(l, 0.5)).padStart(8)} ${us(pick(l, 0.99)).padStart(8)} ${us(l[l.length - 1]!).padStart(8)}` : `  ${'-'.padStart(8)} ${'-'.padStart(8)} ${'-'.padStart(8)}`) : '';
        say(`  ${name.padEnd(24)} ${String(s.count).padStart(7)} ${String(s.failed).padStart(6)}${lat}`);
      }
    }
    for (const [stage, n] of d.faults) say(`  faults injected at ${stage}: ${n}`);
  }
}
