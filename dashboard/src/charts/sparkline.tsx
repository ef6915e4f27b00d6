// A sparkline: the recent values of one series as a small SVG line, for the fleet page's cells.
// Plain SVG rather than uPlot, so the fleet page (the first page most people open) carries no
// chart library. It only shows the trend: the number beside it is the text, so it is hidden from
// screen readers. `data-points` is how many values it draws.
const W = 48;
const H = 18;

export function Sparkline({ values, max }: { values: number[]; max?: number }) {
  if (values.length < 2) return <svg class="sparkline" width={W} height={H} aria-hidden="true" data-points={values.length} />;
  const top = max ?? Math.max(...values, 1);
  const step = W / (values.length - 1);
  const y = (v: number) => (H - 1 - (Math.min(Math.max(v, 0), top) / top) * (H - 2)).toFixed(1);
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${y(v)}`).join(' ');
  return (
    <svg class="sparkline" width={W} height={H} viewBox={`0 0 ${W} ${H}`} aria-hidden="true" data-points={values.length}>
      <polyline points={points} fill="none" stroke="currentColor" stroke-width="1.5" stroke-linejoin="round" />
    </svg>
  );
}
