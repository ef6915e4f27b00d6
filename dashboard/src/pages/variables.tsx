// Variables at each level — your account's, a team's, a device's — and, for a device, what its runs
// get once the levels merge (the device's over its team's over yours). The level is in the URL
// (?team=<id> or ?device=<id>), so other pages link straight to a team's or a device's variables.
// Secret values are write-only: the API answers them as "***", the form never holds a stored
// secret (editing one means typing a new value), and a typed value is dropped once it is saved.
import type { RefObject } from 'preact';
import { useId, useRef, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { del, get, put, query } from '../api.ts';
import { administers, can } from '../session.ts';
import { Empty, LoadError, Loading, Page, Time } from '../ui/bits.tsx';
import { Button, CheckboxField, ErrorNote, SelectField, TextField } from '../ui/form.tsx';
import { SortableTable, type Column } from '../ui/table.tsx';
import { ConfirmButton } from '../ui/dialog.tsx';
import { useAction, useLoad } from '../ui/use-load.ts';
import type { Variable, VariableLevel } from '../../../shared/api/variables.ts';
import type { Team } from '../../../shared/api/teams.ts';
import type { Device } from '../../../shared/api/devices.ts';
import './variables.css';

/** What the API shows for every secret (SECRET_MASK in shared/api/variables.ts, whose zod schemas the page does not need to load). */
const SECRET_MASK = '***';

type Level = { kind: 'user' } | { kind: 'team'; id: string } | { kind: 'device'; id: string };

function levelOf(q: Record<string, string>): Level {
  if (q.device) return { kind: 'device', id: q.device };
  if (q.team) return { kind: 'team', id: q.team };
  return { kind: 'user' };
}

const levelKey = (l: Level) => (l.kind === 'user' ? 'user' : `${l.kind}:${l.id}`);

function levelUrl(key: string): string {
  const [kind, ...rest] = key.split(':');
  const id = rest.join(':');
  return `/variables${query(kind === 'team' ? { team: id } : kind === 'device' ? { device: id } : {})}`;
}

function apiBase(l: Level): string {
  if (l.kind === 'user') return '/api/v1/account/variables';
  return `/api/v1/${l.kind === 'team' ? 'teams' : 'devices'}/${encodeURIComponent(l.id)}/variables`;
}

const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);

