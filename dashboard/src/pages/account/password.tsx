// Changing one's own password (PUT /api/v1/auth/me/password). The relay ends every other session of
// the user and keeps the one that made the change, so this page stays signed in and says what
// happened to the others. The password policy is the relay's: its message is shown at the field it
// names; the page itself checks only that the new password was typed the same twice.
import { useState } from 'preact/hooks';
import type { Me } from '../../../../shared/api/auth.ts';
import { put } from '../../api.ts';
import { Button, ErrorNote, TextField } from '../../ui/form.tsx';
import { useAction } from '../../ui/use-load.ts';

export function PasswordSection({ user }: { user: Me }) {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [repeat, setRepeat] = useState('');
  const [mismatch, setMismatch] = useState(false);
  const [changed, setChanged] = useState(false);

  const change = useAction(async () => {
    await put('/api/v1/auth/me/password', { current_password: current, new_password: next });
    setCurrent('');
    setNext('');
    setRepeat('');
    setChanged(true);
  });
  const err = change.error;
  const currentError = err?.code === 'INVALID_CURRENT_PASSWORD' ? err.message : err?.forField('current_password');
  const nextError = err?.forField('new_password');

  const submit = () => {
    setChanged(false);
    if (next !== repeat) {
      setMismatch(true);
      change.clearError();
      return;
    }
    setMismatch(false);
    void change.run();
  };

  if (user.auth_provider !== 'local')
    return (
      <section class="panel" aria-labelledby="password-title">
        <h2 id="password-title">Password</h2>
        <p>Your account signs in through {user.auth_provider}; its password is changed there, not on this relay.</p>
      </section>
    );

  return (
    <section class="panel" aria-labelledby="password-title">
      <h2 id="password-title">Password</h2>
      <form
        class="account-form"
        aria-labelledby="password-title"
        onSubmit={(e) => {
          e.preventDefault();
          submit();
        }}
      >
        {/* For password managers: the account whose password this is. */}
        <input type="text" name="username" autoComplete="username" value={user.username} readOnly hidden />
        <TextField
          label="Current password"
          name="current_password"
          type="password"
          autoComplete="current-password"
          required
          value={current}
          onValue={setCurrent}
          error={currentError}
        />
        <TextField
          label="New password"
          name="new_password"
          type="password"
          autoComplete="new-password"
          required
          value={next}
          onValue={(v) => (setNext(v), setMismatch(false))}
          hint="At least 8 characters; a few unrelated words make a strong one."
          error={nextError}
        />
        <TextField
          label="Repeat the new password"
          name="repeat_password"
          type="password"
          autoComplete="new-password"
          required
          value={repeat}
          onValue={(v) => (setRepeat(v), setMismatch(false))}
          error={mismatch ? 'The two new passwords differ; type the same one twice.' : undefined}
        />
        {/* What is not about one field (too many tries, say) is said below the form. */}
        {err && !currentError && !nextError && <ErrorNote error={err} />}
        <div class="actions">
          <Button type="submit" class="primary" busy={change.busy} busyLabel="Changing…">
            Change password
          </Button>
        </div>
        <p role="status" class={changed ? 'account-done' : undefined}>
          {changed ? 'Password changed. Your other sessions were signed out; this one carries on. Use the new password from now on.' : ''}
        </p>
      </form>
    </section>
  );
}
