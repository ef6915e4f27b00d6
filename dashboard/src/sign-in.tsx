// Signing in: the password, then (for accounts with two-factor login) a code from the
// authenticator app or a recovery code. The relay answers with the session as an HttpOnly
// cookie; the page never holds a token.
import { useState } from 'preact/hooks';
import type { ApiError } from './api.ts';
import { signIn, signInSecondStep } from './session.ts';
import { Button, ErrorNote, TextField } from './ui/form.tsx';
import { useAction } from './ui/use-load.ts';

function triesLeft(n: number): string {
  if (n <= 0) return 'That was the last try with this sign-in: go back and start again with your password.';
  return `${n} more ${n === 1 ? 'try' : 'tries'} with this sign-in; after that, start again with your password.`;
}

export function SignIn({ embedded = false }: { embedded?: boolean }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [challenge, setChallenge] = useState<string | null>(null);
  // Why the second step sent the user back to the password (shown there, or it would vanish with the step).
  const [spent, setSpent] = useState<ApiError | null>(null);
  const first = useAction(async () => {
    setSpent(null);
    const c = await signIn(username, password);
    if (c) setChallenge(c.challenge);
  });
  const second = useAction(async () => {
    try {
      await signInSecondStep(challenge!, code);
    } catch (e) {
      // An expired or used-up challenge cannot be retried: back to the password.
      if ((e as { code?: string }).code === 'INVALID_CHALLENGE') {
        setSpent(e as ApiError);
        setChallenge(null);
      }
      throw e;
    }
  });
  if (challenge)
    return (
      <form
        class="stack"
        aria-label="Two-factor code"
        onSubmit={(e) => {
          e.preventDefault();
          void second.run();
        }}
      >
        <p>Enter the 6-digit code from your authenticator app, or one of your recovery codes.</p>
        <TextField label="Code" name="code" autoComplete="one-time-code" inputMode="text" required value={code} onValue={setCode} autoFocus error={second.error?.forField('code')} />
        <ErrorNote error={second.error} fields={['code']} />
        {typeof second.error?.details.attempts_left === 'number' && <p class="hint">{triesLeft(second.error.details.attempts_left)}</p>}
        <div class="actions">
          <Button type="submit" class="primary" busy={second.busy} busyLabel="Checking…">
            Verify
          </Button>
          <button type="button" onClick={() => setChallenge(null)}>
            Back
          </button>
        </div>
      </form>
    );
  return (
    <form
      class="stack"
      aria-label={embedded ? 'Sign in again' : 'Sign in'}
      onSubmit={(e) => {
        e.preventDefault();
        void first.run();
      }}
    >
      <TextField label="User name" name="username" autoComplete="username" required value={username} onValue={setUsername} autoFocus error={first.error?.forField('username')} />
      <TextField label="Password" name="password" type="password" autoComplete="current-password" required value={password} onValue={setPassword} error={first.error?.forField('password')} />
      <ErrorNote error={first.error ?? spent ?? undefined} fields={['username', 'password']} />
      <div class="actions">
        <Button type="submit" class="primary" busy={first.busy} busyLabel="Signing in…">
          Sign in
        </Button>
      </div>
    </form>
  );
}
