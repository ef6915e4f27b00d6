// The device's Terminal tab: a shell on the device in the browser (xterm.js), kept by the agent
// when the page goes away and re-attached when it comes back; the sessions the device keeps, to
// attach to or close, and a new one. Attaching asks the API for a link (GET …/terminal[?session=])
// and opens its token in the same view the full-window page shows; signed in, a drop that outlasts
// the resume token is healed with a fresh link for the same session.
import { useState } from 'preact/hooks';
import type { TerminalLink, TerminalSession } from '../../../../shared/api/terminal.ts';
import { ApiError, del, get, query } from '../../api.ts';
import { Empty, LoadError, Loading, Time } from '../../ui/bits.tsx';
import { ConfirmButton } from '../../ui/dialog.tsx';
import { Button, ErrorNote } from '../../ui/form.tsx';
import { useAction, useLoad } from '../../ui/use-load.ts';
import { TerminalView } from '../../terminal/terminal.tsx';
import { devicePath, tabHref, type DeviceTabProps } from './shared.ts';

const iso = (ms: number) => new Date(ms).toISOString();

/** The token a link carries in its URL's fragment. */
const tokenOf = (link: TerminalLink) => decodeURIComponent(new URL(link.terminal_url).hash.slice(1));

function SessionRow({ deviceId, s, onAttach, onClosed }: { deviceId: string; s: TerminalSession; onAttach: () => void; onClosed: () => void }) {
  const named = (verb: string) => (
    <>
      {verb}
      <span class="visually-hidden"> session {s.id}</span>
    </>
  );
  return (
    <tr>
      <td data-label="Session" class="mono">
        {s.id.slice(0, 8)}
      </td>
      <td data-label="Started by">{s.owner.name}</td>
      <td data-label="Command" class="mono">
        {s.command.join(' ')} <span class="muted">as {s.user}</span>
      </td>
      <td data-label="Started">
        <Time iso={iso(s.created_at)} />
      </td>
      <td data-label="Watching">
        {s.viewers.length ? s.viewers.map((v) => v.name).join(', ') : s.closes_at ? <>nobody — closes <Time iso={iso(s.closes_at)} /></> : 'nobody'}
      </td>
      <td data-label="Typing">{s.typist?.name ?? <span class="muted">nobody</span>}</td>
      <td data-label="Actions">
        <div class="actions">
          <button type="button" class="primary" onClick={onAttach}>
            {named('Attach')}
          </button>
          <ConfirmButton label={named('Close')} title="Close this terminal session?" confirmLabel="Close session" onConfirm={async () => {
              await del(devicePath(deviceId, `/terminal/sessions/${encodeURIComponent(s.id)}`));
              onClosed();
            }}>
            <p>
              The shell <span class="mono">{s.command.join(' ')}</span> started by {s.owner.name} and everything started in it are ended, for every viewer.
            </p>
          </ConfirmButton>
        </div>
      </td>
    </tr>
  );
}

export default function TerminalTab({ device }: DeviceTabProps) {
  const live = device.status === 'approved' && device.online;
  const sessions = useLoad(
    (signal) => (live ? get<{ sessions: TerminalSession[] }>(devicePath(device.id, '/terminal/sessions'), { signal }).then((r) => r.sessions) : Promise.resolve(undefined)),
    [device.id, live],
  );
  /** The view open now: a link's token (a new key per attach, so the view starts afresh). */
  const [open, setOpen] = useState<{ token: string; key: number } | null>(null);
  const attach = useAction(async (session?: string) => {
    const link = await get<TerminalLink>(devicePath(device.id, `/terminal${query({ session })}`));
    setOpen({ token: tokenOf(link), key: Date.now() });
  });
  const relink = async (session: string) => {
    try {
      return tokenOf(await get<TerminalLink>(devicePath(device.id, `/terminal${query({ session })}`)));
    } catch (e) {
      // Not reached (the network, the device reconnecting): later. Refused by name: final.
      if (e instanceof ApiError && (e.status === 0 || e.status >= 500)) return null;
      return { ended: e instanceof ApiError ? `${e.message} (${e.code})` : String(e) };
    }
  };

  // An open view stays while the device is away: it re-attaches by itself when it is back.
  if (open)
    return (
      <div class="device-terminal">
        <div class="actions">
          <button
            type="button"
            onClick={() => {
              setOpen(null);
              void sessions.reload();
            }}
          >
            Back to the sessions
          </button>
          <span class="hint">Leaving keeps the session running on the device; attach again to carry on.</span>
        </div>
        <TerminalView key={open.key} deviceId={device.id} token={open.token} relink={relink} onEnded={() => void sessions.reload()} />
      </div>
    );

  if (!live)
    return (
      <Empty title="The terminal runs on the device, which must be online.">
        <p>
          This device is {device.status === 'approved' ? 'offline' : device.status}. Once its agent is connected you can open a terminal here; sessions started before keep running on
          the device for their idle window. <a href={tabHref(device.id, '')}>The overview</a> says what to check.
        </p>
      </Empty>
    );

  const list = sessions.data;
  return (
    <section class="device-terminal" aria-labelledby="terminal-sessions">
      <div class="section-head">
        <h2 id="terminal-sessions">Terminal sessions</h2>
        <Button class="primary" busy={attach.busy} busyLabel="Opening…" onClick={() => void attach.run()}>
          New session
        </Button>
      </div>
      <ErrorNote error={attach.error} />
      {sessions.error && <LoadError error={sessions.error} retry={sessions.reload} />}
      {!list ? (
        !sessions.error && <Loading what="the terminal sessions" />
      ) : list.length === 0 ? (
        <Empty title="No terminal sessions on this device.">
          <p>A new session starts a login shell on the device; it keeps running when you leave, until it ends or nobody has watched it for its idle window.</p>
        </Empty>
      ) : (
        <div class="table-wrap">
          <table class="cards">
            <thead>
              <tr>
                <th>Session</th>
                <th>Started by</th>
                <th>Command</th>
                <th>Started</th>
                <th>Watching</th>
                <th>Typing</th>
                <th>
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.map((s) => (
                <SessionRow key={s.id} deviceId={device.id} s={s} onAttach={() => void attach.run(s.id)} onClosed={() => void sessions.reload()} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
