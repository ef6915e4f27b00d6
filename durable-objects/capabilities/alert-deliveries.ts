// The notifications of this device's alerts, sent by its hub: each is one D1 `alert_deliveries`
// row per channel of the rule (the record the API shows), and one entry in this hub's own SQLite
// queue (what is left to do, so the hub never has to search D1 for its work). Attempts run on the
// hub's ALERT_NOTIFY deadline, with backoff (10 s, 30 s, 90 s, 270 s: DELIVERY_ATTEMPTS in all);
// while an alert fires unacknowledged it is notified again every resend_minutes, up to the rule's
// resend_cap; quiet hours hold a notification until they end, and drop it then (`suppressed`) if
// there is nothing left to say. D1 writes stay bounded: one insert per delivery, one update per
// attempt (or per suppression); nothing else.
import { DELIVERY_ATTEMPTS, type Alert, type AlertNotification, type ChannelView, type DeliveryEvent, type DeliveryStatus, type QuietHours } from '../../shared/api/alerts.ts';
import type { AlertRuleRow } from '../../shared/db/schema.ts';
import { ATTEMPT_TIMEOUT_MS, allowsPrivateTargets, attempt as sendOnce, channelRequest, notification, openRuleChannels, type AttemptResult, type ChannelRequest } from './alert-notify.ts';
import { ALERT_NOTIFY } from './alerts.ts';
import type { HubContext } from './types.ts';

/** Waits before the 2nd, 3rd, 4th and 5th attempt. */
export const BACKOFF_MS = [10_000, 30_000, 90_000, 270_000] as const;
/** Queue entries attempted per run (in parallel); the rest wait for the next run, due at once. */
const RUN_BATCH = 20;

export type Sender = (req: ChannelRequest, timeoutMs: number, opts: { allowPrivate: boolean }) => Promise<AttemptResult>;

interface Notice {
  alert_id: string;
  rule_id: string;
  firing: number;
  acknowledged: number;
  /** Notifications enqueued for the alert, resolved ones left out: what resend_cap counts. */
  notices: number;
  /** 1 once any of its notifications was delivered (a resolved is worth sending then). */
  delivered: number;
  next_resend_at: number | null;
  resend_minutes: number | null;
  resend_cap: number;
  quiet_hours: string | null;
  alert: string;
  rule_name: string;
  device_name: string;
}

interface Queued {
  id: string;
  alert_id: string;
  rule_id: string;
  channel_index: number;
  event: DeliveryEvent;
  attempts: number;
  due: number;
  held: number;
}

const ready = new WeakSet<DurableObjectStorage>();

function sql(hub: HubContext): SqlStorage {
  const storage = hub.state.storage;
  if (!ready.has(storage)) {
    storage.sql.exec(`CREATE TABLE IF NOT EXISTS alert_notices (
      alert_id TEXT PRIMARY KEY, rule_id TEXT NOT NULL, firing INTEGER NOT NULL, acknowledged INTEGER NOT NULL,
      notices INTEGER NOT NULL, delivered INTEGER NOT NULL, next_resend_at INTEGER, resend_minutes INTEGER,
      resend_cap INTEGER NOT NULL, quiet_hours TEXT, alert TEXT NOT NULL, rule_name TEXT NOT NULL, device_name TEXT NOT NULL)`);
    storage.sql.exec(`CREATE TABLE IF NOT EXISTS alert_queue (
      id TEXT PRIMARY KEY, alert_id TEXT NOT NULL, rule_id TEXT NOT NULL, channel_index INTEGER NOT NULL,
      event TEXT NOT NULL, attempts INTEGER NOT NULL, due INTEGER NOT NULL, held INTEGER NOT NULL)`);
    storage.sql.exec('CREATE INDEX IF NOT EXISTS alert_queue_due ON alert_queue (due)');
    ready.add(storage);
  }
  return storage.sql;
}

const MINUTE = 60_000;
const DAY_MINUTES = 1440;

function minutesOf(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number);
  return h! * 60 + m!;
}

