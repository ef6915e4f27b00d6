// /teams/:id: one team — its settings (name, the two-factor requirement, deleting it), its
// members and their roles, and its invitations. Controls follow the caller's team role (admins
// manage members and invitations, owners also owners and the team itself; an instance admin
// everything), but the relay decides: what it refuses is shown as it said it, beside the control.
// An invitation's token is in its answer only once, so the link is shown once, to copy and send.
import { useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { del, get, patch, post } from '../api.ts';
import { administers, can, isAdmin, me } from '../session.ts';
import { Empty, LoadError, Loading, Page, StatusBadge, Time } from '../ui/bits.tsx';
import { OnceSecret } from '../ui/copy.tsx';
import { ConfirmButton } from '../ui/dialog.tsx';
import { Button, CheckboxField, ErrorNote, SelectField, TextField } from '../ui/form.tsx';
import { SortableTable, type Column } from '../ui/table.tsx';
import { useAction, useLoad } from '../ui/use-load.ts';
import { TEAM_ROLES, type TeamRole } from '../../../shared/api/team-roles.ts';
import type { CreatedInvitation, Invitation, Team, TeamDetail, TeamMember } from '../../../shared/api/teams.ts';
import './teams.css';

/** What the caller may do in this team, as the relay's rules say (README "Teams and access"). */
function powersIn(team: TeamDetail) {
  const role = team.role;
  const write = can('teams:write');
  const admin = administers(role);
  const owner = isAdmin.value || role === 'owner';
  return { manage: admin && write, own: owner && write, seeInvitations: admin && can('teams:read') };
}
type Powers = ReturnType<typeof powersIn>;

const roleOptions = (own: boolean) => TEAM_ROLES.filter((r) => own || r !== 'owner').map((r) => ({ value: r, label: r }));

function Settings({ team, powers, onChange }: { team: TeamDetail; powers: Powers; onChange: (t: Team) => void }) {
  const [name, setName] = useState(team.name);
  const { route } = useLocation();
  const rename = useAction(async () => onChange(await patch<Team>(`/api/v1/teams/${team.id}`, { name })));
  // The switch shows what was asked while the relay answers, then what the relay holds.
  const [asked, setAsked] = useState<boolean | null>(null);
  const twoFactor = useAction(async (on: boolean) => {
    setAsked(on);
    try {
      onChange(await patch<Team>(`/api/v1/teams/${team.id}`, { require_2fa: on }));
    } finally {
      setAsked(null);
    }
  });
  return (
    <section class="panel" aria-labelledby="settings-title">
      <h2 id="settings-title">Settings</h2>
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void rename.run();
        }}
      >
        <TextField label="Team name" name="name" required maxLength={64} value={name} onValue={setName} error={rename.error?.forField('name')} />
        <Button type="submit" busy={rename.busy} busyLabel="Saving…" disabled={name.trim() === team.name}>
          Rename
        </Button>
      </form>
      <ErrorNote error={rename.error} fields={['name']} />
      <CheckboxField
        label="Require two-factor login"
        checked={asked ?? team.require_2fa}
        disabled={twoFactor.busy}
        onValue={(on) => void twoFactor.run(on)}
        hint="Members without two-factor login lose access to the team and its devices until they turn it on. Switching it on needs it on your own account."
      />
      <ErrorNote error={twoFactor.error} />
      {powers.own && (
        <div class="actions">
          <ConfirmButton
            label="Delete team"
            title={`Delete ${team.name}?`}
            confirmLabel="Delete team"
            onConfirm={async () => {
              await del(`/api/v1/teams/${team.id}`);
              route('/teams');
            }}
          >
            <p>Its members, invitations, enrollment tokens and variables are deleted with it. A team that still has devices cannot be deleted: move or delete them first.</p>
          </ConfirmButton>
        </div>
      )}
    </section>
  );
}

