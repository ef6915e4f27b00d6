// Add a device: make an enrollment token (team, label, auto-approve, expiry, uses), then show the
// token once with the exact commands to run on the device — download the agent for its
// architecture, enroll with the token, install and start the systemd service — each with a copy
// button; below, the tokens made so far, with revoke. The commands come from what the relay says
// (GET /api/v1/agent-install: its download folder and its own URL) and the token it made: none
// are shown for a token it refused. Whether the user may add devices is the API's answer, shown
// as it gave it.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Team } from '../../../shared/api/teams.ts';
import type { EnrollmentToken } from '../../../shared/api/devices.ts';
import type { AgentArchitecture, AgentInstall } from '../../../shared/api/agent-install.ts';
import { ApiError, del, get, post } from '../api.ts';
import { administers } from '../session.ts';
import { Empty, LoadError, Loading, Page, Time } from '../ui/bits.tsx';
import { Button, CheckboxField, ErrorNote, SelectField, TextField } from '../ui/form.tsx';
import { CodeLine, OnceSecret } from '../ui/copy.tsx';
import { ConfirmButton } from '../ui/dialog.tsx';
import { SortableTable, type Column } from '../ui/table.tsx';
import { useAction, useLoad, type Loaded } from '../ui/use-load.ts';
import './add-device.css';

type Created = EnrollmentToken & { token: string };

const EXPIRY = [
  { value: '1', label: 'In 1 hour' },
  { value: '24', label: 'In 1 day' },
  { value: '168', label: 'In 7 days' },
  { value: '720', label: 'In 30 days' },
  { value: 'at', label: 'At a date and time…' },
  { value: 'never', label: 'Never' },
];

const ARCH_LABELS: Record<AgentArchitecture, { label: string; hint: string }> = {
  arm64: { label: 'Raspberry Pi OS 64-bit (arm64)', hint: 'Raspberry Pi 3, 4, 5 and Zero 2 W; 32-bit Raspberry Pi OS is not supported' },
  x64: { label: 'Linux PC or server (x86-64)', hint: 'Any 64-bit Intel or AMD machine running Linux' },
};

const STATE_LABELS: Record<EnrollmentToken['state'], string> = { active: 'active', expired: 'expired', used_up: 'used up', revoked: 'revoked' };

/** One shell word: left alone when plain, else single-quoted (a download URL may hold & or ?). */
function sh(word: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The commands to run on the device, in order. */
function setupCommands(install: AgentInstall, arch: AgentArchitecture, token: string): { title: string; name: string; code: string }[] {
  const download = install.architectures.find((a) => a.arch === arch) ?? install.architectures[0]!;
  return [
    { title: 'Download the agent', name: 'download command', code: `curl -fsSLo pirelay-agent ${sh(download.url)} && chmod +x pirelay-agent` },
    { title: 'Enroll the device with this relay', name: 'enroll command', code: `sudo ./pirelay-agent enroll --relay ${sh(install.relay_url)} --token ${sh(token)}` },
    { title: 'Install and start the systemd service', name: 'install command', code: 'sudo ./pirelay-agent install-service' },
  ];
}

const tokenLabel = (t: EnrollmentToken) => t.name || `${t.prefix}…`;

/** The teams the user may add devices to: those they administer (an instance admin: all). */
function adminTeams(teams: Team[]): Team[] {
  return teams.filter((t) => administers(t.role));
}

/** A field's error from the API: zod's issue for it, or a refusal that names it (details.field). */
function fieldError(error: ApiError | undefined, field: string): string | undefined {
  if (!error) return undefined;
  return error.forField(field) ?? (error.details.field === field ? error.message : undefined);
}

function TokenForm({ teams, onCreated }: { teams: Team[]; onCreated: (t: Created) => void }) {
  const [teamId, setTeamId] = useState(teams[0]!.id);
  const [name, setName] = useState('');
  const [autoApprove, setAutoApprove] = useState(false);
  const [expiry, setExpiry] = useState('24');
  const [expiresAt, setExpiresAt] = useState('');
  const [uses, setUses] = useState('1');
  const create = useAction(async () => {
    const body: Record<string, unknown> = { team_id: teamId, auto_approve: autoApprove };
    if (name.trim()) body.name = name.trim();
    if (expiry === 'at') body.expires_at = expiresAt ? new Date(expiresAt).toISOString() : expiresAt;
    else if (expiry !== 'never') body.expires_in_hours = Number(expiry);
    if (uses.trim()) body.max_uses = Number(uses);
    onCreated(await post<Created>('/api/v1/enrollment-tokens', body));
  });
  const err = create.error;
  return (
    <form
      class="panel token-form"
      aria-labelledby="new-token-title"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        void create.run();
      }}
    >
      <h2 id="new-token-title" tabIndex={-1}>
        New enrollment token
      </h2>
      <p class="hint">A device enrolls once with a token; the token decides its team and whether it waits for approval.</p>
      <div class="grid">
        <SelectField label="Team" name="team_id" value={teamId} onValue={setTeamId} options={teams.map((t) => ({ value: t.id, label: t.name }))} hint="The team its devices join" error={fieldError(err, 'team_id')} />
        <TextField label="Label" name="name" value={name} onValue={setName} maxLength={64} hint="To tell tokens apart, e.g. “garage Pis”" error={fieldError(err, 'name')} />
        <SelectField label="Expires" name="expiry" value={expiry} onValue={setExpiry} options={EXPIRY} error={expiry === 'at' ? undefined : fieldError(err, 'expires_in_hours')} />
        {expiry === 'at' && <TextField label="Expires at" name="expires_at" type="datetime-local" value={expiresAt} onValue={setExpiresAt} hint="Your local time" error={fieldError(err, 'expires_at')} />}
        <TextField
          label="Number of uses"
          name="max_uses"
          type="number"
          inputMode="numeric"
          min={1}
          step={1}
          value={uses}
          onValue={setUses}
          hint="How many devices may enroll with it; empty for no limit"
          error={fieldError(err, 'max_uses')}
        />
      </div>
      <CheckboxField label="Approve devices at once" name="auto_approve" checked={autoApprove} onValue={setAutoApprove} hint="Otherwise each device waits on the Fleet page until an admin approves it." />
      <ErrorNote error={err} fields={['team_id', 'name', 'expires_in_hours', 'expires_at', 'max_uses']} />
      <div class="actions">
        <Button type="submit" class="primary" busy={create.busy} busyLabel="Making the token…">
          Make token
        </Button>
      </div>
    </form>
  );
}

