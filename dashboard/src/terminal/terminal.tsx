// The terminal view both terminal pages show (the full-window /terminal/:id and the device's
// Terminal tab): xterm.js sized to its box with the fit addon, on a TerminalConnection that
// re-attaches by itself; around it the connection indicator, who watches and who types, the
// read-only banner, the relay's refusals (typing while read-only is refused by the agent, and
// said here), handing typing over and taking it back, and closing the session. xterm and its CSS
// are bundled (no CDN) into the chunk of the pages that import this module, and only theirs.
import { useEffect, useId, useRef, useState } from 'preact/hooks';
import { Terminal, type ITheme } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import '@xterm/xterm/css/xterm.css';
import { redialDelay, socketUrl } from '../api.ts';
import { ConfirmButton } from '../ui/dialog.tsx';
import { TerminalConnection, type ConnectionOptions, type ConnectionState } from './connection.ts';
import { exitText, type TerminalServerMessage, type TerminalSession } from './protocol.ts';
import './terminal.css';

/** How long the box must keep a size before the session is resized (a window drag is many sizes). */
const RESIZE_DEBOUNCE_MS = 150;

// ANSI colours that read at 4.5:1 or better on each theme's background (a shell's `ls --color`
// is text like any other); minimumContrastRatio below covers a colour on another colour.
const LIGHT: ITheme = {
  background: '#ffffff', foreground: '#1b1f24', cursor: '#1b1f24', cursorAccent: '#ffffff', selectionBackground: '#b6d0f7',
  black: '#1b1f24', red: '#b3261e', green: '#146c2e', yellow: '#7a4a00', blue: '#0b57d0', magenta: '#8e24aa', cyan: '#00677a', white: '#555d68',
  brightBlack: '#4a515b', brightRed: '#a1221b', brightGreen: '#0f5a26', brightYellow: '#6b4100', brightBlue: '#0842a0', brightMagenta: '#7b1f94', brightCyan: '#005666', brightWhite: '#1b1f24',
};
const DARK: ITheme = {
  background: '#121418', foreground: '#e6e8eb', cursor: '#e6e8eb', cursorAccent: '#121418', selectionBackground: '#3b4f73',
  black: '#a9b0ba', red: '#f28b82', green: '#7fd99a', yellow: '#f0c36b', blue: '#8ab4f8', magenta: '#d7aefb', cyan: '#78d9ec', white: '#e6e8eb',
  brightBlack: '#b8bec7', brightRed: '#f6aea9', brightGreen: '#a8e6b9', brightYellow: '#f6d58f', brightBlue: '#aecbfa', brightMagenta: '#e5c8fc', brightCyan: '#a5e8f4', brightWhite: '#ffffff',
};
const darkQuery = () => matchMedia('(prefers-color-scheme: dark)');

const STATE_TEXT: Record<ConnectionState, string> = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', ended: 'Ended', refused: 'Not connected' };
const STATE_CLASS: Record<ConnectionState, string> = { connecting: 'conn-connecting', live: 'conn-live', reconnecting: 'conn-reconnecting', ended: 'conn-closed', refused: 'conn-closed' };

export interface TerminalViewProps {
  deviceId: string;
  /** The link's single-use token. */
  token: string;
  /** A fresh link token for the session, when re-attaching with the resume token fails (signed-in pages). */
  relink?: ConnectionOptions['relink'];
  /** Fills the window (the standalone page) rather than a box in a page. */
  full?: boolean;
  /** The session ended, or the link was refused. */
  onEnded?: (state: 'ended' | 'refused') => void;
  /** A heading level 2 for the view (in a page that has its own h1); the standalone page passes its h1. */
  title?: string;
}

type Control = Exclude<TerminalServerMessage, { t: 'resume' }>;