function Members({ team, powers, reload }: { team: TeamDetail; powers: Powers; reload: () => Promise<void> }) {
  const { route } = useLocation();
  const myId = me.value?.id;
  // The member whose role is being changed and the role asked, shown until the relay has answered.
  const [asked, setAsked] = useState<{ member: TeamMember; role: string } | null>(null);
  const change = useAction(async (m: TeamMember, role: string) => {
    setAsked({ member: m, role });
    try {
      await patch(`/api/v1/teams/${team.id}/members/${m.user_id}`, { role });
      await reload();
    } finally {
      setAsked(null);
    }
  });
  const [changing, setChanging] = useState('');
  const remove = async (m: TeamMember) => {
    await del(`/api/v1/teams/${team.id}/members/${m.user_id}`);
    if (m.user_id === myId) route('/teams');
    else await reload();
  };
  // Owners are changed only by owners.
  const mayChange = (m: TeamMember) => powers.manage && (m.role !== 'owner' || powers.own);
  const columns: Column<TeamMember>[] = [
    {
      id: 'user',
      header: 'Member',
      value: (m) => m.username.toLowerCase(),
      cell: (m) => (
        <span>
          {m.username}
          {m.name && <span class="muted"> · {m.name}</span>}
          {m.user_id === myId && <span class="muted"> (you)</span>}
        </span>
      ),
    },
    { id: 'email', header: 'E-mail', value: (m) => m.email ?? '', cell: (m) => m.email ?? <span class="muted">none</span> },
    {
      id: 'role',
      header: 'Team role',
      value: (m) => m.role,
      cell: (m) =>
        mayChange(m) ? (
          <select
            aria-label={`Team role of ${m.username}`}
            value={asked?.member.user_id === m.user_id ? asked.role : m.role}
            disabled={change.busy}
            onChange={(e) => {
              setChanging(m.username);
              void change.run(m, (e.currentTarget as HTMLSelectElement).value);
            }}
          >
            {roleOptions(powers.own).map((o) => (
              <option key={o.value} value={o.value}>
                {o.label}
              </option>
            ))}
          </select>
        ) : (
          <span class="tag">{m.role}</span>
        ),
    },
    { id: '2fa', header: 'Two-factor', value: (m) => (m.two_factor_enabled ? 'on' : 'off') },
    { id: 'joined', header: 'Joined', value: (m) => m.joined_at, cell: (m) => <Time iso={m.joined_at} />, descFirst: true },
    {
      id: 'actions',
      header: 'Actions',
      sortable: false,
      value: () => '',
      cell: (m) =>
        m.user_id === myId ? (
          <ConfirmButton label="Leave team" title={`Leave ${team.name}?`} confirmLabel="Leave team" onConfirm={() => remove(m)}>
            <p>You lose access to its devices at once. To come back you need a new invitation.</p>
          </ConfirmButton>
        ) : mayChange(m) ? (
          <ConfirmButton
            label={
              <>
                Remove<span class="visually-hidden"> {m.username}</span>
              </>
            }
            title={`Remove ${m.username} from ${team.name}?`}
            confirmLabel="Remove member"
            onConfirm={() => remove(m)}
          >
            <p>They lose access to the team's devices at once.</p>
          </ConfirmButton>
        ) : null,
    },
  ];
  return (
    <section aria-labelledby="members-title">
      <h2 id="members-title">Members</h2>
      <SortableTable class="cards" caption={`Members of ${team.name}`} rows={team.members} columns={columns} rowKey={(m) => m.user_id} initialSort={[{ id: 'user', desc: false }]} />
      {change.error && (
        <div class="member-error">
          <p class="hint">Changing the role of {changing}:</p>
          <ErrorNote error={change.error} />
        </div>
      )}
      {powers.manage && <AddMember team={team} powers={powers} reload={reload} />}
    </section>
  );
}

function AddMember({ team, powers, reload }: { team: TeamDetail; powers: Powers; reload: () => Promise<void> }) {
  const [username, setUsername] = useState('');
  const [role, setRole] = useState<TeamRole>('member');
  const add = useAction(async () => {
    await post(`/api/v1/teams/${team.id}/members`, { username: username.trim(), role });
    setUsername('');
    await reload();
  });
  return (
    <form
      class="panel"
      aria-labelledby="add-member-title"
      onSubmit={(e) => {
        e.preventDefault();
        void add.run();
      }}
    >
      <h3 id="add-member-title">Add a member</h3>
      <p class="hint">Adds an existing user at once. To ask someone instead, invite them below.</p>
      <div class="inline-form">
        <TextField label="User name" name="username" required autoComplete="off" value={username} onValue={setUsername} error={add.error?.forField('username')} />
        <SelectField label="Team role" value={role} options={roleOptions(powers.own)} onValue={(v) => setRole(v as TeamRole)} />
        <Button type="submit" busy={add.busy} busyLabel="Adding…">
          Add member
        </Button>
      </div>
      <ErrorNote error={add.error} fields={['username']} />
    </form>
  );
}

const VALID_FOR = [
  { value: '24', label: '1 day' },
  { value: '168', label: '7 days' },
  { value: '720', label: '30 days' },
];

