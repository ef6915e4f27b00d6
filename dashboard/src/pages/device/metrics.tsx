// The device's Metrics tab: charts of CPU (total and per core), memory and swap, disk use per
// mount and disk I/O, network, temperature, load and GPU (a chart only for what the device
// measures), from its history (GET /api/v1/history, at the resolution the zoom picks) with live
// samples added while the last hour is shown. The live samples come over the device's own metrics
// stream (charts/metrics-socket.ts), which makes the device sample every second while the tab is
// open. The zoom is in the page's URL (?range=24h), so a view can be linked and reloaded.
import { useLocation } from 'preact-iso';
import { useCallback, useState } from 'preact/hooks';
import type { HistoryResponse, MetricsEvent } from '../../../../shared/api/metrics.ts';
import { seriesOf } from '../../../../shared/api/series.ts';
import { get, query } from '../../api.ts';
import { Chart, type ChartLine, type ChartTable } from '../../charts/chart.tsx';
import type { Unit } from '../../charts/format.ts';
import { has, MAX_LIVE_POINTS, tableOf, ZOOMS, type LivePoint, type Zoom } from '../../charts/history.ts';
import { useMetricsSocket, type LiveState } from '../../charts/metrics-socket.ts';
import { Empty, LoadError, Loading, Time } from '../../ui/bits.tsx';
import { useLoad } from '../../ui/use-load.ts';
import { tabHref, type DeviceTabProps } from './shared.ts';
import './metrics.css';

interface ChartDef {
  id: string;
  title: string;
  unit: Unit;
  yMax?: number;
  description?: string;
  minorName?: string;
  /** The chart's lines among the series the table holds (none: no chart). */
  lines: (keys: string[]) => ChartLine[];
}

/** Cores are drawn as lines of their own in the legend up to this many; beyond, as thin lines under the total. */
const NAMED_CORES = 4;
/**
 * At most this many lines per chart (a sample holds at most SAMPLE_LIMITS' 512 cores and 64 mounts;
 * history could name more, from a device's backlog): a device cannot make the page draw thousands.
 */
const MAX_CORES = 512;
const MAX_MOUNTS = 64;

const CHARTS: ChartDef[] = [
  {
    id: 'cpu',
    title: 'CPU',
    unit: 'percent',
    yMax: 100,
    description: 'total and per core',
    minorName: 'cores',
    lines: (keys) => {
      const cores = keys
        .filter((k) => /^cpu\.\d+$/.test(k))
        .map((k) => Number(k.slice(4)))
        .sort((a, b) => a - b)
        .slice(0, MAX_CORES);
      const many = cores.length > NAMED_CORES;
      return [
        ...(keys.includes('cpu') ? [{ key: 'cpu', label: 'Total' }] : []),
        ...cores.map((c) => ({ key: `cpu.${c}`, label: `Core ${c}`, minor: many, band: false })),
      ];
    },
  },
  {
    id: 'memory',
    title: 'Memory',
    unit: 'percent',
    yMax: 100,
    description: 'used, and swap used',
    lines: (keys) => [
      ...(keys.includes('memory') ? [{ key: 'memory', label: 'Memory' }] : []),
      ...(keys.includes('swap') ? [{ key: 'swap', label: 'Swap' }] : []),
    ],
  },
  {
    id: 'disk',
    title: 'Disk used',
    unit: 'percent',
    yMax: 100,
    description: 'per mount',
    lines: (keys) => {
      const mounts = keys
        .filter((k) => k.startsWith('disk:'))
        .sort()
        .slice(0, MAX_MOUNTS);
      if (mounts.length) return mounts.map((k) => ({ key: k, label: k.slice(5) }));
      return keys.includes('disk') ? [{ key: 'disk', label: 'Fullest mount' }] : [];
    },
  },
  {
    id: 'disk-io',
    title: 'Disk I/O',
    unit: 'rate',
    description: 'read and write rates over every disk',
    lines: (keys) => [
      ...(keys.includes('disk_read') ? [{ key: 'disk_read', label: 'Read' }] : []),
      ...(keys.includes('disk_write') ? [{ key: 'disk_write', label: 'Write' }] : []),
    ],
  },
  {
    id: 'network',
    title: 'Network',
    unit: 'rate',
    description: 'received and sent over every interface but loopback',
    lines: (keys) => [
      ...(keys.includes('net_rx') ? [{ key: 'net_rx', label: 'Received' }] : []),
      ...(keys.includes('net_tx') ? [{ key: 'net_tx', label: 'Sent' }] : []),
    ],
  },
  { id: 'temperature', title: 'Temperature', unit: 'celsius', description: 'the hottest sensor', lines: (keys) => (keys.includes('temperature') ? [{ key: 'temperature', label: 'Hottest sensor' }] : []) },
  {
    id: 'load',
    title: 'Load average',
    unit: 'count',
    lines: (keys) =>
      (
        [
          ['load1', '1 min'],
          ['load5', '5 min'],
          ['load15', '15 min'],
        ] as const
      )
        .filter(([k]) => keys.includes(k))
        .map(([key, label]) => ({ key, label, band: key === 'load1' })),
  },
  { id: 'gpu', title: 'GPU', unit: 'percent', yMax: 100, description: 'the busiest GPU', lines: (keys) => (keys.includes('gpu') ? [{ key: 'gpu', label: 'Busiest GPU' }] : []) },
];

