// The form that creates a tunnel or changes one: name, kind, target on the device's side, who may
// use it (access mode and its fields), rate limit and whether it stays open while the device is
// away. On save it hands back the API's answer and the secret that answer is the only chance to
// see: a bearer token the relay made, or the basic password just set (the relay keeps only a hash).
import { useState } from 'preact/hooks';
import type { SavedTunnel, Tunnel, TunnelAccessMode, TunnelKind } from '../../../../shared/api/tunnels.ts';
import { patch, post } from '../../api.ts';
import { Button, CheckboxField, ErrorNote, SelectField, TextField } from '../../ui/form.tsx';
import { useAction } from '../../ui/use-load.ts';
import { devicePath } from './shared.ts';

export interface OnceShown {
  label: string;
  value: string;
}

const KINDS: { value: TunnelKind; label: string }[] = [
  { value: 'http', label: 'HTTP — a web app, at its own address' },
  { value: 'tcp', label: 'TCP — any TCP service (ssh…), with pirelay tcp' },
];

export const ACCESS_LABELS: Record<TunnelAccessMode, string> = {
  public: 'Public — anyone with the address',
  basic: 'Password — a user name and password (HTTP Basic)',
  bearer: 'Bearer token — made by the relay, shown once',
  pirelay: 'pirelay users — a session or API key with tunnels:use, of this team',
};

