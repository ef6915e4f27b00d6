// One rule's notifications: each delivery's record (GET /api/v1/alert-deliveries?rule_id=…) — the
// event it told of, the channel (type and host: the API never shows more of one), its status,
// attempts, the target's response status and the error of the last attempt — and "Send test
// notification" (POST /api/v1/alert-rules/{id}/test, alerts:write), which sends one to each of the
// rule's channels and shows each outcome as the relay recorded it. While a delivery waits for a
// retry, the list is read again after its next attempt is due.
import type { RefObject } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { get, post, query } from '../../api.ts';
import { can } from '../../session.ts';
import { Empty, LoadError, Loading, Time } from '../../ui/bits.tsx';
import { Button, ErrorNote, SelectField } from '../../ui/form.tsx';
import { SortableTable, type Column } from '../../ui/table.tsx';
import { useAction, useLoad } from '../../ui/use-load.ts';
import type { AlertRule, Delivery, DeliveryStatus } from '../../../../shared/api/alerts.ts';

/** One page of GET /api/v1/alert-deliveries (shared/api/alert-deliveries.ts DeliveryPageSchema): newest first, `total` matching. */
interface DeliveryPage {
  deliveries: Delivery[];
  total: number;
  limit: number;
  offset: number;
}
import { DELIVERY_STATUS } from './format.ts';

const RETRY_REREAD_MIN_MS = 30_000;
/** After a retry's time, how long until its outcome is likely recorded. */
const RETRY_SLACK_MS = 3_000;

const statusLabel = (s: DeliveryStatus) => DELIVERY_STATUS[s] ?? s;

function DeliveryBadge({ status }: { status: DeliveryStatus }) {
  return (
    <span class={`badge badge-${status}`}>
      <span class="dot" aria-hidden="true" />
      {statusLabel(status)}
    </span>
  );
}

function Outcome({ d }: { d: Delivery }) {
  return (
    <li>
      <DeliveryBadge status={d.status} /> {d.channel.type} ({d.channel.host})
      {d.response_status !== null && <> · HTTP {d.response_status}</>}
      {d.error && <> · {d.error}</>}
      {d.status === 'pending' && d.next_attempt_at && (
        <>
          {' '}
          · tried {d.attempts} {d.attempts === 1 ? 'time' : 'times'}, again <Time iso={d.next_attempt_at} />
        </>
      )}
    </li>
  );
}

