// /teams: the teams you are in (an instance admin sees every team), the invitations addressed to
// you, and making a team. Accepting an invitation takes its token, which only the link the team
// admin was shown carries (the relay keeps its hash): /teams?invitation=pri_… fills the form, and
// the token is taken out of the address at once so it stays in neither the history nor a bookmark.
import { useEffect, useRef, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { get, post } from '../api.ts';
import { can, isAdmin } from '../session.ts';
import { Empty, LoadError, Loading, Page, Time } from '../ui/bits.tsx';
import { Button, ErrorNote, TextField } from '../ui/form.tsx';
import { SortableTable, type Column } from '../ui/table.tsx';
import { useAction, useLoad } from '../ui/use-load.ts';
import { INVITATION_TOKEN_PREFIX } from '../../../shared/api/team-roles.ts';
import type { Invitation, Membership, Team } from '../../../shared/api/teams.ts';
import './teams.css';

/** The token in a pasted link (…/teams?invitation=pri_…) or the token itself. */
function tokenOf(input: string): string {
  const s = input.trim();
  const at = s.indexOf(INVITATION_TOKEN_PREFIX);
  return at > 0 ? s.slice(at).split(/[&#\s]/)[0]! : s;
}

const teamColumns: Column<Team>[] = [
  { id: 'name', header: 'Team', value: (t) => t.name.toLowerCase(), cell: (t) => <a href={`/teams/${t.id}`}>{t.name}</a> },
  { id: 'role', header: 'Your role', value: (t) => t.role ?? '', cell: (t) => (t.role ? <span class="tag">{t.role}</span> : <span class="muted">not a member</span>) },
  { id: 'members', header: 'Members', value: (t) => t.member_count, class: 'num', descFirst: true },
  { id: 'devices', header: 'Devices', value: (t) => t.device_count, class: 'num', descFirst: true },
  { id: '2fa', header: 'Requires 2FA', value: (t) => (t.require_2fa ? 'yes' : 'no') },
];

function AcceptInvitation({ token, setToken, target, onAccepted, fieldRef }: {
  token: string;
  setToken: (t: string) => void;
  /** The invitation whose Accept was chosen in the list, to say which one the link is for. */
  target: Invitation | null;
  onAccepted: (m: Membership) => void;
  fieldRef: { current: HTMLDivElement | null };
}) {
  const accept = useAction(async () => {
    const m = await post<Membership>('/api/v1/invitations/accept', { token: tokenOf(token) });
    setToken('');
    onAccepted(m);
  });
  return (
    <section class="panel" aria-labelledby="accept-title">
      <h2 id="accept-title">Accept an invitation</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void accept.run();
        }}
      >
        <div ref={fieldRef}>
          <TextField
            label="Invitation link or token"
            name="invitation"
            autoComplete="off"
            spellcheck={false}
            required
            value={token}
            onValue={setToken}
            hint={
              target
                ? `Paste the link you were sent for ${target.team_name}. It works once, and only for you (${target.invitee}).`
                : 'The team admin who invited you was shown a link once; it works only for the account it names.'
            }
            error={accept.error?.forField('token')}
          />
        </div>
        <ErrorNote error={accept.error} fields={['token']} />
        <Button type="submit" class="primary" busy={accept.busy} busyLabel="Accepting…">
          Accept invitation
        </Button>
      </form>
    </section>
  );
}

function MyInvitations({ invitations, token, onAccept }: { invitations: Invitation[]; token: string; onAccept: (i: Invitation) => void }) {
  if (!invitations.length) return null;
  return (
    <section aria-labelledby="mine-title">
      <h2 id="mine-title">Invitations to you</h2>
      <ul class="invitation-list">
        {invitations.map((i) => (
          <li key={i.id} class="panel">
            <div>
              <strong>{i.team_name}</strong> <span class="tag">{i.role}</span>
              <p class="hint">
                To {i.invitee}; expires <Time iso={i.expires_at} />
                {tokenOf(token).startsWith(i.prefix) ? ' · the link you opened is for this one' : ''}
              </p>
            </div>
            <button type="button" class="primary" aria-label={`Accept the invitation to ${i.team_name}`} onClick={() => onAccept(i)}>
              Accept
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

function CreateTeam() {
  const [name, setName] = useState('');
  const { route } = useLocation();
  const create = useAction(async () => {
    const t = await post<Team>('/api/v1/teams', { name });
    route(`/teams/${t.id}`);
  });
  return (
    <section class="panel" aria-labelledby="create-title">
      <h2 id="create-title">Create a team</h2>
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void create.run();
        }}
      >
        <TextField label="Team name" name="name" required maxLength={64} value={name} onValue={setName} hint="You become its owner." error={create.error?.forField('name')} />
        <Button type="submit" class="primary" busy={create.busy} busyLabel="Creating…">
          Create team
        </Button>
      </form>
      <ErrorNote error={create.error} fields={['name']} />
    </section>
  );
}

export default function TeamsPage() {
  const { query, path, route } = useLocation();
  // Read once, then out of the address (replace: no history entry keeps it).
  const [token, setToken] = useState(() => query.invitation ?? '');
  useEffect(() => {
    if (query.invitation !== undefined) route(path, true);
  }, [query.invitation]);
  const [target, setTarget] = useState<Invitation | null>(null);
  const [joined, setJoined] = useState<Membership | null>(null);
  const fieldRef = useRef<HTMLDivElement>(null);
  const teams = useLoad(() => get<{ teams: Team[] }>('/api/v1/teams').then((r) => r.teams), []);
  const mine = useLoad(() => get<{ invitations: Invitation[] }>('/api/v1/invitations').then((r) => r.invitations), []);

  const acceptFromList = (i: Invitation) => {
    setTarget(i);
    // With the link already pasted (or opened), accepting is one click; otherwise the field asks for it.
    if (tokenOf(token).startsWith(i.prefix)) (fieldRef.current?.closest('form') as HTMLFormElement | null)?.requestSubmit();
    else fieldRef.current?.querySelector('input')?.focus();
  };

  return (
    <Page title="Teams">
      <div class="access">
        {joined && (
          <p class="success-note" role="status">
            You joined <a href={`/teams/${joined.team.id}`}>{joined.team.name}</a> as {joined.member.role}.
          </p>
        )}
        {mine.error ? <LoadError error={mine.error} retry={mine.reload} /> : <MyInvitations invitations={mine.data ?? []} token={token} onAccept={acceptFromList} />}
        {(token || target || (mine.data?.length ?? 0) > 0) && (
          <AcceptInvitation
            token={token}
            setToken={setToken}
            target={target}
            fieldRef={fieldRef}
            onAccepted={(m) => {
              setJoined(m);
              setTarget(null);
              void teams.reload();
              void mine.reload();
            }}
          />
        )}
        <section aria-labelledby="teams-title">
          <h2 id="teams-title">{isAdmin.value ? 'All teams' : 'Your teams'}</h2>
          {teams.error ? (
            <LoadError error={teams.error} retry={teams.reload} />
          ) : !teams.data ? (
            <Loading what="teams" />
          ) : teams.data.length === 0 ? (
            <Empty title="You are in no team yet.">
              {can('teams:write') ? <p>Create one below, or ask a team admin to invite you.</p> : <p>Ask a team admin to invite you; the invitation will show here.</p>}
            </Empty>
          ) : (
            <>
              <SortableTable class="cards" caption="Teams" rows={teams.data} columns={teamColumns} rowKey={(t) => t.id} initialSort={[{ id: 'name', desc: false }]} />
              <p class="hint">Teams that require two-factor login are listed only once your account has it on.</p>
            </>
          )}
        </section>
        {can('teams:write') && <CreateTeam />}
      </div>
    </Page>
  );
}
