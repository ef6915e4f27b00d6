// The full-window terminal at /terminal/:id — where a terminal link (GET …/terminal, PiTunnel's
// /terminal) leads. It needs no dashboard session: the single-use token in the URL's fragment is
// the credential (a fragment never reaches a server log or a Referer). The token is taken out of
// the address bar at once, so it is not left in the history or shown to someone looking on.
import { useEffect, useState } from 'preact/hooks';
import { TerminalView } from '../terminal/terminal.tsx';

/** The token from the fragment, removed from the address bar; '' when there is none. */
function takeToken(): string {
  const raw = location.hash.slice(1);
  if (location.hash) history.replaceState(history.state, '', location.pathname + location.search);
  try {
    return decodeURIComponent(raw);
  } catch {
    return '';
  }
}

export default function TerminalPage({ id }: { id: string }) {
  const [token] = useState(takeToken);
  useEffect(() => {
    document.title = `Terminal · ${id} · pirelay`;
  }, [id]);
  return (
    <main id="main" class="terminal-page">
      {token ? (
        <TerminalView deviceId={id} token={token} full title={`Terminal on ${id}`} />
      ) : (
        <section class="gate">
          <div class="card">
            <h1 class="term-title">Terminal on {id}</h1>
            <p role="alert">This address has no terminal link token — ask for a new terminal link.</p>
          </div>
        </section>
      )}
    </main>
  );
}