export function RuleDeliveries({ rule, status, setStatus, headingRef, onClose }: {
  rule: AlertRule;
  status: string;
  setStatus: (s: string) => void;
  headingRef: RefObject<HTMLHeadingElement | null>;
  onClose: () => void;
}) {
  const path = `/api/v1/alert-deliveries${query({ rule_id: rule.id, status })}`;
  const list = useLoad((signal) => get<DeliveryPage>(path, { signal }), [path]);
  // Older pages are appended (the API pages by offset, newest first); a filter change starts over.
  const older = useAction(async () => {
    const have = list.data?.deliveries.length ?? 0;
    const r = await get<DeliveryPage>(`/api/v1/alert-deliveries${query({ rule_id: rule.id, status, offset: have })}`);
    list.set((old) => (old && old.deliveries.length === have ? { ...r, deliveries: [...old.deliveries, ...r.deliveries] } : old));
  });
  // A pending delivery is tried again at its next_attempt_at: read the list again a little after the
  // earliest one (not sooner than 30 s from now, so a run of retries is never a fast poll).
  const nextAttempt = Math.min(...(list.data?.deliveries ?? []).filter((d) => d.status === 'pending' && d.next_attempt_at).map((d) => Date.parse(d.next_attempt_at!)));
  useEffect(() => {
    if (!Number.isFinite(nextAttempt)) return;
    const t = setTimeout(() => void list.reload(), Math.max(RETRY_REREAD_MIN_MS, nextAttempt - Date.now() + RETRY_SLACK_MS));
    return () => clearTimeout(t);
  }, [nextAttempt, list.reload]);

  // The last test's outcome, as the relay answered it (the list below also gains its records).
  const [tested, setTested] = useState<Delivery[] | null>(null);
  const test = useAction(async () => {
    setTested(null);
    const r = await post<{ deliveries: Delivery[] }>(`/api/v1/alert-rules/${encodeURIComponent(rule.id)}/test`);
    setTested(r.deliveries);
    await list.reload();
  });

  const columns: Column<Delivery>[] = [
    { id: 'when', header: 'When', value: (d) => d.created_at, descFirst: true, cell: (d) => <Time iso={d.created_at} /> },
    { id: 'event', header: 'Event', value: (d) => d.event },
    { id: 'channel', header: 'Channel', value: (d) => `${d.channel.type} ${d.channel.host}`, cell: (d) => <span class="channel-view">{d.channel.type} ({d.channel.host})</span> },
    { id: 'status', header: 'Status', value: (d) => d.status, cell: (d) => <DeliveryBadge status={d.status} /> },
    { id: 'attempts', header: 'Attempts', value: (d) => d.attempts, class: 'num' },
    { id: 'response', header: 'Response', value: (d) => d.response_status ?? '', cell: (d) => (d.response_status === null ? <span class="muted">—</span> : `HTTP ${d.response_status}`) },
    {
      id: 'error',
      header: 'Error',
      value: (d) => d.error ?? '',
      class: 'delivery-error',
      cell: (d) =>
        d.error ? (
          d.error
        ) : d.status === 'pending' && d.next_attempt_at ? (
          <span class="muted">
            next attempt <Time iso={d.next_attempt_at} />
          </span>
        ) : (
          <span class="muted">—</span>
        ),
    },
  ];

  return (
    <section class="panel rule-deliveries" aria-labelledby="deliveries-title">
      <h2 id="deliveries-title" ref={headingRef} tabIndex={-1}>
        Notifications of {rule.name}
      </h2>
      <p class="muted">
        {rule.channels.length ? `Sent to ${rule.channels.map((c) => `${c.type} (${c.host})`).join(', ')}.` : 'This rule has no channels: its alerts show on this page only.'} Each
        notification is tried up to 5 times, with longer waits between attempts.
      </p>
      {can('alerts:write') && (
        <div class="test-notification">
          <Button busy={test.busy} busyLabel="Sending…" disabled={!rule.channels.length} onClick={() => void test.run()}>
            Send test notification
          </Button>
          <ErrorNote error={test.error} />
          <div role="status" class="test-outcome">
            {tested && (
              <>
                <p>Test notification:</p>
                <ul>
                  {tested.map((d) => (
                    <Outcome key={d.id} d={d} />
                  ))}
                </ul>
              </>
            )}
          </div>
        </div>
      )}
      <div class="filters">
        <SelectField
          label="Status"
          value={status}
          options={[{ value: '', label: 'Any status' }, ...(Object.keys(DELIVERY_STATUS) as DeliveryStatus[]).map((s) => ({ value: s, label: statusLabel(s) }))]}
          onValue={setStatus}
        />
      </div>
      {list.error ? (
        <LoadError error={list.error} retry={list.reload} />
      ) : !list.data ? (
        <Loading what="deliveries" />
      ) : list.data.deliveries.length === 0 ? (
        <Empty title={status ? 'No deliveries with this status.' : 'Nothing sent yet.'} />
      ) : (
        <>
          <SortableTable rows={list.data.deliveries} columns={columns} rowKey={(d) => d.id} caption={`Notifications of ${rule.name}`} class="cards deliveries-table" />
          <p class="muted">
            {list.data.deliveries.length} of {list.data.total}, newest first.
          </p>
          {list.data.deliveries.length < list.data.total && (
            <Button busy={older.busy} busyLabel="Loading…" onClick={() => void older.run()}>
              Load older deliveries
            </Button>
          )}
          <ErrorNote error={older.error} />
        </>
      )}
      <div class="actions">
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </section>
  );
}
