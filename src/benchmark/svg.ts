/**
 * The ratios as a chart (`--svg FILE`), hand-written SVG with no dependency: one panel for
 * throughput, one for p50; a bar is the median paired ratio, its whisker the min and max over the
 * rounds, and the dashed line is the baseline (1).
 */
import { QUERIES, type BenchResult, type Spread } from './index.ts';

interface Bar {
  readonly label: string;
  readonly color: string;
  readonly value: Spread;
}

const WIDTH = 860;
const PANEL = 230;
const LEFT = 56;
const RIGHT = 16;
const TOP = 96;
const GAP = 64;
const COLORS = { V1: '#e07a3f', V2: '#2a9d8f', V3: '#3d6fa8', gateway: '#7a5195' } as const;
const LEGEND: Array<[string, string]> = [
  [COLORS.V1, 'V1 seed recipe (GUC policy)'],
  [COLORS.V2, 'V2 tenantQuery, one statement'],
  [COLORS.V3, 'V3 withTenant, one query'],
  [COLORS.gateway, 'serve vs naive gateway'],
];

export function renderSvg(r: BenchResult): string {
  const groups = (pick: (q: (typeof QUERIES)[number], v: 'V1' | 'V2' | 'V3') => Spread, gateway: Spread) => [
    ...QUERIES.map((q) => ({ name: q, bars: (['V1', 'V2', 'V3'] as const).map((v) => ({ label: v, color: COLORS[v], value: pick(q, v) })) })),
    { name: 'gateway', bars: [{ label: 'serve', color: COLORS.gateway, value: gateway }] },
  ];
  const height = TOP + 2 * PANEL + GAP + 40;
  let legendX = LEFT;
  const legend = LEGEND.map(([color, text]) => {
    const item = `<rect x="${legendX}" y="66" width="10" height="10" fill="${color}"/><text x="${legendX + 14}" y="75">${esc(text)}</text>`;
    legendX += 14 + text.length * 6.2 + 18;
    return item;
  });
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${LEFT}" y="22" font-size="15" font-weight="bold">${esc(`tenantfence bench: PostgreSQL ${r.server.version}, ${r.dataset.rows} rows, ${r.dataset.tenants} tenants`)}</text>`,
    `<text x="${LEFT}" y="40" fill="#555">ratio to the baseline measured in the same round: V0 the query alone with WHERE tenant_id (no RLS); the gateway vs a naive gateway</text>`,
    `<text x="${LEFT}" y="56" fill="#555">${esc(`bar: median of ${r.settings.repeat} rounds; whisker: min to max; dashed line: 1 (as fast as the baseline); ${r.machine.cpus} CPUs, load ${r.machine.loadAverage.map((l) => l.toFixed(1)).join(' to ')}`)}</text>`,
    ...legend,
    panel('throughput vs baseline (higher is better)', TOP, groups((q, v) => r.ratios[q][`${v}/V0`], r.gateway['throughput/naive'])),
    panel('p50 latency vs baseline (lower is better)', TOP + PANEL + GAP, groups((q, v) => r.p50Ratios[q][`${v}/V0`], r.gateway['p50/naive'])),
    '</svg>',
  ];
  return `${out.join('\n')}\n`;
}

function panel(title: string, y0: number, groups: Array<{ name: string; bars: Bar[] }>): string {
  const top = Math.max(1.2, ...groups.flatMap((g) => g.bars.map((b) => b.value.max))) * 1.1;
  const step = niceStep(top);
  const ceiling = Math.ceil(top / step) * step;
  const plotW = WIDTH - LEFT - RIGHT;
  const y = (v: number) => y0 + PANEL - (v / ceiling) * PANEL;
  const parts = [`<text x="${LEFT}" y="${y0 - 8}" font-weight="bold">${esc(title)}</text>`];
  for (let v = 0; v <= ceiling + 1e-9; v += step) {
    parts.push(`<line x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${fmt(y(v))}" y2="${fmt(y(v))}" stroke="#e4e4e4"/>`);
    parts.push(`<text x="${LEFT - 6}" y="${fmt(y(v) + 4)}" text-anchor="end" fill="#555">${Number(v.toFixed(2))}x</text>`);
  }
  const groupW = plotW / groups.length;
  const barW = groupW / 5;
  groups.forEach((group, gi) => {
    const x0 = LEFT + gi * groupW + (groupW - group.bars.length * barW) / 2;
    group.bars.forEach((bar, bi) => {
      const x = x0 + bi * barW + barW * 0.1;
      const w = barW * 0.8;
      const mid = x + w / 2;
      const { min, median, max } = bar.value;
      parts.push(`<rect x="${fmt(x)}" y="${fmt(y(median))}" width="${fmt(w)}" height="${fmt(y(0) - y(median))}" fill="${bar.color}"><title>${esc(`${group.name} ${bar.label}: median ${median.toFixed(3)}, min ${min.toFixed(3)}, max ${max.toFixed(3)}`)}</title></rect>`);
      parts.push(`<path d="M${fmt(mid)} ${fmt(y(min))}V${fmt(y(max))}M${fmt(mid - w / 4)} ${fmt(y(min))}h${fmt(w / 2)}M${fmt(mid - w / 4)} ${fmt(y(max))}h${fmt(w / 2)}" stroke="#222" stroke-width="1.2" fill="none"/>`);
      parts.push(`<text x="${fmt(mid)}" y="${fmt(y(max) - 4)}" text-anchor="middle" font-size="10">${median.toFixed(2)}</text>`);
      parts.push(`<text x="${fmt(mid)}" y="${fmt(y(0) + 13)}" text-anchor="middle" font-size="10" fill="#555">${esc(bar.label)}</text>`);
    });
    parts.push(`<text x="${fmt(LEFT + gi * groupW + groupW / 2)}" y="${fmt(y(0) + 28)}" text-anchor="middle" font-weight="bold">${esc(group.name)}</text>`);
  });
  parts.push(`<line x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${fmt(y(1))}" y2="${fmt(y(1))}" stroke="#c0392b" stroke-dasharray="5 4"/>`);
  parts.push(`<line x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${fmt(y(0))}" y2="${fmt(y(0))}" stroke="#333"/>`);
  return parts.join('\n');
}

function niceStep(top: number): number {
  const raw = top / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw)!;
}

const fmt = (n: number) => (Math.round(n * 10) / 10).toString();

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
