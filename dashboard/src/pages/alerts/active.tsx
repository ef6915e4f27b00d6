// The alerts the rules raised (GET /api/v1/alerts, Tyto's list over ours): firing ones by
// default, critical first and newest first, each with its device (linked to its Metrics tab), the
// value against the threshold it crossed, what caused it (the top processes or containers of the
// sample it fired on), since when, and Acknowledge for holders of alerts:acknowledge. The filters
// (state, level, device) are in the page's address, so "resolved alerts of this device" is a link.
import type { RefObject } from 'preact';
import { post } from '../../api.ts';
import { can, me } from '../../session.ts';
import { Empty, LoadError, Loading, Time } from '../../ui/bits.tsx';
import { Button, ErrorNote, SelectField } from '../../ui/form.tsx';
import { SortableTable, type Column } from '../../ui/table.tsx';
import { useAction, type Loaded } from '../../ui/use-load.ts';
import type { Alert, AlertRule } from '../../../../shared/api/alerts.ts';
import type { Device } from '../../../../shared/api/devices.ts';
import type { User } from '../../../../shared/api/auth.ts';
import { containerLine, isThreshold, metricLabel, processLine, valueOf } from './format.ts';

export interface AlertFilters {
  state: 'firing' | 'resolved';
  level: '' | 'warning' | 'critical';
  device: string;
}

export function alertFiltersOf(q: Record<string, string>): AlertFilters {
  return {
    state: q.state === 'resolved' ? 'resolved' : 'firing',
    level: q.level === 'warning' || q.level === 'critical' ? q.level : '',
    device: q.device ?? '',
  };
}

const LEVEL_RANK = { critical: 0, warning: 1 } as const;
const byUrgency = (a: Alert, b: Alert) => LEVEL_RANK[a.level] - LEVEL_RANK[b.level] || b.created_at.localeCompare(a.created_at);