/** A password for basic access: 18 random bytes, base64url (24 characters). */
function newPassword(): string {
  const b = crypto.getRandomValues(new Uint8Array(18));
  return btoa(String.fromCharCode(...b)).replace(/\+/g, '-').replace(/\//g, '_');
}

export function TunnelForm({ deviceId, tunnel, onSaved, onCancel }: {
  deviceId: string;
  /** The tunnel to change; a new one when left out. */
  tunnel?: Tunnel;
  onSaved: (saved: SavedTunnel, secret?: OnceShown) => void;
  onCancel?: () => void;
}) {
  const [name, setName] = useState(tunnel?.name ?? '');
  const [kind, setKind] = useState<TunnelKind>(tunnel?.kind ?? 'http');
  const [target, setTarget] = useState(tunnel?.target ?? '');
  const [mode, setMode] = useState<TunnelAccessMode>(tunnel?.access.mode ?? 'public');
  const [username, setUsername] = useState(tunnel?.access.username ?? '');
  const [password, setPassword] = useState('');
  const [rotate, setRotate] = useState(false);
  const [rateLimit, setRateLimit] = useState(tunnel?.rate_limit_per_minute?.toString() ?? '');
  const [clientless, setClientless] = useState(tunnel?.allow_clientless ?? false);

  // A TCP tunnel is always reached with a pirelay credential (the API refuses anything else).
  const accessMode: TunnelAccessMode = kind === 'tcp' ? 'pirelay' : mode;
  const accessBody = () => {
    if (accessMode === 'basic') return { mode: 'basic', username, ...(password || !tunnel ? { password } : {}) };
    if (accessMode === 'bearer') return tunnel && rotate ? { mode: 'bearer', rotate: true } : { mode: 'bearer' };
    return { mode: accessMode };
  };
  const limit = rateLimit.trim() === '' ? null : Number(rateLimit);

  const save = useAction(async () => {
    let saved: SavedTunnel;
    if (!tunnel) {
      saved = await post<SavedTunnel>(devicePath(deviceId, '/tunnels'), {
        name,
        kind,
        target,
        access: accessBody(),
        ...(limit === null ? {} : { rate_limit_per_minute: limit }),
        allow_clientless: clientless,
      });
    } else {
      const access = tunnel.access;
      const accessChanged = accessMode !== access.mode || (accessMode === 'basic' && (username !== access.username || password !== '')) || (accessMode === 'bearer' && rotate);
      const change = {
        ...(name !== tunnel.name ? { name } : {}),
        ...(kind !== tunnel.kind ? { kind } : {}),
        ...(target !== tunnel.target ? { target } : {}),
        ...(accessChanged ? { access: accessBody() } : {}),
        ...(limit !== tunnel.rate_limit_per_minute ? { rate_limit_per_minute: limit } : {}),
        ...(clientless !== tunnel.allow_clientless ? { allow_clientless: clientless } : {}),
      };
      saved = await patch<SavedTunnel>(devicePath(deviceId, `/tunnels/${encodeURIComponent(tunnel.id)}`), change);
    }
    const secret = saved.bearer_token
      ? { label: `Bearer token for ${saved.name}`, value: saved.bearer_token }
      : accessMode === 'basic' && password
        ? { label: `Password for ${username} on ${saved.name}`, value: password }
        : undefined;
    onSaved(saved, secret);
  });

  const err = save.error;
  // The API names a looping target in details.field; a taken name is the name's problem.
  const fieldError = (f: string) => err?.forField(f) ?? (err?.details.field === f || (f === 'name' && err?.code === 'TUNNEL_NAME_TAKEN') ? err.message : undefined);
  return (
    <form
      class="tunnel-form"
      aria-label={tunnel ? `Change tunnel ${tunnel.name}` : 'New tunnel'}
      onSubmit={(e) => {
        e.preventDefault();
        void save.run();
      }}
    >
      <div class="form-grid">
        <TextField
          label="Name"
          value={name}
          onValue={(v) => setName(v.toLowerCase())}
          required
          autoComplete="off"
          spellcheck={false}
          hint="Lower-case letters, digits and “-”: the tunnel's address is <name>.<tunnel domain>"
          error={fieldError('name')}
        />
        <SelectField label="Kind" value={kind} options={KINDS} onValue={(v) => setKind(v as TunnelKind)} error={fieldError('kind')} />
        <TextField
          label="Target"
          value={target}
          onValue={setTarget}
          required
          autoComplete="off"
          spellcheck={false}
          placeholder="127.0.0.1:8080"
          hint="host:port as seen from the device — itself (127.0.0.1:8080) or a host on its network (192.168.1.50:8000)"
          error={fieldError('target') ?? fieldError('target_host')}
        />
        {kind === 'http' ? (
          <SelectField
            label="Access"
            value={mode}
            options={(Object.keys(ACCESS_LABELS) as TunnelAccessMode[]).map((m) => ({ value: m, label: ACCESS_LABELS[m] }))}
            onValue={(v) => setMode(v as TunnelAccessMode)}
            error={fieldError('access.mode') ?? fieldError('access')}
          />
        ) : (
          <p class="hint form-note">A TCP tunnel is reached with a pirelay API key holding tunnels:use, by a member of this device's team.</p>
        )}
      </div>
      {accessMode === 'basic' && (
        <div class="form-grid">
          <TextField label="User name" value={username} onValue={setUsername} required autoComplete="off" error={fieldError('access.username')} />
          <div class="field-with-action">
            <TextField
              label="Password"
              type="password"
              value={password}
              onValue={setPassword}
              required={!tunnel || tunnel.access.mode !== 'basic'}
              autoComplete="new-password"
              hint={tunnel?.access.mode === 'basic' ? 'Leave empty to keep the current password' : 'At least 8 characters; shown once after saving'}
              error={fieldError('access.password')}
            />
            <button type="button" onClick={() => setPassword(newPassword())}>
              Generate a password
            </button>
          </div>
        </div>
      )}
      {accessMode === 'bearer' && tunnel?.access.mode === 'bearer' && (
        <CheckboxField label="Make a new token" checked={rotate} onValue={setRotate} hint="The current token stops working; the new one is shown once" />
      )}
      <div class="form-grid">
        <TextField
          label="Rate limit (per minute)"
          type="number"
          inputMode="numeric"
          min={1}
          value={rateLimit}
          onValue={setRateLimit}
          hint={kind === 'tcp' ? 'Connections per minute; empty for no limit' : 'Requests per minute (429 beyond); empty for no limit'}
          error={fieldError('rate_limit_per_minute')}
        />
        <CheckboxField label="Stay open while the device is offline" checked={clientless} onValue={setClientless} hint="Visitors wait up to 30 s for it to come back, instead of an offline page at once" />
      </div>
      <ErrorNote error={err} fields={['name', 'kind', 'target', 'target_host', 'access.mode', 'access.username', 'access.password', 'rate_limit_per_minute']} />
      <div class="actions">
        <Button type="submit" class="primary" busy={save.busy} busyLabel="Saving…">
          {tunnel ? 'Save changes' : 'Create tunnel'}
        </Button>
        {onCancel && (
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}
