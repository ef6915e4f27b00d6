// The Users tab of /users: every account, making one, and managing one (roles, enabling and
// disabling, a new password, removing two-factor login for someone who lost their phone). The
// relay lets you manage only users whose permissions you hold yourself, and grant only roles you
// could have made; roles beyond yours are shown but cannot be ticked.
import { useState } from 'preact/hooks';
import { del, get, post, put } from '../../api.ts';
import { can, me } from '../../session.ts';
import { Empty, LoadError, Loading, StatusBadge, Time } from '../../ui/bits.tsx';
import { ConfirmButton } from '../../ui/dialog.tsx';
import { Button, CheckboxField, ErrorNote, TextField } from '../../ui/form.tsx';
import { SortableTable, type Column } from '../../ui/table.tsx';
import { useAction, useLoad, type Loaded } from '../../ui/use-load.ts';
import type { Role, User } from '../../../../shared/api/auth.ts';

const holdsAll = (r: Role) => r.permissions.every((p) => can(p));

function RoleChecks({ roles, value, onChange, error }: { roles: Loaded<Role[]>; value: string[]; onChange: (v: string[]) => void; error?: string }) {
  if (roles.error) return <LoadError error={roles.error} retry={roles.reload} />;
  if (!roles.data) return <Loading what="roles" />;
  const known = new Set(roles.data.map((r) => r.id));
  return (
    <fieldset class="role-checks">
      <legend>Roles</legend>
      {roles.data.map((r) => {
        const on = value.includes(r.id);
        const grantable = holdsAll(r);
        return (
          <CheckboxField
            key={r.id}
            name="roles"
            label={r.name}
            checked={on}
            disabled={!grantable && !on}
            onValue={(v) => onChange(v ? [...value, r.id] : value.filter((x) => x !== r.id))}
            hint={`${r.description ? `${r.description}. ` : ''}${grantable ? '' : 'It holds permissions you do not, so you cannot grant it.'}`}
          />
        );
      })}
      {value
        .filter((id) => !known.has(id))
        .map((id) => (
          <CheckboxField key={id} name="roles" label={`${id} (no longer exists)`} checked onValue={() => onChange(value.filter((x) => x !== id))} />
        ))}
      {error && (
        <p class="field-error" role="alert">
          {error}
        </p>
      )}
    </fieldset>
  );
}

function CreateUser({ roles, onCreated }: { roles: Loaded<Role[]>; onCreated: (u: User) => void }) {
  const [username, setUsername] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [picked, setPicked] = useState<string[]>(['viewer']);
  const create = useAction(async () => {
    const u = await post<User>('/api/v1/users', { username: username.trim(), email: email.trim() || undefined, password, roles: picked });
    setUsername('');
    setEmail('');
    setPassword('');
    setPicked(['viewer']);
    onCreated(u);
  });
  return (
    <section class="panel" aria-labelledby="create-user-title">
      <h2 id="create-user-title">Create a user</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void create.run();
        }}
      >
        <div class="inline-form">
          <TextField label="User name" name="username" required autoComplete="off" value={username} onValue={setUsername} hint="3–64 letters, digits, _ . or -" error={create.error?.forField('username')} />
          <TextField label="E-mail address" name="email" type="email" autoComplete="off" value={email} onValue={setEmail} hint="Optional; they can be invited to teams by it." error={create.error?.forField('email')} />
          <TextField label="Password" name="password" type="password" required autoComplete="new-password" value={password} onValue={setPassword} hint="At least 8 characters; tell it to them, they can change it." error={create.error?.forField('password')} />
        </div>
        <RoleChecks roles={roles} value={picked} onChange={setPicked} error={create.error?.forField('roles')} />
        <ErrorNote error={create.error} fields={['username', 'email', 'password', 'roles']} />
        <Button type="submit" class="primary" busy={create.busy} busyLabel="Creating…">
          Create user
        </Button>
      </form>
    </section>
  );
}

