// One time chart drawn by uPlot (a small canvas plotter, ~50 KB minified, loaded only with the
// pages that import this module, in their own chunk). The wrapper keeps uPlot's instance across
// renders (new data is setData, never a new chart, unless the lines themselves change), sizes it
// to its container (a ResizeObserver: no fixed width, so no sideways scroll on a phone), takes its
// colours from CSS variables (metrics.css: a palette for light and one for dark that each keep 3:1
// against the panel) and draws it again when the colour scheme changes. The canvas says nothing to
// a screen reader: the chart is an image whose name holds the latest values, and the same values
// are in a visible legend beside their colours. `data-points` on the figure is how many points it
// holds (what a test counts when a live sample arrives).
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { formatTick, formatValue, type Unit } from './format.ts';
import './chart.css';

export interface ChartLine {
  key: string;
  label: string;
  /** Thinner and without a legend entry of its own (the cores under the CPU total). */
  minor?: boolean;
  /** Shade its bucket's min–max range (default: unless minor). */
  band?: boolean;
}

const banding = (l: ChartLine) => l.band ?? !l.minor;

/** Columns: x in seconds since the epoch, each line's averages, and min/max when the points are buckets. */
export interface ChartTable {
  x: number[];
  avg: Map<string, (number | null)[]>;
  min?: Map<string, (number | null)[]>;
  max?: Map<string, (number | null)[]>;
}

export const PALETTE_SIZE = 8;
const HEIGHT = 180;

export const lastValue = (ys: (number | null)[] | undefined): number | null => {
  if (!ys) return null;
  for (let i = ys.length - 1; i >= 0; i--) if (ys[i] !== null && ys[i] !== undefined) return ys[i]!;
  return null;
};

function cssVar(el: Element, name: string): string {
  return getComputedStyle(el).getPropertyValue(name).trim();
}

