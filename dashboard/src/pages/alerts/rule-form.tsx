// Creating and changing a rule (POST /api/v1/alert-rules, PATCH /api/v1/alert-rules/{id}). The form
// shows only what the chosen metric takes: thresholds for cpu, memory, disk, temperature and load,
// a level for offline, process and container, a target for disk, process and container. The scope
// is every device (instance admins), a team or one device, from those the user may see.
//
// Channels are write-only: the API answers a channel as its type and host, never its URL or token.
// Editing a rule therefore keeps its channels unless "Replace the channels" is ticked, and then they
// are entered again from nothing; the typed URLs and tokens leave the page with the form once the
// rule is saved (the parent mounts a fresh form), so no secret stays in the DOM.
import type { RefObject } from 'preact';
import { useId, useState } from 'preact/hooks';
import { patch, post, type ApiError } from '../../api.ts';
import { isAdmin } from '../../session.ts';
import { Button, CheckboxField, ErrorNote, SelectField, TextField } from '../../ui/form.tsx';
import { useAction } from '../../ui/use-load.ts';
import type { AlertLevel, AlertMetric, AlertRule, ChannelType } from '../../../../shared/api/alerts.ts';
import type { Device } from '../../../../shared/api/devices.ts';
import type { Team } from '../../../../shared/api/teams.ts';
import { CHANNELS, LEVELS, MAX_CHANNELS, METRICS, TAKES_TARGET, isThreshold, issueAt, unitOf } from './format.ts';

interface ChannelDraft {
  key: number;
  type: ChannelType;
  url: string;
  headers: string;
  token: string;
  priority: string;
  bot_token: string;
  chat_id: string;
  api_url: string;
}

let nextKey = 0;
const blankChannel = (type: ChannelType = 'webhook'): ChannelDraft => ({ key: nextKey++, type, url: '', headers: '', token: '', priority: '', bot_token: '', chat_id: '', api_url: '' });

/** A scope picker value: "all", "team:<id>" or "device:<id>". */
export const scopeKey = (r: Pick<AlertRule, 'team_id' | 'device_id'>) => (r.device_id ? `device:${r.device_id}` : r.team_id ? `team:${r.team_id}` : 'all');

const num = (s: string) => (s.trim() === '' ? undefined : Number(s));
const text = (n: number | null | undefined) => (n === null || n === undefined ? '' : String(n));

/** The channel as the API takes it: only the fields its type has, the empty optional ones left out. */
function channelBody(c: ChannelDraft): Record<string, unknown> {
  switch (c.type) {
    case 'webhook': {
      const lines = c.headers.split('\n').filter((l) => l.trim());
      const headers = Object.fromEntries(
        lines.map((l) => {
          const at = l.indexOf(':');
          return at < 0 ? [l.trim(), ''] : [l.slice(0, at).trim(), l.slice(at + 1).trim()];
        }),
      );
      return { type: 'webhook', url: c.url, ...(lines.length ? { headers } : {}) };
    }
    case 'slack':
    case 'discord':
      return { type: c.type, url: c.url };
    case 'ntfy':
      return { type: 'ntfy', url: c.url, ...(c.token ? { token: c.token } : {}), ...(num(c.priority) !== undefined ? { priority: num(c.priority) } : {}) };
    case 'telegram':
      return { type: 'telegram', bot_token: c.bot_token, chat_id: c.chat_id, ...(c.api_url ? { api_url: c.api_url } : {}) };
  }
}

