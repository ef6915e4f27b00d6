// The rules (GET /api/v1/alert-rules): what each watches, its condition, where it applies, where it
// notifies (each channel as its type and host) and whether it is on. Holders of alerts:write get
// Edit, Enable/Disable (PATCH {enabled}) and Delete (asks first); everyone gets the rule's
// notifications, which open under the list (?rule=<id> in the address).
import type { RefObject } from 'preact';
import { del, patch } from '../../api.ts';
import { can } from '../../session.ts';
import { Empty, LoadError, Loading } from '../../ui/bits.tsx';
import { Button, ErrorNote } from '../../ui/form.tsx';
import { ConfirmButton } from '../../ui/dialog.tsx';
import { SortableTable, type Column } from '../../ui/table.tsx';
import { useAction, type Loaded } from '../../ui/use-load.ts';
import type { AlertRule } from '../../../../shared/api/alerts.ts';
import type { Device } from '../../../../shared/api/devices.ts';
import type { Team } from '../../../../shared/api/teams.ts';
import { conditionOf, duration, metricLabel } from './format.ts';

export function RulesList({ rules, teams, devices, headingRef, onEdit, onShow, onChanged, onAdd }: {
  rules: Loaded<AlertRule[]>;
  teams: Team[];
  devices: Device[];
  headingRef: RefObject<HTMLHeadingElement | null>;
  onEdit: (r: AlertRule) => void;
  onShow: (r: AlertRule) => void;
  onChanged: (message: string, gone?: AlertRule) => Promise<void>;
  onAdd?: () => void;
}) {
  const mayWrite = can('alerts:write');
  const scopeOf = (r: AlertRule) => {
    if (r.device_id) {
      const d = devices.find((x) => x.id === r.device_id);
      return <a href={`/device/${encodeURIComponent(r.device_id)}`}>device {d?.name ?? r.device_id}</a>;
    }
    if (r.team_id) {
      const t = teams.find((x) => x.id === r.team_id);
      return <a href={`/teams/${encodeURIComponent(r.team_id)}`}>team {t?.name ?? r.team_id}</a>;
    }
    return <>every device</>;
  };

  const columns: Column<AlertRule>[] = [
    { id: 'name', header: 'Name', value: (r) => r.name },
    { id: 'metric', header: 'Metric', value: (r) => r.metric, cell: (r) => <span>{metricLabel(r.metric)}{r.target && <> <code>{r.target}</code></>}</span> },
    {
      id: 'condition',
      header: 'Condition',
      value: () => '',
      sortable: false,
      cell: (r) => (
        <span>
          {conditionOf(r)}
          {r.recovery_seconds !== r.hold_seconds && <span class="muted"> · resolves after {duration(r.recovery_seconds)}</span>}
        </span>
      ),
    },
    { id: 'scope', header: 'Applies to', value: (r) => (r.device_id ? 2 : r.team_id ? 1 : 0), cell: scopeOf },
    {
      id: 'channels',
      header: 'Notifies',
      value: (r) => r.channels.length,
      class: 'rule-notifies',
      cell: (r) =>
        r.channels.length ? (
          <span>
            {r.channels.map((c, i) => (
              <span key={i} class="tag">
                {c.type} · {c.host}
              </span>
            ))}
            {r.quiet_hours && (
              <span class="muted">
                {' '}
                quiet {r.quiet_hours.start}–{r.quiet_hours.end} {r.quiet_hours.timezone}
              </span>
            )}
          </span>
        ) : (
          <span class="muted">nobody</span>
        ),
    },
    { id: 'enabled', header: 'State', value: (r) => r.enabled, cell: (r) => <span class={`badge badge-${r.enabled ? 'enabled' : 'disabled'}`}><span class="dot" aria-hidden="true" />{r.enabled ? 'enabled' : 'disabled'}</span> },
    {
      id: 'actions',
      header: 'Actions',
      value: () => '',
      sortable: false,
      cell: (r) => (
        <div class="actions">
          <button type="button" onClick={() => onShow(r)}>
            Notifications<span class="visually-hidden"> of {r.name}</span>
          </button>
          {mayWrite && (
            <>
              <button type="button" onClick={() => onEdit(r)}>
                Edit<span class="visually-hidden"> {r.name}</span>
              </button>
              <Toggle rule={r} onDone={onChanged} />
              <ConfirmButton
                label={
                  <>
                    Delete<span class="visually-hidden"> {r.name}</span>
                  </>
                }
                title={`Delete rule ${r.name}?`}
                confirmLabel="Delete"
                onConfirm={async () => {
                  await del(`/api/v1/alert-rules/${encodeURIComponent(r.id)}`);
                  await onChanged(`Deleted rule ${r.name}.`, r);
                  headingRef.current?.focus();
                }}
              >
                <p>The rule stops watching at once; its alerts, firing or resolved, and their delivery records are deleted with it. To keep them, disable the rule instead.</p>
              </ConfirmButton>
            </>
          )}
        </div>
      ),
    },
  ];

  return rules.error ? (
    <LoadError error={rules.error} retry={rules.reload} />
  ) : !rules.data ? (
    <Loading what="rules" />
  ) : rules.data.length === 0 ? (
    <Empty title="No rules yet.">
      {mayWrite && onAdd ? (
        <button type="button" onClick={onAdd}>
          Add one
        </button>
      ) : (
        'You may not add rules.'
      )}
    </Empty>
  ) : (
    <SortableTable rows={[...rules.data].sort((a, b) => a.name.localeCompare(b.name))} columns={columns} rowKey={(r) => r.id} caption="Alert rules" class="cards rules-table" />
  );
}

function Toggle({ rule, onDone }: { rule: AlertRule; onDone: (message: string) => Promise<void> }) {
  const toggle = useAction(async () => {
    await patch(`/api/v1/alert-rules/${encodeURIComponent(rule.id)}`, { enabled: !rule.enabled });
    await onDone(`${rule.enabled ? 'Disabled' : 'Enabled'} rule ${rule.name}.`);
  });
  return (
    <>
      <Button busy={toggle.busy} onClick={() => void toggle.run()}>
        {rule.enabled ? 'Disable' : 'Enable'}
        <span class="visually-hidden"> {rule.name}</span>
      </Button>
      <ErrorNote error={toggle.error} />
    </>
  );
}
