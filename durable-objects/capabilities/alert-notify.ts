// Notifications of alerts, in each supported format: the request a channel (shared/api/alerts.ts
// ChannelSchema) gets for a notification (a generic webhook's JSON, Slack's and Discord's webhook
// bodies, ntfy's message with its headers, Telegram's sendMessage), and one attempt at sending it,
// with a deadline, reporting the status or the error. Used by the device hubs' deliveries
// (alert-deliveries.ts) and by the Worker's test-notification routes, so both send exactly the
// same requests and refuse the same targets.
//
// A channel's URL and token are secrets: nothing here puts them in an error text (a target is
// named by its host only, and whatever the target answers is scrubbed of them), and the text of a
// notification is escaped for each format, so a device or rule named "@everyone" or "<!channel>"
// pings nobody.
import { ChannelSchema, type Alert, type AlertLevel, type AlertNotification, type Channel, type ChannelView, type DeliveryEvent } from '../../shared/api/alerts.ts';
import { alertRulePlace, open, type SecretKeys } from '../../shared/secret-box.ts';

export interface ChannelRequest {
  url: string;
  init: RequestInit & { method: 'POST'; headers: Record<string, string>; body: string };
}

export const TELEGRAM_API = 'https://api.telegram.org';
/** How long one attempt may take: a target that hangs must not hold the hub (or a test request) for long. */
export const ATTEMPT_TIMEOUT_MS = 10_000;
const USER_AGENT = 'pirelay-alerts';
/** Bytes of a target's answer read for the error text; the rest is dropped unread. */
const ANSWER_BYTES = 2048;
/** Characters of a target's answer kept in a delivery's error. */
const ANSWER_CHARS = 200;

// ---------------------------------------------------------------------------------------------
// What a notification says

/** What a notification is about, as the hub (or the test route) knows it. */
export interface NotificationInput {
  event: DeliveryEvent;
  alert: Alert | null;
  rule: { id: string; name: string } | null;
  device: { id: string; name: string } | null;
  now: number;
}

const UNITS: Record<string, string> = { cpu: ' %', memory: ' %', disk: ' %', temperature: ' °C', load: '' };

function num(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) >= 10 ? 1 : 2);
}

function mib(bytes: number): string {
  return `${Math.round(bytes / 1048576)} MiB`;
}

/** The parts every format arranges its own way (plain text; each format escapes it). */
interface Parts {
  /** e.g. "CRITICAL: High CPU on pi-kitchen" */
  title: string;
  /** e.g. "cpu is 97.5 % (critical at 90 %)" */
  summary: string;
  /** The cause: one line per top process or container. */
  cause: string[];
  /** What the cause lines are: "Top processes", "Top containers" or both. */
  causeLabel: string;
  level: AlertLevel | null;
}

function partsOf(n: AlertNotification): Parts {
  const a = n.alert;
  const device = n.device?.name ?? a?.agent_id ?? 'a device';
  const rule = n.rule?.name ?? 'an alert rule';
  if (n.event === 'test' || !a) {
    return { title: `Test: ${rule}`, summary: `A test notification from pirelay for the rule "${rule}"${n.device ? ` on ${device}` : ''}. This channel works.`, cause: [], causeLabel: '', level: null };
  }
  const unit = UNITS[a.type] ?? '';
  const what =
    a.type === 'offline'
      ? `${device} is offline`
      : a.type === 'process' || a.type === 'container'
        ? `${a.message}`
        : a.value !== null && a.threshold !== null
          ? `${a.type} is ${num(a.value)}${unit} (${a.level} at ${num(a.threshold)}${unit})`
          : a.message;
  const label = n.event === 'resolved' ? 'RESOLVED' : a.level.toUpperCase();
  const verb = n.event === 'escalated' ? ' (escalated)' : n.event === 'resent' ? ' (still firing)' : '';
  const summary = n.event === 'resolved' ? `Resolved: ${a.type === 'offline' ? `${device} is back online` : a.threshold !== null ? `${a.type} is back under ${num(a.threshold)}${unit}` : `${a.type} is back`}. It fired: ${what}.` : `${what}${verb}.`;
  const cause = [
    ...(a.cause.processes ?? []).map((p) => `${p.name} (pid ${p.pid}): ${num(p.cpu)} % CPU, ${mib(p.memory)}`),
    ...(a.cause.containers ?? []).map((c) => `${c.name} (${c.status}): ${num(c.cpu)} % CPU, ${mib(c.memory)}`),
  ];
  const kinds = [a.cause.processes?.length ? 'processes' : null, a.cause.containers?.length ? 'containers' : null].filter(Boolean);
  const causeLabel = `Top ${kinds.join(' and ')} when it fired`;
  return { title: `${label}: ${rule} on ${device}`, summary, cause, causeLabel, level: n.event === 'resolved' ? null : a.level };
}