function Commands({ created, team, install, onDone }: { created: Created; team: string; install: Loaded<AgentInstall>; onDone: () => void }) {
  const [arch, setArch] = useState<AgentArchitecture>('arm64');
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);
  return (
    <section class="panel commands" aria-labelledby="commands-title">
      <h2 id="commands-title" ref={heading} tabIndex={-1}>
        Set up the device
      </h2>
      <OnceSecret label="Enrollment token" value={created.token}>
        <p class="hint">
          Devices that enroll with it join <strong>{team}</strong> and {created.auto_approve ? 'are approved at once' : 'wait for approval'}.{' '}
          {created.max_uses === null ? 'Any number of devices may use it' : `${created.max_uses} ${created.max_uses === 1 ? 'device' : 'devices'} may use it`}
          {created.expires_at ? (
            <>
              ; it expires <Time iso={created.expires_at} />.
            </>
          ) : (
            '; it does not expire.'
          )}
        </p>
      </OnceSecret>
      {install.loading && !install.data ? (
        <Loading what="the download address" />
      ) : install.error || !install.data ? (
        <LoadError error={install.error ?? new ApiError(0, 'CLIENT_ERROR', 'No download address')} retry={install.reload} />
      ) : (
        <>
          <fieldset class="arch">
            <legend>The device runs</legend>
            {install.data.architectures.map((a) => (
              <div class="field check" key={a.arch}>
                <input type="radio" id={`arch-${a.arch}`} name="arch" value={a.arch} checked={arch === a.arch} onChange={() => setArch(a.arch)} aria-describedby={`arch-${a.arch}-hint`} />
                <label for={`arch-${a.arch}`}>{ARCH_LABELS[a.arch]?.label ?? a.arch}</label>
                <p class="hint" id={`arch-${a.arch}-hint`}>
                  {ARCH_LABELS[a.arch]?.hint ?? a.file}
                </p>
              </div>
            ))}
          </fieldset>
          <p>Run these on the device, in a terminal or over ssh, one after the other:</p>
          <ol class="steps">
            {setupCommands(install.data, arch, created.token).map((c) => (
              <li key={c.title}>
                <p class="step-title">{c.title}</p>
                <CodeLine code={c.code} label={c.name} />
              </li>
            ))}
          </ol>
          <p class="hint">
            Agent {install.data.version}, from {install.data.download_url}. To follow its log: <code>journalctl -u pirelay-agent -f</code>
          </p>
        </>
      )}
      <p>
        {created.auto_approve ? (
          <>
            The device then comes online on the <a href="/">Fleet page</a>.
          </>
        ) : (
          <>
            The device then waits for approval: approve it on the <a href="/">Fleet page</a>.
          </>
        )}
      </p>
      <div class="actions">
        <button type="button" onClick={onDone}>
          Make another token
        </button>
      </div>
    </section>
  );
}

