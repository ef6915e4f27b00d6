// Two-factor login (TOTP): enrolment shows the otpauth:// URI as a QR code (lean-qr's nano build:
// the full build's mixed modes make no smaller code of such a URI) drawn as an inline SVG — nothing
// fetched, no canvas — with the secret in groups for typing by hand; then a code from the app turns
// it on and the relay answers ten recovery codes, shown this once, in this component's state only
// (never stored, so a reload does not bring them back), with Copy all and a .txt download. Turned
// on, a current code (from the app, or a recovery code) makes new recovery codes or turns it off.
// The API's message for a wrong or used code is shown at the code field.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { correction, generate } from 'lean-qr/nano';
import { toSvgPath } from 'lean-qr/extras/svg';
import type { Me, RecoveryCodes, TwoFactorEnrolment } from '../../../../shared/api/auth.ts';
import { ApiError, post } from '../../api.ts';
import { loadSession } from '../../session.ts';
import { CopyButton } from '../../ui/copy.tsx';
import { Button, ErrorNote, TextField } from '../../ui/form.tsx';
import { useAction } from '../../ui/use-load.ts';

/** A code's own problem (not 6 digits, wrong, already used) belongs at the code field; anything else below it. */
function codeError(e: ApiError | undefined): string | undefined {
  if (!e) return undefined;
  return e.forField('code') ?? (e.code === 'INVALID_TWO_FACTOR_CODE' ? e.message : undefined);
}

function CodeErrors({ error }: { error: ApiError | undefined }) {
  return error && !codeError(error) ? <ErrorNote error={error} /> : null;
}

/** The QR code of `text`, dark on light whatever the theme (scanners expect it), with its quiet zone. */
function QrCode({ text, label }: { text: string; label: string }) {
  const { size, path } = useMemo(() => {
    const code = generate(text, { minCorrectionLevel: correction.M });
    return { size: code.size, path: toSvgPath(code) };
  }, [text]);
  const pad = 4;
  const side = size + 2 * pad;
  return (
    <svg class="qr" role="img" aria-label={label} viewBox={`${-pad} ${-pad} ${side} ${side}`} shape-rendering="crispEdges" xmlns="http://www.w3.org/2000/svg">
      <rect x={-pad} y={-pad} width={side} height={side} fill="#fff" />
      <path d={path} fill="#000" />
    </svg>
  );
}

/** What an authenticator app reads from the URI, for entering it by hand. */
function uriFacts(uri: string): { issuer: string; account: string; digits: string; period: string } {
  const [head = '', q = ''] = uri.split('?');
  const params = new URLSearchParams(q);
  const label = decodeURIComponent(head.replace(/^otpauth:\/\/totp\//, ''));
  const [issuer, account] = label.includes(':') ? [label.slice(0, label.indexOf(':')), label.slice(label.indexOf(':') + 1)] : [params.get('issuer') ?? '', label];
  return { issuer, account, digits: params.get('digits') ?? '6', period: params.get('period') ?? '30' };
}

function Enrolment({ enrolment, onDone, onCancel }: { enrolment: TwoFactorEnrolment; onDone: (codes: string[]) => void; onCancel: () => void }) {
  const [code, setCode] = useState('');
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);
  const confirm = useAction(async () => {
    const r = await post<RecoveryCodes>('/api/v1/auth/2fa/confirm', { code: code.trim() });
    await loadSession();
    onDone(r.recovery_codes);
  });
  const facts = uriFacts(enrolment.otpauth_uri);
  const grouped = enrolment.secret.match(/.{1,4}/g)!.join(' ');
  return (
    <div class="enrolment">
      <h3 ref={heading} tabIndex={-1}>
        1. Scan this QR code with your authenticator app
      </h3>
      <div class="enrolment-scan">
        <QrCode text={enrolment.otpauth_uri} label={`QR code for your authenticator app: ${facts.issuer} account ${facts.account}`} />
        <div>
          <p>Any TOTP app works (for example Aegis, FreeOTP, Google Authenticator, 1Password). Cannot scan it? Add an account by hand with this key:</p>
          <div class="code-line">
            <code class="totp-secret">{grouped}</code>
            <CopyButton text={enrolment.secret} label="Copy key" />
          </div>
          <dl class="facts">
            <dt>Account</dt>
            <dd>
              {facts.issuer} ({facts.account})
            </dd>
            <dt>Type</dt>
            <dd>
              Time-based, {facts.digits} digits, every {facts.period} seconds
            </dd>
          </dl>
        </div>
      </div>
      <h3>2. Enter the code the app shows</h3>
      <form
        aria-label="Confirm two-factor login"
        onSubmit={(e) => {
          e.preventDefault();
          void confirm.run();
        }}
      >
        <TextField
          label="Code from the app"
          name="code"
          autoComplete="one-time-code"
          inputMode="numeric"
          required
          maxLength={8}
          value={code}
          onValue={setCode}
          hint="6 digits. Two-factor login is on only once a code is accepted."
          error={codeError(confirm.error)}
        />
        <CodeErrors error={confirm.error} />
        <div class="actions">
          <Button type="submit" class="primary" busy={confirm.busy} busyLabel="Checking…">
            Turn on two-factor login
          </Button>
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </div>
  );
}

/** The ten recovery codes, this once: copy them all or save them as a text file. */
function RecoveryCodeList({ codes, username, onDismiss }: { codes: string[]; username: string; onDismiss: () => void }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), [codes]);
  const text = codes.join('\n');
  const url = useMemo(() => {
    const file = `pirelay recovery codes for ${username} at ${location.host}, made ${new Date().toISOString()}.\nEach works once, in place of a code from your authenticator app.\n\n${text}\n`;
    return URL.createObjectURL(new Blob([file], { type: 'text/plain' }));
  }, [text, username]);
  useEffect(() => () => URL.revokeObjectURL(url), [url]);
  return (
    <div class="once-secret recovery">
      <h3 ref={heading} tabIndex={-1}>
        Your recovery codes — shown only this once
      </h3>
      <p>
        Each code works once, in place of a code from your app, if you lose your phone. Keep them apart from it — printed, or in a password manager.
        Making new ones voids these.
      </p>
      <ol class="recovery-codes" aria-label="Recovery codes">
        {codes.map((c) => (
          <li key={c}>
            <code data-secret>{c}</code>
          </li>
        ))}
      </ol>
      <div class="actions">
        <CopyButton text={text} label="Copy all" />
        <a class="button" href={url} download="pirelay-recovery-codes.txt">
          Download as .txt
        </a>
        <button type="button" class="primary" onClick={onDismiss}>
          I have saved them
        </button>
      </div>
    </div>
  );
}

