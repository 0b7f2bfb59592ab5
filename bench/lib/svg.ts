/** Plots as hand-written SVG (no plotting dependency): lines over x, and cumulative distributions. */

export interface Series {
  name: string;
  points: Array<[number, number]>;
  dashed?: boolean;
  /** Index into the palette; default: the series' position. Series of one system share it. */
  color?: number;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const W = 720;
const H = 420;
const M = { left: 64, right: 190, top: 40, bottom: 52 };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const step0 = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step0) ?? step0;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) ticks.push(Number(t.toPrecision(6)));
  return ticks;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** log2 x axis (concurrency 1, 2, 4 …). */
  logX?: boolean;
  /** A horizontal guide, e.g. the 2 s target. */
  hLine?: { y: number; label: string };
  yMax?: number;
}

export function lineChart(series: Series[], options: ChartOptions): string {
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const fx = (x: number) => (options.logX ? Math.log2(Math.max(x, 1e-9)) : x);
  const xs = all.map(([x]) => fx(x));
  const xLo = Math.min(...xs, 0);
  const xHi = Math.max(...xs, xLo + 1);
  const yHi = options.yMax ?? Math.max(...all.map(([, y]) => y), options.hLine?.y ?? 0) * 1.1;
  const yLo = 0;
  const px = (x: number) => M.left + ((fx(x) - xLo) / (xHi - xLo)) * (W - M.left - M.right);
  const py = (y: number) => H - M.bottom - ((Math.min(y, yHi) - yLo) / (yHi - yLo || 1)) * (H - M.top - M.bottom);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2 - M.right / 2}" y="22" text-anchor="middle" font-size="15">${esc(options.title)}</text>`);
  // axes and grid
  const xTicks = options.logX ? Array.from({ length: Math.floor(xHi) - Math.ceil(xLo) + 1 }, (_, i) => 2 ** (Math.ceil(xLo) + i)) : niceTicks(xLo, xHi);
  for (const t of xTicks) {
    const x = px(t);
    out.push(`<line x1="${x}" y1="${M.top}" x2="${x}" y2="${H - M.bottom}" stroke="#eee"/>`);
    out.push(`<text x="${x}" y="${H - M.bottom + 16}" text-anchor="middle">${t}</text>`);
  }
  for (const t of niceTicks(yLo, yHi)) {
    const y = py(t);
    out.push(`<line x1="${M.left}" y1="${y}" x2="${W - M.right}" y2="${y}" stroke="#eee"/>`);
    out.push(`<text x="${M.left - 6}" y="${y + 4}" text-anchor="end">${t}</text>`);
  }
  out.push(`<line x1="${M.left}" y1="${H - M.bottom}" x2="${W - M.right}" y2="${H - M.bottom}" stroke="black"/>`);
  out.push(`<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${H - M.bottom}" stroke="black"/>`);
  out.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 12}" text-anchor="middle">${esc(options.xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(options.yLabel)}</text>`);
  if (options.hLine && options.hLine.y <= yHi) {
    const y = py(options.hLine.y);
    out.push(`<line x1="${M.left}" y1="${y}" x2="${W - M.right}" y2="${y}" stroke="#999" stroke-dasharray="6 4"/>`);
    out.push(`<text x="${W - M.right - 4}" y="${y - 4}" text-anchor="end" fill="#666">${esc(options.hLine.label)}</text>`);
  }
  series.forEach((s, i) => {
    const color = COLORS[(s.color ?? i) % COLORS.length];
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (pts.length === 0) return;
    const d = pts.map(([x, y], k) => `${k === 0 ? 'M' : 'L'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`);
    if (pts.length < 40) for (const [x, y] of pts) out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${color}"/>`);
    const ly = M.top + 10 + i * 18;
    out.push(`<line x1="${W - M.right + 12}" y1="${ly}" x2="${W - M.right + 32}" y2="${ly}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`);
    out.push(`<text x="${W - M.right + 36}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

/** Empirical CDFs of several samples (e.g. end of speech → final, in seconds). */
export function cdfChart(samples: Array<{ name: string; values: number[]; dashed?: boolean; color?: number }>, options: Omit<ChartOptions, 'logX'>): string {
  const series: Series[] = samples
    .filter((s) => s.values.length > 0)
    .map((s) => {
      const sorted = [...s.values].sort((a, b) => a - b);
      const points: Array<[number, number]> = [[sorted[0], 0]];
      sorted.forEach((v, i) => {
        points.push([v, i / sorted.length]);
        points.push([v, (i + 1) / sorted.length]);
      });
      return { name: s.name, points, dashed: s.dashed, color: s.color };
    });
  return lineChart(series, { ...options, yMax: 1 });
}
