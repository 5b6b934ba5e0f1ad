// A bar chart of a run as SVG: one group per case (suite, name, payload) that more than one
// engine ran, one bar per engine (wasm, reference, peers, the copy limit), each bar's length its
// rate over the fastest in the group, labelled with the rate and its ratio to wasm. Plain SVG
// text, no dependencies; opens in any browser.

const COLORS = { wasm: '#2b6cb0', reference: '#a0aec0', 'copy-limit': '#38a169' };
const PEER = '#dd6b20';
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const rate = (n) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} G/s` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M/s` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k/s` : `${n.toFixed(0)}/s`);

export function ratioChart(cases, title = 'sgring benchmarks') {
  const groups = new Map();
  for (const c of cases) {
    const key = `${c.suite} | ${c.name} | ${c.payloadBytes} B`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(c);
  }
  const shown = [...groups].filter(([, g]) => g.length > 1);
  const W = 1000;
  const LABEL = 380;
  const BAR = 14;
  let y = 40;
  const parts = [];
  for (const [key, g] of shown) {
    const max = Math.max(...g.map((c) => c.opsPerSec));
    const wasm = g.find((c) => c.engine === 'wasm');
    parts.push(`<text x="8" y="${y + 11}" font-size="12" font-weight="bold">${esc(key)}</text>`);
    y += 16;
    for (const c of g) {
      const w = Math.max(1, ((W - LABEL - 170) * c.opsPerSec) / max);
      const ratio = wasm && c !== wasm ? ` (${(c.opsPerSec / wasm.opsPerSec).toFixed(2)}x wasm)` : '';
      parts.push(`<text x="${LABEL - 6}" y="${y + 11}" font-size="11" text-anchor="end">${esc(c.engine)}</text>`,
        `<rect x="${LABEL}" y="${y}" width="${w.toFixed(1)}" height="${BAR - 2}" fill="${COLORS[c.engine] ?? PEER}"/>`,
        `<text x="${(LABEL + w + 6).toFixed(1)}" y="${y + 11}" font-size="11">${esc(rate(c.opsPerSec) + ratio)}</text>`);
      y += BAR;
    }
    y += 8;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y + 10}" viewBox="0 0 ${W} ${y + 10}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="8" y="24" font-size="16" font-weight="bold">${esc(title)}: rate per engine, bars relative to the fastest of each case</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