/** A form that takes a current code (the app's, or a recovery code) for one action. */
function CodeForm({ title, label, busyLabel, danger, onCode }: { title: string; label: string; busyLabel: string; danger?: boolean; onCode: (code: string) => Promise<void> }) {
  const [code, setCode] = useState('');
  const act = useAction(async () => {
    await onCode(code.trim());
    setCode('');
  });
  return (
    <form
      aria-label={title}
      onSubmit={(e) => {
        e.preventDefault();
        void act.run();
      }}
    >
      <TextField label="Code from your app, or a recovery code" name="code" autoComplete="one-time-code" required value={code} onValue={setCode} error={codeError(act.error)} />
      <CodeErrors error={act.error} />
      <div class="actions">
        <Button type="submit" class={danger ? 'danger' : undefined} busy={act.busy} busyLabel={busyLabel}>
          {label}
        </Button>
      </div>
    </form>
  );
}

export function TwoFactorSection({ user }: { user: Me }) {
  const [enrolment, setEnrolment] = useState<TwoFactorEnrolment | null>(null);
  const [codes, setCodes] = useState<string[] | null>(null);
  const [turnedOff, setTurnedOff] = useState(false);
  const start = useAction(async () => {
    setTurnedOff(false);
    setEnrolment(await post<TwoFactorEnrolment>('/api/v1/auth/2fa/enrol'));
  });
  const on = user.two_factor_enabled;

  return (
    <section class="panel" aria-labelledby="two-factor-title">
      <h2 id="two-factor-title">Two-factor login</h2>
      <p>
        <span class={`badge ${on ? 'badge-online' : ''}`}>
          <span class="dot" aria-hidden="true" />
          {on ? 'On' : 'Off'}
        </span>{' '}
        {on
          ? 'Signing in takes your password and a code from your authenticator app (or a recovery code).'
          : 'With it on, signing in takes your password and a code from an authenticator app on your phone, so a stolen password alone is not enough.'}
      </p>
      {codes && <RecoveryCodeList codes={codes} username={user.username} onDismiss={() => setCodes(null)} />}
      {!on && !enrolment && (
        <>
          {turnedOff && <p role="status">Two-factor login is off; its secret and recovery codes are forgotten.</p>}
          <Button class="primary" busy={start.busy} busyLabel="Starting…" onClick={() => void start.run()}>
            Set up two-factor login
          </Button>
          <ErrorNote error={start.error} />
        </>
      )}
      {!on && enrolment && (
        <Enrolment
          enrolment={enrolment}
          onDone={(c) => {
            setEnrolment(null);
            setCodes(c);
          }}
          onCancel={() => setEnrolment(null)}
        />
      )}
      {on && (
        <div class="grid two-factor-actions">
          <div>
            <h3>New recovery codes</h3>
            <p>Lost or used up your recovery codes? Make ten new ones; the old ones stop working.</p>
            <CodeForm
              title="Make new recovery codes"
              label="Make new recovery codes"
              busyLabel="Making…"
              onCode={async (code) => {
                setCodes((await post<RecoveryCodes>('/api/v1/auth/2fa/recovery-codes', { code })).recovery_codes);
              }}
            />
          </div>
          <div>
            <h3>Turn off</h3>
            <p>Signing in will take only your password again; the secret and the recovery codes are forgotten.</p>
            <CodeForm
              title="Turn off two-factor login"
              label="Turn off two-factor login"
              busyLabel="Turning off…"
              danger
              onCode={async (code) => {
                await post('/api/v1/auth/2fa/disable', { code });
                setCodes(null);
                setTurnedOff(true);
                await loadSession();
              }}
            />
          </div>
        </div>
      )}
    </section>
  );
}
