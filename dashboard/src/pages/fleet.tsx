// The fleet (path /): every device the user may see, kept live by the fleet stream — a device's
// row turns online or offline in place when its status event arrives, without asking the API
// again — with filters kept in the URL (?team=&status=&q=) so a filtered view can be linked and
// survives a reload; and, for those who may approve them, the devices waiting for approval.
// With metrics:read, each online device's CPU, memory and temperature show live beside a
// sparkline of its recent samples (charts/fleet-metrics.ts: from the same stream, no polling).
// One GET /api/v1/devices carries every status: approved devices are the fleet, pending ones
// wait above it, rejected and revoked ones are not shown.
import { useEffect, useMemo, useRef } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import type { Device, DeviceTag } from '../../../shared/api/devices.ts';
import type { Team } from '../../../shared/api/teams.ts';
import { get, post, query } from '../api.ts';
import { followFleetMetrics, pointsOf, type FleetPoint } from '../charts/fleet-metrics.ts';
import { formatCelsius, formatPercent } from '../charts/format.ts';
import { Sparkline } from '../charts/sparkline.tsx';
import { onStreamEvent, onStreamResync } from '../fleet-stream.ts';
import { administers, can, isAdmin } from '../session.ts';
import { Empty, LoadError, Loading, Page, StatusBadge, Time } from '../ui/bits.tsx';
import { ConfirmButton } from '../ui/dialog.tsx';
import { Button, ErrorNote, SelectField, TextField } from '../ui/form.tsx';
import { SortableTable, type Column } from '../ui/table.tsx';
import { useAction, useLoad } from '../ui/use-load.ts';
import './fleet.css';

type StatusFilter = 'all' | 'online' | 'offline';

interface Filters {
  team: string;
  status: StatusFilter;
  q: string;
}

