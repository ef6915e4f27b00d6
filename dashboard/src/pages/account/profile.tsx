// The profile: display name, e-mail address and time zone (PUT /api/v1/auth/me). Only what changed
// is sent, so the audit log's "fields" says what the person actually changed. A new e-mail address
// is unverified — the relay sends no mail, only an admin marks an address verified — so the form
// says so before the person saves, not after.
import { useMemo, useState } from 'preact/hooks';
import type { Me, UpdateMeRequest } from '../../../../shared/api/auth.ts';
import { put } from '../../api.ts';
import { loadSession } from '../../session.ts';
import { Button, ErrorNote, SelectField, TextField } from '../../ui/form.tsx';
import { useAction } from '../../ui/use-load.ts';

/** "Europe/Paris (GMT+1)": every zone the browser knows, with its offset now, the person's own kept even if the browser lacks it. */
function timeZoneOptions(current: string): { value: string; label: string }[] {
  const zones = new Set(Intl.supportedValuesOf('timeZone'));
  zones.add('UTC');
  zones.add(current);
  const now = new Date();
  return [...zones].sort().map((tz) => {
    let offset = '';
    try {
      offset = new Intl.DateTimeFormat('en-US', { timeZone: tz, timeZoneName: 'shortOffset' }).formatToParts(now).find((p) => p.type === 'timeZoneName')?.value ?? '';
    } catch {
      // A zone the relay accepted but this browser does not know: shown without its offset.
    }
    return { value: tz, label: `${tz.replace(/_/g, ' ')}${offset ? ` (${offset})` : ''}` };
  });
}

/** The fields whose refusals the relay names; shown at the field, not again below the form. */
const PROFILE_FIELDS = ['name', 'email', 'timezone'];

function nowIn(tz: string): string {
  try {
    return new Intl.DateTimeFormat(undefined, { timeZone: tz, dateStyle: 'medium', timeStyle: 'short' }).format(new Date());
  } catch {
    return '';
  }
}

export function ProfileSection({ user }: { user: Me }) {
  const [name, setName] = useState(user.name);
  const [email, setEmail] = useState(user.email ?? '');
  const [timezone, setTimezone] = useState(user.timezone);
  const [saved, setSaved] = useState(false);
  const zones = useMemo(() => timeZoneOptions(user.timezone), [user.timezone]);

  const change: UpdateMeRequest = {};
  if (name.trim() !== user.name) change.name = name;
  if (email.trim() !== (user.email ?? '')) change.email = email.trim() === '' ? null : email.trim();
  if (timezone !== user.timezone) change.timezone = timezone;
  const changed = Object.keys(change).length > 0;

  const save = useAction(async () => {
    setSaved(false);
    const kept = await put<Me>('/api/v1/auth/me', change);
    // The form shows what the relay kept (it trims the name, spells the zone its own way), and the
    // session is read again so the rest of the app sees the new profile.
    setName(kept.name);
    setEmail(kept.email ?? '');
    setTimezone(kept.timezone);
    await loadSession();
    setSaved(true);
  });

  const emailHint = (
    <>
      {user.email && <strong>{user.email_verified ? 'This address is verified. ' : 'This address is not verified. '}</strong>}
      Changing it makes it unverified: only an admin can mark an address verified (the relay sends no mail). Leave it empty to remove it.
    </>
  );

  return (
    <section class="panel" aria-labelledby="profile-title">
      <h2 id="profile-title">Profile</h2>
      <dl class="facts">
        <dt>User name</dt>
        <dd>{user.username}</dd>
        <dt>Roles</dt>
        <dd>{user.roles.join(', ')}</dd>
      </dl>
      <form
        class="account-form"
        aria-labelledby="profile-title"
        onSubmit={(e) => {
          e.preventDefault();
          if (changed) void save.run();
        }}
      >
        <TextField
          label="Name"
          name="name"
          autoComplete="name"
          value={name}
          onValue={(v) => (setName(v), setSaved(false))}
          hint="How you are shown to others; empty shows your user name."
          error={save.error?.forField('name')}
        />
        <TextField
          label="E-mail address"
          name="email"
          type="email"
          autoComplete="email"
          value={email}
          onValue={(v) => (setEmail(v), setSaved(false))}
          hint={emailHint}
          error={save.error?.forField('email')}
        />
        <SelectField
          label="Time zone"
          name="timezone"
          value={timezone}
          options={zones}
          onValue={(v) => (setTimezone(v), setSaved(false))}
          hint={`Kept with your profile, as an IANA name. The time there now: ${nowIn(timezone)}.`}
          error={save.error?.forField('timezone')}
        />
        {save.error && !PROFILE_FIELDS.some((f) => save.error!.forField(f)) && <ErrorNote error={save.error} />}
        <div class="actions">
          <Button type="submit" class="primary" busy={save.busy} busyLabel="Saving…" disabled={!changed}>
            Save profile
          </Button>
          <span role="status">{saved && !changed ? 'Saved.' : ''}</span>
        </div>
      </form>
    </section>
  );
}