function ManageUser({ user, roles, onChanged, onClose }: { user: User; roles: Loaded<Role[]>; onChanged: () => Promise<void>; onClose: () => void }) {
  const [picked, setPicked] = useState(user.roles);
  const [password, setPassword] = useState('');
  const [done, setDone] = useState('');
  const saveRoles = useAction(async () => {
    await put(`/api/v1/users/${user.id}`, { roles: picked });
    setDone(`Saved the roles of ${user.username}.`);
    await onChanged();
  });
  const reset = useAction(async () => {
    await put(`/api/v1/users/${user.id}/password`, { new_password: password });
    setPassword('');
    setDone(`Set a new password for ${user.username}; they were signed out everywhere.`);
  });
  const enable = useAction(async () => {
    await put(`/api/v1/users/${user.id}`, { disabled: false });
    setDone(`Enabled ${user.username}.`);
    await onChanged();
  });
  const self = user.id === me.value?.id;
  return (
    <section class="panel manage-user" aria-labelledby="manage-title">
      <div class="page-head">
        <h2 id="manage-title" tabIndex={-1}>
          Manage {user.username}
        </h2>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
      {done && (
        <p class="success-note" role="status">
          {done}
        </p>
      )}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void saveRoles.run();
        }}
      >
        <RoleChecks roles={roles} value={picked} onChange={setPicked} error={saveRoles.error?.forField('roles')} />
        <ErrorNote error={saveRoles.error} fields={['roles']} />
        <Button type="submit" busy={saveRoles.busy} busyLabel="Saving…">
          Save roles
        </Button>
      </form>
      <h3>Password</h3>
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void reset.run();
        }}
      >
        <TextField label="New password" name="new_password" type="password" required autoComplete="new-password" value={password} onValue={setPassword} hint="Ends all of their sessions; their API keys keep working." error={reset.error?.forField('new_password')} />
        <Button type="submit" busy={reset.busy} busyLabel="Setting…">
          Set password
        </Button>
      </form>
      <ErrorNote error={reset.error} fields={['new_password']} />
      <h3>Two-factor login</h3>
      {user.two_factor_enabled ? (
        <div class="actions">
          <p>On.</p>
          <ConfirmButton
            label="Remove two-factor login"
            title={`Remove two-factor login for ${user.username}?`}
            onConfirm={async () => {
              await del(`/api/v1/users/${user.id}/2fa`);
              setDone(`Removed two-factor login for ${user.username}; they can enrol again from their account page.`);
              await onChanged();
            }}
          >
            <p>For someone who lost both their authenticator and their recovery codes. Until they enrol again, a password alone signs them in, and teams that require two-factor login shut them out.</p>
          </ConfirmButton>
        </div>
      ) : (
        <p class="muted">Off. They turn it on from their own account page.</p>
      )}
      <h3>Access</h3>
      {user.disabled ? (
        <div class="actions">
          <StatusBadge status="disabled" />
          <Button busy={enable.busy} onClick={() => void enable.run()}>
            Enable {user.username}
          </Button>
          <ErrorNote error={enable.error} />
        </div>
      ) : (
        <div class="actions">
          <ConfirmButton
            label={`Disable ${user.username}`}
            title={`Disable ${user.username}?`}
            confirmLabel="Disable user"
            onConfirm={async () => {
              await del(`/api/v1/users/${user.id}`);
              setDone(`Disabled ${user.username}.`);
              await onChanged();
            }}
          >
            <p>
              They are signed out everywhere and every API key of theirs is revoked. The account is kept, so the audit log still names it; it can be enabled again (with new API keys).
            </p>
          </ConfirmButton>
          {self && <p class="hint">You cannot disable your own account.</p>}
        </div>
      )}
    </section>
  );
}

export function UsersTab() {
  const users = useLoad(() => get<{ users: User[] }>('/api/v1/users').then((r) => r.users), []);
  const write = can('users:write');
  // Role names label the list; the role checkboxes need them too, so with users:write ask anyway
  // and let the relay's refusal show there.
  const roles = useLoad(() => (write || can('roles:read') ? get<{ roles: Role[] }>('/api/v1/roles').then((r) => r.roles) : Promise.resolve([])), [write]);
  const [managing, setManaging] = useState<string | null>(null);
  const [created, setCreated] = useState('');
  const roleName = new Map((roles.data ?? []).map((r) => [r.id, r.name]));
  const manage = (id: string | null) => {
    setManaging(id);
    if (id) setTimeout(() => document.getElementById('manage-title')?.focus(), 0);
  };
  const columns: Column<User>[] = [
    {
      id: 'username',
      header: 'User',
      value: (u) => u.username.toLowerCase(),
      cell: (u) => (
        <span>
          {u.username}
          {u.name && <span class="muted"> · {u.name}</span>}
          {u.id === me.value?.id && <span class="muted"> (you)</span>}
        </span>
      ),
    },
    { id: 'email', header: 'E-mail', value: (u) => u.email ?? '', cell: (u) => u.email ?? <span class="muted">none</span> },
    {
      id: 'roles',
      header: 'Roles',
      value: (u) => u.roles.join(' '),
      cell: (u) => (
        <span>
          {u.roles.map((r) => (
            <span key={r} class="tag">
              {roleName.get(r) ?? r}
            </span>
          ))}
        </span>
      ),
    },
    { id: '2fa', header: 'Two-factor', value: (u) => (u.two_factor_enabled ? 'on' : 'off') },
    { id: 'status', header: 'Status', value: (u) => (u.disabled ? 'disabled' : 'enabled'), cell: (u) => <StatusBadge status={u.disabled ? 'disabled' : 'enabled'} /> },
    { id: 'last', header: 'Last sign-in', value: (u) => u.last_login ?? '', cell: (u) => <Time iso={u.last_login} />, descFirst: true },
    ...(write
      ? [
          {
            id: 'actions',
            header: 'Actions',
            sortable: false,
            value: () => '',
            cell: (u: User) => (
              <button type="button" aria-label={`Manage ${u.username}`} aria-expanded={managing === u.id} onClick={() => manage(managing === u.id ? null : u.id)}>
                Manage
              </button>
            ),
          },
        ]
      : []),
  ];
  const current = users.data?.find((u) => u.id === managing);
  return (
    <>
      <section aria-labelledby="users-title">
        <h2 id="users-title">Users</h2>
        {created && (
          <p class="success-note" role="status">
            Created {created}. Add them to a team, or invite them, so they see its devices.
          </p>
        )}
        {users.error ? (
          <LoadError error={users.error} retry={users.reload} />
        ) : !users.data ? (
          <Loading what="users" />
        ) : users.data.length === 0 ? (
          <Empty title="No users." />
        ) : (
          <SortableTable class="cards" caption="Users" rows={users.data} columns={columns} rowKey={(u) => u.id} initialSort={[{ id: 'username', desc: false }]} />
        )}
      </section>
      {current && <ManageUser key={current.id} user={current} roles={roles} onChanged={users.reload} onClose={() => manage(null)} />}
      {write && (
        <CreateUser
          roles={roles}
          onCreated={(u) => {
            setCreated(u.username);
            void users.reload();
          }}
        />
      )}
    </>
  );
}
