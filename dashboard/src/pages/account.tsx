// Account: what a signed-in person changes about themselves — their profile, their password,
// two-factor login — and what ends their sessions. Everything here is the caller's own account
// (PUT /api/v1/auth/me…, /api/v1/auth/2fa/…), so no permission is needed beyond being signed in.
import { me } from '../session.ts';
import { Page, Time } from '../ui/bits.tsx';
import { PasswordSection } from './account/password.tsx';
import { ProfileSection } from './account/profile.tsx';
import { TwoFactorSection } from './account/two-factor.tsx';
import './account.css';

export default function AccountPage() {
  const user = me.value;
  // The app shows a page only while signed in; `me` is set before any page is drawn.
  if (!user) return null;
  return (
    <Page title="Account">
      <div class="account">
        <ProfileSection user={user} />
        <PasswordSection user={user} />
        <TwoFactorSection user={user} />
        <section class="panel" aria-labelledby="sessions-title">
          <h2 id="sessions-title">Sessions</h2>
          <p>
            Last sign-in: <Time iso={user.last_login} />. <strong>Sign out</strong> (at the top of the page) ends this browser's session at the relay.
          </p>
          <p>
            To end every other session at once — a lost laptop, a shared computer — change your password above: that signs out all your other sessions
            and this one carries on. API keys are not sessions and keep working; revoke them on the <a href="/api-keys">API keys</a> page.
          </p>
        </section>
      </div>
    </Page>
  );
}