export function TerminalView({ deviceId, token, relink, full, onEnded, title }: TerminalViewProps) {
  const box = useRef<HTMLDivElement>(null);
  const section = useRef<HTMLElement>(null);
  const hintId = useId();
  const conn = useRef<TerminalConnection | null>(null);
  const [state, setState] = useState<ConnectionState>('connecting');
  const [why, setWhy] = useState('');
  const [session, setSession] = useState<TerminalSession | null>(null);
  const [viewer, setViewer] = useState<string | null>(null);
  const [typing, setTyping] = useState(false);
  const [refusal, setRefusal] = useState<{ code: string; message: string } | null>(null);
  const [note, setNote] = useState('');
  const handlers = useRef({ onEnded });
  handlers.current = { onEnded };

  useEffect(() => {
    const el = box.current!;
    const term = new Terminal({
      cursorBlink: true,
      fontFamily: "ui-monospace, 'SFMono-Regular', 'DejaVu Sans Mono', 'Liberation Mono', monospace",
      fontSize: 14,
      scrollback: 5000,
      theme: darkQuery().matches ? DARK : LIGHT,
      // Whatever colours a program picks (ls: black on green), text stays readable (WCAG AA):
      // xterm shifts a foreground that is too close to its background.
      minimumContrastRatio: 4.5,
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(el);
    const fitNow = () => {
      // A box with no size (hidden, not laid out yet) has nothing to fit.
      if (el.clientWidth > 0 && el.clientHeight > 0) fit.fit();
    };
    fitNow();

    let typist = false;
    let myUser: string | null = null;
    let sessionSize: { cols: number; rows: number } | null = null;
    let resizeTimer: ReturnType<typeof setTimeout> | undefined;
    // The typist's box sizes the session; everyone else shows the session at its size (scrolling
    // inside the box when it is larger), so what they see lines up with what the typist sees.
    const layout = () => {
      if (typist || !sessionSize) fitNow();
      else if (term.cols !== sessionSize.cols || term.rows !== sessionSize.rows) term.resize(sessionSize.cols, sessionSize.rows);
    };
    const sendSize = () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => {
        if (typist) c.send({ t: 'resize', cols: term.cols, rows: term.rows });
      }, RESIZE_DEBOUNCE_MS);
    };

    const onMessage = (m: Control) => {
      if (m.t === 'attached' || m.t === 'session') {
        if (m.t === 'attached') {
          // The screen as it is comes next, drawn from scratch: nothing from before may stay.
          term.reset();
          myUser = m.session.viewers.find((v) => v.id === m.viewer)?.user_id ?? null;
          setViewer(m.viewer);
          setRefusal(null);
        }
        const wasTypist = typist;
        typist = m.typing;
        sessionSize = { cols: m.session.cols, rows: m.session.rows };
        setSession(m.session);
        setTyping(m.typing);
        layout();
        if (typist && (m.t === 'attached' || !wasTypist)) {
          sendSize();
          term.focus();
        }
        if (typist && !wasTypist && m.t === 'session') setRefusal(null);
      } else if (m.t === 'size') {
        sessionSize = { cols: m.cols, rows: m.rows };
        // The agent clamped the typist's size, or someone else types: show the session's size.
        if (!typist || term.cols !== m.cols || term.rows !== m.rows) term.resize(m.cols, m.rows);
      } else if (m.t === 'handed_over') {
        setNote(m.to.user_id === myUser ? 'You type now.' : `Typing handed over to ${m.to.name}.`);
      } else if (m.t === 'error') {
        setRefusal({ code: m.code, message: m.message });
      } else if (m.t === 'exit') {
        setWhy(exitText(m));
      }
    };

    const c = new TerminalConnection({
      token,
      relink,
      size: () => ({ cols: term.cols, rows: term.rows }),
      open: (q, protocols) => new WebSocket(socketUrl(`/api/v1/devices/${encodeURIComponent(deviceId)}/terminal/socket?cols=${q.cols}&rows=${q.rows}`), protocols),
      delay: (attempt) => redialDelay(attempt, 500, 15_000),
      onState: (s, reason) => {
        setState(s);
        if (reason) setWhy(reason);
        if (s === 'ended' || s === 'refused') {
          setNote('');
          term.options.cursorBlink = false;
          handlers.current.onEnded?.(s);
        }
      },
      onMessage,
      onOutput: (bytes, written) => term.write(bytes, written),
    });
    conn.current = c;
    // A terminal keeps Tab for the shell, so it would trap the keyboard: Ctrl+] (telnet's escape,
    // which no shell needs) leaves it, to its section, from where Tab moves on.
    term.attachCustomKeyEventHandler((e) => {
      if (e.type === 'keydown' && e.ctrlKey && !e.altKey && !e.metaKey && (e.key === ']' || e.code === 'BracketRight')) {
        e.preventDefault();
        section.current?.focus();
        return false;
      }
      return true;
    });
    const encoder = new TextEncoder();
    const typed = term.onData((d) => c.sendInput(encoder.encode(d)));
    // Bytes the terminal reports raw (mouse reports in X10 mode): one byte per char code.
    const raw = term.onBinary((d) => c.sendInput(Uint8Array.from(d, (ch) => ch.charCodeAt(0) & 0xff)));
    const resized = term.onResize(() => sendSize());
    let boxTimer: ReturnType<typeof setTimeout> | undefined;
    const observer = new ResizeObserver(() => {
      clearTimeout(boxTimer);
      boxTimer = setTimeout(layout, RESIZE_DEBOUNCE_MS);
    });
    observer.observe(el);
    const scheme = darkQuery();
    const onScheme = () => (term.options.theme = scheme.matches ? DARK : LIGHT);
    scheme.addEventListener('change', onScheme);
    // The network coming back dials at once instead of waiting out the backoff.
    const online = () => c.nudge();
    addEventListener('online', online);
    c.start();
    return () => {
      removeEventListener('online', online);
      scheme.removeEventListener('change', onScheme);
      observer.disconnect();
      clearTimeout(boxTimer);
      clearTimeout(resizeTimer);
      typed.dispose();
      raw.dispose();
      resized.dispose();
      c.stop();
      conn.current = null;
      term.dispose();
    };
  }, [deviceId, token]);

  const me = session?.viewers.find((v) => v.id === viewer);
  const isOwner = !!me && !!session && me.user_id === session.owner.user_id;
  const live = state === 'live';
  const others = session?.viewers.filter((v) => v.id !== viewer && v.may_share) ?? [];
  const send = (m: Parameters<TerminalConnection['send']>[0]) => {
    setNote('');
    if (!conn.current?.send(m)) setRefusal({ code: 'NOT_CONNECTED', message: 'The terminal is not connected; try again once it is live.' });
  };

  const Heading = full ? 'h1' : 'h2';
  return (
    <section class={`term${full ? ' term-full' : ''}`} aria-labelledby="term-title" ref={section} tabIndex={-1}>
      <div class="term-bar">
        <Heading id="term-title" class="term-title" tabIndex={full ? -1 : undefined}>
          {title ?? 'Terminal'}
        </Heading>
        <span class={`conn ${STATE_CLASS[state]}`} role="status">
          <span class="dot" aria-hidden="true" />
          {STATE_TEXT[state]}
          {state === 'ended' && why ? ` — ${why}` : ''}
        </span>
        {session && (
          <span class="term-session">
            Session <code>{session.id}</code>
          </span>
        )}
        {session && (
          <span class="term-viewers">
            <span class="visually-hidden">Viewers: </span>
            <ul aria-label="Viewers">
              {session.viewers.map((v) => (
                <li key={v.id} class={v.typing ? 'typing' : undefined}>
                  {v.name}
                  {v.id === viewer ? ' (you)' : ''}
                  {v.typing ? <span class="badge">typing</span> : null}
                </li>
              ))}
            </ul>
          </span>
        )}
        {live && (
          <div class="term-actions">
            {typing && others.length > 0 && <Handover viewers={others} onPick={(to) => send({ t: 'handover', to })} />}
            {isOwner && !typing && (
              <button type="button" onClick={() => send({ t: 'take' })}>
                Take typing back
              </button>
            )}
            <ConfirmButton
              label="Close session"
              title="Close this terminal session?"
              confirmLabel="Close session"
              onConfirm={async () => {
                if (!conn.current?.send({ t: 'close' })) throw new Error('The terminal is not connected.');
              }}
            >
              <p>The shell and everything started in it are ended, for every viewer.</p>
            </ConfirmButton>
          </div>
        )}
      </div>
      {/* Always there, so the screen below never moves in the tree: xterm lives in that element. */}
      <div class="term-messages">
        {live && !typing && (
          <p class="term-banner" role="status">
            <strong>Read-only</strong> — {session?.typist ? `${session.typist.name} is typing` : 'nobody is typing'}
            {isOwner ? '; take typing back to type.' : '.'}
          </p>
        )}
        {note && (
          <p class="term-note" role="status">
            {note}
          </p>
        )}
        {refusal && (
          <div class="error-note term-refusal" role="alert">
            <p>
              {refusal.message} <span class="code">({refusal.code})</span>
            </p>
            <button type="button" onClick={() => setRefusal(null)}>
              Dismiss
            </button>
          </div>
        )}
        {state === 'refused' && (
          <div class="error-note" role="alert">
            <p>{why}</p>
          </div>
        )}
      </div>
      <div key="screen" class="term-screen" ref={box} aria-describedby={hintId} />
      <p class="term-hint" id={hintId}>
        Keys go to the shell on the device. Press Ctrl+] to leave the terminal; Tab then moves on.
      </p>
    </section>
  );
}

/** The "Hand over typing" menu: the other viewers who may be handed typing. */
function Handover({ viewers, onPick }: { viewers: TerminalSession['viewers']; onPick: (id: string) => void }) {
  const ref = useRef<HTMLDetailsElement>(null);
  return (
    <details
      class="term-menu"
      ref={ref}
      onKeyDown={(e) => {
        if (e.key === 'Escape' && ref.current?.open) {
          ref.current.removeAttribute('open');
          ref.current.querySelector('summary')?.focus();
        }
      }}
    >
      <summary>Hand over typing</summary>
      <div class="term-menu-list" role="group" aria-label="Hand typing over to">
        {viewers.map((v) => (
          <button
            type="button"
            key={v.id}
            onClick={() => {
              ref.current?.removeAttribute('open');
              onPick(v.id);
            }}
          >
            {/* One user in two tabs is two viewers: the id tells them apart. */}
            {viewers.some((o) => o !== v && o.name === v.name) ? `${v.name} (${v.id.slice(0, 6)})` : v.name}
          </button>
        ))}
      </div>
    </details>
  );
}