export default function VariablesPage() {
  const { query: q, route } = useLocation();
  const level = levelOf(q);
  const key = levelKey(level);
  const base = apiBase(level);

  // The picker's choices; a list the caller may not read just leaves its level out.
  const teams = useLoad((signal) => (can('teams:read') ? get<{ teams: Team[] }>('/api/v1/teams', { signal }).then((r) => r.teams) : Promise.resolve([])), []);
  const devices = useLoad((signal) => (can('devices:read') ? get<{ devices: Device[] }>('/api/v1/devices', { signal }).then((r) => r.devices) : Promise.resolve([])), []);
  const list = useLoad((signal) => get<{ variables: Variable[] }>(base, { signal }).then((r) => r.variables), [base]);
  const effective = useLoad(
    (signal) => (level.kind === 'device' ? get<{ variables: Variable[] }>(`${base}/effective`, { signal }).then((r) => r.variables) : Promise.resolve(undefined)),
    [base],
  );

  // What is being edited and the last change's message belong to the level they were made at.
  const [atLevel, setAtLevel] = useState<{ base: string; v: Variable | null; saved: string }>({ base, v: null, saved: '' });
  const editing = atLevel.base === base ? atLevel.v : null;
  const saved = atLevel.base === base ? atLevel.saved : '';
  const setEditing = (v: Variable | null, message = '') => setAtLevel({ base, v, saved: message });
  const listHeading = useRef<HTMLHeadingElement>(null);
  const formHeading = useRef<HTMLHeadingElement>(null);

  const team = level.kind === 'team' ? teams.data?.find((t) => t.id === level.id) : undefined;
  const device = level.kind === 'device' ? devices.data?.find((d) => d.id === level.id) : undefined;
  const deviceTeam = device ? teams.data?.find((t) => t.id === device.team_id) : undefined;
  const levelName =
    level.kind === 'user' ? 'your account' : level.kind === 'team' ? `team ${team?.name ?? level.id}` : `device ${device?.name ?? level.id}`;

  // Hidden where the API would refuse (team variables are for the team's admins); the API still decides.
  const mayWrite = can('variables:write') && (level.kind !== 'team' || !team || administers(team.role));

  const options = [
    { value: 'user', label: 'My account' },
    ...(teams.data ?? []).map((t) => ({ value: `team:${t.id}`, label: `Team: ${t.name}` })),
    ...(devices.data ?? []).map((d) => ({ value: `device:${d.id}`, label: `Device: ${d.name}` })),
  ];
  if (level.kind !== 'user' && !options.some((o) => o.value === key)) options.push({ value: key, label: level.kind === 'team' ? `Team: ${level.id}` : `Device: ${level.id}` });

  const changed = async (message: string) => {
    setEditing(null, message);
    await Promise.all([list.reload(), effective.reload()]);
  };

  const edit = (v: Variable) => {
    setEditing(v);
    setTimeout(() => formHeading.current?.focus(), 0);
  };

  const columns: Column<Variable>[] = [
    { id: 'name', header: 'Name', value: (v) => v.name, cell: (v) => <code>{v.name}</code> },
    { id: 'value', header: 'Value', value: (v) => (v.secret ? '' : v.value), cell: (v) => <Value v={v} />, class: 'var-value' },
    { id: 'updated', header: 'Updated', value: (v) => v.updated_at, cell: (v) => <Time iso={v.updated_at} />, descFirst: true },
  ];
  if (mayWrite)
    columns.push({
      id: 'actions',
      header: 'Actions',
      value: () => '',
      sortable: false,
      cell: (v) => (
        <div class="actions">
          <button type="button" aria-label={`Edit ${v.name}`} onClick={() => edit(v)}>
            Edit
          </button>
          <ConfirmButton
            label={
              <>
                Delete<span class="visually-hidden"> {v.name}</span>
              </>
            }
            title={`Delete ${v.name}?`}
            confirmLabel="Delete"
            onConfirm={async () => {
              await del(`${base}/${encodeURIComponent(v.name)}`);
              await changed(`Deleted ${v.name}.`);
              listHeading.current?.focus();
            }}
          >
            <p>
              <code>{v.name}</code> goes from {levelName} at once{level.kind === 'user' ? '' : '; runs started after this no longer get it'}.
            </p>
          </ConfirmButton>
        </div>
      ),
    });

  return (
    <Page title="Variables">
      <p class="muted vars-intro">
        Variables are the environment a device's runs get. Set them for your account, a team or one device; where a name is set at several levels, the
        device's value wins over its team's, which wins over yours. Secret values can be written but never read back.
      </p>
      <div class="filters">
        <SelectField label="Level" value={key} options={options} onValue={(v) => route(levelUrl(v))} hint="Whose variables to show and change" />
        {level.kind === 'device' && (
          <p class="vars-level-link">
            <a href={`/device/${encodeURIComponent(level.id)}`}>Open the device</a>
          </p>
        )}
        {level.kind === 'team' && (
          <p class="vars-level-link">
            <a href={`/teams/${encodeURIComponent(level.id)}`}>Open the team</a>
          </p>
        )}
      </div>

      <h2 id="variables-list" ref={listHeading} tabIndex={-1}>
        Variables of {levelName}
      </h2>
      <p class="vars-saved" role="status">
        {saved}
      </p>
      {list.error ? (
        <LoadError error={list.error} retry={list.reload} />
      ) : !list.data ? (
        <Loading what="variables" />
      ) : list.data.length === 0 ? (
        <Empty title={`No variables for ${levelName} yet.`}>
          {mayWrite ? (
            <button type="button" onClick={() => formHeading.current?.focus()}>
              Add one
            </button>
          ) : (
            'You may not add variables here.'
          )}
        </Empty>
      ) : (
        <SortableTable rows={[...list.data].sort(byName)} columns={columns} rowKey={(v) => v.name} caption={`Variables of ${levelName}`} class="cards" />
      )}

      {mayWrite && (
        <VariableForm
          key={`${key}/${editing?.name ?? ''}`}
          base={base}
          editing={editing}
          headingRef={formHeading}
          levelName={levelName}
          onSaved={(v) => changed(`Saved ${v.name}${v.secret ? ' (secret)' : ''}.`)}
          onCancel={() => setEditing(null)}
        />
      )}

      {level.kind === 'device' && (
        <section aria-labelledby="effective-title">
          <h2 id="effective-title">What this device's runs get</h2>
          <p class="muted">
            The merged set for you: the device's own variables over those of {deviceTeam ? `team ${deviceTeam.name}` : 'its team'} over your account's.
          </p>
          {effective.error ? (
            <LoadError error={effective.error} retry={effective.reload} />
          ) : !effective.data ? (
            <Loading what="the merged variables" />
          ) : effective.data.length === 0 ? (
            <Empty title="No variables reach this device yet.">Add one above, or to its team or your account.</Empty>
          ) : (
            <SortableTable
              rows={[...effective.data].sort(byName)}
              columns={[
                { id: 'name', header: 'Name', value: (v) => v.name, cell: (v) => <code>{v.name}</code> },
                { id: 'value', header: 'Value', value: (v) => (v.secret ? '' : v.value), cell: (v) => <Value v={v} />, class: 'var-value' },
                { id: 'from', header: 'From', value: (v) => v.level, cell: (v) => <From level={v.level} team={deviceTeam} /> },
              ]}
              rowKey={(v) => v.name}
              caption="What this device's runs get"
              class="cards"
            />
          )}
        </section>
      )}
    </Page>
  );
}

