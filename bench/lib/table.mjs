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

const sameRow = (a, b) => a.suite === b.suite && a.name === b.name && a.payloadBytes === b.payloadBytes;

/** The case matching { suite, name, engine, payloadBytes }, or undefined. */
export function findCase(cases, key) {
  return cases.find((c) => sameRow(c, key) && c.engine === key.engine);
}

/** opsPerSec of `c` over the reference engine's in the same suite, case and payload. */
function ratioVsReference(cases, c) {
  const ref = findCase(cases, { ...c, engine: 'reference' });
  return ref ? c.opsPerSec / ref.opsPerSec : undefined;
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
    '| suite | case | payload | engine | ops/s | bytes/s | ratio vs reference |',
    '|---|---|---:|---|---:|---:|---:|',
  ];
  for (const c of cases) {
    lines.push(`| ${c.suite} | ${c.name} | ${formatBytes(c.payloadBytes)} | ${c.engine} | ${formatRate(c.opsPerSec)} | ` +
      `${formatThroughput(c.bytesPerSec)} | ${formatRatio(ratioVsReference(cases, c))} |`);
  }
  return lines;
}

/**
 * Suites declare the figures the project tracks as { label, of, over? } where `of` and `over`
 * are case keys ({ suite, name, engine, payloadBytes }): a ratio of their opsPerSec, or with
 * no `over` the case's own ops/s.
 */
export function keyFigures(cases, figures) {
  return figures.map(({ label, of, over }) => {
    const a = findCase(cases, of);
    const b = over && findCase(cases, over);
    if (!a || (over && !b)) return { label, value: undefined, text: 'n/a (case missing)' };
    const value = over ? a.opsPerSec / b.opsPerSec : a.opsPerSec;
    return { label, value, text: over ? formatRatio(value) : formatRate(value) };
  });
}

export function keyFiguresLines(figures) {
  return ['| figure | value |', '|---|---:|', ...figures.map((f) => `| ${f.label} | ${f.text} |`)];
}
