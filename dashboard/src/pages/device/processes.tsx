// The device's processes, read live from it (GET …/processes, PiTunnel's process list): sortable
// by every column, busiest first, filtered by name, command or user in the page. Read when the
// tab opens or the device comes online, and on Refresh — a process list is a snapshot, and
// polling a device for one would cost it CPU for a table nobody may be reading.
//
// Users with processes:signal get a Signal menu on each row (the allow-list of
// shared/api/signals.ts, which has no zod): a signal is sent only after a confirmation that names
// the process and the signal; the agent's refusal (a protected process, one its user may not
// signal, one that is gone) is shown in its own words, and the list is read again after a signal.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Process, ProcessList } from '../../../../shared/api/device-info.ts';
import { SIGNALS, type SignalNumber } from '../../../../shared/api/signals.ts';
import type { SignalResult } from '../../../../shared/api/processes.ts';
import { ApiError, get, post } from '../../api.ts';
import { can } from '../../session.ts';
import { Empty, LoadError, Loading, Time } from '../../ui/bits.tsx';
import { formatBytes } from '../../../../shared/bytes.ts';
import { Button, ErrorNote, TextField } from '../../ui/form.tsx';
import { SortableTable, type Column } from '../../ui/table.tsx';
import { useAction, useLoad } from '../../ui/use-load.ts';
import { devicePath, tabHref, type DeviceTabProps } from './shared.ts';
import './processes.css';

const COLUMNS: Column<Process>[] = [
  { id: 'pid', header: 'PID', value: (p) => p.pid, class: 'num' },
  { id: 'name', header: 'Name', value: (p) => p.name },
  { id: 'user', header: 'User', value: (p) => p.user },
  { id: 'cpu', header: 'CPU %', value: (p) => p.cpu_percent, cell: (p) => p.cpu_percent.toFixed(1), descFirst: true, class: 'num' },
  { id: 'memory', header: 'Memory', value: (p) => p.rss, cell: (p) => `${formatBytes(p.rss)} (${p.memory_percent.toFixed(1)} %)`, descFirst: true, class: 'num' },
  { id: 'command', header: 'Command', value: (p) => p.cmdline || `[${p.name}]`, cell: (p) => <span class="cmd" title={p.cmdline}>{p.cmdline || `[${p.name}]`}</span>, class: 'command' },
];

/** What each signal does, as the menu and the confirmation say it (a Record, so a signal added to the list must be described). */
const DOES: Record<SignalNumber, string> = {
  15: 'asks it to end',
  9: 'ends it at once, with no chance to clean up',
  1: 'hangs it up; many daemons reload their configuration',
  2: 'interrupts it, as Ctrl-C does',
  3: 'quits it with a core dump',
  19: 'pauses it until it is continued',
  18: 'continues it after a pause',
  10: 'sends user-defined signal 1',
  12: 'sends user-defined signal 2',
};
/** The menu's order: what one reaches for first. */
const MENU: SignalNumber[] = [15, 9, 1, 2, 3, 19, 18, 10, 12];

interface Chosen {
  process: Process;
  signal: SignalNumber;
}

function SignalMenu({ process: p, onChoose }: { process: Process; onChoose: (chosen: Chosen, toggle: HTMLElement | null) => void }) {
  const ref = useRef<HTMLDetailsElement>(null);
  const [open, setOpen] = useState(false);
  const close = () => ref.current?.removeAttribute('open');
  useEffect(() => {
    if (!open) return;
    // A click anywhere else closes it, so one menu at a time lies over the rows.
    const away = (e: PointerEvent) => {
      if (!ref.current?.contains(e.target as Node)) close();
    };
    document.addEventListener('pointerdown', away);
    return () => document.removeEventListener('pointerdown', away);
  }, [open]);
  return (
    <details
      class="signal-menu"
      ref={ref}
      onToggle={() => setOpen(!!ref.current?.open)}
      onKeyDown={(e) => {
        // Escape closes the menu, as it would any menu, and gives focus back to its toggle.
        if (e.key === 'Escape' && ref.current?.open) {
          close();
          ref.current.querySelector('summary')?.focus();
        }
      }}
      onFocusOut={(e) => {
        // Tabbing away closes it. (A click elsewhere may move focus to nothing, as Safari's
        // buttons do not take it: that is the pointerdown listener's to judge.)
        const to = e.relatedTarget as Node | null;
        if (to && !ref.current?.contains(to)) close();
      }}
    >
      <summary aria-label={`Signal ${p.name} (${p.pid})`}>Signal</summary>
      {/* Rendered only while open: a list of hundreds of processes would otherwise carry thousands of buttons. */}
      {open && (
        <ul class="signal-menu-list" aria-label={`Signals for ${p.name} (${p.pid})`}>
          {MENU.map((s) => (
            <li key={s}>
              <button
                type="button"
                onClick={() => {
                  const toggle = ref.current?.querySelector('summary') ?? null;
                  close();
                  onChoose({ process: p, signal: s }, toggle);
                }}
              >
                <strong>{SIGNALS[s]}</strong> <span class="muted">{DOES[s]}</span>
              </button>
            </li>
          ))}
        </ul>
      )}
    </details>
  );
}