function Value({ v }: { v: Variable }) {
  if (!v.secret) return <code class="value">{v.value}</code>;
  return (
    <span>
      <code class="value" title="A secret: its value is never shown">
        {SECRET_MASK}
      </code>{' '}
      <span class="tag">secret</span>
    </span>
  );
}

function From({ level, team }: { level: VariableLevel; team?: Team }) {
  if (level === 'device') return <>this device</>;
  if (level === 'team') return team ? <a href={levelUrl(`team:${team.id}`)}>team {team.name}</a> : <>its team</>;
  return <a href="/variables">your account</a>;
}

function VariableForm({ base, editing, headingRef, levelName, onSaved, onCancel }: {
  base: string;
  editing: Variable | null;
  headingRef: RefObject<HTMLHeadingElement | null>;
  levelName: string;
  onSaved: (v: Variable) => Promise<void>;
  onCancel: () => void;
}) {
  const [name, setName] = useState(editing?.name ?? '');
  // A stored secret is never read back, so editing one starts from an empty value.
  const [value, setValue] = useState(editing && !editing.secret ? editing.value : '');
  const [secret, setSecret] = useState(editing?.secret ?? false);
  const valueId = useId();
  const save = useAction(async () => {
    const v = await put<Variable>(`${base}/${encodeURIComponent(name)}`, { value, secret });
    // Ready for the next one (an edit's form is replaced by the parent instead).
    setName('');
    setValue('');
    setSecret(false);
    await onSaved(v);
  });
  const err = save.error;
  const valueError = err?.forField('value') ?? (err?.code === 'VARIABLE_VALUE_REQUIRED' ? err.message : undefined);
  const valueHint = editing?.secret
    ? 'The stored secret is never shown: type the new value to replace it.'
    : 'Up to 16 KiB; several lines are kept as they are.';
  return (
    <form
      id="variable-form"
      class="panel variable-form"
      aria-labelledby="variable-form-title"
      onSubmit={(e) => {
        e.preventDefault();
        void save.run();
      }}
    >
      <h2 id="variable-form-title" ref={headingRef} tabIndex={-1}>
        {editing ? `Edit ${editing.name}` : `Add a variable to ${levelName}`}
      </h2>
      <TextField
        label="Name"
        value={name}
        onValue={setName}
        required
        readOnly={!!editing}
        autoComplete="off"
        spellcheck={false}
        class="mono"
        hint={editing ? 'To rename a variable, add it under the new name and delete this one.' : 'Capital letters, digits and "_", not starting with a digit, like DATABASE_URL.'}
        error={err?.forField('name')}
      />
      <div class="field">
        <label for={valueId}>{editing?.secret ? 'New value' : 'Value'}</label>
        <textarea
          id={valueId}
          class="mono"
          rows={3}
          value={value}
          required={secret}
          autoComplete="off"
          spellcheck={false}
          aria-invalid={valueError ? true : undefined}
          aria-describedby={`${valueId}-hint${valueError ? ` ${valueId}-error` : ''}`}
          onInput={(e) => setValue((e.currentTarget as HTMLTextAreaElement).value)}
        />
        <p class="hint" id={`${valueId}-hint`}>
          {valueHint}
        </p>
        {valueError && (
          <p class="field-error" id={`${valueId}-error`} role="alert">
            {valueError}
          </p>
        )}
      </div>
      <CheckboxField
        label="Secret"
        checked={secret}
        onValue={setSecret}
        hint={editing?.secret ? 'Unticking it makes the variable plain with the new value.' : 'Write-only: once saved, nobody can read the value back, here or through the API.'}
      />
      <ErrorNote error={err} fields={['name', 'value']} />
      <div class="actions">
        <Button type="submit" class="primary" busy={save.busy} busyLabel="Saving…">
          {editing ? 'Save changes' : 'Add variable'}
        </Button>
        {editing && (
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}
