import type { Role } from './subjects/subject.js';

/** One line of a chart: a subject's figures at each x it was measured at. */
export interface Series {
  readonly label: string;
  readonly role: Role;
  readonly points: readonly (readonly [x: number, y: number])[];
}

export interface Axis {
  readonly label: string;
  /** Logarithmic (base 10) rather than linear; every value must then be > 0. */
  readonly log: boolean;
  readonly format: (value: number) => string;
}

export interface LineChart {
  readonly title: string;
  readonly x: Axis;
  readonly y: Axis;
  /** The x values measured, each labelled on the axis (a log axis would otherwise label only powers of ten). */
  readonly xTicks: readonly number[];
  readonly series: readonly Series[];
}

/** hoard's lines in blues, the floor in black, peers in colours that stay apart in print. */
const PALETTE: Record<Role, readonly string[]> = {
  hoard: ['#1f77b4', '#17becf', '#6baed6'],
  floor: ['#333333'],
  peer: ['#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#bcbd22', '#7f7f7f'],
};

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Maps a value onto [0, 1] of an axis spanning [low, high]. */
function scale(axis: Axis, low: number, high: number): (value: number) => number {
  if (axis.log) {
    const [a, b] = [Math.log10(low), Math.log10(high)];
    return (value) => (b === a ? 0.5 : (Math.log10(value) - a) / (b - a));
  }
  return (value) => (high === low ? 0.5 : (value - low) / (high - low));
}

/** The y range and its gridlines: powers of ten (and their 2 and 5 multiples when few) on a log axis, round steps otherwise. */
function yGrid(axis: Axis, values: readonly number[]): { low: number; high: number; ticks: number[] } {
  const min = Math.min(...values);
  const max = Math.max(...values);
  if (axis.log) {
    const low = 10 ** Math.floor(Math.log10(min));
    const high = 10 ** Math.ceil(Math.log10(max));
    const decades = Math.log10(high / low);
    const ticks: number[] = [];
    for (let power = low; power <= high * 1.0001; power *= 10) {
      for (const factor of decades <= 2 ? [1, 2, 5] : [1]) if (power * factor <= high * 1.0001) ticks.push(power * factor);
    }
    return { low, high, ticks };
  }
  const rough = max / 5;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * magnitude).find((candidate) => candidate >= rough) ?? rough;
  const high = Math.ceil(max / step) * step;
  const ticks: number[] = [];
  for (let tick = 0; tick <= high + step / 1000; tick += step) ticks.push(tick);
  return { low: 0, high, ticks };
}

/**
 * A line chart as a standalone SVG file (no fonts or scripts fetched): one polyline with dots
 * per series, gridlines, axis labels and a legend below the plot.
 */
export function svgLineChart(chart: LineChart): string {
  const plot = { left: 78, top: 34, width: 520, height: 260 };
  const legendRows = Math.ceil(chart.series.length / 2);
  const plotWidth = plot.left + plot.width + 24;
  // The legend's second column starts half way across; a long label there widens the picture.
  const longest = Math.max(...chart.series.map((series) => series.label.length));
  const width = Math.max(plotWidth, Math.ceil(8 + plotWidth / 2 + 28 + longest * 8 + 8));
  const height = plot.top + plot.height + 48 + legendRows * 18 + 8;
  const xs = chart.xTicks;
  const ys = chart.series.flatMap((series) => series.points.map(([, y]) => y)).filter((y) => !chart.y.log || y > 0);
  const grid = yGrid(chart.y, ys.length > 0 ? ys : [1]);
  const toX = scale(chart.x, Math.min(...xs), Math.max(...xs));
  const toY = scale(chart.y, grid.low, grid.high);
  const px = (x: number) => (plot.left + toX(x) * plot.width).toFixed(1);
  const py = (y: number) => (plot.top + plot.height - toY(y) * plot.height).toFixed(1);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="8" y="18" font-weight="bold">${escapeXml(chart.title)}</text>`,
  ];
  for (const tick of grid.ticks) {
    out.push(
      `<line x1="${plot.left}" y1="${py(tick)}" x2="${plot.left + plot.width}" y2="${py(tick)}" stroke="#e5e5e5"/>`,
      `<text x="${plot.left - 6}" y="${(Number(py(tick)) + 4).toFixed(1)}" text-anchor="end">${escapeXml(chart.y.format(tick))}</text>`,
    );
  }
  for (const tick of xs) {
    out.push(
      `<line x1="${px(tick)}" y1="${plot.top}" x2="${px(tick)}" y2="${plot.top + plot.height}" stroke="#f0f0f0"/>`,
      `<text x="${px(tick)}" y="${plot.top + plot.height + 16}" text-anchor="middle">${escapeXml(chart.x.format(tick))}</text>`,
    );
  }
  out.push(
    `<rect x="${plot.left}" y="${plot.top}" width="${plot.width}" height="${plot.height}" fill="none" stroke="#999999"/>`,
    `<text x="${plot.left + plot.width / 2}" y="${plot.top + plot.height + 34}" text-anchor="middle">${escapeXml(chart.x.label)}</text>`,
    `<text transform="translate(14 ${plot.top + plot.height / 2}) rotate(-90)" text-anchor="middle">${escapeXml(chart.y.label)}</text>`,
  );
  const used: Record<Role, number> = { hoard: 0, floor: 0, peer: 0 };
  chart.series.forEach((series, index) => {
    const colours = PALETTE[series.role];
    const colour = colours[used[series.role]++ % colours.length]!;
    const points = series.points.filter(([x, y]) => Number.isFinite(y) && (!chart.y.log || y > 0) && x > 0);
    const dash = series.role === 'floor' ? ' stroke-dasharray="5 3"' : '';
    const strokeWidth = series.role === 'hoard' ? 2.5 : 1.5;
    if (points.length > 1) {
      out.push(
        `<polyline fill="none" stroke="${colour}" stroke-width="${strokeWidth}"${dash} points="${points.map(([x, y]) => `${px(x)},${py(y)}`).join(' ')}"/>`,
      );
    }
    for (const [x, y] of points) out.push(`<circle cx="${px(x)}" cy="${py(y)}" r="3" fill="${colour}"/>`);
    const lx = 8 + (index % 2) * (plotWidth / 2);
    const ly = plot.top + plot.height + 52 + Math.floor(index / 2) * 18;
    out.push(
      `<line x1="${lx}" y1="${ly - 4}" x2="${lx + 22}" y2="${ly - 4}" stroke="${colour}" stroke-width="${strokeWidth}"${dash}/>`,
      `<text x="${lx + 28}" y="${ly}">${escapeXml(series.label)}</text>`,
    );
  });
  out.push('</svg>', '');
  return out.join('\n');
}
