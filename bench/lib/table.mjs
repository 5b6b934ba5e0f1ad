// Markdown output: the meta lines, one table of every case, and the key-ratio summary.

/** 64 -> "64 B", 4096 -> "4 KiB". */
export function formatBytes(n) {
  for (const [unit, size] of [['MiB', 1 << 20], ['KiB', 1 << 10]]) {
    if (n >= size && n % size === 0) return `${n / size} ${unit}`;
  }
  return `${n} B`;
}

/** Decimal SI prefixes: 3.1e7 -> "31.0 M". */
function si(x) {
  for (const [p, v] of [['G', 1e9], ['M', 1e6], ['k', 1e3]]) {
    if (x >= v) return `${(x / v).toFixed(x >= 100 * v ? 0 : x >= 10 * v ? 1 : 2)} ${p}`;
  }
  return `${x.toFixed(x >= 100 ? 0 : 1)} `;
}

export const formatRate = (x) => `${si(x)}/s`;
export const formatThroughput = (x) => `${si(x)}B/s`;
const formatRatio = (x) => (x === undefined ? '–' : `${x.toFixed(2)}×`);
/** "1.93× (1.80–2.05)": the median ratio over rounds and its range, when there were rounds. */
const formatPaired = (r) => (r === undefined ? '–' : r.min === undefined ? formatRatio(r.value)
  : `${formatRatio(r.value)} (${r.min.toFixed(2)}–${r.max.toFixed(2)})`);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * a / b as the median of the per-round ratios when both rows were timed in the same rounds
 * (lib/isolate.mjs), with their range; else the ratio of the two medians.
 */
export function pairedRatio(a, b) {
  if (a.rounds && b.rounds && a.rounds.length === b.rounds.length && a.rounds.length > 1) {
    const rs = a.rounds.map((x, i) => x / b.rounds[i]);
    return { value: median(rs), min: Math.min(...rs), max: Math.max(...rs) };
  }
  return { value: a.opsPerSec / b.opsPerSec };
}

const sameRow = (a, b) => a.suite === b.suite && a.name === b.name && a.payloadBytes === b.payloadBytes;

/** The case matching { suite, name, engine, payloadBytes }, or undefined. */
export function findCase(cases, key) {
  return cases.find((c) => sameRow(c, key) && c.engine === key.engine);
}

/** `c` over the reference engine in the same suite, case and payload (paired by round). */
function ratioVsReference(cases, c) {
  const ref = findCase(cases, { ...c, engine: 'reference' });
  return ref ? pairedRatio(c, ref) : undefined;
}

export function metaLines(meta) {
  return [
    `- node: ${meta.node}`,
    `- cpu: ${meta.cpu}`,
    `- commit: ${meta.commit}`,
    `- date: ${meta.date}${meta.quick ? ' (quick run)' : ''}`,
  ];
}

export function casesTable(cases) {
  const lines = [
    '| suite | case | payload | engine | ops/s | bytes/s | ratio vs reference (range over rounds) |',
    '|---|---|---:|---|---:|---:|---:|',
  ];
  for (const c of cases) {
    lines.push(`| ${c.suite} | ${c.name} | ${formatBytes(c.payloadBytes)} | ${c.engine} | ${formatRate(c.opsPerSec)} | ` +
      `${formatThroughput(c.bytesPerSec)} | ${formatPaired(ratioVsReference(cases, c))} |`);
  }
  return lines;
}

/**
 * Suites declare the figures the project tracks as { label, of, over? } where `of` and `over`
 * are case keys ({ suite, name, engine, payloadBytes }): a ratio of their opsPerSec, or with
 * no `over` the case's own ops/s; { label, of, heap: true } is the case's heap bytes per op.
 */
export function keyFigures(cases, figures) {
  return figures.map(({ label, of, over, heap }) => {
    const a = findCase(cases, of);
    const b = over && findCase(cases, over);
    if (!a || (over && !b) || (heap && a.heapBytesPerOp === undefined)) return { label, value: undefined, text: 'n/a (case missing)' };
    if (heap) return { label, value: a.heapBytesPerOp, text: `${Math.round(a.heapBytesPerOp)} B` };
    if (!over) return { label, value: a.opsPerSec, text: formatRate(a.opsPerSec) };
    const r = pairedRatio(a, b);
    return { label, value: r.value, min: r.min, max: r.max, text: formatPaired(r) };
  });
}

export function keyFiguresLines(figures) {
  return ['| figure | value |', '|---|---:|', ...figures.map((f) => `| ${f.label} | ${f.text} |`)];
}
