// The frame around every page: the session gate (sign-in, "session expired"), the navigation, the
// live stream's connection indicator, and the router that loads each page's code when opened.
// A page that carries its own credential (the terminal link's /terminal/:id) skips the gate.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ErrorBoundary, LocationProvider, Route, Router, lazy, useLocation } from 'preact-iso';
import { PAGES, PUBLIC_PAGES, isPublicPath } from './pages.ts';
import { can, loadSession, me, sessionState, signOut } from './session.ts';
import { startStream, stopStream, streamConnection } from './fleet-stream.ts';
import { SignIn } from './sign-in.tsx';
import { Empty, Loading } from './ui/bits.tsx';

const routes = PAGES.map((p) => ({ ...p, component: lazy(p.load) }));
const publicRoutes = PUBLIC_PAGES.map((p) => ({ ...p, component: lazy(p.load) }));

function NotFound() {
  return (
    <section class="page">
      <h1 id="page-title" tabIndex={-1}>
        Page not found
      </h1>
      <Empty title="There is no page at this address.">
        <a href="/">Go to the fleet</a>
      </Empty>
    </section>
  );
}

function ConnectionIndicator() {
  const state = streamConnection.value;
  const label = state === 'live' ? 'Live' : state === 'closed' ? 'Not connected' : state === 'connecting' ? 'Connecting…' : 'Reconnecting…';
  return (
    <span class={`conn conn-${state}`} role="status" title="Live updates from the relay">
      <span class="dot" aria-hidden="true" />
      {label}
    </span>
  );
}

function Nav({ onNavigate }: { onNavigate: () => void }) {
  const { path } = useLocation();
  const items = PAGES.filter((p) => p.nav && (!p.needs || can(p.needs)));
  const current = (p: string) => (p === '/' ? path === '/' || path.startsWith('/device/') : path === p || path.startsWith(`${p}/`));
  return (
    <ul>
      {items.map((p) => (
        <li key={p.path}>
          <a href={p.path} aria-current={current(p.path) ? 'page' : undefined} onClick={onNavigate}>
            {p.nav}
          </a>
        </li>
      ))}
    </ul>
  );
}

function Shell() {
  const [menuOpen, setMenuOpen] = useState(false);
  const { path } = useLocation();
  const first = useRef(true);
  useEffect(() => {
    // After a navigation (not the first page), focus the new page's heading so screen readers and
    // keyboards start there.
    if (first.current) {
      first.current = false;
      return;
    }
    const t = setTimeout(() => document.getElementById('page-title')?.focus({ preventScroll: false }), 50);
    return () => clearTimeout(t);
  }, [path]);
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="/">
          pirelay
        </a>
        <button type="button" class="menu-toggle" aria-expanded={menuOpen} aria-controls="main-nav" onClick={() => setMenuOpen(!menuOpen)}>
          Menu
        </button>
        <nav id="main-nav" aria-label="Main" class={menuOpen ? 'open' : undefined}>
          <Nav onNavigate={() => setMenuOpen(false)} />
        </nav>
        <div class="who">
          <ConnectionIndicator />
          <a href="/account" aria-current={path === '/account' ? 'page' : undefined}>
            {me.value?.username}
          </a>
          <button type="button" onClick={() => void signOut().then(() => history.replaceState(null, '', '/'))}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main">
        <ErrorBoundary>
          <Router>
            {[...routes.map((r) => <Route key={r.path} path={r.path} component={r.component} />), <Route key="404" default component={NotFound} />]}
          </Router>
        </ErrorBoundary>
      </main>
    </>
  );
}

function Expired() {
  useEffect(() => {
    document.title = 'Session expired · pirelay';
  }, []);
  return (
    <main id="main" class="gate">
      <section class="card" aria-labelledby="expired-title">
        <h1 id="expired-title">Your session has ended</h1>
        <p>You were signed out — the session expired, was ended from another place, or your access changed. Sign in again to carry on where you were.</p>
        <SignIn embedded />
      </section>
    </main>
  );
}

/** A page outside the session gate (pages.ts PUBLIC_PAGES): no sign-in, no live stream. */
function Public() {
  return (
    <LocationProvider>
      <ErrorBoundary>
        <Router>
          {[...publicRoutes.map((r) => <Route key={r.path} path={r.path} component={r.component} />), <Route key="404" default component={NotFound} />]}
        </Router>
      </ErrorBoundary>
    </LocationProvider>
  );
}

export function App() {
  return isPublicPath(location.pathname) ? <Public /> : <Gated />;
}

function Gated() {
  const state = sessionState.value;
  useEffect(() => {
    loadSession().catch(() => {});
  }, []);
  useEffect(() => {
    if (state === 'signed-in') startStream();
    else stopStream();
  }, [state]);
  if (state === 'loading') return <Loading what="pirelay" />;
  if (state === 'expired') return <Expired />;
  if (state === 'signed-out')
    return (
      <main id="main" class="gate">
        <section class="card" aria-labelledby="signin-title">
          <h1 id="signin-title">Sign in to pirelay</h1>
          <SignIn />
        </section>
      </main>
    );
  return (
    // Links under /api/ (the OpenAPI JSON, downloads) are the relay's, not pages of the app.
    <LocationProvider scope={/^\/(?!api\/)/}>
      <Shell />
    </LocationProvider>
  );
}
