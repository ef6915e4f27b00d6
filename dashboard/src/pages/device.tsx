// One device: its header (name, live status, team, tags) and its tabs. The overview comes with
// the page; every other tab is a module of its own under device/, loaded when first opened, so a
// later capability's tab (Terminal, KVM, Metrics, Logs) is one line in TABS and costs nothing on
// the other tabs. The status follows the live stream (no polling); a device that does not exist,
// or is in a team the user is not in, is the same "not found" — the API answers both with 404.
import type { ComponentType } from 'preact';
import { useEffect } from 'preact/hooks';
import { ErrorBoundary, lazy } from 'preact-iso';
import type { Device } from '../../../shared/api/devices.ts';
import type { Team } from '../../../shared/api/teams.ts';
import { get } from '../api.ts';
import { onStreamEvent, onStreamResync } from '../fleet-stream.ts';
import { can } from '../session.ts';
import { Empty, LoadError, Loading, Page, StatusBadge } from '../ui/bits.tsx';
import { useLoad } from '../ui/use-load.ts';
import Overview from './device/overview.tsx';
import { devicePath, shownStatus, tabHref, type DeviceTabProps } from './device/shared.ts';
import './device/device.css';

interface TabDef {
  /** The path segment after /device/<id>/ ('' for the overview). */
  path: string;
  label: string;
  /** Shown only to users who hold this permission. */
  needs?: string;
  component: ComponentType<DeviceTabProps>;
}

const TABS: TabDef[] = [
  { path: '', label: 'Overview', component: Overview },
  { path: 'metrics', label: 'Metrics', needs: 'metrics:read', component: lazy(() => import('./device/metrics.tsx')) },
  { path: 'processes', label: 'Processes', component: lazy(() => import('./device/processes.tsx')) },
  { path: 'tunnels', label: 'Tunnels', needs: 'tunnels:read', component: lazy(() => import('./device/tunnels.tsx')) },
  { path: 'kvm', label: 'KVM', needs: 'screen:read', component: lazy(() => import('./device/kvm.tsx')) },
  { path: 'terminal', label: 'Terminal', needs: 'terminal:open', component: lazy(() => import('./device/terminal.tsx')) },
  { path: 'logs', label: 'Logs', needs: 'logs:read', component: lazy(() => import('./device/logs.tsx')) },
  { path: 'settings', label: 'Settings', component: lazy(() => import('./device/settings.tsx')) },
];

function NotFound() {
  return (
    <Page title="Device not found">
      <Empty title="There is no device with this id that you may see.">
        <p>It may have been removed, or it belongs to a team you are not a member of.</p>
        <a href="/">Go to the fleet</a>
      </Empty>
    </Page>
  );
}

export default function DevicePage({ id, tab = '' }: { id: string; tab?: string }) {
  const device = useLoad((signal) => get<Device>(devicePath(id), { signal }), [id]);
  const teams = useLoad((signal) => (can('teams:read') ? get<{ teams: Team[] }>('/api/v1/teams', { signal }).then((r) => r.teams) : Promise.resolve(undefined)), []);

  useEffect(() => {
    const offStatus = onStreamEvent('status', (e) => {
      if (e.agent_id !== id) return;
      // Show the change at once, then read the facts the agent's hello may have refreshed.
      device.set((d) => d && { ...d, online: e.status === 'online', last_seen: e.timestamp });
      void device.reload();
    });
    const offResync = onStreamResync(() => void device.reload());
    return () => {
      offStatus();
      offResync();
    };
  }, [id, device.reload]);

  const d = device.data;
  if (!d) {
    if (device.error?.status === 404) return <NotFound />;
    return (
      <Page title="Device">
        {device.error ? <LoadError error={device.error} retry={device.reload} /> : <Loading what="the device" />}
      </Page>
    );
  }

  const tabs = TABS.filter((t) => !t.needs || can(t.needs));
  const current = tabs.find((t) => t.path === tab);
  const team = teams.data?.find((t) => t.id === d.team_id);
  const props: DeviceTabProps = { device: d, teams: teams.data, onDeviceChange: (next) => device.set(() => next), reloadDevice: device.reload };
  return (
    <Page title={d.name}>
      <div class="device">
        <div class="device-meta">
          <StatusBadge status={shownStatus(d)} />
          <span>
            Team:{' '}
            {team ? <a href={`/teams/${encodeURIComponent(team.id)}`}>{team.name}</a> : <span class="mono">{d.team_id}</span>}
          </span>
          {d.tags.length > 0 && (
            <span>
              <span class="visually-hidden">Tags: </span>
              {d.tags.map((t) => (
                <span class="tag" key={t.name}>
                  <span class="tag-swatch" style={{ background: t.color }} aria-hidden="true" />
                  {t.name}
                </span>
              ))}
            </span>
          )}
        </div>
        {device.error && <LoadError error={device.error} retry={device.reload} />}
        <nav aria-label="Device">
          <ul class="tabs">
            {tabs.map((t) => (
              <li key={t.path}>
                <a href={tabHref(d.id, t.path)} aria-current={t === current ? 'page' : undefined}>
                  {t.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        {current ? (
          <ErrorBoundary>
            <current.component {...props} />
          </ErrorBoundary>
        ) : (
          <Empty title="This device has no such tab.">
            <a href={tabHref(d.id, '')}>Go to its overview</a>
          </Empty>
        )}
      </div>
    </Page>
  );
}
