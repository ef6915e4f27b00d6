// The device's tunnels (README, "Tunnels"): each with its target, who may use it, its public URL
// to copy and open (HTTP) or the `pirelay tcp` command that reaches it (TCP); create, change,
// enable/disable and delete. A secret the API returns (a bearer token) or that was just set (a
// basic password) is shown once, in memory only: it is gone on reload, as it is at the relay.
import { useState } from 'preact/hooks';
import type { SavedTunnel, Tunnel } from '../../../../shared/api/tunnels.ts';
import { del, get, patch } from '../../api.ts';
import { can } from '../../session.ts';
import { Empty, LoadError, Loading, Time } from '../../ui/bits.tsx';
import { CodeLine, CopyButton, OnceSecret } from '../../ui/copy.tsx';
import { ConfirmButton } from '../../ui/dialog.tsx';
import { Button, ErrorNote } from '../../ui/form.tsx';
import { useAction, useLoad } from '../../ui/use-load.ts';
import { devicePath, type DeviceTabProps } from './shared.ts';
import { ACCESS_LABELS, TunnelForm, type OnceShown } from './tunnel-form.tsx';

/** The local port `pirelay tcp` listens on: the target's, or 10000 above it for a privileged one (ssh 22 → 10022). */
const localPort = (t: Tunnel) => (t.target_port >= 1024 ? t.target_port : 10000 + t.target_port);

/** The client CLI's command for a TCP tunnel, by its name (unambiguous, unlike device:port). */
export const tcpCommand = (t: Tunnel, relay: string) => `pirelay tcp ${t.name} --relay ${relay} --listen 127.0.0.1:${localPort(t)}`;

function accessText(t: Tunnel): string {
  const a = t.access;
  if (a.mode === 'basic') return `Password, user ${a.username}`;
  if (a.mode === 'bearer') return a.token_prefix ? `Bearer token ${a.token_prefix}…` : 'Bearer token';
  return ACCESS_LABELS[a.mode].split(' — ')[0]!;
}

function TunnelCard({ deviceId, tunnel, secret, writable, onChange, onRemoved, onSecretDone }: {
  deviceId: string;
  tunnel: Tunnel;
  secret?: OnceShown;
  writable: boolean;
  onChange: (saved: SavedTunnel, secret?: OnceShown) => void;
  onRemoved: () => void;
  onSecretDone: () => void;
}) {
  const [editing, setEditing] = useState(false);
  const path = devicePath(deviceId, `/tunnels/${encodeURIComponent(tunnel.id)}`);
  const toggle = useAction(async () => onChange(await patch<SavedTunnel>(path, { enabled: !tunnel.enabled })));
  const titleId = `tunnel-${tunnel.id}`;
  const named = (verb: string) => (
    <>
      {verb}
      <span class="visually-hidden"> {tunnel.name}</span>
    </>
  );
  return (
    <section class={`panel tunnel${tunnel.enabled ? '' : ' tunnel-disabled'}`} aria-labelledby={titleId}>
      <header class="tunnel-head">
        <h3 id={titleId}>{tunnel.name}</h3>
        <span class="badge">{tunnel.kind.toUpperCase()}</span>
        <span class={`badge ${tunnel.enabled ? 'badge-online' : 'badge-disabled'}`}>
          <span class="dot" aria-hidden="true" />
          {tunnel.enabled ? 'enabled' : 'disabled'}
        </span>
      </header>
      {secret && (
        <OnceSecret label={secret.label} value={secret.value}>
          <button type="button" onClick={onSecretDone}>
            I have copied it
          </button>
        </OnceSecret>
      )}
      {tunnel.kind === 'http' ? (
        <div class="tunnel-url">
          <a href={tunnel.public_url} target="_blank" rel="noopener">
            {tunnel.public_url}
            <span class="visually-hidden"> (opens in a new tab)</span>
          </a>
          <CopyButton text={tunnel.public_url} label="Copy URL" />
        </div>
      ) : (
        <div class="tunnel-tcp">
          <CodeLine code={tcpCommand(tunnel, location.origin)} label={`pirelay tcp command for ${tunnel.name}`} />
          <p class="hint">
            Run it on your computer with an API key holding tunnels:use in <code>PIRELAY_API_KEY</code> (make one under <a href="/api-keys">API keys</a>, or add{' '}
            <code>--api-key KEY</code>), then connect to <code>127.0.0.1:{localPort(tunnel)}</code>
            {tunnel.target_port === 22 ? (
              <>
                {' '}
                (<code>ssh -p {localPort(tunnel)} pi@127.0.0.1</code>)
              </>
            ) : null}
            .
          </p>
        </div>
      )}
      <dl class="facts">
        <dt>Target</dt>
        <dd class="mono">{tunnel.target}</dd>
        <dt>Access</dt>
        <dd>{accessText(tunnel)}</dd>
        <dt>Rate limit</dt>
        <dd>{tunnel.rate_limit_per_minute === null ? 'none' : `${tunnel.rate_limit_per_minute} per minute`}</dd>
        <dt>While offline</dt>
        <dd>{tunnel.allow_clientless ? 'stays open (visitors wait up to 30 s)' : 'closed (visitors see the device is offline)'}</dd>
        {!tunnel.connected && (
          <>
            <dt>State</dt>
            <dd>closed by tunnel-control (disconnect) until it is connected again</dd>
          </>
        )}
        {tunnel.kind === 'tcp' && (
          <>
            <dt>WebSocket URL</dt>
            <dd class="mono">{tunnel.public_url}</dd>
          </>
        )}
        <dt>Changed</dt>
        <dd>
          <Time iso={tunnel.updated_at} />
        </dd>
      </dl>
      {!tunnel.enabled && <p class="hint">Disabled: its address answers 503 (disabled) to every visitor until it is enabled again.</p>}
      {writable &&
        (editing ? (
          <TunnelForm
            deviceId={deviceId}
            tunnel={tunnel}
            onSaved={(saved, s) => {
              setEditing(false);
              onChange(saved, s);
            }}
            onCancel={() => setEditing(false)}
          />
        ) : (
          <>
            <div class="actions">
              <button type="button" onClick={() => setEditing(true)}>
                {named('Edit')}
              </button>
              <Button busy={toggle.busy} onClick={() => void toggle.run()}>
                {named(tunnel.enabled ? 'Disable' : 'Enable')}
              </Button>
              <ConfirmButton label={named('Delete')} title={`Delete tunnel ${tunnel.name}?`} confirmLabel="Delete" onConfirm={async () => {
                await del(path);
                onRemoved();
              }}>
                <p>Its address stops answering and its open connections are closed. This cannot be undone.</p>
              </ConfirmButton>
            </div>
            <ErrorNote error={toggle.error} />
          </>
        ))}
    </section>
  );
}

