// The audit log (GET /api/v1/audit): who changed what, when, from where, in which team — newest
// first. The filters are the API's own query parameters and live in the page's URL, so a view can
// be linked and reloaded; every actor, action, target and team in an entry is a link that narrows
// the view to it. The API pages backwards with a cursor (`before` = the last page's next_before),
// so older entries are appended below ("Load older entries") rather than numbered pages.
import { useEffect, useRef, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { get, query, type ApiError } from '../api.ts';
import { administers, can, isAdmin } from '../session.ts';
import { Empty, LoadError, Loading, Page, relative } from '../ui/bits.tsx';
import { Button, ErrorNote, SelectField, TextField } from '../ui/form.tsx';
import { fromLocalInput, toLocalInput } from '../ui/local-time.ts';
import { useAction, useLoad } from '../ui/use-load.ts';
import type { AuditEntry, AuditPage } from '../../../shared/api/audit.ts';
import type { Team } from '../../../shared/api/teams.ts';
import type { User } from '../../../shared/api/auth.ts';
import './audit.css';

/** The query parameters of GET /api/v1/audit that select entries (paging aside). */
const FILTERS = ['action', 'actor_id', 'target_type', 'target_id', 'team_id', 'from', 'to', 'limit'] as const;
type Filters = Partial<Record<(typeof FILTERS)[number], string>>;

/** How the actor proved who they were; "none" for a login itself (or a failed one) and work done by the relay. */
const CREDENTIAL: Record<AuditEntry['credential'], string> = { session: 'session', api_key: 'API key', none: 'no credential' };

function filtersOf(q: Record<string, string>): Filters {
  const f: Filters = {};
  for (const k of FILTERS) if (q[k]) f[k] = q[k];
  return f;
}

const auditUrl = (f: Filters) => `/audit${query(f)}`;

export default function AuditPage() {
  const { query: q, route } = useLocation();
  const filters = filtersOf(q);
  const apiQuery = query(filters);
  const hasFilters = apiQuery !== '';

  const log = useLoad((signal) => get<AuditPage>(`/api/v1/audit${apiQuery}`, { signal }), [apiQuery]);
  // Names for the filters' pickers and the entries' ids; without the permission, ids stand in.
  const teams = useLoad((signal) => (can('teams:read') ? get<{ teams: Team[] }>('/api/v1/teams', { signal }).then((r) => r.teams) : Promise.resolve([] as Team[])), []);
  const users = useLoad((signal) => (can('users:read') ? get<{ users: User[] }>('/api/v1/users', { signal }).then((r) => r.users) : Promise.resolve([] as User[])), []);
  const teamName = (id: string) => teams.data?.find((t) => t.id === id)?.name ?? id;

  // The view an older page was asked for: if the filters change meanwhile, its answer is dropped.
  const view = useRef(apiQuery);
  view.current = apiQuery;
  const older = useAction(async () => {
    const next = log.data?.next_before;
    if (next == null) return;
    const asked = apiQuery;
    const r = await get<AuditPage>(`/api/v1/audit${query({ ...filters, before: next })}`);
    if (view.current !== asked) return;
    log.set((old) => (old ? { entries: [...old.entries, ...r.entries], next_before: r.next_before } : r));
  });

  // A new view (filters applied, or an entry's link followed) replaces the form and the rows that
  // had focus: carry on from the entries' heading, where a screen reader hears what matched.
  const entriesHeading = useRef<HTMLHeadingElement>(null);
  const shown = useRef(false);
  useEffect(() => {
    if (shown.current) entriesHeading.current?.focus();
    shown.current = true;
  }, [apiQuery]);

  const invalid = log.error?.code === 'VALIDATION_ERROR' ? log.error : undefined;
  const entries = log.data?.entries;

  return (
    <Page title="Audit log">
      <p class="muted audit-intro">
        Every change to users, roles, teams, members, invitations, variables, API keys, enrollment tokens, devices and tunnels, and every sign-in,
        newest first.{' '}
        {!isAdmin.value && 'You see the entries of the teams you administer; sign-ins, users, roles and API keys are for instance admins.'}
      </p>

      {can('audit:read') && (
        <FilterForm
          key={apiQuery}
          filters={filters}
          // A team's entries are for its admins and owners (a plain member is refused): only those are offered.
          teams={(teams.data ?? []).filter((t) => administers(t.role))}
          users={users.data ?? []}
          invalid={invalid}
          hasFilters={hasFilters}
          onApply={(f) => route(auditUrl(f))}
        />
      )}

      <h2 id="entries-title" ref={entriesHeading} tabIndex={-1}>{hasFilters ? 'Matching entries' : 'Entries'}</h2>
      {log.error ? (
        invalid ? null : (
          <>
            <LoadError error={log.error} retry={log.reload} />
            {log.error.status === 403 && Array.isArray(log.error.details.required) && (
              <p class="muted">Reading the audit log needs the permission {log.error.details.required.join(', ')}: ask an instance admin for a role that has it.</p>
            )}
          </>
        )
      ) : !entries ? (
        <Loading what="the audit log" />
      ) : entries.length === 0 ? (
        hasFilters ? (
          <Empty title="No entries match these filters.">
            <a href="/audit">Clear the filters</a>
          </Empty>
        ) : (
          <Empty title="Nothing has been recorded that you may see yet.">Changes appear here as they are made.</Empty>
        )
      ) : (
        <>
          <div class="table-wrap">
            <table class="cards audit-table">
              <caption class="visually-hidden">Audit log entries, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Who</th>
                  <th scope="col">Action</th>
                  <th scope="col">Target</th>
                  <th scope="col">Team</th>
                  <th scope="col">IP address</th>
                  <th scope="col">Details</th>
                </tr>
              </thead>
              <tbody>
                {entries.map((e) => (
                  <Entry key={e.id} e={e} filters={filters} teamName={teamName} />
                ))}
              </tbody>
            </table>
          </div>
          <div class="actions audit-more">
            <p role="status" class="muted">
              {entries.length === 1 ? 'One entry' : `${entries.length} entries`}
              {log.data?.next_before == null ? ', the oldest included.' : ' shown; older ones follow.'}
            </p>
            {log.data?.next_before != null && (
              <Button busy={older.busy} busyLabel="Loading…" onClick={() => void older.run()}>
                Load older entries
              </Button>
            )}
          </div>
          <ErrorNote error={older.error} />
        </>
      )}
    </Page>
  );
}

function Entry({ e, filters, teamName }: { e: AuditEntry; filters: Filters; teamName: (id: string) => string }) {
  const when = new Date(e.at);
  const name = typeof e.details?.name === 'string' ? e.details.name : undefined;
  const narrow = (f: Filters) => auditUrl({ ...filters, ...f });
  return (
    <tr>
      <td data-label="When">
        <span>
          <time dateTime={e.at}>{when.toLocaleString()}</time>
          <span class="muted audit-ago"> {relative(e.at)}</span>
        </span>
      </td>
      <td data-label="Who">
        <span>
          {e.actor.id ? (
            <a href={narrow({ actor_id: e.actor.id })} aria-label={`Show only entries by ${e.actor.name || e.actor.id}`}>
              {e.actor.name || e.actor.id}
            </a>
          ) : (
            e.actor.name || <span class="muted">nobody</span>
          )}
          <span class="muted audit-credential"> {CREDENTIAL[e.credential] ?? e.credential}</span>
        </span>
      </td>
      <td data-label="Action">
        <a href={narrow({ action: e.action })} aria-label={`Show only ${e.action} entries`}>
          <code>{e.action}</code>
        </a>
      </td>
      <td data-label="Target" class="audit-target">
        {e.target_type ? (
          <span>
            {e.target_id ? (
              <a href={narrow({ target_type: e.target_type, target_id: e.target_id })} aria-label={`Show only entries for ${e.target_type} ${name ?? e.target_id}`}>
                {e.target_type} {name ?? <code>{e.target_id}</code>}
              </a>
            ) : (
              e.target_type
            )}
            {e.target_id && name && <code class="muted audit-id"> {e.target_id}</code>}
          </span>
        ) : (
          <span class="muted">—</span>
        )}
      </td>
      <td data-label="Team">
        {e.team_id ? (
          <a href={narrow({ team_id: e.team_id })} aria-label={`Show only entries of team ${teamName(e.team_id)}`}>
            {teamName(e.team_id)}
          </a>
        ) : (
          <span class="muted">instance</span>
        )}
      </td>
      <td data-label="IP address">
        <code>{e.ip || '—'}</code>
      </td>
      <td data-label="Details">
        {e.details ? (
          <details class="audit-details">
            <summary>
              Details<span class="visually-hidden"> of {e.action} at {when.toLocaleString()}</span>
            </summary>
            <pre>{JSON.stringify(e.details, null, 2)}</pre>
          </details>
        ) : (
          <span class="muted">—</span>
        )}
      </td>
    </tr>
  );
}

function FilterForm({ filters, teams, users, invalid, hasFilters, onApply }: {
  filters: Filters;
  teams: Team[];
  users: User[];
  invalid: ApiError | undefined;
  hasFilters: boolean;
  onApply: (f: Filters) => void;
}) {
  const [f, setF] = useState<Filters>(filters);
  const [from, setFrom] = useState(toLocalInput(filters.from));
  const [to, setTo] = useState(toLocalInput(filters.to));
  const set = (k: keyof Filters) => (v: string) => setF((old) => ({ ...old, [k]: v.trim() || undefined }));
  const withCurrent = (options: { value: string; label: string }[], current: string | undefined) =>
    current && !options.some((o) => o.value === current) ? [...options, { value: current, label: current }] : options;
  const err = (k: string) => invalid?.forField(k);
  return (
    <form
      class="panel audit-filters"
      aria-labelledby="filters-title"
      onSubmit={(e) => {
        e.preventDefault();
        // Times travel as ISO 8601 (UTC), as the API takes them; an unparsable one is left out.
        onApply({ ...f, from: fromLocalInput(from), to: fromLocalInput(to) });
      }}
    >
      <h2 id="filters-title">Filters</h2>
      <div class="filters">
        <TextField label="Action" value={f.action ?? ''} onValue={set('action')} autoComplete="off" spellcheck={false} hint={'Exact (api_key.create) or a prefix ending in "." (variable.)'} error={err('action')} />
        {users.length ? (
          <SelectField
            label="Actor"
            value={f.actor_id ?? ''}
            onValue={set('actor_id')}
            options={withCurrent([{ value: '', label: 'Anyone' }, ...users.map((u) => ({ value: u.id, label: u.username }))], f.actor_id)}
            error={err('actor_id')}
          />
        ) : (
          <TextField label="Actor ID" value={f.actor_id ?? ''} onValue={set('actor_id')} autoComplete="off" error={err('actor_id')} />
        )}
        <TextField label="Target type" value={f.target_type ?? ''} onValue={set('target_type')} autoComplete="off" spellcheck={false} hint="Like api_key, variable, device" error={err('target_type')} />
        <TextField label="Target ID" value={f.target_id ?? ''} onValue={set('target_id')} autoComplete="off" spellcheck={false} error={err('target_id')} />
        {teams.length ? (
          <SelectField
            label="Team"
            value={f.team_id ?? ''}
            onValue={set('team_id')}
            options={withCurrent([{ value: '', label: 'Any team' }, ...teams.map((t) => ({ value: t.id, label: t.name }))], f.team_id)}
            error={err('team_id')}
          />
        ) : (
          <TextField label="Team ID" value={f.team_id ?? ''} onValue={set('team_id')} autoComplete="off" error={err('team_id')} />
        )}
        <TextField label="From" type="datetime-local" value={from} onValue={setFrom} hint="At or after, your local time" error={err('from')} />
        <TextField label="To" type="datetime-local" value={to} onValue={setTo} hint="Before" error={err('to')} />
        <SelectField
          label="Per page"
          value={f.limit ?? ''}
          onValue={set('limit')}
          options={withCurrent(
            [
              { value: '', label: '50' },
              { value: '20', label: '20' },
              { value: '100', label: '100' },
            ],
            f.limit,
          )}
          error={err('limit')}
        />
      </div>
      <ErrorNote error={invalid} fields={[...FILTERS]} />
      <div class="actions">
        <Button type="submit" class="primary">
          Apply filters
        </Button>
        {hasFilters && <a href="/audit">Clear the filters</a>}
      </div>
    </form>
  );
}
