// The KVM tab: the target computer's screen as a live view (MJPEG in an <img>, drawn by the
// browser), and — for users with hid:write — its keyboard and mouse over the live input socket,
// a menu of the shortcuts a browser keeps for itself, paste-as-typing, the keyboard's lights and a
// screenshot download. Everything it shows about the hardware (signal, gadgets, backend) comes
// from GET …/kvm, re-read when something says it changed (a broken live view, a gadget error, a
// reconnect), so a missing cable is named rather than shown as a black box.
import { useEffect, useId, useRef, useState } from 'preact/hooks';
import type { HidOutput, KvmStatus, TypeJob } from '../../../../shared/api/kvm.ts';
import type { HidState } from '../../../../shared/protocol/kvm.ts';
import type { ModifierCode } from '../../../../shared/hid/keycodes.ts';
import { ApiError, get } from '../../api.ts';
import { can } from '../../session.ts';
import { Empty, LoadError, Loading } from '../../ui/bits.tsx';
import { Button, ErrorNote } from '../../ui/form.tsx';
import { useAction, useLoad } from '../../ui/use-load.ts';
import { Capture, RELEASE_CHORD } from './kvm/capture.ts';
import { useHidSocket, type HidConnection } from './kvm/hid-socket.ts';
import { PastePanel, type TypeRefusal } from './kvm/paste.tsx';
import { SHORTCUT_GROUPS } from './kvm/shortcuts.ts';
import { devicePath, tabHref, type DeviceTabProps } from './shared.ts';
import './kvm.css';

/** The Keyboard Lock API (Chromium): lets Escape, Meta and Alt+Tab reach the page in full screen. */
type KeyboardLock = { lock?: (codes?: string[]) => Promise<void>; unlock?: () => void };
const keyboardLock = () => (navigator as Navigator & { keyboard?: KeyboardLock }).keyboard;

/** How often a screen without signal is looked at again (one status call; nothing else to watch). */
const NO_SIGNAL_RECHECK_MS = 5000;

type Leds = HidState['leds'];

function Lights({ leds }: { leds: Leds }) {
  const items: [string, string, boolean | undefined][] = [
    ['Caps', 'Caps Lock', leds?.caps_lock],
    ['Num', 'Num Lock', leds?.num_lock],
    ['Scroll', 'Scroll Lock', leds?.scroll_lock],
  ];
  return (
    <div class="kvm-leds">
      <ul aria-label="Keyboard lights of the target">
        {items.map(([short, name, on]) => (
          <li key={short} class={on === undefined ? 'led-unknown' : on ? 'led-on' : 'led-off'}>
            <span class="led-dot" aria-hidden="true" />
            {short}
            <span class="visually-hidden">
              {name.slice(short.length)}: {on === undefined ? 'unknown' : on ? 'on' : 'off'}
            </span>
          </li>
        ))}
      </ul>
      {!leds && <span class="muted">(not reported yet)</span>}
    </div>
  );
}

const CONNECTION_TEXT: Record<HidConnection, string> = {
  off: 'Input off',
  connecting: 'Input connecting…',
  open: 'Input connected',
  reconnecting: 'Input reconnecting…',
};
const CONNECTION_CLASS: Record<HidConnection, string> = { off: 'conn-closed', connecting: 'conn-connecting', open: 'conn-live', reconnecting: 'conn-reconnecting' };

function Shortcuts({ onSend, disabled }: { onSend: (code: string, modifiers: ModifierCode[]) => void; disabled: boolean }) {
  const ref = useRef<HTMLDetailsElement>(null);
  return (
    <details
      class="kvm-shortcuts"
      ref={ref}
      onKeyDown={(e) => {
        // Escape closes the menu, as it would any menu, and gives focus back to its toggle.
        if (e.key === 'Escape' && ref.current?.open) {
          ref.current.removeAttribute('open');
          ref.current.querySelector('summary')?.focus();
        }
      }}
    >
      <summary>Shortcuts</summary>
      <div class="kvm-shortcuts-menu">
        {SHORTCUT_GROUPS.map((g) => (
          <div role="group" aria-label={g.title} key={g.title}>
            <p class="kvm-group-title" aria-hidden="true">
              {g.title}
            </p>
            {g.shortcuts.map((s) => (
              <button
                type="button"
                key={s.label}
                disabled={disabled}
                aria-label={`Send ${s.label}`}
                onClick={() => {
                  onSend(s.code, s.modifiers);
                  ref.current?.removeAttribute('open');
                }}
              >
                {s.label}
              </button>
            ))}
          </div>
        ))}
      </div>
    </details>
  );
}

