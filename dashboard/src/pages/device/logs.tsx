// The device's Logs tab: the log lines the relay stored for it (GET …/devices/:id/logs), newest
// first, searched (full text) and filtered by level, source, source name and time, and the live
// tail from the relay's log stream (GET /api/v1/logs/stream, Server-Sent Events) with the same
// filters. The filters are the API's own query parameters and live in the page's URL, so a view
// can be linked and reloaded; the API checks them and its message shows beside the field it
// names. Stored lines stay readable while the device is offline. Older lines are read by offset
// ("Load older"), and rows are matched by id, so lines that arrive meanwhile (which push the
// offsets down) are never shown twice.
import { useEffect, useRef, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import type { LogEntry, LogLevel, LogPage, LogSource } from '../../../../shared/api/logs.ts';
import { get, query, redialDelay, type ApiError } from '../../api.ts';
import { Empty, LoadError, Loading } from '../../ui/bits.tsx';
import { Button, ErrorNote, SelectField, TextField } from '../../ui/form.tsx';
import { fromLocalInput, toLocalInput } from '../../ui/local-time.ts';
import { useAction, useLoad } from '../../ui/use-load.ts';
import { devicePath, tabHref, type DeviceTabProps } from './shared.ts';
import './logs.css';

/**
 * The levels in the order the picker offers them, the common ones first. A Record, so the compiler
 * holds it to LogLevel (shared/protocol/logs.ts's LOG_LEVELS, in a zod module the page may not import).
 */
const LEVEL_ORDER: Record<LogLevel, number> = { error: 0, warning: 1, info: 2, debug: 3, notice: 4, critical: 5, alert: 6, emergency: 7 };
const LEVELS = (Object.keys(LEVEL_ORDER) as LogLevel[]).sort((a, b) => LEVEL_ORDER[a] - LEVEL_ORDER[b]);
/** The levels that mean something is wrong (their badge is drawn as such). */
const SEVERE = new Set<LogLevel>(['emergency', 'alert', 'critical', 'error']);

const SOURCES: Record<LogSource, string> = { journal: 'Journal', file: 'File', docker: 'Docker' };

/** The time ranges offered, as `range` in the page's URL; a relative one is counted back from each read. */
const RANGES: Record<string, { label: string; ms?: number }> = {
  '': { label: 'Any time' },
  '15m': { label: 'Last 15 minutes', ms: 15 * 60_000 },
  '1h': { label: 'Last hour', ms: 3_600_000 },
  '24h': { label: 'Last 24 hours', ms: 86_400_000 },
  '7d': { label: 'Last 7 days', ms: 7 * 86_400_000 },
  custom: { label: 'Custom…' },
};

/** Lines read per page, and the most kept on the page while the live tail adds to it. */
const PAGE_SIZE = 100;
const MAX_ROWS = 1000;
/** A message longer than this shows its start and a button for the rest. */
const LONG_MESSAGE = 600;
/** What the agent puts at the end of a cut message (shared/protocol/logs.ts LOG_TRUNCATED_MARKER, then N and "bytes]"). */
const TRUNCATED = /… \[truncated (\d+) bytes\]$/;

/** The view in the page's URL: the API's filters (from/to only with range=custom) and whether the tail is live. */
interface View {
  q: string;
  level: string;
  source: string;
  source_name: string;
  range: string;
  from: string;
  to: string;
  live: boolean;
}

function viewOf(q: Record<string, string>): View {
  const range = q.range ?? '';
  const custom = range === 'custom';
  return {
    q: q.q ?? '',
    level: q.level ?? '',
    source: q.source ?? '',
    source_name: q.source_name ?? '',
    range,
    from: custom ? (q.from ?? '') : '',
    to: custom ? (q.to ?? '') : '',
    live: q.live === '1',
  };
}

const urlOf = (deviceId: string, v: View) =>
  tabHref(deviceId, 'logs') + query({ q: v.q, level: v.level, source: v.source, source_name: v.source_name, range: v.range, from: v.from, to: v.to, live: v.live ? '1' : '' });

/** What selects lines, as the API takes it; a relative range is counted back from now. */
function filtersOf(v: View, now: number) {
  const back = RANGES[v.range]?.ms;
  return {
    q: v.q,
    level: v.level,
    source: v.source,
    source_name: v.source_name,
    from: back ? new Date(now - back).toISOString() : v.from,
    to: v.to,
  };
}

const seqOf = (e: LogEntry) => Number(e.id.slice(e.id.lastIndexOf(':') + 1)) || 0;

/** `rows` and `more` as one list, each line once (by id), newest first. */
function merge(rows: LogEntry[], more: LogEntry[]): LogEntry[] {
  const byId = new Map(rows.map((e) => [e.id, e]));
  for (const e of more) byId.set(e.id, e);
  return [...byId.values()].sort((a, b) => (a.timestamp === b.timestamp ? seqOf(b) - seqOf(a) : a.timestamp < b.timestamp ? 1 : -1));
}

type Tail = 'connecting' | 'live' | 'reconnecting';

/**
 * Follows the log stream at `url` while it is set. A dropped connection is the browser's to redial,
 * with Last-Event-ID, and the relay first resends the lines that followed it; if the relay refused
 * the stream instead (EventSource then gives up), a new one is opened after a backoff, resuming
 * with last_event_id. When the relay could not resend everything (`event: gap`: more than it
 * replays, or lines no longer kept), `onGap` reads the newest page to fill what it could.
 */
function useTail(url: string | undefined, onLines: (lines: LogEntry[]) => void, onGap: () => void): Tail {
  const [state, setState] = useState<Tail>('connecting');
  const handlers = useRef({ onLines, onGap });
  handlers.current = { onLines, onGap };
  useEffect(() => {
    if (!url) return;
    let source: EventSource | undefined;
    let redial: ReturnType<typeof setTimeout> | undefined;
    let flush: ReturnType<typeof setTimeout> | undefined;
    let attempt = 0;
    let lastId = '';
    // Lines come in bursts (a batch from the device is up to 500): draw them ten times a second, not one by one.
    let pending: LogEntry[] = [];
    const open = () => {
      const es = (source = new EventSource(lastId ? `${url}&last_event_id=${encodeURIComponent(lastId)}` : url));
      es.onopen = () => {
        setState('live');
        attempt = 0;
      };
      es.addEventListener('log', (ev) => {
        const m = ev as MessageEvent<string>;
        try {
          pending.push(JSON.parse(m.data) as LogEntry);
        } catch {
          return;
        }
        if (m.lastEventId) lastId = m.lastEventId;
        flush ??= setTimeout(() => {
          flush = undefined;
          const lines = pending;
          pending = [];
          handlers.current.onLines(lines);
        }, 100);
      });
      es.addEventListener('gap', () => handlers.current.onGap());
      es.onerror = () => {
        setState('reconnecting');
        if (es.readyState !== EventSource.CLOSED) return;
        // A refusal may be the session's end: asking who we are lets the app show "session expired".
        void get('/api/v1/auth/me').catch(() => {});
        redial = setTimeout(open, redialDelay(attempt++, 1000, 30_000));
      };
    };
    setState('connecting');
    open();
    return () => {
      clearTimeout(redial);
      clearTimeout(flush);
      source?.close();
    };
  }, [url]);
  return state;
}

export default function LogsTab({ device }: DeviceTabProps) {
  const { query: q, route } = useLocation();
  const view = viewOf(q);
  const go = (next: Partial<View>, replace = false) => route(urlOf(device.id, { ...view, ...next }), replace);
  // What selects the stored lines (the live switch aside): a new one is a new read.
  const key = urlOf(device.id, { ...view, live: false });
  /** The API's URL of `limit` lines of this view from `offset` (0 = the newest). */
  const pageUrl = (limit: number, offset = 0) => devicePath(device.id, '/logs') + query({ ...filtersOf(view, Date.now()), limit, offset: offset || undefined });

  const page = useLoad((signal) => get<LogPage>(pageUrl(PAGE_SIZE), { signal }), [key]);
  const current = useRef(key);
  current.current = key;

  const older = useAction(async () => {
    const asked = key;
    const shown = page.data?.entries.length ?? 0;
    let r = await get<LogPage>(pageUrl(PAGE_SIZE, shown));
    // Lines arrived (or went) since the rows were read, so the offsets moved: a page by offset would
    // repeat some and never reach the new ones. Read the rows and the next page again, as one.
    if (r.total !== page.data?.total && shown + PAGE_SIZE <= MAX_ROWS) r = await get<LogPage>(pageUrl(shown + PAGE_SIZE));
    if (current.current !== asked) return;
    page.set((old) => (old ? { entries: merge(old.entries, r.entries), total: r.total } : r));
  });

  // The live tail: new lines go on top, the oldest go once MAX_ROWS are shown (Load older reads them again).
  const added = (old: LogPage | undefined, lines: LogEntry[]): LogPage | undefined => {
    if (!old) return old;
    const entries = merge(old.entries, lines);
    const fresh = entries.length - old.entries.length;
    return { entries: entries.slice(0, MAX_ROWS), total: old.total + fresh };
  };
  // A range with an end has no new lines to show.
  const canTail = !view.to;
  const invalid = page.error?.code === 'VALIDATION_ERROR' ? page.error : undefined;
  // Filters the API refused would be refused by the stream too.
  const streamUrl =
    view.live && canTail && !invalid
      ? `/api/v1/logs/stream${query({ agent_id: device.id, q: view.q, level: view.level, source: view.source, source_name: view.source_name })}`
      : undefined;
  const tail = useTail(
    streamUrl,
    (lines) => page.set((old) => added(old, lines)),
    () =>
      void get<LogPage>(pageUrl(PAGE_SIZE))
        .then((r) => page.set((old) => added(old, r.entries)))
        .catch(() => {}),
  );

  // The rows of the last view read stay while a new one loads, but not beside its error.
  const data = page.error ? undefined : page.data;
  const filtered = Boolean(view.q || view.level || view.source || view.source_name || view.range);
  const live = Boolean(streamUrl);

  return (
    <section aria-labelledby="logs-title" class="logs">
      <div class="section-head">
        <h2 id="logs-title">Logs</h2>
        <div class="actions">
          {live && (
            <span class={`conn conn-${tail}`} role="status">
              <span class="dot" aria-hidden="true" />
              {tail === 'live' ? 'Live: new lines appear at the top' : tail === 'connecting' ? 'Connecting to the live tail…' : 'Live tail interrupted, reconnecting…'}
            </span>
          )}
          <button type="button" aria-pressed={live} disabled={!canTail} onClick={() => go({ live: !view.live }, true)} class={live ? 'primary' : undefined}>
            Live
          </button>
          {!live && (
            <Button busy={page.loading} busyLabel="Reading…" onClick={() => void page.reload()}>
              Refresh
            </Button>
          )}
        </div>
      </div>
      {!canTail && <p class="hint">Live is off while the time range has an end: clear “To” to follow new lines.</p>}

      {!(device.status === 'approved' && device.online) && (
        <div class="notice">
          <p>
            This device is {device.status === 'approved' ? 'offline' : device.status}. The lines it sent before are here; lines written meanwhile are kept on the device and arrive when it
            connects again.
          </p>
        </div>
      )}

      <FilterForm deviceId={device.id} view={view} invalid={invalid} filtered={filtered} onApply={(next) => go(next)} />

      {page.error && !invalid && <LoadError error={page.error} retry={page.reload} />}
      {!data ? (
        !page.error && <Loading what="the log lines" />
      ) : data.entries.length === 0 ? (
        invalid ? null : filtered ? (
          <Empty title="No lines match.">
            <p>Widen the time range, tick more levels or change the search.</p>
            <a href={tabHref(device.id, 'logs') + (view.live ? '?live=1' : '')}>Clear the filters</a>
          </Empty>
        ) : (
          <Empty title="No log lines are stored for this device yet.">
            <p>
              Its agent sends the systemd journal when there is one, and the files it was started with (<code>--log-file PATH=NAME</code>). Lines appear here once they
              arrive{live ? '' : '; switch Live on to watch for them'}.
            </p>
          </Empty>
        )
      ) : (
        <>
          <p class="muted logs-count" aria-live={live ? 'off' : 'polite'}>
            {data.entries.length === data.total
              ? `${count(data.total)}${filtered ? (data.total === 1 ? ' matches' : ' match') : ''}.`
              : `The newest ${data.entries.length.toLocaleString()} of ${count(data.total)}${filtered ? ' that match' : ''}.`}
            {live && data.entries.length >= MAX_ROWS && ` At most ${MAX_ROWS.toLocaleString()} are kept on the page while live.`}
          </p>
          <div class="table-wrap">
            <table class="cards log-table" aria-busy={page.loading ? true : undefined}>
              <caption class="visually-hidden">Log lines of {device.name}, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Level</th>
                  <th scope="col">Source</th>
                  <th scope="col">Message</th>
                </tr>
              </thead>
              <tbody>
                {data.entries.map((e) => (
                  <Line key={e.id} e={e} narrow={urlOf(device.id, { ...view, source: e.source, source_name: e.source_name })} />
                ))}
              </tbody>
            </table>
          </div>
          {data.entries.length < data.total && (
            <div class="actions logs-more">
              <Button busy={older.busy} busyLabel="Loading…" onClick={() => void older.run()}>
                Load older
              </Button>
            </div>
          )}
          <ErrorNote error={older.error} />
        </>
      )}
    </section>
  );
}

const count = (n: number) => (n === 1 ? 'One line' : `${n.toLocaleString()} lines`);

function Line({ e, narrow }: { e: LogEntry; narrow: string }) {
  const [whole, setWhole] = useState(false);
  const cut = TRUNCATED.exec(e.message);
  const text = cut ? e.message.slice(0, cut.index) : e.message;
  const long = text.length > LONG_MESSAGE;
  const when = new Date(e.timestamp);
  const fields = Object.entries(e.fields ?? {});
  return (
    <tr class={cut ? 'log-cut' : undefined}>
      <td data-label="Time" class="log-time">
        <time dateTime={e.timestamp}>{when.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' })}</time>
      </td>
      <td data-label="Level">
        <span class={`badge log-level log-${e.level}${SEVERE.has(e.level) ? ' log-severe' : ''}`}>
          <span class="dot" aria-hidden="true" />
          {e.level}
        </span>
      </td>
      <td data-label="Source" class="log-source">
        <a href={narrow} aria-label={`Show only lines from ${e.source_name} (${e.source})`}>
          {e.source_name}
        </a>
        <span class="muted log-source-kind"> {SOURCES[e.source] ?? e.source}</span>
      </td>
      <td data-label="Message" class="log-message">
        <div>
          <span class="log-text">{long && !whole ? `${text.slice(0, LONG_MESSAGE)}…` : text}</span>
          {cut && (
            <span class="badge log-truncated">
              truncated: {Number(cut[1]).toLocaleString()} more bytes were not kept
            </span>
          )}
          {long && (
            <button type="button" class="link log-expand" aria-expanded={whole} onClick={() => setWhole(!whole)}>
              {whole ? 'Show less' : `Show all ${text.length.toLocaleString()} characters`}
            </button>
          )}
          {fields.length > 0 && (
            <details class="log-fields">
              <summary>
                Fields<span class="visually-hidden"> of the line at {when.toLocaleString()}</span>
              </summary>
              <dl>
                {fields.map(([k, v]) => (
                  <div key={k}>
                    <dt>{k}</dt>
                    <dd>{v}</dd>
                  </div>
                ))}
              </dl>
            </details>
          )}
        </div>
      </td>
    </tr>
  );
}

function FilterForm({ deviceId, view, invalid, filtered, onApply }: {
  deviceId: string;
  view: View;
  invalid: ApiError | undefined;
  filtered: boolean;
  onApply: (next: Partial<View>) => void;
}) {
  // The text fields are applied on submit; the choices (levels, source, range) as they change.
  const [text, setText] = useState({ q: view.q, source_name: view.source_name, from: toLocalInput(view.from), to: toLocalInput(view.to) });
  const [custom, setCustom] = useState(view.range === 'custom');
  const [noLevel, setNoLevel] = useState(false);
  useEffect(() => {
    setText({ q: view.q, source_name: view.source_name, from: toLocalInput(view.from), to: toLocalInput(view.to) });
    setCustom(view.range === 'custom');
  }, [view.q, view.source_name, view.from, view.to, view.range]);
  const typed = (): Partial<View> => ({
    q: text.q.trim(),
    source_name: text.source_name.trim(),
    ...(custom ? { range: 'custom', from: fromLocalInput(text.from) ?? '', to: fromLocalInput(text.to) ?? '' } : {}),
  });
  const err = (k: string) => invalid?.forField(k);

  const ticked = new Set<string>(view.level ? view.level.split(',') : LEVELS);
  const tick = (level: LogLevel, on: boolean) => {
    const next = LEVELS.filter((l) => (l === level ? on : ticked.has(l)));
    // No level at all would match nothing: say so rather than ask.
    if (next.length === 0) return setNoLevel(true);
    setNoLevel(false);
    onApply({ ...typed(), level: next.length === LEVELS.length ? '' : next.join(',') });
  };
  const levelError = noLevel ? 'Tick at least one level.' : err('level');
  const withCurrent = (options: { value: string; label: string }[], current: string) =>
    current && !options.some((o) => o.value === current) ? [...options, { value: current, label: current }] : options;

  return (
    <form
      class="panel log-filters"
      aria-label="Filter the log lines"
      onSubmit={(e) => {
        e.preventDefault();
        onApply(typed());
      }}
    >
      <div class="log-search">
        <TextField
          label="Search"
          type="search"
          value={text.q}
          onValue={(v) => setText((t) => ({ ...t, q: v }))}
          hint={'Words in the message (all of them); "a phrase" in quotes'}
          autoComplete="off"
          spellcheck={false}
          error={err('q')}
        />
        <Button type="submit" class="primary">
          Search
        </Button>
      </div>
      <fieldset class="log-levels" aria-describedby={levelError ? 'log-levels-error' : undefined}>
        <legend>Levels</legend>
        <div class="log-level-checks">
          {LEVELS.map((l) => (
            <label key={l} class="log-level-check">
              <input type="checkbox" checked={ticked.has(l)} onChange={(e) => tick(l, (e.currentTarget as HTMLInputElement).checked)} />
              {l}
            </label>
          ))}
        </div>
        {levelError && (
          <p class="field-error" id="log-levels-error" role="alert">
            {levelError}
          </p>
        )}
      </fieldset>
      <div class="filters">
        <SelectField
          label="Source"
          value={view.source}
          onValue={(v) => onApply({ ...typed(), source: v })}
          options={withCurrent([{ value: '', label: 'Any source' }, ...(Object.keys(SOURCES) as LogSource[]).map((s) => ({ value: s, label: SOURCES[s] }))], view.source)}
          error={err('source')}
        />
        <TextField
          label="Source name"
          value={text.source_name}
          onValue={(v) => setText((t) => ({ ...t, source_name: v }))}
          hint="A unit (ssh.service) or a file's name"
          autoComplete="off"
          spellcheck={false}
          error={err('source_name')}
        />
        <SelectField
          label="Time range"
          value={custom ? 'custom' : view.range}
          onValue={(v) => {
            // A custom range needs its times first: it is applied with them.
            if (v === 'custom') return setCustom(true);
            setCustom(false);
            onApply({ ...typed(), range: v, from: '', to: '' });
          }}
          options={withCurrent(Object.entries(RANGES).map(([value, r]) => ({ value, label: r.label })), view.range)}
        />
        {custom && (
          <>
            <TextField label="From" type="datetime-local" value={text.from} onValue={(v) => setText((t) => ({ ...t, from: v }))} hint="At or after, your local time" error={err('from')} />
            <TextField label="To" type="datetime-local" value={text.to} onValue={(v) => setText((t) => ({ ...t, to: v }))} hint="At or before" error={err('to')} />
          </>
        )}
      </div>
      <ErrorNote error={invalid} fields={['q', 'level', 'source', 'source_name', 'from', 'to']} />
      <div class="actions">
        {custom && (
          <Button type="submit" class="primary">
            Apply the range
          </Button>
        )}
        {filtered && <a href={tabHref(deviceId, 'logs') + (view.live ? '?live=1' : '')}>Clear the filters</a>}
      </div>
    </form>
  );
}
