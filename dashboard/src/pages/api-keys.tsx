// API keys: credentials for scripts and the CLI (`Authorization: Bearer <key>`). The relay keeps
// only a key's SHA-256, so a new key is shown this once — with a curl line that uses it against
// this relay — and the list shows its prefix only. A key may expire and may be narrowed to some of
// its owner's permissions; revoking one ends it (and its live streams) at once. Holders of
// api-keys:* may list and revoke everyone's keys, as the API allows.
import { useRef, useState } from 'preact/hooks';
import { del, get, post, query, type ApiError } from '../api.ts';
import { can, me } from '../session.ts';
import { Empty, LoadError, Loading, Page, StatusBadge, Time } from '../ui/bits.tsx';
import { Button, CheckboxField, ErrorNote, SelectField, TextField } from '../ui/form.tsx';
import { CodeLine, OnceSecret } from '../ui/copy.tsx';
import { SortableTable, type Column } from '../ui/table.tsx';
import { ConfirmButton } from '../ui/dialog.tsx';
import { useAction, useLoad } from '../ui/use-load.ts';
import type { ApiKey, CreatedApiKey, User } from '../../../shared/api/auth.ts';
import type { PermissionCatalogue } from '../../../shared/api/permissions.ts';
import './api-keys.css';

const EXPIRY = [
  { value: '30', label: 'In 30 days' },
  { value: '90', label: 'In 90 days' },
  { value: '365', label: 'In a year' },
  { value: 'never', label: 'Never' },
];

type KeyState = 'active' | 'expired' | 'revoked';

function stateOf(k: ApiKey, now = Date.now()): KeyState {
  if (k.revoked_at) return 'revoked';
  if (k.expires_at && Date.parse(k.expires_at) <= now) return 'expired';
  return 'active';
}

/** The issue paths of the permission list: zod names them `permissions.<n>`. */
function permissionPaths(e: ApiError | undefined): string[] {
  const issues = Array.isArray(e?.details.issues) ? (e.details.issues as { path?: unknown }[]) : [];
  return issues.map((i) => String(i.path ?? '')).filter((p) => p.startsWith('permissions'));
}

/** The permission list's error: its first invalid entry, or the ones a 403 says the caller lacks. */
function permissionsError(e: ApiError | undefined): string | undefined {
  if (!e) return undefined;
  const path = permissionPaths(e)[0];
  if (path) return e.forField(path);
  const missing = e.details.missing;
  return Array.isArray(missing) && missing.length ? `${e.message}: ${missing.join(', ')}` : undefined;
}

export default function ApiKeysPage() {
  const manageAll = can('api-keys:*');
  const [whose, setWhose] = useState<'mine' | 'all'>('mine');
  const [showInactive, setShowInactive] = useState(false);
  const [created, setCreated] = useState<CreatedApiKey | null>(null);
  const listHeading = useRef<HTMLHeadingElement>(null);
  const keys = useLoad((signal) => get<{ api_keys: ApiKey[] }>(`/api/v1/api-keys${query({ all: whose === 'all' ? 'true' : undefined })}`, { signal }).then((r) => r.api_keys), [whose]);
  // Owners' names for the everyone view; without users:read the id stands in.
  const users = useLoad(
    (signal) => (whose === 'all' && can('users:read') ? get<{ users: User[] }>('/api/v1/users', { signal }).then((r) => r.users) : Promise.resolve([] as User[])),
    [whose],
  );
  const owner = (id: string) => (id === me.value?.id ? 'you' : (users.data?.find((u) => u.id === id)?.username ?? id));

  const now = Date.now();
  const rows = (keys.data ?? []).filter((k) => showInactive || stateOf(k, now) === 'active');
  const hidden = (keys.data?.length ?? 0) - rows.length;

  const columns: Column<ApiKey>[] = [
    { id: 'name', header: 'Name', value: (k) => k.name },
    ...(whose === 'all' ? [{ id: 'owner', header: 'Owner', value: (k: ApiKey) => owner(k.user_id) }] : []),
    { id: 'prefix', header: 'Key', value: (k) => k.prefix, cell: (k) => <code>{k.prefix}…</code> },
    {
      id: 'permissions',
      header: 'Permissions',
      value: (k) => k.permissions?.join(' ') ?? '',
      cell: (k) =>
        k.permissions === null ? (
          <span class="muted">all of its owner's</span>
        ) : k.permissions.length === 0 ? (
          <span class="muted">none</span>
        ) : (
          <span>
            {k.permissions.map((p) => (
              <span key={p} class="tag">
                {p}
              </span>
            ))}
          </span>
        ),
    },
    { id: 'created', header: 'Created', value: (k) => k.created_at, cell: (k) => <Time iso={k.created_at} />, descFirst: true },
    { id: 'used', header: 'Last used', value: (k) => k.last_used_at, cell: (k) => <Time iso={k.last_used_at} />, descFirst: true },
    { id: 'expires', header: 'Expires', value: (k) => k.expires_at ?? '9999', cell: (k) => <Time iso={k.expires_at} empty="never" /> },
    { id: 'state', header: 'State', value: (k) => stateOf(k, now), cell: (k) => <StatusBadge status={stateOf(k, now)} /> },
    {
      id: 'actions',
      header: 'Actions',
      value: () => '',
      sortable: false,
      cell: (k) =>
        k.revoked_at ? null : (
          <ConfirmButton
            label={
              <>
                Revoke<span class="visually-hidden"> {k.name}</span>
              </>
            }
            title={`Revoke ${k.name}?`}
            confirmLabel="Revoke"
            onConfirm={async () => {
              await del(`/api/v1/api-keys/${encodeURIComponent(k.id)}`);
              if (created?.id === k.id) setCreated(null);
              await keys.reload();
              // The row (and the button that had focus) may be gone: carry on from the list.
              listHeading.current?.focus();
            }}
          >
            <p>
              Anything using <code>{k.prefix}…</code> is refused from now on, and its live streams end. This cannot be undone.
            </p>
          </ConfirmButton>
        ),
    },
  ];

  return (
    <Page title="API keys">
      <p class="muted keys-intro">
        An API key lets a script or the command line act as you: send it as <code>Authorization: Bearer &lt;key&gt;</code>, or as the user name of
        Basic authentication with an empty password (<code>curl -u &lt;key&gt;:</code>). A key works until it expires or you revoke it; it needs no
        second factor.
      </p>

      {can('api-keys:own') && (
        <CreateKey
          onCreated={(k) => {
            setCreated(k);
            void keys.reload();
          }}
        />
      )}

      {created && (
        <OnceSecret label={`API key ${created.name}`} value={created.key}>
          <p>Try it: this lists the devices the key can see.</p>
          <CodeLine label="A curl command using the new key" code={`curl -H "Authorization: Bearer ${created.key}" ${location.origin}/api/v1/devices`} />
          <button type="button" onClick={() => setCreated(null)}>
            I have copied it
          </button>
        </OnceSecret>
      )}

      <h2 id="keys-title" ref={listHeading} tabIndex={-1}>{whose === 'all' ? 'Everyone’s API keys' : 'Your API keys'}</h2>
      <div class="filters">
        {manageAll && (
          <SelectField
            label="Whose keys"
            value={whose}
            options={[
              { value: 'mine', label: 'Mine' },
              { value: 'all', label: 'Everyone’s' },
            ]}
            onValue={(v) => setWhose(v === 'all' ? 'all' : 'mine')}
          />
        )}
        <CheckboxField label="Show revoked and expired keys" checked={showInactive} onValue={setShowInactive} />
      </div>
      {keys.error ? (
        <LoadError error={keys.error} retry={keys.reload} />
      ) : !keys.data ? (
        <Loading what="API keys" />
      ) : rows.length === 0 ? (
        <Empty title={hidden ? `No active API keys (${hidden} revoked or expired).` : whose === 'all' ? 'Nobody has an API key yet.' : 'You have no API keys yet.'}>
          Create one above for a script or the command line.
        </Empty>
      ) : (
        <SortableTable rows={rows} columns={columns} rowKey={(k) => k.id} caption={whose === 'all' ? 'Everyone’s API keys' : 'Your API keys'} class="cards keys-table" />
      )}
    </Page>
  );
}