export default function Tunnels({ device }: DeviceTabProps) {
  const list = useLoad((signal) => get<{ tunnels: Tunnel[] }>(devicePath(device.id, '/tunnels'), { signal }).then((r) => r.tunnels), [device.id]);
  const [creating, setCreating] = useState(false);
  // Secrets shown once, by tunnel id: in memory only, gone on reload.
  const [secrets, setSecrets] = useState<Record<string, OnceShown>>({});
  const writable = can('tunnels:write');

  const saved = (t: SavedTunnel, secret?: OnceShown) => {
    const { bearer_token: _token, ...tunnel } = t;
    list.set((old) => [...(old ?? []).filter((o) => o.id !== tunnel.id), tunnel].sort((a, b) => a.name.localeCompare(b.name)));
    if (secret) setSecrets((s) => ({ ...s, [tunnel.id]: secret }));
  };
  const forget = (id: string) =>
    setSecrets((s) => {
      const { [id]: _gone, ...rest } = s;
      return rest;
    });

  if (!list.data) return list.error ? <LoadError error={list.error} retry={list.reload} /> : <Loading what="the tunnels" />;
  const tunnels = list.data;
  const form = (
    <section class="panel" aria-labelledby="new-tunnel">
      <h3 id="new-tunnel">New tunnel</h3>
      <TunnelForm
        deviceId={device.id}
        onSaved={(t, s) => {
          setCreating(false);
          saved(t, s);
        }}
        onCancel={tunnels.length ? () => setCreating(false) : undefined}
      />
    </section>
  );
  return (
    <section aria-labelledby="tunnels-title">
      <div class="section-head">
        <h2 id="tunnels-title">Tunnels</h2>
        {writable && tunnels.length > 0 && !creating && (
          <button type="button" class="primary" onClick={() => setCreating(true)}>
            New tunnel
          </button>
        )}
      </div>
      {tunnels.length === 0 ? (
        <>
          <Empty title="This device has no tunnels yet.">
            <p>
              A tunnel makes a web app or a TCP service on this device — or on its network — reachable through the relay: a web app at its own address, a TCP service such as ssh with{' '}
              <code>pirelay tcp</code> on your computer. The device needs no open port.
            </p>
            {!writable && <p>Ask a member of its team who may manage tunnels to make one.</p>}
          </Empty>
          {writable && form}
        </>
      ) : (
        <>
          {creating && form}
          {tunnels.map((t) => (
            <TunnelCard
              key={t.id}
              deviceId={device.id}
              tunnel={t}
              secret={secrets[t.id]}
              writable={writable}
              onChange={saved}
              onRemoved={() => {
                forget(t.id);
                list.set((old) => old?.filter((o) => o.id !== t.id));
              }}
              onSecretDone={() => forget(t.id)}
            />
          ))}
        </>
      )}
    </section>
  );
}