/** `live` with `p` added in time order (a sample the relay sends again is kept once), newest hour only. */
function withPoint(live: LivePoint[], p: LivePoint): LivePoint[] {
  const last = live[live.length - 1];
  let next: LivePoint[];
  if (!last || p.t > last.t) next = [...live, p];
  else if (live.some((q) => q.t === p.t)) return live;
  else next = [...live, p].sort((a, b) => a.t - b.t);
  const from = next[next.length - 1]!.t - ZOOMS[0]!.ms;
  let drop = 0;
  while (drop < next.length && (next[drop]!.t < from || next.length - drop > MAX_LIVE_POINTS)) drop++;
  return drop ? next.slice(drop) : next;
}

const LIVE_TEXT: Record<LiveState, string> = {
  connecting: 'Connecting to the live samples…',
  live: 'Live: a new sample every second',
  reconnecting: 'Live samples interrupted; reconnecting…',
};

function ZoomButtons({ zoom, onZoom }: { zoom: Zoom; onZoom: (z: Zoom) => void }) {
  return (
    <div class="metrics-zoom" role="group" aria-label="Time range">
      {ZOOMS.map((z) => (
        <button key={z.id} type="button" aria-pressed={z.id === zoom.id} onClick={() => onZoom(z)}>
          {z.label}
        </button>
      ))}
    </div>
  );
}

