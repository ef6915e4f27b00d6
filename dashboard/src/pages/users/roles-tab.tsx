// The Roles tab of /users: the system roles (admin, operator, viewer: fixed by the relay, shown
// read-only) and custom roles, made, changed and deleted with the permission picker.
import { useState } from 'preact/hooks';
import type { ApiError } from '../../api.ts';
import { del, get, post, put } from '../../api.ts';
import { can } from '../../session.ts';
import { Empty, LoadError, Loading } from '../../ui/bits.tsx';
import { ConfirmButton } from '../../ui/dialog.tsx';
import { Button, ErrorNote, TextField } from '../../ui/form.tsx';
import { SortableTable, type Column } from '../../ui/table.tsx';
import { useAction, useLoad, type Loaded } from '../../ui/use-load.ts';
import type { Role } from '../../../../shared/api/auth.ts';
import type { PermissionCatalogue, PermissionEntry } from '../../../../shared/api/permissions.ts';
import { PermissionPicker } from './permission-picker.tsx';

const Permissions = ({ list }: { list: string[] }) =>
  list.length ? (
    <span class="perm-tags">
      {list.map((p) => (
        <span key={p} class="tag">
          {p}
        </span>
      ))}
    </span>
  ) : (
    <span class="muted">none</span>
  );

/** Whether the relay's refusal is about the permissions picked (shown at the picker) rather than the name. */
const aboutPermissions = (e: ApiError | undefined) =>
  !!e && (Array.isArray(e.details.missing) || (Array.isArray(e.details.issues) && e.details.issues.some((i: { path?: unknown }) => String(i.path ?? '').startsWith('permissions'))));

function RoleForm({ editing, catalogue, onSaved, onCancel }: {
  editing: Role | null;
  catalogue: Loaded<PermissionEntry[]>;
  onSaved: (r: Role) => void;
  onCancel: () => void;
}) {
  const [name, setName] = useState(editing?.name ?? '');
  const [description, setDescription] = useState(editing?.description ?? '');
  const [permissions, setPermissions] = useState<string[]>(editing?.permissions ?? []);
  const save = useAction(async () => {
    const body = { name: name.trim(), description, permissions };
    const r = editing ? await put<Role>(`/api/v1/roles/${encodeURIComponent(editing.id)}`, body) : await post<Role>('/api/v1/roles', body);
    onSaved(r);
  });
  const title = editing ? `Edit the role ${editing.name}` : 'Create a role';
  return (
    <section class="panel" aria-labelledby="role-form-title">
      <h2 id="role-form-title" tabIndex={-1}>
        {title}
      </h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void save.run();
        }}
      >
        <div class="inline-form">
          <TextField label="Role name" name="name" required maxLength={64} value={name} onValue={setName} error={save.error?.forField('name')} />
          <TextField label="Description" name="description" maxLength={256} value={description} onValue={setDescription} error={save.error?.forField('description')} />
        </div>
        <PermissionPicker catalogue={catalogue} value={permissions} onChange={setPermissions} error={aboutPermissions(save.error) ? save.error : undefined} />
        {!aboutPermissions(save.error) && <ErrorNote error={save.error} fields={['name', 'description']} />}
        <div class="actions">
          <Button type="submit" class="primary" busy={save.busy} busyLabel="Saving…">
            {editing ? 'Save role' : 'Create role'}
          </Button>
          {editing && (
            <button type="button" onClick={onCancel}>
              Cancel
            </button>
          )}
        </div>
      </form>
    </section>
  );
}

export function RolesTab() {
  const roles = useLoad(() => get<{ roles: Role[] }>('/api/v1/roles').then((r) => r.roles), []);
  const catalogue = useLoad(() => get<PermissionCatalogue>('/api/v1/permissions').then((r) => r.permissions), []);
  const [editing, setEditing] = useState<Role | null>(null);
  const [saved, setSaved] = useState('');
  // A new key after each save empties the form for the next role.
  const [round, setRound] = useState(0);
  const write = can('roles:write');
  const edit = (r: Role | null) => {
    setEditing(r);
    setSaved('');
    setTimeout(() => document.getElementById('role-form-title')?.focus(), 0);
  };
  const base: Column<Role>[] = [
    {
      id: 'name',
      header: 'Role',
      value: (r) => r.name.toLowerCase(),
      cell: (r) => (
        <span>
          {r.name} <code class="muted">{r.id}</code>
        </span>
      ),
    },
    { id: 'description', header: 'Description', value: (r) => r.description, cell: (r) => r.description || <span class="muted">none</span> },
    { id: 'permissions', header: 'Permissions', value: (r) => r.permissions.join(' '), cell: (r) => <Permissions list={r.permissions} />, sortable: false },
  ];
  const customColumns: Column<Role>[] = !write
    ? base
    : [
        ...base,
        {
          id: 'actions',
          header: 'Actions',
          sortable: false,
          value: () => '',
          cell: (r) => (
            <div class="actions">
              <button type="button" aria-label={`Edit ${r.name}`} onClick={() => edit(r)}>
                Edit
              </button>
              <ConfirmButton
                label={
                  <>
                    Delete<span class="visually-hidden"> {r.name}</span>
                  </>
                }
                title={`Delete the role ${r.name}?`}
                confirmLabel="Delete role"
                onConfirm={async () => {
                  await del(`/api/v1/roles/${encodeURIComponent(r.id)}`);
                  if (editing?.id === r.id) setEditing(null);
                  await roles.reload();
                }}
              >
                <p>A role that users still have cannot be deleted: give them another role first.</p>
              </ConfirmButton>
            </div>
          ),
        },
      ];
  if (roles.error) return <LoadError error={roles.error} retry={roles.reload} />;
  if (!roles.data) return <Loading what="roles" />;
  const system = roles.data.filter((r) => r.is_system);
  const custom = roles.data.filter((r) => !r.is_system);
  return (
    <>
      <section aria-labelledby="system-roles-title">
        <h2 id="system-roles-title">System roles</h2>
        <p class="hint">Built into the relay; they cannot be changed or deleted.</p>
        <SortableTable class="cards" caption="System roles" rows={system} columns={base} rowKey={(r) => r.id} />
      </section>
      <section aria-labelledby="custom-roles-title">
        <h2 id="custom-roles-title">Custom roles</h2>
        {saved && (
          <p class="success-note" role="status">
            Saved the role {saved}.
          </p>
        )}
        {custom.length === 0 ? (
          <Empty title="No custom roles yet.">{write ? <p>Create one below, with just the permissions it needs.</p> : <p>Someone with roles:write can make them.</p>}</Empty>
        ) : (
          <SortableTable class="cards" caption="Custom roles" rows={custom} columns={customColumns} rowKey={(r) => r.id} initialSort={[{ id: 'name', desc: false }]} />
        )}
      </section>
      {write && (
        <RoleForm
          key={`${editing?.id ?? 'new'}-${round}`}
          editing={editing}
          catalogue={catalogue}
          onCancel={() => setEditing(null)}
          onSaved={(r) => {
            setEditing(null);
            setSaved(r.name);
            setRound((n) => n + 1);
            void roles.reload();
          }}
        />
      )}
    </>
  );
}