function Invitations({ team, powers }: { team: TeamDetail; powers: Powers }) {
  const list = useLoad(() => get<{ invitations: Invitation[] }>(`/api/v1/teams/${team.id}/invitations`).then((r) => r.invitations), [team.id]);
  const [invitee, setInvitee] = useState('');
  const [role, setRole] = useState<TeamRole>('member');
  const [hours, setHours] = useState('168');
  const [created, setCreated] = useState<CreatedInvitation | null>(null);
  const invite = useAction(async () => {
    setCreated(null);
    const c = await post<CreatedInvitation>(`/api/v1/teams/${team.id}/invitations`, { invitee, role, expires_in_hours: Number(hours) });
    setCreated(c);
    setInvitee('');
    await list.reload();
  });
  const names = new Map(team.members.map((m) => [m.user_id, m.username]));
  const mayRevoke = (i: Invitation) => powers.manage && i.state === 'pending' && (i.role !== 'owner' || powers.own);
  const columns: Column<Invitation>[] = [
    { id: 'invitee', header: 'Invitee', value: (i) => i.invitee },
    { id: 'role', header: 'Team role', value: (i) => i.role, cell: (i) => <span class="tag">{i.role}</span> },
    { id: 'state', header: 'State', value: (i) => i.state, cell: (i) => <StatusBadge status={i.state} /> },
    { id: 'token', header: 'Token', value: (i) => i.prefix, cell: (i) => <code>{i.prefix}…</code>, sortable: false },
    { id: 'by', header: 'Invited by', value: (i) => (i.invited_by ? (names.get(i.invited_by) ?? 'someone outside the team') : '—') },
    { id: 'expires', header: 'Expires', value: (i) => i.expires_at, cell: (i) => <Time iso={i.expires_at} /> },
    {
      id: 'actions',
      header: 'Actions',
      sortable: false,
      value: () => '',
      cell: (i) =>
        mayRevoke(i) ? (
          <ConfirmButton
            label={
              <>
                Revoke<span class="visually-hidden"> the invitation of {i.invitee}</span>
              </>
            }
            title={`Revoke the invitation of ${i.invitee}?`}
            confirmLabel="Revoke invitation"
            onConfirm={async () => {
              await del(`/api/v1/teams/${team.id}/invitations/${i.id}`);
              await list.reload();
            }}
          >
            <p>The link stops working at once.</p>
          </ConfirmButton>
        ) : null,
    },
  ];
  const link = created ? `${location.origin}/teams?invitation=${encodeURIComponent(created.token)}` : '';
  return (
    <section aria-labelledby="invitations-title">
      <h2 id="invitations-title">Invitations</h2>
      {powers.manage && (
        <form
          class="panel"
          aria-labelledby="invite-title"
          onSubmit={(e) => {
            e.preventDefault();
            void invite.run();
          }}
        >
          <h3 id="invite-title">Invite someone</h3>
          <div class="inline-form">
            <TextField
              label="E-mail address or user name"
              name="invitee"
              required
              autoComplete="off"
              value={invitee}
              onValue={setInvitee}
              hint="Only the account with this user name or e-mail address can accept."
              error={invite.error?.forField('invitee')}
            />
            <SelectField label="Team role" value={role} options={roleOptions(powers.own)} onValue={(v) => setRole(v as TeamRole)} />
            <SelectField label="Valid for" value={hours} options={VALID_FOR} onValue={setHours} />
            <Button type="submit" class="primary" busy={invite.busy} busyLabel="Inviting…">
              Invite
            </Button>
          </div>
          <ErrorNote error={invite.error} fields={['invitee']} />
          {created && (
            <OnceSecret label={`Invitation link for ${created.invitee}`} value={link}>
              <p class="hint">
                The relay sends no mail: send this link to {created.invitee} yourself. They sign in as {created.invitee}, open it and accept. It works once, until{' '}
                {new Date(created.expires_at).toLocaleString()}.
              </p>
              <button type="button" onClick={() => setCreated(null)}>
                Done
              </button>
            </OnceSecret>
          )}
        </form>
      )}
      {list.error ? (
        <LoadError error={list.error} retry={list.reload} />
      ) : !list.data ? (
        <Loading what="invitations" />
      ) : list.data.length === 0 ? (
        <Empty title="No invitations yet.">{powers.manage && <p>Invite someone with the form above.</p>}</Empty>
      ) : (
        <SortableTable class="cards" caption={`Invitations to ${team.name}`} rows={list.data} columns={columns} rowKey={(i) => i.id} initialSort={[{ id: 'expires', desc: true }]} />
      )}
    </section>
  );
}

export default function TeamPage({ id }: { id: string }) {
  const team = useLoad(() => get<TeamDetail>(`/api/v1/teams/${encodeURIComponent(id)}`), [id]);
  const t = team.data;
  if (team.error)
    return (
      <Page title="Team">
        <LoadError error={team.error} retry={team.reload} />
        <p>
          <a href="/teams">Back to the teams</a>
        </p>
      </Page>
    );
  if (!t)
    return (
      <Page title="Team">
        <Loading what="the team" />
      </Page>
    );
  const powers = powersIn(t);
  return (
    <Page title={t.name}>
      <div class="access">
        <p class="breadcrumb">
          <a href="/teams">Teams</a>
        </p>
        <dl class="facts panel">
          <dt>Your role</dt>
          <dd>{t.role ?? 'not a member (you are an instance admin)'}</dd>
          <dt>Members</dt>
          <dd>{t.member_count}</dd>
          <dt>Devices</dt>
          <dd>
            {t.device_count} · <a href={`/?team=${encodeURIComponent(t.id)}`}>See them in the fleet</a>
          </dd>
          <dt>Requires 2FA</dt>
          <dd>{t.require_2fa ? 'yes' : 'no'}</dd>
          <dt>Variables</dt>
          <dd>
            <a href={`/variables?team=${encodeURIComponent(t.id)}`}>The team's variables</a>
          </dd>
          <dt>Created</dt>
          <dd>
            <Time iso={t.created_at} />
          </dd>
        </dl>
        {powers.manage && <Settings key={t.updated_at} team={t} powers={powers} onChange={(next) => team.set((old) => ({ ...old!, ...next }))} />}
        <Members team={t} powers={powers} reload={team.reload} />
        {powers.seeInvitations && <Invitations team={t} powers={powers} />}
      </div>
    </Page>
  );
}