function TokenList({ tokens, teamName, onRevoked }: { tokens: EnrollmentToken[]; teamName: (id: string) => string; onRevoked: (t: EnrollmentToken) => void }) {
  const [showAll, setShowAll] = useState(false);
  const active = tokens.filter((t) => t.state === 'active');
  const shown = showAll ? tokens : active;
  const columns: Column<EnrollmentToken>[] = [
      {
        id: 'name',
        header: 'Token',
        value: (t) => tokenLabel(t).toLowerCase(),
        cell: (t) => (
          <>
            {t.name ? <strong>{t.name}</strong> : null} <code class="muted">{t.prefix}…</code>
          </>
        ),
      },
      { id: 'team', header: 'Team', value: (t) => teamName(t.team_id) },
      {
        id: 'left',
        header: 'Uses left',
        class: 'num',
        descFirst: true,
        value: (t) => (t.max_uses === null ? Number.MAX_SAFE_INTEGER : Math.max(0, t.max_uses - t.uses)),
        cell: (t) => (t.max_uses === null ? `unlimited (${t.uses} used)` : `${Math.max(0, t.max_uses - t.uses)} of ${t.max_uses}`),
      },
      { id: 'expires', header: 'Expires', value: (t) => t.expires_at ?? '9999', cell: (t) => <Time iso={t.expires_at} empty="never" /> },
      { id: 'approval', header: 'Approval', value: (t) => (t.auto_approve ? 'automatic' : 'by an admin') },
      { id: 'state', header: 'State', value: (t) => STATE_LABELS[t.state], cell: (t) => <span class={`badge token-${t.state}`}>{STATE_LABELS[t.state]}</span> },
      { id: 'created', header: 'Made', value: (t) => t.created_at, cell: (t) => <Time iso={t.created_at} /> },
      {
        id: 'actions',
        header: 'Actions',
        sortable: false,
        value: () => '',
        cell: (t) =>
          t.state === 'active' ? (
            <ConfirmButton
              label={
                <>
                  Revoke<span class="visually-hidden"> {tokenLabel(t)}</span>
                </>
              }
              title={`Revoke ${tokenLabel(t)}?`}
              confirmLabel="Revoke token"
              onConfirm={async () => onRevoked(await del<EnrollmentToken>(`/api/v1/enrollment-tokens/${t.id}`))}
            >
              <p>No device can enroll with it any more. Devices that already did keep working.</p>
            </ConfirmButton>
          ) : null,
    },
  ];
  const inactive = tokens.length - active.length;
  return (
    <section class="tokens" aria-labelledby="tokens-title">
      <h2 id="tokens-title">Enrollment tokens</h2>
      {tokens.length === 0 ? (
        <Empty title="No enrollment tokens yet.">
          <p>Make one with the form above, then run the commands it shows on the device.</p>
        </Empty>
      ) : (
        <>
          {inactive > 0 && <CheckboxField label={`Show inactive tokens (${inactive})`} hint="Used up, expired or revoked" checked={showAll} onValue={setShowAll} />}
          {shown.length === 0 ? (
            <Empty title="No active enrollment tokens.">
              <p>Make one with the form above.</p>
            </Empty>
          ) : (
            <SortableTable rows={shown} columns={columns} rowKey={(t) => t.id} caption="Enrollment tokens" class="cards" />
          )}
        </>
      )}
    </section>
  );
}

export default function AddDevicePage() {
  const teams = useLoad((signal) => get<{ teams: Team[] }>('/api/v1/teams', { signal }), []);
  const tokens = useLoad((signal) => get<{ enrollment_tokens: EnrollmentToken[] }>('/api/v1/enrollment-tokens', { signal }), []);
  const install = useLoad((signal) => get<AgentInstall>('/api/v1/agent-install', { signal }), []);
  const [created, setCreated] = useState<Created | null>(null);
  const names = useMemo(() => new Map((teams.data?.teams ?? []).map((t) => [t.id, t.name])), [teams.data]);
  const teamName = (id: string) => names.get(id) ?? id;
  const onRevoked = (t: EnrollmentToken) => tokens.set((old) => old && { enrollment_tokens: old.enrollment_tokens.map((o) => (o.id === t.id ? t : o)) });

  // The token list is the API's answer to whether this user may add devices at all.
  if (tokens.error?.status === 403)
    return (
      <Page title="Add a device">
        <div class="error-note" role="alert">
          <p>
            You may not add devices: {tokens.error.message} <span class="code">({tokens.error.code})</span>
          </p>
          <p>Adding a device needs the devices:admin permission and the admin role in a team; ask an administrator.</p>
        </div>
      </Page>
    );
  if (tokens.error || teams.error) return <Page title="Add a device"><LoadError error={(tokens.error ?? teams.error)!} retry={() => void Promise.all([tokens.reload(), teams.reload()])} /></Page>;
  if (!tokens.data || !teams.data)
    return (
      <Page title="Add a device">
        <Loading what="teams and enrollment tokens" />
      </Page>
    );

  const mine = adminTeams(teams.data.teams);
  return (
    <Page title="Add a device">
      {created ? (
        <Commands
          created={created}
          team={teamName(created.team_id)}
          install={install}
          onDone={() => {
            setCreated(null);
            // The button that was focused is gone: start again at the form.
            requestAnimationFrame(() => document.getElementById('new-token-title')?.focus());
          }}
        />
      ) : mine.length === 0 ? (
        <Empty title="You are not an admin of any team.">
          <p>
            A device joins a team, and only the team's admins add devices to it. Ask a team's owner to make you an admin, or make a team on the <a href="/teams">Teams page</a>.
          </p>
        </Empty>
      ) : (
        <TokenForm
          teams={mine}
          onCreated={(t) => {
            setCreated(t);
            void tokens.reload();
          }}
        />
      )}
      <TokenList tokens={tokens.data.enrollment_tokens} teamName={teamName} onRevoked={onRevoked} />
    </Page>
  );
}