const stamp = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
const fileSafe = (s: string) => s.replace(/[^\w.-]+/g, '-').replace(/^-+|-+$/g, '') || 'device';

/** Fetches a screenshot and saves it as a file; false when there is no video signal (204). */
async function saveScreenshot(deviceId: string, deviceName: string): Promise<boolean> {
  let res: Response;
  try {
    res = await fetch(devicePath(deviceId, '/screenshot?format=png'), { credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, 'NETWORK_ERROR', 'The relay could not be reached; check your connection and try again');
  }
  if (res.status === 204) return false;
  if (!res.ok) {
    const b = (await res.json().catch(() => ({}))) as { error?: string; code?: string };
    throw new ApiError(res.status, b.code ?? `HTTP_${res.status}`, b.error ?? res.statusText);
  }
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = `${fileSafe(deviceName)}-screenshot-${stamp()}.png`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return true;
}

function GadgetNotice({ status }: { status: KvmStatus }) {
  const bad = (['keyboard', 'mouse'] as const).filter((g) => status[g].state !== 'ok' && status[g].state !== 'unknown');
  if (!bad.length) return null;
  const missing = bad.filter((g) => status[g].state === 'missing' || status[g].state === 'unplugged');
  return (
    <div class="notice" role="alert">
      {missing.length > 0 && (
        <p>
          <strong>The USB {missing.join(' and ')} gadget is missing: is the USB cable connected?</strong> The device must be plugged into the target with a data cable, and its
          gadget set up — see the USB gadget setup in the README.
        </p>
      )}
      {bad.map((g) => (
        <p key={g}>
          {g === 'keyboard' ? 'Keyboard' : 'Mouse'} ({status[g].path}): {status[g].state}
          {status[g].message ? ` — ${status[g].message}` : ''}
        </p>
      ))}
    </div>
  );
}

export default function Kvm({ device }: DeviceTabProps) {
  const live = device.status === 'approved' && device.online;
  const mayWrite = can('hid:write');
  const hintId = useId();
  const status = useLoad((signal) => (live ? get<KvmStatus>(devicePath(device.id, '/kvm'), { signal }) : Promise.resolve(undefined)), [device.id, live]);
  const [leds, setLeds] = useState<Leds>(null);
  const [job, setJob] = useState<TypeJob | null>(null);
  const [refusal, setRefusal] = useState<TypeRefusal | null>(null);
  const [inputError, setInputError] = useState<{ code: string; message: string } | null>(null);
  const [capturing, setCapturing] = useState(false);
  const [fullScreen, setFullScreen] = useState(false);
  const [pointerLocked, setPointerLocked] = useState(false);
  const [visible, setVisible] = useState(() => document.visibilityState === 'visible');
  /** Bumped to open the live view again (after it broke, or the signal came back). */
  const [viewKey, setViewKey] = useState(0);
  const [shotNote, setShotNote] = useState('');
  const jobRef = useRef(job);
  jobRef.current = job;
  const typePending = useRef(false);
  const viewRetry = useRef(0);
  const viewTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const stage = useRef<HTMLDivElement>(null);
  const surface = useRef<HTMLDivElement>(null);
  const picture = useRef<HTMLImageElement>(null);
  const [maxWidth] = useState(() => Math.min(1920, Math.ceil((Math.min(screen.width, 1920) * (devicePixelRatio || 1)) / 320) * 320));

  const onMessage = (m: HidOutput) => {
    if (m.t === 'state') setLeds(m.leds);
    else if (m.t === 'type') {
      typePending.current = false;
      setJob(m.job);
    } else if (m.t === 'error') {
      const d = (m.details ?? {}) as { char?: unknown; index?: unknown };
      if (typePending.current) {
        typePending.current = false;
        setRefusal({ code: m.code, message: m.message, char: typeof d.char === 'string' ? d.char : undefined, index: typeof d.index === 'number' ? d.index : undefined });
      } else setInputError({ code: m.code, message: m.message });
      // A gadget that went away shows as the notice that says what to check.
      if (m.code.startsWith('HID_')) void status.reload();
    }
  };
  // Dialled once the device has answered for its KVM (an agent without it has no socket to offer).
  const socket = useHidSocket(device.id, live && mayWrite && !!status.data, {
    onMessage,
    onOpen: () => void status.reload(),
    onDrop: () => {
      capture.current.forget();
      typePending.current = false;
      // The outcome of a text being typed is unknown now: say how far it was confirmed.
      const j = jobRef.current;
      if (j?.state === 'typing') {
        setJob(null);
        setRefusal({ code: 'CONNECTION_LOST', message: `The connection dropped while typing; ${j.typed} of ${j.total} characters were confirmed typed` });
      }
    },
  });
  const capture = useRef<Capture>(null as unknown as Capture);
  capture.current ??= new Capture({ send: socket.send, picture: () => picture.current, onStop: () => capturingEnded() });

  const s = status.data;
  useEffect(() => {
    if (s) setLeds(s.leds);
  }, [s]);

  const capturingEnded = () => {
    setCapturing(false);
    if (document.pointerLockElement) document.exitPointerLock();
  };
  const stopCapture = () => {
    capture.current.stop();
    capturingEnded();
  };
  const startCapture = () => {
    if (!mayWrite) return;
    capture.current.start();
    setCapturing(true);
  };

  // Leaving the page, hiding the browser tab or the window losing focus releases everything.
  useEffect(() => {
    const onVisibility = () => {
      setVisible(document.visibilityState === 'visible');
      if (document.visibilityState !== 'visible') stopCapture();
    };
    const onBlur = () => stopCapture();
    const onFullScreen = () => {
      const on = !!stage.current && document.fullscreenElement === stage.current;
      setFullScreen(on);
      if (on) void keyboardLock()?.lock?.().catch(() => {});
      else keyboardLock()?.unlock?.();
    };
    const onPointerLock = () => setPointerLocked(document.pointerLockElement === surface.current && !!surface.current);
    document.addEventListener('visibilitychange', onVisibility);
    document.addEventListener('fullscreenchange', onFullScreen);
    document.addEventListener('pointerlockchange', onPointerLock);
    addEventListener('blur', onBlur);
    return () => {
      document.removeEventListener('visibilitychange', onVisibility);
      document.removeEventListener('fullscreenchange', onFullScreen);
      document.removeEventListener('pointerlockchange', onPointerLock);
      removeEventListener('blur', onBlur);
      capture.current.stop();
      if (document.fullscreenElement === stage.current) void document.exitFullscreen().catch(() => {});
      keyboardLock()?.unlock?.();
    };
  }, []);

  // A screen without signal is looked at again now and then, so the view comes back by itself.
  const noSignal = s && s.screen.backend !== 'none' && !s.screen.signal;
  useEffect(() => {
    if (!noSignal || !visible) return;
    const t = setTimeout(() => void status.reload(), NO_SIGNAL_RECHECK_MS);
    return () => clearTimeout(t);
  }, [noSignal, visible, status.data, status.error]);
  const hadSignal = useRef<boolean | null>(null);
  useEffect(() => {
    if (!s) return;
    if (s.screen.signal && hadSignal.current === false) setViewKey((k) => k + 1);
    hadSignal.current = s.screen.signal;
  }, [s]);

  // The live view broke (the stream ended, the relay refused it): ask the device why, and try
  // again later with backoff if it says there is a picture to show.
  const onViewError = () => {
    void status.reload();
    clearTimeout(viewTimer.current);
    viewTimer.current = setTimeout(() => setViewKey((k) => k + 1), Math.min(30_000, 1000 * 2 ** viewRetry.current++));
  };
  useEffect(() => () => clearTimeout(viewTimer.current), []);

  const shot = useAction(async () => {
    setShotNote('');
    const saved = await saveScreenshot(device.id, device.name);
    setShotNote(saved ? 'Screenshot saved.' : 'No video signal: there is no picture to save.');
  });

  if (!live)
    return (
      <Empty title="The screen, keyboard and mouse are reached through the device, which must be online.">
        <p>
          This device is {device.status === 'approved' ? 'offline' : device.status}. Once its agent is connected the KVM appears here; <a href={tabHref(device.id, '')}>the overview</a> says
          what to check.
        </p>
      </Empty>
    );
  if (!s) return <div class="kvm">{status.error ? <LoadError error={status.error} retry={status.reload} /> : <Loading what="the KVM status from the device" />}</div>;

  const inputReady = mayWrite && socket.connection === 'open';
  const hasScreen = s.screen.backend !== 'none';
  const showView = hasScreen && s.screen.signal && visible;
  const viewUrl = devicePath(device.id, `/screen/live?fps=15&max_width=${maxWidth}`);
  const hint = !mayWrite
    ? 'View only.'
    : pointerLocked
      ? `The pointer is locked to the remote screen: press Esc to unlock it; ${RELEASE_CHORD} releases the keyboard.`
      : !capturing
        ? 'Click the screen, or focus it and press Enter, to control it; keys then go to the remote computer.'
        : fullScreen
          ? `Keys go to the remote computer. Hold Esc to leave full screen; press ${RELEASE_CHORD} to release the keyboard.`
          : `Keys go to the remote computer. Press ${RELEASE_CHORD} or click outside the screen to release the keyboard.`;

  const onKey = (e: KeyboardEvent) => {
    if (!capture.current.active) {
      if (e.type === 'keydown' && (e.key === 'Enter' || e.key === ' ') && e.target === surface.current) {
        e.preventDefault();
        startCapture();
      }
      return;
    }
    capture.current.key(e);
  };
  const onPointerDown = (e: PointerEvent) => {
    // The panels' own buttons (Check again) are clicked, not sent to the target.
    if (!mayWrite || (e.target as Element).closest('button, a')) return;
    // Without scrolling: the click's position is measured against the picture where it was clicked.
    surface.current?.focus({ preventScroll: true });
    if (!capture.current.active) startCapture();
    if (!pointerLocked) surface.current?.setPointerCapture(e.pointerId);
    capture.current.pointer(e, pointerLocked);
  };
  const lockPointer = () => {
    surface.current?.focus();
    startCapture();
    void (surface.current?.requestPointerLock() as Promise<void> | undefined)?.catch?.(() => {});
  };
  const toggleFullScreen = () => {
    if (fullScreen) void document.exitFullscreen().catch(() => {});
    else
      void stage.current?.requestFullscreen({ navigationUI: 'hide' }).then(() => {
        surface.current?.focus();
        startCapture();
      }, () => {});
  };

  return (
    <section class="kvm" aria-labelledby="kvm-title">
      <div class="section-head">
        <h2 id="kvm-title">Remote screen</h2>
        {mayWrite ? (
          <span class={`conn ${CONNECTION_CLASS[socket.connection]}`} role="status">
            <span class="dot" aria-hidden="true" />
            {CONNECTION_TEXT[socket.connection]}
          </span>
        ) : (
          <span class="badge">View only</span>
        )}
      </div>
      {!mayWrite && (
        <p class="notice">
          You may watch this screen, but not type or click on it: sending keyboard and mouse input needs the <code>hid:write</code> permission.
        </p>
      )}
      {mayWrite && <GadgetNotice status={s} />}
      {status.error && <LoadError error={status.error} retry={status.reload} />}

      <div class={`kvm-stage${fullScreen ? ' full' : ''}`} ref={stage}>
        <div class="kvm-toolbar" role="group" aria-label="Remote control">
          <Lights leds={leds} />
          {mayWrite && <Shortcuts disabled={!inputReady} onSend={(code, modifiers) => socket.send({ t: 'keystroke', code, modifiers })} />}
          <Button busy={shot.busy} busyLabel="Saving…" disabled={!hasScreen} onClick={() => void shot.run()}>
            Screenshot
          </Button>
          <Button onClick={toggleFullScreen}>{fullScreen ? 'Leave full screen' : 'Full screen'}</Button>
          {mayWrite && (
            <>
              {!pointerLocked && hasScreen && <Button onClick={lockPointer}>Lock pointer</Button>}
              {capturing ? (
                <Button aria-keyshortcuts="Control+Alt+Shift" onClick={stopCapture}>
                  Release keyboard ({RELEASE_CHORD})
                </Button>
              ) : (
                <Button
                  disabled={!inputReady}
                  onClick={() => {
                    surface.current?.focus();
                    startCapture();
                  }}
                >
                  Control keyboard
                </Button>
              )}
            </>
          )}
        </div>
        {(shot.error || shotNote) && (
          <div class="kvm-notes" aria-live="polite">
            {shot.error ? <ErrorNote error={shot.error} /> : <p class="muted">{shotNote}</p>}
          </div>
        )}
        {inputError && (
          <div class="error-note kvm-input-error" role="alert">
            <p>
              {inputError.message} <span class="code">({inputError.code})</span>
            </p>
            <button type="button" onClick={() => setInputError(null)}>
              Dismiss
            </button>
          </div>
        )}
        <div
          ref={surface}
          class={`kvm-surface${capturing ? ' capturing' : ''}${pointerLocked ? ' locked' : ''}`}
          tabIndex={mayWrite ? 0 : undefined}
          role={mayWrite ? 'application' : undefined}
          aria-roledescription={mayWrite ? 'remote screen' : undefined}
          aria-label={mayWrite ? `Remote screen — click or press Enter to control; keys go to the remote computer; press ${RELEASE_CHORD} to release` : undefined}
          aria-describedby={mayWrite ? hintId : undefined}
          onKeyDown={onKey}
          onKeyUp={onKey}
          onBlur={stopCapture}
          onPointerDown={onPointerDown}
          onPointerUp={(e) => capture.current.pointer(e, pointerLocked)}
          onPointerMove={(e) => capture.current.pointer(e, pointerLocked)}
          onWheel={(e) => capture.current.wheel(e)}
          onMouseDown={(e) => mayWrite && !(e.target as Element).closest('button, a') && e.preventDefault()}
          onContextMenu={(e) => mayWrite && e.preventDefault()}
        >
          {showView ? (
            <img
              ref={picture}
              key={viewKey}
              src={viewUrl}
              alt={`Live view of the screen of the computer attached to ${device.name}`}
              draggable={false}
              onLoad={() => (viewRetry.current = 0)}
              onError={onViewError}
            />
          ) : (
            <div class="kvm-blank">
              {!hasScreen ? (
                <div class="panel">
                  <h3>No screen capture on this device</h3>
                  <p>The agent found no capture card or desktop to show (screen backend: none). {mayWrite && 'The keyboard and mouse still work: click here to control them.'}</p>
                  {s.screen.message && <p class="muted">{s.screen.message}</p>}
                </div>
              ) : !s.screen.signal ? (
                <div class="panel">
                  <h3>No video signal from the target — check the HDMI cable</h3>
                  <p>
                    The capture device ({s.screen.backend}) sees no picture: the target may be off or asleep, or the cable unplugged. {mayWrite && 'A key press may wake it.'}
                  </p>
                  {s.screen.message && <p class="muted">{s.screen.message}</p>}
                  <Button busy={status.loading} busyLabel="Checking…" onClick={() => void status.reload()}>
                    Check again
                  </Button>
                </div>
              ) : (
                <p class="panel">The live view is paused while this browser tab is hidden.</p>
              )}
            </div>
          )}
        </div>
        <p id={hintId} class="kvm-hint">
          {hint}
        </p>
      </div>

      {mayWrite && (
        <PastePanel
          deviceId={device.id}
          canType={inputReady}
          job={job}
          refusal={refusal}
          onType={(text, layout) => {
            setRefusal(null);
            setJob(null);
            typePending.current = socket.send({ t: 'type', text, layout });
          }}
          onCancel={() => socket.send({ t: 'cancel' })}
        />
      )}
    </section>
  );
}