export default function MetricsTab({ device }: DeviceTabProps) {
  const { path, query: q, route } = useLocation();
  const zoom = ZOOMS.find((z) => z.id === q.range) ?? ZOOMS[0]!;
  const online = device.status === 'approved' && device.online;

  const history = useLoad(
    async (signal) => {
      const to = Date.now();
      const from = to - zoom.ms;
      const ask = (resolution: string) =>
        get<HistoryResponse>('/api/v1/history' + query({ agent_id: device.id, from: new Date(from).toISOString(), to: new Date(to).toISOString(), resolution }), { signal });
      try {
        return { answer: await ask(zoom.resolution), from, to, zoom: zoom.id };
      } catch (e) {
        // More raw points than an answer holds (a device that sampled fast all hour): the minute rollup.
        if ((e as { status?: number }).status === 400 && zoom.fallback) return { answer: await ask(zoom.fallback), from, to, zoom: zoom.id };
        throw e;
      }
    },
    [device.id, zoom.id],
  );

  const [live, setLive] = useState<LivePoint[]>([]);
  const [latest, setLatest] = useState<MetricsEvent | undefined>(undefined);
  const refused = history.error?.status === 403 || history.error?.status === 404;
  const onSample = useCallback((e: MetricsEvent) => {
    const t = Date.parse(e.timestamp);
    if (!Number.isFinite(t)) return;
    setLive((old) => withPoint(old, { t, series: seriesOf(e) }));
    setLatest((old) => (!old || Date.parse(old.timestamp) <= t ? e : old));
  }, []);
  // Live samples once history has answered: a caller it refuses (403, 404) opens no socket.
  const liveState = useMetricsSocket(device.id, history.data !== undefined, onSample, () => void history.reload());

  // Another zoom's answer is not this one's, even for the moment the new one is on its way.
  const loaded = history.data?.zoom === zoom.id ? history.data : undefined;
  const now = zoom.live ? Math.max(Date.now(), live[live.length - 1]?.t ?? 0) : (loaded?.to ?? Date.now());
  const fromMs = zoom.live ? now - zoom.ms : (loaded?.from ?? now - zoom.ms);
  const table: ChartTable | undefined = loaded && tableOf(loaded.answer, zoom.live ? live : [], fromMs);
  const keys = table ? [...table.avg.keys()].filter((k) => has(table, k)) : [];
  const range: [number, number] = [fromMs / 1000, now / 1000];
  const resolution = loaded?.answer.resolution;

  return (
    <section class="metrics" aria-labelledby="metrics-title" data-resolution={resolution}>
      <div class="section-head">
        <h2 id="metrics-title">Metrics</h2>
        <ZoomButtons zoom={zoom} onZoom={(z) => route(path + query({ ...q, range: z.id === ZOOMS[0]!.id ? '' : z.id }), true)} />
      </div>
      {!online && device.status === 'approved' && (
        <p class="notice">
          <strong>This device is offline</strong>
          {device.last_seen ? (
            <>
              {' '}
              — last seen <Time iso={device.last_seen} />
            </>
          ) : null}
          . The charts show its history; live samples start again when it comes back (this tab waits for them). What to check on it is on its{' '}
          <a href={tabHref(device.id, '')}>overview</a>.
        </p>
      )}
      {!refused && (
        <p class="muted metrics-live" role="status">
          {online ? LIVE_TEXT[liveState] : 'No live samples while the device is offline.'}
          {latest && (
            <>
              {' '}
              · last sample <Time iso={latest.timestamp} />
            </>
          )}
          {zoom.live ? '' : ` · live samples are added on the ${ZOOMS[0]!.label} view`}
        </p>
      )}
      {history.error && !history.loading ? (
        <LoadError error={history.error} retry={refused ? undefined : () => void history.reload()} />
      ) : !table ? (
        <Loading what="metrics" />
      ) : table.x.length === 0 ? (
        <Empty title={`No samples in the last ${zoom.label}.`}>
          <p>
            {online
              ? 'The device is online: its first samples arrive within seconds and show here as they come.'
              : 'Samples are kept while the device is connected; this one has sent none in this range.'}{' '}
            {zoom.live ? '' : 'Try a longer range, or the last hour for the live view.'}
          </p>
        </Empty>
      ) : (
        <>
          <p class="muted metrics-resolution">
            {resolution === 'raw'
              ? 'Every sample as the device took it.'
              : `Averages per ${resolution === '1m' ? 'minute' : resolution === '5m' ? '5 minutes' : 'hour'}; the shaded band is each bucket's lowest to highest value.`}
          </p>
          <div class="metrics-charts">
            {CHARTS.map((c) => {
              const lines = c.lines(keys);
              if (!lines.length) return null;
              return <Chart key={c.id} id={`chart-${c.id}`} title={c.title} unit={c.unit} yMax={c.yMax} description={c.description} minorName={c.minorName} lines={lines} table={table} range={range} />;
            })}
          </div>
        </>
      )}
    </section>
  );
}