export function RuleForm({ editing, teams, devices, headingRef, onSaved, onCancel }: {
  editing: AlertRule | null;
  teams: Team[];
  devices: Device[];
  headingRef: RefObject<HTMLHeadingElement | null>;
  onSaved: (r: AlertRule) => Promise<void>;
  onCancel: () => void;
}) {
  const [name, setName] = useState(editing?.name ?? '');
  const [metric, setMetric] = useState<AlertMetric>(editing?.metric ?? 'cpu');
  const [target, setTarget] = useState(editing?.target ?? '');
  const [warning, setWarning] = useState(text(editing?.warning));
  const [critical, setCritical] = useState(text(editing?.critical));
  const [level, setLevel] = useState<AlertLevel>(editing?.level ?? 'warning');
  const [hold, setHold] = useState(text(editing?.hold_seconds ?? 300));
  // A recovery hold equal to the hold is shown as empty ("as long as the hold"), so changing the hold carries it along.
  const [recovery, setRecovery] = useState(editing && editing.recovery_seconds !== editing.hold_seconds ? text(editing.recovery_seconds) : '');
  const [scope, setScope] = useState(editing ? scopeKey(editing) : isAdmin.value ? 'all' : teams[0] ? `team:${teams[0].id}` : '');
  const [enabled, setEnabled] = useState(editing?.enabled ?? true);
  const [replaceChannels, setReplaceChannels] = useState(!editing);
  const [channels, setChannels] = useState<ChannelDraft[]>([]);
  const [resend, setResend] = useState(text(editing?.resend_minutes));
  const [resendCap, setResendCap] = useState(text(editing?.resend_cap ?? 5));
  const [quiet, setQuiet] = useState(!!editing?.quiet_hours);
  const [quietStart, setQuietStart] = useState(editing?.quiet_hours?.start ?? '22:00');
  const [quietEnd, setQuietEnd] = useState(editing?.quiet_hours?.end ?? '07:00');
  const [quietZone, setQuietZone] = useState(editing?.quiet_hours?.timezone ?? Intl.DateTimeFormat().resolvedOptions().timeZone ?? 'UTC');

  const threshold = isThreshold(metric);
  const takes = TAKES_TARGET[metric];
  const unit = unitOf(metric);

  const body = () => {
    const [kind, ...rest] = scope.split(':');
    const id = rest.join(':');
    const b: Record<string, unknown> = {
      name,
      metric,
      hold_seconds: num(hold),
      team_id: kind === 'team' ? id : null,
      device_id: kind === 'device' ? id : null,
      enabled,
      resend_cap: num(resendCap),
      quiet_hours: quiet ? { start: quietStart, end: quietEnd, timezone: quietZone } : null,
    };
    // A new rule leaves out what it lacks; a change clears it with null (PATCH keeps what is left out).
    const put = (field: string, v: unknown) => {
      if (v !== undefined) b[field] = v;
      else if (editing) b[field] = null;
    };
    put('target', takes && target.trim() ? target.trim() : undefined);
    put('warning', threshold ? num(warning) : undefined);
    put('critical', threshold ? num(critical) : undefined);
    put('level', threshold ? undefined : level);
    put('recovery_seconds', num(recovery));
    put('resend_minutes', num(resend));
    if (replaceChannels) b.channels = channels.map(channelBody);
    return b;
  };

  const save = useAction(async () => {
    const r = editing ? await patch<AlertRule>(`/api/v1/alert-rules/${encodeURIComponent(editing.id)}`, body()) : await post<AlertRule>('/api/v1/alert-rules', body());
    await onSaved(r);
  });
  const err = save.error;
  const at = (field: string) => issueAt(err, field);

  const scopes = [
    ...(isAdmin.value || scope === 'all' ? [{ value: 'all', label: 'Every device' }] : []),
    ...teams.map((t) => ({ value: `team:${t.id}`, label: `Team: ${t.name}` })),
    ...devices.map((d) => ({ value: `device:${d.id}`, label: `Device: ${d.name}` })),
  ];
  if (scope && !scopes.some((s) => s.value === scope)) scopes.push({ value: scope, label: scope.replace(':', ': ') });
  if (!scope) scopes.unshift({ value: '', label: 'Choose…' });

  const fields = ['name', 'metric', 'target', 'warning', 'critical', 'level', 'hold_seconds', 'recovery_seconds', 'team_id', 'device_id', 'enabled', 'resend_minutes', 'resend_cap'];
  const named = fields.some((f) => at(f)) || !!at('channels') || !!at('quiet_hours');
  return (
    <form
      class="panel rule-form"
      aria-labelledby="rule-form-title"
      onSubmit={(e) => {
        e.preventDefault();
        void save.run();
      }}
    >
      <h2 id="rule-form-title" ref={headingRef} tabIndex={-1}>
        {editing ? `Edit rule ${editing.name}` : 'Add a rule'}
      </h2>
      <div class="grid">
        <TextField label="Name" value={name} onValue={setName} required maxLength={100} autoComplete="off" hint="Like “Hot CPU in the garage”" error={at('name')} />
        <SelectField label="Metric" value={metric} options={METRICS} onValue={(v) => setMetric(v as AlertMetric)} error={at('metric')} />
        <SelectField label="Applies to" value={scope} options={scopes} onValue={setScope} hint="Every device, a team’s devices, or one device" error={at('team_id') ?? at('device_id')} />
      </div>
      <div class="grid">
        {takes && (
          <TextField
            label={takes.label}
            value={target}
            onValue={setTarget}
            autoComplete="off"
            spellcheck={false}
            class="mono"
            hint={takes.hint}
            error={at('target')}
          />
        )}
        {threshold ? (
          <>
            <TextField
              label={`Warning at${unit ? ` (${unit})` : ''}`}
              type="number"
              inputMode="decimal"
              step="any"
              min={0}
              value={warning}
              onValue={setWarning}
              hint="Empty: no warning level"
              error={at('warning')}
            />
            <TextField
              label={`Critical at${unit ? ` (${unit})` : ''}`}
              type="number"
              inputMode="decimal"
              step="any"
              min={0}
              value={critical}
              onValue={setCritical}
              hint="Empty: no critical level"
              error={at('critical')}
            />
          </>
        ) : (
          <SelectField label="Level" value={level} options={LEVELS} onValue={(v) => setLevel(v as AlertLevel)} error={at('level')} />
        )}
      </div>
      <div class="grid">
        <TextField
          label={threshold ? 'Hold (seconds)' : 'For at least (seconds)'}
          type="number"
          inputMode="numeric"
          min={0}
          step={1}
          value={hold}
          onValue={setHold}
          hint={threshold ? 'The average over this long must reach the threshold: one spike does not fire.' : 'How long the condition must last before the alert fires.'}
          error={at('hold_seconds')}
        />
        <TextField
          label="Recovery hold (seconds)"
          type="number"
          inputMode="numeric"
          min={0}
          step={1}
          value={recovery}
          onValue={setRecovery}
          hint="How long it must be back to normal before the alert resolves; empty: as long as the hold."
          error={at('recovery_seconds')}
        />
      </div>

      <fieldset class="rule-channels">
        <legend>Notifications</legend>
        {editing && (
          <>
            <p class="muted">
              {editing.channels.length
                ? `Sent to ${editing.channels.map((c) => `${c.type} (${c.host})`).join(', ')}.`
                : 'This rule sends no notifications.'}{' '}
              Saved URLs and tokens are never shown again: to change the channels, enter them again.
            </p>
            <CheckboxField
              label="Replace the channels"
              checked={replaceChannels}
              onValue={(v) => {
                setReplaceChannels(v);
                if (!v) setChannels([]);
              }}
              hint="Unticked, the rule keeps the channels it has."
            />
          </>
        )}
        {replaceChannels && (
          <>
            {channels.length === 0 && <p class="muted">{editing ? 'No channels: saving removes them all.' : 'No channels yet: alerts show here only.'}</p>}
            {channels.map((c, i) => (
              <ChannelEditor
                key={c.key}
                index={i}
                channel={c}
                err={err}
                onChange={(next) => setChannels((old) => old.map((x) => (x.key === c.key ? next : x)))}
                onRemove={() => setChannels((old) => old.filter((x) => x.key !== c.key))}
              />
            ))}
            {at('channels') && !channels.some((_, i) => at(`channels.${i}`)) && (
              <p class="field-error" role="alert">
                {at('channels')}
              </p>
            )}
            {channels.length < MAX_CHANNELS && (
              <button type="button" onClick={() => setChannels((old) => [...old, blankChannel()])}>
                Add a channel
              </button>
            )}
          </>
        )}
        <div class="grid">
          <TextField
            label="Resend every (minutes)"
            type="number"
            inputMode="numeric"
            min={1}
            step={1}
            value={resend}
            onValue={setResend}
            hint="While it fires unacknowledged; empty: notify once."
            error={at('resend_minutes')}
          />
          <TextField label="At most (notifications per alert)" type="number" inputMode="numeric" min={1} step={1} value={resendCap} onValue={setResendCap} error={at('resend_cap')} />
        </div>
        <CheckboxField label="Quiet hours" checked={quiet} onValue={setQuiet} hint="Nothing is sent between these times; what would have been goes out after, if the alert still fires." />
        {quiet && (
          <div class="grid">
            <TextField label="From (HH:MM)" value={quietStart} onValue={setQuietStart} inputMode="numeric" autoComplete="off" error={at('quiet_hours.start')} />
            <TextField label="Until (HH:MM)" value={quietEnd} onValue={setQuietEnd} inputMode="numeric" autoComplete="off" error={at('quiet_hours.end')} />
            <TextField label="Time zone" value={quietZone} onValue={setQuietZone} autoComplete="off" spellcheck={false} hint="Like Europe/Berlin" error={at('quiet_hours.timezone') ?? (at('quiet_hours') && !at('quiet_hours.start') && !at('quiet_hours.end') ? at('quiet_hours') : undefined)} />
          </div>
        )}
      </fieldset>

      <CheckboxField label="Enabled" checked={enabled} onValue={setEnabled} hint="A disabled rule raises no alerts; its open alerts resolve." />
      {named ? (
        <p class="error-note" role="alert">
          Please correct the marked fields.
        </p>
      ) : (
        <ErrorNote error={err} />
      )}
      <div class="actions">
        <Button type="submit" class="primary" busy={save.busy} busyLabel="Saving…">
          {editing ? 'Save rule' : 'Add rule'}
        </Button>
        {editing && (
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}

/** The outcome of POST /api/v1/alerts/test-channel (shared/api/alert-deliveries.ts ChannelTestResultSchema). */
interface ChannelTestResult {
  delivered: boolean;
  response_status: number | null;
  error: string | null;
}

/**
 * A channel tried before it is saved (POST /api/v1/alerts/test-channel: sent once, recorded
 * nowhere). The outcome belongs to what was tried: editing the channel clears it.
 */
function useChannelTest(c: ChannelDraft) {
  const [tried, setTried] = useState<{ of: string; result: ChannelTestResult } | null>(null);
  const body = JSON.stringify(channelBody(c));
  const action = useAction(async () => {
    setTried(null);
    setTried({ of: body, result: await post<ChannelTestResult>('/api/v1/alerts/test-channel', { channel: channelBody(c) }) });
  });
  return { ...action, outcome: tried?.of === body ? tried.result : null };
}

/** One channel's fields, those of its type only; the API's message beside each. */
function ChannelEditor({ index, channel: c, err, onChange, onRemove }: {
  index: number;
  channel: ChannelDraft;
  err: ApiError | undefined;
  onChange: (c: ChannelDraft) => void;
  onRemove: () => void;
}) {
  const legendId = useId();
  const headersId = useId();
  const p = `channels.${index}`;
  const at = (f: string) => issueAt(err, `${p}.${f}`);
  const set = (f: Partial<ChannelDraft>) => onChange({ ...c, ...f });
  const n = index + 1;
  const headersError = at('headers');
  const test = useChannelTest(c);
  return (
    <fieldset class="channel" aria-labelledby={legendId}>
      <legend id={legendId}>Channel {n}</legend>
      <div class="grid">
        <SelectField label={`Channel ${n} type`} value={c.type} options={CHANNELS} onValue={(v) => set({ type: v as ChannelType })} error={at('type')} />
        {c.type !== 'telegram' && (
          <TextField
            label={c.type === 'ntfy' ? `Channel ${n} topic URL` : `Channel ${n} URL`}
            type="url"
            value={c.url}
            onValue={(v) => set({ url: v })}
            required
            autoComplete="off"
            spellcheck={false}
            class="mono"
            hint={c.type === 'ntfy' ? 'Like https://ntfy.sh/my-topic' : c.type === 'webhook' ? 'Gets a JSON POST for each notification' : 'The webhook URL the service gave you'}
            error={at('url')}
          />
        )}
        {c.type === 'ntfy' && (
          <>
            <TextField label={`Channel ${n} access token`} type="password" value={c.token} onValue={(v) => set({ token: v })} autoComplete="off" hint="Only for a protected topic" error={at('token')} />
            <TextField label={`Channel ${n} priority (1–5)`} type="number" inputMode="numeric" min={1} max={5} step={1} value={c.priority} onValue={(v) => set({ priority: v })} hint="Empty: by the alert’s level" error={at('priority')} />
          </>
        )}
        {c.type === 'telegram' && (
          <>
            <TextField label={`Channel ${n} bot token`} type="password" value={c.bot_token} onValue={(v) => set({ bot_token: v })} required autoComplete="off" hint="As BotFather gives it, like 123456:ABC…" error={at('bot_token')} />
            <TextField label={`Channel ${n} chat id`} value={c.chat_id} onValue={(v) => set({ chat_id: v })} required autoComplete="off" spellcheck={false} error={at('chat_id')} />
            <TextField label={`Channel ${n} Bot API server`} type="url" value={c.api_url} onValue={(v) => set({ api_url: v })} autoComplete="off" spellcheck={false} hint="Only for a self-hosted Bot API server" error={at('api_url')} />
          </>
        )}
      </div>
      {c.type === 'webhook' && (
        <div class="field">
          <label for={headersId}>Channel {n} headers</label>
          <textarea
            id={headersId}
            class="mono"
            rows={2}
            value={c.headers}
            autoComplete="off"
            spellcheck={false}
            aria-invalid={headersError ? true : undefined}
            aria-describedby={`${headersId}-hint${headersError ? ` ${headersId}-error` : ''}`}
            onInput={(e) => set({ headers: (e.currentTarget as HTMLTextAreaElement).value })}
          />
          <p class="hint" id={`${headersId}-hint`}>
            Optional, one per line, like <code>Authorization: Bearer …</code>
          </p>
          {headersError && (
            <p class="field-error" id={`${headersId}-error`} role="alert">
              {headersError}
            </p>
          )}
        </div>
      )}
      <div class="actions">
        <Button busy={test.busy} busyLabel="Sending…" onClick={() => void test.run()}>
          Send a test to channel {n}
        </Button>
        <button type="button" onClick={onRemove}>
          Remove channel {n}
        </button>
      </div>
      <div role="status" class="test-outcome">
        {test.outcome && (
          <p>
            {test.outcome.delivered ? 'Delivered' : 'Not delivered'}
            {test.outcome.response_status !== null && <> · HTTP {test.outcome.response_status}</>}
            {test.outcome.error && <> · {test.outcome.error}</>}
          </p>
        )}
      </div>
      <ErrorNote error={test.error} />
    </fieldset>
  );
}