/** The confirmation: names the process and the signal; the agent's refusal stays shown in it. */
function SignalDialog({ deviceId, dialog, chosen, onSent, onGone }: {
  deviceId: string;
  dialog: { current: HTMLDialogElement | null };
  chosen: Chosen | null;
  onSent: (result: SignalResult, chosen: Chosen) => void;
  onGone: () => void;
}) {
  const send = useAction(async (c: Chosen) => {
    try {
      return await post<SignalResult>(devicePath(deviceId, `/processes/${c.process.pid}/signal`), { signal: c.signal });
    } catch (e) {
      // A process that is gone is also gone from the list: read it again behind the message.
      if (e instanceof ApiError && e.code === 'PROCESS_NOT_FOUND') onGone();
      throw e;
    }
  });
  const name = chosen ? SIGNALS[chosen.signal] : '';
  const confirm = async () => {
    if (!chosen) return;
    const result = await send.run(chosen);
    if (result) {
      dialog.current?.close();
      onSent(result, chosen);
    }
  };
  return (
    <dialog ref={dialog} aria-labelledby="signal-title" onClose={() => send.clearError()}>
      <form method="dialog" class="dialog-body">
        <h2 id="signal-title">{chosen ? `Send ${name} to ${chosen.process.name}?` : 'Send a signal'}</h2>
        {chosen && (
          <>
            <p>
              Process {chosen.process.pid}
              {chosen.process.user ? `, run by ${chosen.process.user}` : ''}:
            </p>
            <p>
              <code class="signal-cmd">{chosen.process.cmdline || `[${chosen.process.name}]`}</code>
            </p>
            <p>
              {name} ({chosen.signal}) {DOES[chosen.signal]}.
            </p>
          </>
        )}
        <ErrorNote error={send.error} />
        <div class="actions">
          <button type="submit" value="cancel">
            Cancel
          </button>
          <Button class={chosen?.signal === 18 ? 'primary' : 'danger'} busy={send.busy} busyLabel="Sending…" onClick={() => void confirm()}>
            {`Send ${name}`}
          </Button>
        </div>
      </form>
    </dialog>
  );
}

export default function Processes({ device }: DeviceTabProps) {
  const live = device.status === 'approved' && device.online;
  const maySignal = can('processes:signal');
  const [filter, setFilter] = useState('');
  const [chosen, setChosen] = useState<Chosen | null>(null);
  const [sent, setSent] = useState('');
  const dialog = useRef<HTMLDialogElement>(null);
  const list = useLoad(
    (signal) => (live ? get<ProcessList>(devicePath(device.id, '/processes'), { signal }).then((r) => ({ ...r, readAt: new Date().toISOString() })) : Promise.resolve(undefined)),
    [device.id, live],
  );
  const all = list.data?.processes;
  const shown = useMemo(() => {
    const f = filter.trim().toLowerCase();
    if (!all || !f) return all ?? [];
    return all.filter((p) => p.name.toLowerCase().includes(f) || p.cmdline.toLowerCase().includes(f) || p.user.toLowerCase().includes(f));
  }, [all, filter]);
  const columns = useMemo<Column<Process>[]>(
    () =>
      maySignal
        ? [
            ...COLUMNS,
            {
              id: 'signal',
              header: 'Signal',
              value: () => '',
              sortable: false,
              class: 'signal',
              cell: (p) => (
                <SignalMenu
                  process={p}
                  onChoose={(c, toggle) => {
                    setChosen(c);
                    setSent('');
                    // The dialog gives focus back to what had it when it opened: the row's toggle.
                    toggle?.focus();
                    dialog.current?.showModal();
                  }}
                />
              ),
            },
          ]
        : COLUMNS,
    [maySignal],
  );

  if (!live)
    return (
      <Empty title="The process list is read from the device, which must be online.">
        <p>
          This device is {device.status === 'approved' ? 'offline' : device.status}. Once its agent is connected the list appears here;{' '}
          <a href={tabHref(device.id, '')}>the overview</a> says what to check.
        </p>
      </Empty>
    );

  return (
    <section aria-labelledby="processes-title" class="processes-tab">
      <div class="section-head">
        <h2 id="processes-title">Processes</h2>
        <Button busy={list.loading} busyLabel="Reading…" onClick={() => void list.reload()}>
          Refresh
        </Button>
      </div>
      <div class="filters">
        <TextField label="Filter" type="search" value={filter} onValue={setFilter} hint="By name, command or user" autoComplete="off" spellcheck={false} />
      </div>
      <div role="status">{sent && <p class="success-note">{sent}</p>}</div>
      {list.error && <LoadError error={list.error} retry={list.reload} />}
      {all ? (
        <>
          <p class="muted" aria-live="polite">
            {shown.length === all.length ? `${all.length} processes` : `${shown.length} of ${all.length} processes`}, read <Time iso={list.data!.readAt} />.
          </p>
          <SortableTable
            class="cards processes"
            caption={`Processes on ${device.name}`}
            rows={shown}
            columns={columns}
            rowKey={(p) => String(p.pid)}
            initialSort={[{ id: 'cpu', desc: true }]}
            empty={<p class="muted">No process matches “{filter.trim()}”.</p>}
          />
        </>
      ) : (
        !list.error && <Loading what="the process list from the device" />
      )}
      {maySignal && (
        <SignalDialog
          deviceId={device.id}
          dialog={dialog}
          chosen={chosen}
          onSent={(r, c) => {
            setSent(`Sent ${r.name} to ${r.process ?? c.process.name} (${r.pid}).`);
            void list.reload();
          }}
          onGone={() => void list.reload()}
        />
      )}
    </section>
  );
}