/** The minute of the day at `now` in `timezone` (UTC if the name is unknown). */
function localMinute(now: number, timezone: string): number {
  let f: Intl.DateTimeFormat;
  try {
    f = new Intl.DateTimeFormat('en-GB', { timeZone: timezone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  } catch {
    f = new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  }
  const parts = Object.fromEntries(f.formatToParts(new Date(now)).map((p) => [p.type, p.value]));
  return Number(parts.hour) * 60 + Number(parts.minute);
}

/**
 * When the quiet hours holding `now` end, or null when they do not hold. start = end means none;
 * start > end crosses midnight (22:00–07:00). Across a daylight-saving change the end found may
 * still be quiet for an hour: whoever waits for it checks again then.
 */
export function quietUntil(q: QuietHours | null, now: number): number | null {
  if (!q) return null;
  const s = minutesOf(q.start);
  const e = minutesOf(q.end);
  if (s === e) return null;
  const m = localMinute(now, q.timezone);
  const quiet = s < e ? m >= s && m < e : m >= s || m < e;
  if (!quiet) return null;
  return now - (now % MINUTE) + ((e - m + DAY_MINUTES) % DAY_MINUTES) * MINUTE;
}

function parseQuiet(text: string | null): QuietHours | null {
  return text ? (JSON.parse(text) as QuietHours) : null;
}

export class AlertDeliveries {
  /** The run in progress per hub: a second run waits for it, so no delivery is attempted twice at once. */
  private readonly running = new WeakMap<DurableObjectStorage, Promise<void>>();

  constructor(private readonly send: Sender = sendOnce) {}

  /** An alert fired, escalated or resolved: a delivery per channel of its rule, unless the cap is reached. */
  async enqueue(hub: HubContext, n: { event: 'fired' | 'escalated' | 'resolved'; alert: Alert; rule: AlertRuleRow; deviceName: string }, now = Date.now()): Promise<void> {
    const db = sql(hub);
    const { alert, rule } = n;
    db.exec(
      `INSERT INTO alert_notices (alert_id, rule_id, firing, acknowledged, notices, delivered, next_resend_at, resend_minutes, resend_cap, quiet_hours, alert, rule_name, device_name)
       VALUES (?1, ?2, ?3, ?4, 0, 0, NULL, ?5, ?6, ?7, ?8, ?9, ?10)
       ON CONFLICT (alert_id) DO UPDATE SET firing = ?3, acknowledged = MAX(acknowledged, ?4), resend_minutes = ?5, resend_cap = ?6, quiet_hours = ?7, alert = ?8, rule_name = ?9, device_name = ?10`,
      alert.id,
      rule.id,
      n.event === 'resolved' ? 0 : 1,
      alert.acknowledged ? 1 : 0,
      rule.resendMinutes,
      rule.resendCap,
      rule.quietHours ? JSON.stringify(rule.quietHours) : null,
      JSON.stringify(alert),
      rule.name,
      n.deviceName,
    );
    if (n.event === 'resolved') db.exec('UPDATE alert_notices SET next_resend_at = NULL WHERE alert_id = ?', alert.id);
    await this.create(hub, alert.id, n.event, rule.channelViews, now);
  }

  /** Deadline ALERT_NOTIFY: resends what is due, attempts what is due, and sets the next deadline. */
  async run(hub: HubContext, now = Date.now()): Promise<void> {
    const storage = hub.state.storage;
    const next = (this.running.get(storage) ?? Promise.resolve()).then(() => this.runOnce(hub, now));
    const settled = next.catch(() => {});
    this.running.set(storage, settled);
    try {
      await next;
    } finally {
      if (this.running.get(storage) === settled) this.running.delete(storage);
    }
  }

  private async runOnce(hub: HubContext, now: number): Promise<void> {
    const db = sql(hub);
    await this.resend(hub, now);
    const due = db.exec<Queued & Record<string, SqlStorageValue>>('SELECT * FROM alert_queue WHERE due <= ? ORDER BY due LIMIT ?', now, RUN_BATCH).toArray();
    const rules = new Map<string, Promise<RuleChannels>>();
    await Promise.all(
      due.map(async (q) => {
        if (!rules.has(q.rule_id)) rules.set(q.rule_id, ruleChannels(hub, q.rule_id));
        await this.deliver(hub, q, await rules.get(q.rule_id)!, now);
      }),
    );
    // Resolved alerts with nothing left to send are done with.
    db.exec('DELETE FROM alert_notices WHERE firing = 0 AND alert_id NOT IN (SELECT alert_id FROM alert_queue)');
    await this.schedule(hub, now);
  }

  /** An alert was acknowledged: no more resends for it. */
  async acknowledged(hub: HubContext, alertId: string): Promise<void> {
    sql(hub).exec('UPDATE alert_notices SET acknowledged = 1, next_resend_at = NULL WHERE alert_id = ?', alertId);
  }

  /** One D1 row per channel (one batch), one queue entry each; held until quiet hours end if they hold. */
  private async create(hub: HubContext, alertId: string, event: DeliveryEvent, views: ChannelView[], now: number): Promise<void> {
    const db = sql(hub);
    const notice = db.exec<Notice & Record<string, SqlStorageValue>>('SELECT * FROM alert_notices WHERE alert_id = ?', alertId).one();
    if (!views.length) return;
    if (event !== 'resolved') {
      if (notice.notices >= notice.resend_cap) return;
      db.exec('UPDATE alert_notices SET notices = notices + 1 WHERE alert_id = ?', alertId);
    }
    const alert = JSON.parse(notice.alert) as Alert;
    const until = quietUntil(parseQuiet(notice.quiet_hours), now);
    const due = until ?? now;
    const error = until === null ? null : `held by quiet hours until ${new Date(until).toISOString()}`;
    const ids = views.map(() => crypto.randomUUID());
    await hub.env.DB.batch(
      views.map((view, i) =>
        hub.env.DB.prepare(
          `INSERT INTO alert_deliveries (id, alert_id, rule_id, team_id, channel_index, channel, event, status, attempts, response_status, error, created_at, updated_at, next_attempt_at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', 0, NULL, ?8, ?9, NULL, ?10)`,
        ).bind(ids[i], alertId, notice.rule_id, alert.team_id, i, JSON.stringify(view), event, error, now, due),
      ),
    );
    for (const [i, id] of ids.entries()) {
      db.exec('INSERT INTO alert_queue (id, alert_id, rule_id, channel_index, event, attempts, due, held) VALUES (?, ?, ?, ?, ?, 0, ?, ?)', id, alertId, notice.rule_id, i, event, due, until === null ? 0 : 1);
    }
    const current = await hub.when(ALERT_NOTIFY);
    if (current === null || current > due) await hub.at(ALERT_NOTIFY, due);
  }

  /** Firing, unacknowledged alerts whose resend is due: a `resent` notification each (quiet hours postpone it). */
  private async resend(hub: HubContext, now: number): Promise<void> {
    const db = sql(hub);
    const due = db.exec<Notice & Record<string, SqlStorageValue>>('SELECT * FROM alert_notices WHERE firing = 1 AND acknowledged = 0 AND next_resend_at IS NOT NULL AND next_resend_at <= ?', now).toArray();
    for (const notice of due) {
      const until = quietUntil(parseQuiet(notice.quiet_hours), now);
      if (until !== null) {
        db.exec('UPDATE alert_notices SET next_resend_at = ? WHERE alert_id = ?', until, notice.alert_id);
        continue;
      }
      db.exec('UPDATE alert_notices SET next_resend_at = NULL WHERE alert_id = ?', notice.alert_id);
      if (notice.notices >= notice.resend_cap) continue;
      const views = (await ruleChannels(hub, notice.rule_id)).views;
      await this.create(hub, notice.alert_id, 'resent', views, now);
    }
  }

  private async deliver(hub: HubContext, q: Queued, rule: RuleChannels, now: number): Promise<void> {
    const db = sql(hub);
    const notice = db.exec<Notice & Record<string, SqlStorageValue>>('SELECT * FROM alert_notices WHERE alert_id = ?', q.alert_id).toArray()[0];
    if (!notice || rule.gone) {
      // The rule (and so, by cascade, its D1 deliveries) is gone: nothing to record.
      db.exec('DELETE FROM alert_queue WHERE id = ?', q.id);
      return;
    }
    if (q.held) {
      const until = quietUntil(parseQuiet(notice.quiet_hours), now);
      if (until !== null) {
        // Still quiet (a daylight-saving change, or the rule's quiet hours changed): wait again.
        db.exec('UPDATE alert_queue SET due = ? WHERE id = ?', until, q.id);
        return;
      }
      // A firing notification goes out if the alert still fires; a resolved one if anyone heard it fire.
      const worth = q.event === 'resolved' ? notice.delivered === 1 : notice.firing === 1;
      if (!worth) {
        db.exec('DELETE FROM alert_queue WHERE id = ?', q.id);
        await record(hub, q.id, 'suppressed', q.attempts, null, 'held by quiet hours; by their end the alert had resolved', null, now);
        return;
      }
    }
    const channel = rule.channels?.[q.channel_index];
    let result: AttemptResult;
    if (rule.error) result = { ok: false, status: null, error: rule.error, retry: true };
    else if (!channel) result = { ok: false, status: null, error: 'the rule no longer has this channel', retry: false };
    else {
      const n: AlertNotification = notification({ event: q.event, alert: JSON.parse(notice.alert) as Alert, rule: { id: notice.rule_id, name: notice.rule_name }, device: { id: hub.deviceId, name: notice.device_name }, now });
      result = await this.send(channelRequest(channel, n), ATTEMPT_TIMEOUT_MS, { allowPrivate: allowsPrivateTargets(hub.env) });
    }
    const attempts = q.attempts + 1;
    const done = result.ok || !result.retry || attempts >= DELIVERY_ATTEMPTS;
    const status: DeliveryStatus = result.ok ? 'delivered' : done ? 'given_up' : 'pending';
    const next = done ? null : now + BACKOFF_MS[attempts - 1]!;
    if (done) db.exec('DELETE FROM alert_queue WHERE id = ?', q.id);
    else db.exec('UPDATE alert_queue SET attempts = ?, due = ?, held = 0 WHERE id = ?', attempts, next, q.id);
    if (result.ok) db.exec('UPDATE alert_notices SET delivered = 1 WHERE alert_id = ?', q.alert_id);
    // The resend interval runs from the first attempt of each firing notification.
    if (attempts === 1 && q.event !== 'resolved' && notice.resend_minutes && notice.firing && !notice.acknowledged) {
      db.exec('UPDATE alert_notices SET next_resend_at = ? WHERE alert_id = ? AND (next_resend_at IS NULL OR next_resend_at <= ?)', now + notice.resend_minutes * MINUTE, q.alert_id, now);
    }
    await record(hub, q.id, status, attempts, result.status, result.error, next, now);
  }

  /** The next ALERT_NOTIFY: the earliest queue entry or resend. */
  private async schedule(hub: HubContext, now: number): Promise<void> {
    const db = sql(hub);
    const next = db
      .exec<{ at: number | null }>(
        `SELECT MIN(at) AS at FROM (SELECT MIN(due) AS at FROM alert_queue
         UNION ALL SELECT MIN(next_resend_at) FROM alert_notices WHERE firing = 1 AND acknowledged = 0)`,
      )
      .one().at;
    if (next === null) return;
    // A deadline at or before now is the one being handled (the scheduler clears it first; a caller outside it may not have).
    const current = await hub.when(ALERT_NOTIFY);
    if (current === null || current > next || current <= now) await hub.at(ALERT_NOTIFY, Math.max(next, now));
  }
}

interface RuleChannels {
  channels: Awaited<ReturnType<typeof openRuleChannels>> | null;
  views: ChannelView[];
  /** Why the channels could not be opened (retried: the key may come back). */
  error: string | null;
  gone: boolean;
}

/** The rule's channels as they are now in D1 (a channel fixed after a failure is used on the next attempt). */
async function ruleChannels(hub: HubContext, ruleId: string): Promise<RuleChannels> {
  const row = await hub.env.DB.prepare('SELECT channels_sealed, channel_views FROM alert_rules WHERE id = ?').bind(ruleId).first<{ channels_sealed: string | null; channel_views: string }>();
  if (!row) return { channels: null, views: [], error: null, gone: true };
  const views = JSON.parse(row.channel_views) as ChannelView[];
  try {
    return { channels: await openRuleChannels(hub.env, ruleId, row.channels_sealed), views, error: null, gone: false };
  } catch (e) {
    return { channels: null, views, error: `the rule's channels could not be opened: ${e instanceof Error ? e.message : 'unknown'}`, gone: false };
  }
}

/** The one D1 update of an attempt (or a suppression). */
async function record(hub: HubContext, id: string, status: DeliveryStatus, attempts: number, responseStatus: number | null, error: string | null, next: number | null, now: number): Promise<void> {
  await hub.env.DB.prepare('UPDATE alert_deliveries SET status = ?2, attempts = ?3, response_status = ?4, error = ?5, updated_at = ?6, next_attempt_at = ?7 WHERE id = ?1')
    .bind(id, status, attempts, responseStatus, error, now, next)
    .run();
}
