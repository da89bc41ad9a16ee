import type { Role } from './subjects/subject.js';

/** One bar of the chart: a subject's ratio to its scenario's floor. */
export interface Bar {
  readonly label: string;
  readonly ratio: number;
  readonly role: Role;
}

/** A target of issue 6, checked against this run. */
export interface TargetResult {
  readonly target: string;
  readonly measured: string;
  readonly holds: boolean;
}

/** What a scenario reports: its table, its bars (ratio scenarios only) and the targets it checks. */
export interface Section {
  readonly title: string;
  /** Markdown: what was measured and how. */
  readonly description: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly string[])[];
  readonly bars: readonly Bar[];
  readonly targets: readonly TargetResult[];
  /** A chart of the section's figures, written beside the report as `file` (SVG text in `svg`). */
  readonly chart?: { readonly file: string; readonly svg: string };
  /** The command that measures this section alone. */
  readonly command?: string;
  /** Markdown after the table: what the figures decided, written by hand, kept across runs. */
  readonly notes?: string;
}

export function formatRate(opsPerSecond: number): string {
  if (opsPerSecond >= 1e6) return `${(opsPerSecond / 1e6).toFixed(2)} M`;
  if (opsPerSecond >= 1e3) return `${(opsPerSecond / 1e3).toFixed(1)} k`;
  return opsPerSecond.toFixed(0);
}

export function formatRatio(ratio: number): string {
  return `${ratio >= 0.1 ? ratio.toFixed(2) : ratio.toFixed(3)}×`;
}

export function target(text: string, value: number, bound: number, measured = formatRatio(value)): TargetResult {
  return { target: text, measured, holds: value >= bound };
}

function markdownTable(columns: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.map((cell) => cell.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(columns), line(columns.map(() => '---')), ...rows.map(line)].join('\n');
}

export interface Machine {
  readonly cores: number;
  readonly cpu: string;
  readonly node: string;
  readonly date: string;
  readonly command: string;
  readonly servers: string;
  /** How each throughput scenario was timed, e.g. `15 rounds of 100 ms per subject`. */
  readonly timing: string;
  readonly seconds: number;
}

/** Where docs/benchmarks.md keeps what people wrote about a run (causes, what was tried): a full run carries it over. */
const ANALYSIS = /<!-- analysis[^>]*-->[\s\S]*?<!-- \/analysis -->\n/;

/** The hand-written analysis of `page` (a previous report), markers included; undefined when it has none. */
export function analysisOf(page: string): string | undefined {
  return ANALYSIS.exec(page)?.[0];
}

export function markdownReport(
  machine: Machine,
  sections: readonly Section[],
  chartFile: string | undefined,
  analysis: string | undefined,
): string {
  const targets = sections.flatMap((section) => section.targets);
  const parts = [
    '# Benchmarks',
    '',
    'hoard against the Node caching libraries users choose between, all in one process, every figure also given',
    'as a ratio to a hand-written floor measured in the same run. Regenerate this page with the command below',
    '(`npm run bench -- --quick` or `npm run bench -- memory-hit heap` for a partial run, written to',
    '`build/bench/` instead).',
    '',
    `- Command: \`${machine.command}\` (${machine.seconds.toFixed(0)} s)`,
    `- Machine: ${machine.cores} cores (\`nproc\`), ${machine.cpu}`,
    `- Node ${machine.node}; ${machine.servers}, started by the bench on free loopback ports like the specs do`,
    `- Date: ${machine.date}`,
    '',
    '**How it is measured.** Throughput scenarios run one untimed round, then ' + machine.timing + ', the',
    "subjects interleaved (each round visits every subject, starting one further along). A subject's figure is",
    'its median ops/s; its ratio is the median of its per-round ratios to the floor of the same round, so that load',
    'from outside the run, which slows whole stretches of rounds, mostly cancels out. The servers share the two',
    'cores with the client, so remote figures also measure how much CPU a library leaves the server.',
    'Between two subjects the event loop turns once, as it does between requests in a service: what a library',
    'finishes in `process.nextTick` or a timer is done before the next one runs (memoizee moves a computed promise',
    'into its cache on the next tick; until then its hits take a quicker path no service sees for long).',
    '',
    "**Checks.** Every call's value is checked against its arguments. While hits are timed a subject's",
    'computation must not run (and in the miss scenario it must run once per call); a subject that fails a check',
    'is reported as such and gets no ratio.',
    '',
    '**Same work for every subject.** Each library caches one async function whose body is the same',
    'computation: the decorated method for hoard @Cached and @type-cacheable, the function handed over for',
    '`cached(fn)`, p-memoize, memoizee and the rest. No subject pays for an extra async layer around it.',
    '',
    '## Targets (issues 6 and 21)',
    '',
    markdownTable(
      ['Target', 'Measured', 'Holds'],
      targets.map((t) => [t.target, t.measured, t.holds ? 'yes' : '**no**']),
    ),
    '',
  ];
  if (chartFile !== undefined) parts.push(`![Ratios to each scenario's floor](${chartFile})`, '');
  if (analysis !== undefined) parts.push(analysis);
  for (const section of sections) {
    parts.push(`## ${section.title}`, '', section.description, '');
    if (section.chart !== undefined) parts.push(`![${section.title}](${section.chart.file})`, '');
    parts.push(markdownTable(section.columns, section.rows), '');
    if (section.command !== undefined) parts.push(`Alone: \`${section.command}\`.`, '');
    if (section.notes !== undefined) parts.push(section.notes, '');
  }
  return parts.join('\n');
}