export function ActiveAlerts({ alerts, current, filters, setFilters, rules, ruleHref, devices, users, headingRef, onChanged }: {
  alerts: Loaded<{ of: string; alerts: Alert[] }>;
  /** The alerts read with the filters shown; undefined while they load. */
  current: Alert[] | undefined;
  /** Who acknowledged, by name; without users:read, "another user". */
  users: User[];
  filters: AlertFilters;
  setFilters: (f: Partial<AlertFilters>) => void;
  rules: AlertRule[];
  /** Where a rule's notifications open (this view, with the rule's panel). */
  ruleHref: (id: string) => string;
  devices: Device[];
  headingRef: RefObject<HTMLHeadingElement | null>;
  onChanged: () => Promise<void>;
}) {
  const mayAck = can('alerts:acknowledge');
  const deviceName = (id: string) => devices.find((d) => d.id === id)?.name ?? id;
  const ruleName = (id: string) => rules.find((r) => r.id === id)?.name;
  const title = filters.state === 'firing' ? 'Firing alerts' : 'Resolved alerts';

  const columns: Column<Alert>[] = [
    { id: 'level', header: 'Level', value: (a) => LEVEL_RANK[a.level], cell: (a) => <span class={`badge badge-${a.level}`}><span class="dot" aria-hidden="true" />{a.level}</span> },
    {
      id: 'alert',
      header: 'Alert',
      value: (a) => a.message,
      cell: (a) => (
        <div class="alert-what">
          <span>{a.message || metricLabel(a.type)}</span>
          <span class="muted">
            {ruleName(a.rule_id) ? (
              <>
                Rule <a href={ruleHref(a.rule_id)}>{ruleName(a.rule_id)}</a>
              </>
            ) : (
              <>{metricLabel(a.type)}</>
            )}
          </span>
        </div>
      ),
    },
    {
      id: 'device',
      header: 'Device',
      value: (a) => deviceName(a.agent_id),
      cell: (a) => <a href={`/device/${encodeURIComponent(a.agent_id)}/metrics`}>{deviceName(a.agent_id)}</a>,
    },
    {
      id: 'value',
      header: 'Value',
      value: (a) => a.value,
      descFirst: true,
      cell: (a) =>
        isThreshold(a.type) && a.value !== null ? (
          <span>
            {valueOf(a.type, a.value)}
            {a.threshold !== null && <span class="muted"> (threshold {valueOf(a.type, a.threshold)})</span>}
          </span>
        ) : (
          <span class="muted">—</span>
        ),
    },
    { id: 'cause', header: 'Cause', value: () => '', sortable: false, cell: (a) => <Cause alert={a} />, class: 'alert-cause' },
    {
      id: 'since',
      header: filters.state === 'firing' ? 'Since' : 'Fired',
      value: (a) => a.created_at,
      descFirst: true,
      cell: (a) => (
        <span>
          <Time iso={a.created_at} />
          {a.resolved_at && (
            <span class="muted">
              {' '}
              · resolved <Time iso={a.resolved_at} />
            </span>
          )}
        </span>
      ),
    },
    {
      id: 'ack',
      header: 'Acknowledged',
      value: (a) => a.acknowledged_at ?? '',
      cell: (a) =>
        a.acknowledged ? (
          <span>
            {a.acknowledged_by === me.value?.id ? 'by you' : `by ${users.find((u) => u.id === a.acknowledged_by)?.username ?? 'another user'}`}{' '}
            {a.acknowledged_at && <Time iso={a.acknowledged_at} />}
          </span>
        ) : mayAck && a.state === 'firing' ? (
          <Acknowledge
            alert={a}
            device={deviceName(a.agent_id)}
            onDone={async () => {
              await onChanged();
              // The button is gone with the acknowledgement: carry on from the list.
              headingRef.current?.focus();
            }}
          />
        ) : (
          <span class="muted">not yet</span>
        ),
    },
  ];

  const rows = current ? [...current].sort(byUrgency) : [];
  return (
    <section aria-labelledby="alerts-title">
      <h2 id="alerts-title" ref={headingRef} tabIndex={-1}>
        {title}
      </h2>
      <div class="filters">
        <SelectField
          label="Show"
          value={filters.state}
          options={[
            { value: 'firing', label: 'Firing' },
            { value: 'resolved', label: 'Resolved' },
          ]}
          onValue={(v) => setFilters({ state: v as AlertFilters['state'] })}
        />
        <SelectField
          label="Level"
          value={filters.level}
          options={[{ value: '', label: 'Any level' }, { value: 'warning', label: 'Warning' }, { value: 'critical', label: 'Critical' }]}
          onValue={(v) => setFilters({ level: v as AlertFilters['level'] })}
        />
        <SelectField
          label="Device"
          value={filters.device}
          options={[
            { value: '', label: 'Any device' },
            ...devices.map((d) => ({ value: d.id, label: d.name })),
            ...(filters.device && !devices.some((d) => d.id === filters.device) ? [{ value: filters.device, label: filters.device }] : []),
          ]}
          onValue={(v) => setFilters({ device: v })}
        />
      </div>
      {alerts.error ? (
        <LoadError error={alerts.error} retry={alerts.reload} />
      ) : !current ? (
        <Loading what="alerts" />
      ) : rows.length === 0 ? (
        <Empty title={filters.state === 'firing' ? 'Nothing is firing.' : 'No alerts match.'}>
          {filters.state === 'firing' ? 'Alerts appear here while a rule’s condition holds.' : 'Try another level or device.'}
        </Empty>
      ) : (
        <SortableTable rows={rows} columns={columns} rowKey={(a) => a.id} caption={title} class="cards alerts-table" />
      )}
    </section>
  );
}

/** What the sample the alert fired on showed: its top processes, or its containers. */
function Cause({ alert }: { alert: Alert }) {
  const processes = alert.cause.processes ?? [];
  const containers = alert.cause.containers ?? [];
  if (!processes.length && !containers.length) return <span class="muted">—</span>;
  return (
    <ul class="cause">
      {processes.map((p) => (
        <li key={`p${p.pid}`}>{processLine(p)}</li>
      ))}
      {containers.map((c) => (
        <li key={`c${c.id}`}>{containerLine(c)}</li>
      ))}
    </ul>
  );
}

function Acknowledge({ alert, device, onDone }: { alert: Alert; device: string; onDone: () => Promise<void> }) {
  const ack = useAction(async () => {
    await post(`/api/v1/alerts/${encodeURIComponent(alert.id)}/acknowledge`);
    await onDone();
  });
  return (
    <div>
      <Button busy={ack.busy} busyLabel="Acknowledging…" onClick={() => void ack.run()}>
        Acknowledge<span class="visually-hidden"> {`${alert.level} ${metricLabel(alert.type)} on ${device}`}</span>
      </Button>
      <ErrorNote error={ack.error} />
    </div>
  );
}