/** The plain text of a notification: title, summary and the cause's top processes, one per line. */
export function notificationText(n: Omit<AlertNotification, 'text'>): string {
  const p = partsOf({ ...n, text: '' });
  const cause = p.cause.length ? [`${p.causeLabel}:`, ...p.cause.map((c) => `- ${c}`)] : [];
  return [p.title, p.summary, ...cause].join('\n');
}

/** The notification (the generic webhook's body, AlertNotificationSchema) of an event. */
export function notification(i: NotificationInput): AlertNotification {
  const n = { event: i.event, alert: i.alert, rule: i.rule, device: i.device, sent_at: new Date(i.now).toISOString() };
  return { ...n, text: notificationText(n) };
}

// ---------------------------------------------------------------------------------------------
// Formats

function clamp(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/** Slack's mrkdwn: &, < and > are its control characters (links, <!channel>). */
const slackEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
/** Telegram's HTML parse mode needs exactly these escaped. */
const htmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const DISCORD_COLORS = { critical: 0xd93025, warning: 0xf9a825, resolved: 0x2e7d32, test: 0x1e88e5 } as const;
const NTFY_TAGS = { critical: 'rotating_light', warning: 'warning', resolved: 'white_check_mark', test: 'test_tube' } as const;
const NTFY_PRIORITY = { critical: 5, warning: 4, resolved: 3, test: 3 } as const;

function tone(n: AlertNotification, p: Parts): keyof typeof DISCORD_COLORS {
  return n.event === 'test' ? 'test' : n.event === 'resolved' ? 'resolved' : (p.level ?? 'warning');
}

/** A header value as HTTP carries it: ASCII as is, anything else as RFC 2047 UTF-8 (ntfy decodes it). */
function headerText(s: string): string {
  const flat = s.replace(/[\r\n]+/g, ' ');
  if (/^[\x20-\x7e]*$/.test(flat)) return flat;
  let bin = '';
  for (const b of new TextEncoder().encode(flat)) bin += String.fromCharCode(b);
  return `=?UTF-8?B?${btoa(bin)}?=`;
}

const jsonPost = (url: string, body: unknown, headers: Record<string, string> = {}): ChannelRequest => ({
  url,
  init: { method: 'POST', headers: { ...headers, 'content-type': 'application/json', 'user-agent': USER_AGENT }, body: JSON.stringify(body) },
});

/** The request `channel` gets for `n`. */
export function channelRequest(channel: Channel, n: AlertNotification): ChannelRequest {
  const p = partsOf(n);
  switch (channel.type) {
    case 'webhook':
      return jsonPost(channel.url, n, channel.headers);
    case 'slack': {
      // Slack: a section's text is at most 3,000 characters; `text` is the fallback for notifications.
      const cause = p.cause.length ? `\n*${p.causeLabel}:*\n${p.cause.map((c) => `• ${slackEscape(c)}`).join('\n')}` : '';
      const body = clamp(`*${slackEscape(p.title)}*\n${slackEscape(p.summary)}${cause}`, 3000);
      return jsonPost(channel.url, {
        text: clamp(slackEscape(`${p.title}: ${p.summary}`), 3000),
        blocks: [
          { type: 'section', text: { type: 'mrkdwn', text: body } },
          { type: 'context', elements: [{ type: 'mrkdwn', text: `pirelay · ${n.sent_at}` }] },
        ],
      });
    }
    case 'discord': {
      // Discord: content ≤ 2,000; an embed's title ≤ 256, description ≤ 4,096, a field's value ≤ 1,024, 6,000 in all
      // (so the description stops at 3,000: title, description and three fields stay under 6,000).
      const fields = [
        ...(n.device ? [{ name: 'Device', value: clamp(n.device.name, 1024), inline: true }] : []),
        ...(n.alert ? [{ name: 'Level', value: n.event === 'resolved' ? 'resolved' : n.alert.level, inline: true }] : []),
        ...(p.cause.length ? [{ name: p.causeLabel, value: clamp(p.cause.join('\n'), 1024), inline: false }] : []),
      ];
      return jsonPost(channel.url, {
        content: clamp(p.title, 2000),
        embeds: [{ title: clamp(p.title, 256), description: clamp(p.summary, 3000), color: DISCORD_COLORS[tone(n, p)], fields, timestamp: n.sent_at }],
        // A device named "@everyone" must not ping anyone.
        allowed_mentions: { parse: [] },
      });
    }
    case 'ntfy': {
      const t = tone(n, p);
      const priority = t === 'resolved' || t === 'test' ? NTFY_PRIORITY[t] : (channel.priority ?? NTFY_PRIORITY[t]);
      const headers: Record<string, string> = {
        'content-type': 'text/plain; charset=utf-8',
        'user-agent': USER_AGENT,
        title: headerText(clamp(p.title, 250)),
        priority: String(priority),
        tags: NTFY_TAGS[t],
      };
      if (channel.token) headers.authorization = `Bearer ${channel.token}`;
      return { url: channel.url, init: { method: 'POST', headers, body: notificationText(n) } };
    }
    case 'telegram': {
      // Telegram counts the text's 1–4,096 characters after parsing the HTML, so the clamp is on the plain parts.
      const cause = p.cause.length ? `\n<b>${p.causeLabel}:</b>\n${p.cause.map((c) => `• ${htmlEscape(clamp(c, 300))}`).join('\n')}` : '';
      const text = `<b>${htmlEscape(clamp(p.title, 300))}</b>\n${htmlEscape(clamp(p.summary, 2000))}${cause}`;
      const base = (channel.api_url ?? TELEGRAM_API).replace(/\/+$/, '');
      return jsonPost(`${base}/bot${channel.bot_token}/sendMessage`, { chat_id: channel.chat_id, text, parse_mode: 'HTML', disable_web_page_preview: true });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Targets

/** The host a channel sends to: all the API ever shows of it. */
export function channelHost(channel: Channel): string {
  return new URL(channel.type === 'telegram' ? (channel.api_url ?? TELEGRAM_API) : channel.url).host;
}

export function channelView(channel: Channel): ChannelView {
  return { type: channel.type, host: channelHost(channel) };
}

function privateIPv4(host: string): boolean {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(host);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a === 0 || a === 10 || a === 127 || (a === 100 && b >= 64 && b <= 127) || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || a >= 224;
}

function privateIPv6(host: string): boolean {
  if (!host.startsWith('[')) return false;
  const h = host.slice(1, -1).toLowerCase();
  if (h === '::' || h === '::1') return true;
  // IPv4-mapped (the URL parser writes ::ffff:127.0.0.1 as ::ffff:7f00:1).
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(h);
  if (mapped) {
    const hi = parseInt(mapped[1]!, 16);
    const lo = parseInt(mapped[2]!, 16);
    return privateIPv4(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`);
  }
  return /^f[cd]/.test(h) || /^fe[89ab]/.test(h) || /^ff/.test(h);
}

const LOCAL_NAMES = /(^|\.)(localhost|local|internal|home\.arpa)\.?$/i;

/**
 * Why a notification may not go to `url`, or null when it may. Without `allowPrivate`, loopback,
 * private, link-local and multicast addresses and local-only names are refused: on Cloudflare a
 * Worker cannot reach them anyway, but a relay run locally (`npm start`) can, and a rule or a
 * test notification would make it fetch them for whoever may write rules. The URL parser has
 * already normalised disguised forms (0x7f.1, 2130706433). A public name that resolves to a
 * private address is not caught here: Workers have no resolver to ask.
 */
export function targetRefusal(url: string, allowPrivate: boolean): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'not a URL';
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return 'only http and https targets';
  if (u.username || u.password) return 'credentials in the URL are not allowed (use a header or a token)';
  if (allowPrivate) return null;
  const host = u.hostname;
  if (LOCAL_NAMES.test(host) || privateIPv4(host) || privateIPv6(host)) return `${host} is a local or private address (a relay sends notifications to public hosts only, unless ALERT_ALLOW_PRIVATE_TARGETS is "true")`;
  return null;
}

/** The URL a channel's notifications go to. */
export function channelUrl(channel: Channel): string {
  return channel.type === 'telegram' ? (channel.api_url ?? TELEGRAM_API) : channel.url;
}

/** Whether this relay may send to private addresses (env ALERT_ALLOW_PRIVATE_TARGETS, set by local demos and tests). */
export function allowsPrivateTargets(env: { ALERT_ALLOW_PRIVATE_TARGETS?: string }): boolean {
  return env.ALERT_ALLOW_PRIVATE_TARGETS === 'true';
}

/** A rule's channels, opened (place alert-rule:<id>); throws SecretBoxError when they do not open. */
export async function openRuleChannels(keys: SecretKeys, ruleId: string, sealed: string | null): Promise<Channel[]> {
  if (!sealed) return [];
  const parsed = ChannelSchema.array().safeParse(JSON.parse(await open(keys, sealed, alertRulePlace(ruleId))));
  if (!parsed.success) throw new Error("a rule's channels did not parse after opening");
  return parsed.data;
}

// ---------------------------------------------------------------------------------------------
// One attempt

export interface AttemptResult {
  ok: boolean;
  status: number | null;
  error: string | null;
  /** Worth trying again: no answer, a timeout, 408, 425, 429 or a 5xx. A redirect or another 4xx will not change by retrying. */
  retry: boolean;
}

/** The secret parts of a request: its URL, path and query, and every header value we did not set ourselves. */
function secretsOf(req: ChannelRequest): string[] {
  const u = new URL(req.url);
  const own = new Set(['content-type', 'user-agent', 'title', 'priority', 'tags']);
  const headers = Object.entries(req.init.headers)
    .filter(([k]) => !own.has(k.toLowerCase()))
    .flatMap(([, v]) => [v, v.replace(/^Bearer /, '')]);
  return [req.url, `${u.pathname}${u.search}`, u.pathname, ...u.pathname.split('/'), u.search, ...headers].filter((s) => s.length >= 6).sort((a, b) => b.length - a.length);
}

/** `text` without the request's secrets and with every URL cut to its host. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('***');
  return out.replace(/\b(https?:\/\/[^\s/"'<>]+)[^\s"'<>]*/gi, '$1/…');
}

async function answerText(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < ANSWER_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  const all = new Uint8Array(Math.min(size, ANSWER_BYTES));
  let at = 0;
  for (const c of chunks) {
    const part = c.subarray(0, all.length - at);
    all.set(part, at);
    at += part.length;
    if (at >= all.length) break;
  }
  return new TextDecoder().decode(all).replace(/\s+/g, ' ').trim();
}

/**
 * One attempt; never throws. A 2xx is delivered. Redirects are not followed (a webhook that
 * moved is misconfigured, and following one could lead the relay anywhere). At most
 * ANSWER_BYTES of the answer are read, all within `timeoutMs`.
 */
export async function attempt(req: ChannelRequest, timeoutMs = ATTEMPT_TIMEOUT_MS, opts: { allowPrivate?: boolean } = {}): Promise<AttemptResult> {
  const secrets = secretsOf(req);
  let host: string;
  try {
    host = new URL(req.url).host;
  } catch {
    return { ok: false, status: null, error: 'the channel has no valid URL', retry: false };
  }
  const refused = targetRefusal(req.url, opts.allowPrivate ?? false);
  if (refused) return { ok: false, status: null, error: `refused: ${refused}`, retry: false };
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const res = await fetch(req.url, { ...req.init, redirect: 'manual', signal });
    const status = res.status;
    if (status >= 200 && status < 300) {
      await res.body?.cancel().catch(() => {});
      return { ok: true, status, error: null, retry: false };
    }
    if (status >= 300 && status < 400) {
      await res.body?.cancel().catch(() => {});
      let to = 'elsewhere';
      try {
        to = new URL(res.headers.get('location') ?? '', req.url).host || to;
      } catch {
        // no usable Location: "elsewhere"
      }
      return { ok: false, status, error: `${host} redirected (${status}) to ${to}; redirects are not followed: update the channel's URL`, retry: false };
    }
    const answer = clamp(scrub(await answerText(res).catch(() => ''), secrets), ANSWER_CHARS);
    const retry = status === 408 || status === 425 || status === 429 || status >= 500;
    return { ok: false, status, error: `${host} answered ${status}${answer ? `: ${answer}` : ''}`, retry };
  } catch (e) {
    if (signal.aborted) return { ok: false, status: null, error: `no answer from ${host} within ${Math.round(timeoutMs / 1000)} s`, retry: true };
    const why = clamp(scrub(e instanceof Error ? e.message : String(e), secrets), ANSWER_CHARS);
    return { ok: false, status: null, error: `could not reach ${host}: ${why}`, retry: true };
  }
}