const COLOURS: Record<Role, string> = { floor: '#555555', hoard: '#1f77b4', peer: '#b0b0b0' };

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * A horizontal bar chart of every section's ratios, one group per section, with a line at the
 * floor (1.0×). Ratios above the scale's end are clipped and labelled with their value.
 */
export function svgChart(sections: readonly Section[]): string {
  const charted = sections.filter((section) => section.bars.length > 0);
  // Room for the longest label at ~7.2 px a character of the 12 px sans-serif font (wide glyphs included).
  const labelWidth = Math.max(200, Math.ceil(Math.max(...charted.flatMap((s) => s.bars.map((b) => b.label.length))) * 7.2) + 16);
  const barArea = 420;
  const rowHeight = 18;
  const scaleMax = Math.max(1.5, Math.min(3, Math.ceil(Math.max(...charted.flatMap((s) => s.bars.map((b) => b.ratio))) * 4) / 4));
  const x = (ratio: number) => labelWidth + (Math.min(ratio, scaleMax) / scaleMax) * barArea;
  const body: string[] = [];
  let y = 44;
  for (const section of charted) {
    y += 16;
    body.push(`<text x="8" y="${y}" font-weight="bold">${escapeXml(section.title)}</text>`);
    y += 6;
    for (const bar of section.bars) {
      const width = Math.max(1, x(bar.ratio) - labelWidth);
      body.push(
        `<text x="${labelWidth - 6}" y="${y + 13}" text-anchor="end">${escapeXml(bar.label)}</text>`,
        `<rect x="${labelWidth}" y="${y + 3}" width="${width.toFixed(1)}" height="${rowHeight - 6}" fill="${COLOURS[bar.role]}"/>`,
        `<text x="${(labelWidth + width + 4).toFixed(1)}" y="${y + 13}">${formatRatio(bar.ratio)}</text>`,
      );
      y += rowHeight;
    }
    y += 6;
  }
  const height = y + 30;
  const ticks: string[] = [];
  for (let tick = 0; tick <= scaleMax + 1e-9; tick += 0.5) {
    const line = tick === 1 ? 'stroke="#d62728" stroke-dasharray="4 3"' : 'stroke="#e5e5e5"';
    ticks.push(
      `<line x1="${x(tick)}" y1="50" x2="${x(tick)}" y2="${height - 22}" ${line}/>`,
      `<text x="${x(tick)}" y="${height - 8}" text-anchor="middle">${tick.toFixed(1)}×</text>`,
    );
  }
  const width = labelWidth + barArea + 70;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}"` +
      ' font-family="sans-serif" font-size="12">',
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="8" y="16" font-weight="bold">Throughput as a ratio to each scenario's floor (dashed line: 1.0×; longer is faster)</text>`,
    ...(['floor', 'hoard', 'peer'] as const).flatMap((role, i) => [
      `<rect x="${8 + i * 90}" y="25" width="10" height="10" fill="${COLOURS[role]}"/>`,
      `<text x="${22 + i * 90}" y="34">${role === 'peer' ? 'peers' : role}</text>`,
    ]),
    ...ticks,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}
