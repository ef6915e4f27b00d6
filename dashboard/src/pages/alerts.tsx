// The Alerts page: the alerts firing now (and, filtered in the address, the resolved ones) with
// Acknowledge; the rules that raise them with create, edit, enable/disable and delete; and each
// rule's notifications with their delivery records and a "Send test notification" button. What a
// user may change follows their permissions (alerts:write for rules and tests, alerts:acknowledge);
// a viewer (alerts:read) sees everything and changes nothing. The API decides in any case.
//
// Live enough without a fast poll: the alerts are read again after every action here, when the
// fleet stream says a device went online or offline (an offline rule fires or resolves then), when
// the stream may have missed events, when the tab comes back into view, and once a minute while it
// is in view (a threshold alert starts or ends with no stream event the page could see).
import { useEffect, useRef, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { get, query } from '../api.ts';
import { onStreamEvent, onStreamResync } from '../fleet-stream.ts';
import { can } from '../session.ts';
import { Loading, Page } from '../ui/bits.tsx';
import { useLoad } from '../ui/use-load.ts';
import type { Alert, AlertRule } from '../../../shared/api/alerts.ts';
import type { Device } from '../../../shared/api/devices.ts';
import type { User } from '../../../shared/api/auth.ts';
import type { Team } from '../../../shared/api/teams.ts';
import { ActiveAlerts, alertFiltersOf, type AlertFilters } from './alerts/active.tsx';
import { RuleDeliveries } from './alerts/deliveries.tsx';
import { RuleForm } from './alerts/rule-form.tsx';
import { RulesList } from './alerts/rules.tsx';
import './alerts.css';

/** How often the alerts are read again while the page is in view, events aside. */
const REREAD_MS = 60_000;
/** Status events come in bursts (a relay restart brings every device back): one re-read per burst. */
const SETTLE_MS = 1_000;

/** A list the caller may not read is empty here: it only names things and fills pickers. */
const orEmpty = <T,>(p: Promise<T[]>) =>
  p.catch((e) => {
    if ((e as Error).name === 'AbortError') throw e;
    return [] as T[];
  });

export default function AlertsPage() {
  const { path, query: q, route } = useLocation();
  const filters = alertFiltersOf(q);
  const shownRule = q.rule ?? '';
  const deliveryStatus = q.delivery_status ?? '';
  const urlWith = (change: Record<string, string>) =>
    path + query({ state: filters.state === 'firing' ? '' : filters.state, level: filters.level, device: filters.device, rule: shownRule, delivery_status: deliveryStatus, ...change });
  const setQuery = (change: Record<string, string>) => route(urlWith(change), true);
  const setFilters = (f: Partial<AlertFilters>) => setQuery({ ...f, ...(f.state ? { state: f.state === 'firing' ? '' : f.state } : {}) });

  const alertsQuery = query({ state: filters.state, level: filters.level, agent_id: filters.device });
  // Each answer names the filters it was read with: after a filter change the old list is not shown under the new heading.
  const alerts = useLoad((signal) => get<{ alerts: Alert[] }>(`/api/v1/alerts${alertsQuery}`, { signal }).then((r) => ({ of: alertsQuery, alerts: r.alerts })), [alertsQuery]);
  const rules = useLoad((signal) => get<{ rules: AlertRule[] }>('/api/v1/alert-rules', { signal }).then((r) => r.rules), []);
  const teams = useLoad((signal) => (can('teams:read') ? orEmpty(get<{ teams: Team[] }>('/api/v1/teams', { signal }).then((r) => r.teams)) : Promise.resolve([])), []);
  const users = useLoad((signal) => (can('users:read') ? orEmpty(get<{ users: User[] }>('/api/v1/users', { signal }).then((r) => r.users)) : Promise.resolve([])), []);
  const devices = useLoad((signal) => (can('devices:read') ? orEmpty(get<{ devices: Device[] }>('/api/v1/devices', { signal }).then((r) => r.devices)) : Promise.resolve([])), []);

  const [editing, setEditing] = useState<{ rule: AlertRule | null; n: number }>({ rule: null, n: 0 });
  const [saved, setSaved] = useState('');
  const alertsHeading = useRef<HTMLHeadingElement>(null);
  const rulesHeading = useRef<HTMLHeadingElement>(null);
  const formHeading = useRef<HTMLHeadingElement>(null);
  const deliveriesHeading = useRef<HTMLHeadingElement>(null);

  // Handlers subscribed once read the newest loads through a ref.
  const live = useRef(alerts);
  live.current = alerts;
  useEffect(() => {
    let settle: ReturnType<typeof setTimeout> | undefined;
    const soon = () => {
      clearTimeout(settle);
      settle = setTimeout(() => void live.current.reload(), SETTLE_MS);
    };
    const offStatus = onStreamEvent('status', soon);
    const offResync = onStreamResync(soon);
    const visible = () => {
      if (document.visibilityState === 'visible') soon();
    };
    document.addEventListener('visibilitychange', visible);
    const every = setInterval(() => {
      if (document.visibilityState === 'visible') void live.current.reload();
    }, REREAD_MS);
    return () => {
      clearTimeout(settle);
      clearInterval(every);
      offStatus();
      offResync();
      document.removeEventListener('visibilitychange', visible);
    };
  }, []);

  const changed = async (message: string, gone?: AlertRule) => {
    setSaved(message);
    if (gone && gone.id === shownRule) setQuery({ rule: '', delivery_status: '' });
    if (gone && gone.id === editing.rule?.id) setEditing((e) => ({ rule: null, n: e.n + 1 }));
    await Promise.all([rules.reload(), alerts.reload()]);
  };

  const edit = (r: AlertRule) => {
    setEditing((e) => ({ rule: r, n: e.n + 1 }));
    setTimeout(() => formHeading.current?.focus(), 0);
  };
  const show = (r: AlertRule) => {
    setQuery({ rule: r.id, delivery_status: '' });
    setTimeout(() => deliveriesHeading.current?.focus(), 0);
  };

  const rule = rules.data?.find((r) => r.id === shownRule);
  const mayWrite = can('alerts:write');

  return (
    <Page title="Alerts">
      <ActiveAlerts
        alerts={alerts}
        current={alerts.data?.of === alertsQuery ? alerts.data.alerts : undefined}
        filters={filters}
        setFilters={setFilters}
        rules={rules.data ?? []}
        ruleHref={(id) => urlWith({ rule: id, delivery_status: '' })}
        devices={devices.data ?? []}
        users={users.data ?? []}
        headingRef={alertsHeading}
        onChanged={alerts.reload}
      />

      <section aria-labelledby="rules-title">
        <h2 id="rules-title" ref={rulesHeading} tabIndex={-1}>
          Rules
        </h2>
        <p class="muted alerts-intro">
          A rule watches one metric of every device, a team’s devices or one device. It fires when the average over its hold reaches a threshold (so one
          spike does not), resolves when the average over its recovery hold is back under it, and notifies its channels once each way.
        </p>
        <p class="alerts-saved" role="status">
          {saved}
        </p>
        <RulesList
          rules={rules}
          teams={teams.data ?? []}
          devices={devices.data ?? []}
          headingRef={rulesHeading}
          onEdit={edit}
          onShow={show}
          onChanged={changed}
          onAdd={() => formHeading.current?.focus()}
        />
      </section>

      {rule && (
        <RuleDeliveries
          key={rule.id}
          rule={rule}
          status={deliveryStatus}
          setStatus={(s) => setQuery({ delivery_status: s })}
          headingRef={deliveriesHeading}
          onClose={() => {
            setQuery({ rule: '', delivery_status: '' });
            rulesHeading.current?.focus();
          }}
        />
      )}

      {mayWrite && !(teams.data && devices.data) && <Loading what="the rule form" />}
      {mayWrite && teams.data && devices.data && (
        // A fresh form after each save or cancel: what was typed (channel URLs and tokens among it) leaves the page.
        <RuleForm
          key={`${editing.rule?.id ?? 'new'}/${editing.n}`}
          editing={editing.rule}
          teams={teams.data}
          devices={devices.data}
          headingRef={formHeading}
          onSaved={async (r) => {
            setEditing((e) => ({ rule: null, n: e.n + 1 }));
            await changed(`Saved rule ${r.name}.`);
            // The form that had focus is a fresh one now: carry on from the rules, where the change shows.
            rulesHeading.current?.focus();
          }}
          onCancel={() => {
            setEditing((e) => ({ rule: null, n: e.n + 1 }));
            rulesHeading.current?.focus();
          }}
        />
      )}
    </Page>
  );
}