function CreateKey({ onCreated }: { onCreated: (k: CreatedApiKey) => void }) {
  const [name, setName] = useState('');
  const [expiry, setExpiry] = useState('90');
  const [narrow, setNarrow] = useState(false);
  const [picked, setPicked] = useState<string[]>([]);
  const [other, setOther] = useState('');
  // The permissions a key could be narrowed to: the relay's catalogue (GET /api/v1/permissions, read
  // from its routes' declarations), each only if the caller holds it — the API refuses the rest.
  const catalogue = useLoad((signal) => get<PermissionCatalogue>('/api/v1/permissions', { signal }).then((r) => r.permissions), []);
  const known = (catalogue.data ?? []).map((e) => e.permission).filter((p) => p !== '*' && can(p));

  const create = useAction(async () => {
    const permissions = narrow ? [...new Set([...picked, ...other.split(/[\s,]+/).filter(Boolean)])] : undefined;
    const k = await post<CreatedApiKey>('/api/v1/api-keys', {
      name,
      ...(expiry === 'never' ? {} : { expires_in_days: Number(expiry) }),
      ...(permissions ? { permissions } : {}),
    });
    setName('');
    setPicked([]);
    setOther('');
    setNarrow(false);
    onCreated(k);
  });
  const err = create.error;
  return (
    <form
      class="panel create-key"
      aria-labelledby="create-key-title"
      onSubmit={(e) => {
        e.preventDefault();
        void create.run();
      }}
    >
      <h2 id="create-key-title">Create an API key</h2>
      <div class="grid">
        <TextField label="Name" value={name} onValue={setName} required maxLength={64} autoComplete="off" hint="What it is for, like “backup script”" error={err?.forField('name')} />
        <SelectField label="Expires" value={expiry} options={EXPIRY} onValue={setExpiry} error={err?.forField('expires_in_days') ?? err?.forField('expires_at')} />
      </div>
      <CheckboxField label="Limit it to some of my permissions" checked={narrow} onValue={setNarrow} hint="Unlimited, a key can do whatever you can." />
      {narrow && (
        <fieldset class="key-permissions">
          <legend>Permissions of the key</legend>
          {known.length > 0 && (
            <div class="key-permission-list">
              {known.map((p) => (
                <CheckboxField
                  key={p}
                  label={<code>{p}</code>}
                  checked={picked.includes(p)}
                  onValue={(on) => setPicked((old) => (on ? [...old, p] : old.filter((x) => x !== p)))}
                />
              ))}
            </div>
          )}
          <TextField
            label={known.length ? 'Other permissions' : 'Permissions'}
            value={other}
            onValue={setOther}
            autoComplete="off"
            spellcheck={false}
            class="mono"
            hint="Separated by spaces, like devices:read tunnels:*"
            error={permissionsError(err)}
          />
        </fieldset>
      )}
      <ErrorNote error={err} fields={['name', 'expires_in_days', 'expires_at', ...permissionPaths(err)]} />
      <Button type="submit" class="primary" busy={create.busy} busyLabel="Creating…">
        Create API key
      </Button>
    </form>
  );
}