/** A CSS colour with `alpha` (0–1), for the min–max band under a line. */
function withAlpha(hex: string, alpha: number): string {
  const m = /^#([0-9a-f]{6})$/i.exec(hex);
  if (!m) return hex;
  const n = parseInt(m[1]!, 16);
  return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

const scheme = () => matchMedia('(prefers-color-scheme: dark)');

export function Chart({ id, title, unit, lines, table, range, yMax, description, minorName = 'more lines' }: {
  id: string;
  title: string;
  unit: Unit;
  lines: ChartLine[];
  table: ChartTable;
  /** The x range shown, in seconds (the zoom's window, which may hold fewer points than it spans). */
  range: [number, number];
  /** Percent charts run 0–100 whatever their values. */
  yMax?: number;
  /** What the lines are, for the image's name ("total and per core"). */
  description?: string;
  /** What the minor lines are, counted in the legend ("cores"). */
  minorName?: string;
}) {
  const plot = useRef<HTMLDivElement>(null);
  const chart = useRef<uPlot | null>(null);
  const rangeRef = useRef(range);
  rangeRef.current = range;
  const banded = !!table.min && !!table.max;
  // A new set of lines (or a band appearing) is a new chart; anything else is new data for this one.
  const shape = `${lines.map((l) => `${l.key}${l.minor ? '~' : ''}${banding(l) ? '^' : ''}`).join('|')}#${banded}#${unit}#${yMax ?? ''}`;

  const aligned = (): uPlot.AlignedData => {
    const cols: (number | null)[][] = [];
    for (const l of lines) {
      cols.push(table.avg.get(l.key) ?? []);
      if (banded && banding(l)) cols.push(table.max!.get(l.key) ?? [], table.min!.get(l.key) ?? []);
    }
    return [table.x, ...cols] as uPlot.AlignedData;
  };

  useEffect(() => {
    const el = plot.current!;
    let u: uPlot | null = null;
    const build = () => {
      u?.destroy();
      const colour = (i: number) => cssVar(el, `--chart-${i % PALETTE_SIZE}`) || '#0b57d0';
      const text = cssVar(el, '--muted') || '#555d68';
      const grid = cssVar(el, '--border') || '#c9ced6';
      const series: uPlot.Series[] = [{}];
      const bands: uPlot.Band[] = [];
      lines.forEach((l, i) => {
        const stroke = colour(i);
        // uPlot's own rule for points: shown where they are few enough to see (a device's first samples, a lone sample between gaps).
        series.push({ label: l.label, stroke, width: l.minor ? 1 : 2, points: { fill: stroke }, spanGaps: false });
        if (banded && banding(l)) {
          const at = series.length;
          // The band's edges draw nothing themselves; the fill between them is the range of the bucket.
          series.push({ label: `${l.label} max`, stroke: 'transparent', width: 0, points: { show: false } }, { label: `${l.label} min`, stroke: 'transparent', width: 0, points: { show: false } });
          bands.push({ series: [at, at + 1], fill: withAlpha(stroke, 0.18) });
        }
      });
      const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
      u = new uPlot(
        {
          width: Math.max(el.clientWidth, 100),
          height: HEIGHT,
          series,
          bands,
          legend: { show: false },
          cursor: { drag: { x: false, y: false }, points: { show: false } },
          scales: {
            x: { time: true, range: () => rangeRef.current },
            // From 0 (below it only for what can be: a sensor in the cold), to 100 % or a little over the highest value.
            y: { range: (_u, min, max) => [Math.min(0, min), yMax ?? (max > 0 ? max * 1.1 : 1)] },
          },
          axes: [
            { ...axis, space: 60 },
            { ...axis, size: unit === 'rate' ? 76 : 58, values: (_u, ticks) => ticks.map((t) => formatTick(unit, t)) },
          ],
        },
        aligned(),
        el,
      );
      chart.current = u;
    };
    build();
    const resized = new ResizeObserver(() => {
      const w = Math.max(el.clientWidth, 100);
      if (u && u.width !== w) u.setSize({ width: w, height: HEIGHT });
    });
    resized.observe(el);
    const mq = scheme();
    mq.addEventListener('change', build);
    return () => {
      resized.disconnect();
      mq.removeEventListener('change', build);
      u?.destroy();
      chart.current = null;
    };
  }, [shape]);

  useEffect(() => {
    chart.current?.setData(aligned());
  });

  const major = lines.filter((l) => !l.minor);
  const latest = major.map((l) => `${l.label} ${formatValue(unit, lastValue(table.avg.get(l.key)))}`).join(', ');
  const minors = lines.filter((l) => l.minor);
  const busiest = minors.reduce<number | null>((m, l) => {
    const v = lastValue(table.avg.get(l.key));
    return v === null ? m : m === null ? v : Math.max(m, v);
  }, null);
  const minorNote = minors.length ? `; ${minors.length} ${minorName}${busiest !== null ? `, highest ${formatValue(unit, busiest)}` : ''}` : '';
  return (
    <figure class="panel chart" aria-labelledby={`${id}-title`} data-points={table.x.length} data-chart={id}>
      <figcaption>
        <h3 id={`${id}-title`}>{title}</h3>
      </figcaption>
      <div ref={plot} class="chart-plot" role="img" aria-label={`${title}${description ? ` (${description})` : ''}: latest ${latest}${minorNote}`} />
      <ul class="chart-legend" aria-hidden="true">
        {lines.map((l, i) =>
          l.minor ? null : (
            <li key={l.key}>
              <span class={`chart-swatch chart-swatch-${i % PALETTE_SIZE}`} />
              {l.label} <strong>{formatValue(unit, lastValue(table.avg.get(l.key)))}</strong>
            </li>
          ),
        )}
        {minors.length > 0 && (
          <li class="muted">
            {minors.length} {minorName} (thin lines){busiest !== null && <> · highest {formatValue(unit, busiest)}</>}
          </li>
        )}
      </ul>
    </figure>
  );
}