/** Black or white, whichever reads better on the tag's colour (WCAG relative luminance). */
function textOn(hex: string): string {
  const [r, g, b] = [1, 3, 5].map((i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  const l = 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
  return (l + 0.05) / 0.05 >= 1.05 / (l + 0.05) ? '#000000' : '#ffffff';
}

function Tag({ tag }: { tag: DeviceTag }) {
  return (
    <span class="tag" style={{ background: tag.color, borderColor: tag.color, color: textOn(tag.color) }}>
      {tag.name}
    </span>
  );
}

const dash = (s: string) => s || '—';
/** The distribution's own name ("Debian GNU/Linux 12 (bookworm)") says more than "Linux". */
const osOf = (d: Device) => d.os_version || d.os;
const focusSoon = (...ids: string[]) =>
  setTimeout(() => {
    for (const id of ids) {
      const el = document.getElementById(id);
      if (el) return el.focus();
    }
  }, 0);

type Figure = 'cpu' | 'memory' | 'temperature';
const FIGURES: { id: Figure; header: string; format: (v: number) => string; max?: number }[] = [
  { id: 'cpu', header: 'CPU', format: formatPercent, max: 100 },
  { id: 'memory', header: 'Memory', format: formatPercent, max: 100 },
  { id: 'temperature', header: 'Temp.', format: formatCelsius },
];

const valuesOf = (points: FleetPoint[], figure: Figure) => points.map((p) => p[figure]).filter((v): v is number => v !== undefined);

/** A device's latest figure and its sparkline; redrawn when that device's sample comes (its signal is read here). */
function LiveFigure({ device, figure }: { device: Device; figure: (typeof FIGURES)[number] }) {
  const values = valuesOf(pointsOf(device.id).value, figure.id);
  const last = values[values.length - 1];
  if (!device.online || last === undefined) return <span class="muted">—</span>;
  return (
    <span class="fleet-figure" data-points={values.length}>
      <span class="fleet-figure-value">{figure.format(last)}</span>
      <Sparkline values={values} max={figure.max} />
    </span>
  );
}

/** Approve at once; reject after a confirmation. Names in the labels, since every row has both. */
function PendingActions({ device, onChanged }: { device: Device; onChanged: (d: Device) => void }) {
  const approve = useAction(async () => onChanged(await post<Device>(`/api/v1/devices/${encodeURIComponent(device.id)}/approve`)));
  return (
    <div class="pending-actions">
      <div class="actions">
        <Button class="primary" busy={approve.busy} busyLabel="Approving…" aria-label={`Approve ${device.name}`} onClick={() => void approve.run()}>
          Approve
        </Button>
        <ConfirmButton
          label={
            <>
              Reject<span class="visually-hidden">{` ${device.name}`}</span>
            </>
          }
          title={`Reject ${device.name}?`}
          confirmLabel="Reject"
          onConfirm={async () => {
            const d = await post<Device>(`/api/v1/devices/${encodeURIComponent(device.id)}/reject`);
            // After the dialog has closed: the row (and the dialog in it) goes with the change.
            setTimeout(() => onChanged(d), 0);
          }}
        >
          <p>
            <strong>{device.name}</strong> ({device.hostname || 'no host name'}) will not be able to connect: the relay refuses its key.
          </p>
        </ConfirmButton>
      </div>
      <ErrorNote error={approve.error} />
    </div>
  );
}

export default function FleetPage() {
  const devices = useLoad((signal) => get<{ devices: Device[] }>('/api/v1/devices', { signal }).then((r) => r.devices), []);
  // Team names and the user's role in each; without teams:read the page shows team ids instead.
  const teams = useLoad(
    (signal) =>
      get<{ teams: Team[] }>('/api/v1/teams', { signal })
        .then((r) => r.teams)
        .catch((e) => {
          if ((e as Error).name === 'AbortError') throw e;
          return [] as Team[];
        }),
    [],
  );

  const figures = can('metrics:read');
  // Stream handlers read the newest load through a ref (they are subscribed once).
  const live = useRef(devices);
  live.current = devices;
  useEffect(() => {
    const offStatus = onStreamEvent('status', (e) => {
      const now = live.current;
      const known = now.data?.find((d) => d.id === e.agent_id);
      // A device this page does not hold as approved in that team (newly approved, moved), or a
      // load under way that may have read the state from before the event: read the list again.
      if (now.loading || !known || known.status !== 'approved' || known.team_id !== e.team_id) {
        void now.reload();
        return;
      }
      now.set((list) =>
        list?.map((d) =>
          d.id === e.agent_id ? { ...d, online: e.status === 'online', last_seen: e.timestamp, name: e.name ?? d.name, hostname: e.hostname ?? d.hostname } : d,
        ),
      );
    });
    const offResync = onStreamResync(() => {
      void live.current.reload();
      if (figures) void followFleetMetrics();
    });
    return () => {
      offStatus();
      offResync();
    };
  }, []);
  useEffect(() => {
    if (!figures) return;
    const c = new AbortController();
    void followFleetMetrics(c.signal);
    return () => c.abort();
  }, [figures]);

  const { path, query: q, route } = useLocation();
  const filters: Filters = {
    team: q.team ?? '',
    status: q.status === 'online' || q.status === 'offline' ? q.status : 'all',
    q: q.q ?? '',
  };
  const setFilters = (change: Partial<Filters>) => {
    const f = { ...filters, ...change };
    route(path + query({ team: f.team, status: f.status === 'all' ? '' : f.status, q: f.q }), true);
  };
  const filtered = filters.team !== '' || filters.status !== 'all' || filters.q !== '';

  const teamById = useMemo(() => new Map((teams.data ?? []).map((t) => [t.id, t])), [teams.data]);
  const teamName = (id: string) => teamById.get(id)?.name ?? id;
  // Approving needs devices:admin and the admin role in the device's team (the API checks both).
  const mayApprove = (teamId: string) => {
    if (isAdmin.value) return true;
    if (!can('devices:admin')) return false;
    const role = teamById.get(teamId)?.role;
    return role === undefined || administers(role);
  };

  const all = devices.data ?? [];
  const fleet = all.filter((d) => d.status === 'approved');
  const pending = all.filter((d) => d.status === 'pending' && mayApprove(d.team_id));
  const needle = filters.q.trim().toLowerCase();
  const shown = fleet.filter(
    (d) =>
      (filters.team === '' || d.team_id === filters.team) &&
      (filters.status === 'all' || d.online === (filters.status === 'online')) &&
      (needle === '' || d.name.toLowerCase().includes(needle)),
  );
  const teamIds = [...new Set([...(teams.data ?? []).map((t) => t.id), ...fleet.map((d) => d.team_id), ...(filters.team ? [filters.team] : [])])];
  const teamOptions = teamIds.map((id) => ({ value: id, label: teamName(id) })).sort((a, b) => a.label.localeCompare(b.label));

  const changed = (d: Device) => {
    devices.set((list) => list?.map((x) => (x.id === d.id ? d : x)));
    focusSoon(...(d.status === 'approved' ? [`device-${d.id}`] : []), 'fleet-pending', 'fleet-devices');
  };

  // Kept across renders, so the table is rebuilt only when team names arrive.
  const columns = useMemo<Column<Device>[]>(
    () => [
      {
        id: 'name',
        header: 'Name',
        value: (d) => d.name.toLowerCase(),
        cell: (d) => (
          <span>
            <a id={`device-${d.id}`} href={`/device/${encodeURIComponent(d.id)}`}>
              {d.name}
            </a>
            {!d.enrolled && <span class="muted fleet-note"> agent not enrolled yet</span>}
          </span>
        ),
      },
      { id: 'status', header: 'Status', value: (d) => (d.online ? 0 : 1), cell: (d) => <StatusBadge status={d.online ? 'online' : 'offline'} /> },
      // Sorted by the figure when the table is drawn (peek: the page is not redrawn for each sample; the cells are).
      ...(figures
        ? FIGURES.map(
            (f): Column<Device> => ({
              id: f.id,
              header: f.header,
              descFirst: true,
              class: 'fleet-figure-cell',
              value: (d) => (d.online ? (valuesOf(pointsOf(d.id).peek(), f.id).pop() ?? -1) : -1),
              cell: (d) => <LiveFigure device={d} figure={f} />,
            }),
          )
        : []),
      { id: 'hardware', header: 'Hardware', value: (d) => d.hardware, cell: (d) => dash(d.hardware) },
      {
        id: 'os',
        header: 'OS',
        value: osOf,
        cell: (d) => (
          <span>
            {dash(osOf(d))}
            {d.architecture && <span class="muted"> ({d.architecture})</span>}
          </span>
        ),
      },
      {
        id: 'last_seen',
        header: 'Last seen',
        descFirst: true,
        value: (d) => (d.online ? Number.MAX_SAFE_INTEGER : d.last_seen ? Date.parse(d.last_seen) : 0),
        cell: (d) => (d.online ? 'now' : <Time iso={d.last_seen} />),
      },
      { id: 'team', header: 'Team', value: (d) => teamName(d.team_id) },
      {
        id: 'tags',
        header: 'Tags',
        value: (d) => d.tags.map((t) => t.name).join(' '),
        cell: (d) => (d.tags.length ? <span class="fleet-tags">{d.tags.map((t) => <Tag key={t.name} tag={t} />)}</span> : <span class="muted">—</span>),
      },
    ],
    [teamById],
  );

  const pendingColumns = useMemo<Column<Device>[]>(
    () => [
      { id: 'name', header: 'Name', value: (d) => d.name.toLowerCase(), cell: (d) => <a href={`/device/${encodeURIComponent(d.id)}`}>{d.name}</a> },
      { id: 'hostname', header: 'Host name', value: (d) => d.hostname, cell: (d) => dash(d.hostname) },
      { id: 'hardware', header: 'Hardware', value: (d) => d.hardware, cell: (d) => dash(d.hardware) },
      { id: 'team', header: 'Team', value: (d) => teamName(d.team_id) },
      { id: 'asked', header: 'Asked', descFirst: true, value: (d) => Date.parse(d.registered_at), cell: (d) => <Time iso={d.registered_at} /> },
      { id: 'decide', header: 'Decision', sortable: false, value: () => '', cell: (d) => <PendingActions device={d} onChanged={changed} /> },
    ],
    [teamById],
  );

  const admin = can('devices:admin');
  return (
    <Page
      title="Fleet"
      actions={
        admin ? (
          <a class="button primary" href="/add-device">
            Add a device
          </a>
        ) : undefined
      }
    >
      {devices.error && <LoadError error={devices.error} retry={() => void devices.reload()} />}
      {!devices.data ? (
        devices.loading && <Loading what="devices" />
      ) : (
        <>
          {pending.length > 0 && (
            <section class="fleet-section fleet-pending" aria-labelledby="fleet-pending">
              <h2 id="fleet-pending" tabIndex={-1}>
                Waiting for approval
              </h2>
              <p class="hint">These devices enrolled with a token that does not approve them by itself. Approve the ones you know; a device comes online as soon as its agent next asks.</p>
              <SortableTable rows={pending} columns={pendingColumns} rowKey={(d) => d.id} caption="Devices waiting for approval" initialSort={[{ id: 'asked', desc: true }]} class="cards" />
            </section>
          )}
          <section class="fleet-section" aria-labelledby="fleet-devices">
            <h2 id="fleet-devices" tabIndex={-1}>
              Devices
            </h2>
            {fleet.length === 0 ? (
              <Empty title="No devices yet.">
                {admin ? (
                  <p>
                    {pending.length > 0 ? 'Approve a device waiting above, or add one: ' : 'Make an enrollment token and run the commands it shows on your Raspberry Pi: '}
                    <a href="/add-device">add a device</a>.
                  </p>
                ) : (
                  <p>Devices show here once a team admin adds them to a team you are in.</p>
                )}
              </Empty>
            ) : (
              <>
                <form class="filters fleet-filters" role="search" aria-label="Filter devices" onSubmit={(e) => e.preventDefault()}>
                  <TextField label="Name" type="search" value={filters.q} autoComplete="off" spellcheck={false} onValue={(v) => setFilters({ q: v })} />
                  <SelectField
                    label="Status"
                    value={filters.status}
                    options={[
                      { value: 'all', label: 'Any' },
                      { value: 'online', label: 'Online' },
                      { value: 'offline', label: 'Offline' },
                    ]}
                    onValue={(v) => setFilters({ status: v as StatusFilter })}
                  />
                  {teamOptions.length > 1 && (
                    <SelectField label="Team" value={filters.team} options={[{ value: '', label: 'All teams' }, ...teamOptions]} onValue={(v) => setFilters({ team: v })} />
                  )}
                </form>
                <p class="muted fleet-count" role="status">
                  {filtered ? `${shown.length} of ${fleet.length} devices match` : `${fleet.length} ${fleet.length === 1 ? 'device' : 'devices'}`}
                </p>
                {shown.length === 0 ? (
                  <Empty title="No devices match these filters.">
                    <button type="button" onClick={() => setFilters({ team: '', status: 'all', q: '' })}>
                      Clear filters
                    </button>
                  </Empty>
                ) : (
                  <SortableTable rows={shown} columns={columns} rowKey={(d) => d.id} caption="Devices" initialSort={[{ id: 'name', desc: false }]} class="cards" />
                )}
              </>
            )}
          </section>
        </>
      )}
    </Page>
  );
}
