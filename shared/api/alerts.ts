// Alerts as users see them: the native rules (/api/v1/alert-rules), the alerts they raise, the
// notifications they send and each delivery's record, and Tyto's three routes over them
// (GET /api/v1/alerts, POST /api/v1/alerts/config, POST /api/v1/alerts/:id/acknowledge).
//
// A rule watches one metric of the devices in its scope (every device: team_id and device_id
// null, instance admins only; a team's; one device's). A threshold rule fires when the metric's
// average over `hold_seconds` reaches `warning` (or `critical`), and resolves when its average
// over `recovery_seconds` is back under the threshold it fired at: one spike does not fire it and
// a series crossing back and forth neither fires nor resolves it twice. `offline`, `process` and
// `container` rules have no threshold: they fire at `level` once the condition has held for
// `hold_seconds`. An alert names the top processes (or containers) of the sample it fired on.
import { z } from 'zod';
import { DeviceIdSchema } from './devices.ts';
import { SampleContainerSchema, SampleProcessSchema } from './metrics.ts';

export const THRESHOLD_METRICS = ['cpu', 'memory', 'disk', 'temperature', 'load'] as const;
export const PRESENCE_METRICS = ['offline', 'process', 'container'] as const;
export const ALERT_METRICS = [...THRESHOLD_METRICS, ...PRESENCE_METRICS] as const;
export type AlertMetric = (typeof ALERT_METRICS)[number];
export type ThresholdMetric = (typeof THRESHOLD_METRICS)[number];

/**
 * The series (shared/api/metrics.ts seriesOf) a threshold metric reads: cpu (total %), memory
 * (used %), disk (the fullest mount's %, or `disk:<target>` when the rule names a mount point),
 * temperature (the hottest sensor, °C), load (the 1-minute load average).
 */
export const METRIC_SERIES: Record<ThresholdMetric, string> = { cpu: 'cpu', memory: 'memory', disk: 'disk', temperature: 'temperature', load: 'load1' };

export const ALERT_LEVELS = ['warning', 'critical'] as const;
export const AlertLevelSchema = z.enum(ALERT_LEVELS);
export type AlertLevel = z.infer<typeof AlertLevelSchema>;

const Url = z.url({ protocol: /^https?$/, message: 'an http(s) URL' }).max(2048);

/**
 * Where a rule's notifications go. Every format is a POST with a body of that service's own:
 * `webhook` our JSON (AlertNotificationSchema), `slack` a Slack-compatible incoming webhook
 * ({text, blocks}), `discord` a Discord webhook ({content, embeds}), `ntfy` a topic URL (the
 * message as the body, Title/Priority/Tags headers, an optional access token), `telegram` the
 * Bot API's sendMessage (`api_url` only for a self-hosted Bot API server). URLs and tokens are
 * secrets: sealed at rest, never returned (a channel comes back as its type and host).
 */
export const ChannelSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('webhook'), url: Url, headers: z.record(z.string().regex(/^[A-Za-z0-9-]{1,64}$/), z.string().max(1024)).optional() }).strict(),
  z.object({ type: z.literal('slack'), url: Url }).strict(),
  z.object({ type: z.literal('discord'), url: Url }).strict(),
  z.object({ type: z.literal('ntfy'), url: Url, token: z.string().min(1).max(512).optional(), priority: z.number().int().min(1).max(5).optional() }).strict(),
  z.object({ type: z.literal('telegram'), bot_token: z.string().regex(/^\d{1,20}:[A-Za-z0-9_-]{20,100}$/, 'a bot token as BotFather gives it'), chat_id: z.string().min(1).max(64), api_url: Url.optional() }).strict(),
]);
export type Channel = z.infer<typeof ChannelSchema>;
export const CHANNEL_TYPES = ['webhook', 'slack', 'discord', 'ntfy', 'telegram'] as const;
export type ChannelType = (typeof CHANNEL_TYPES)[number];

/** A channel as the API shows it: never its URL's path or token. */
export const ChannelViewSchema = z.object({ type: z.enum(CHANNEL_TYPES), host: z.string() });
export type ChannelView = z.infer<typeof ChannelViewSchema>;

/** Quiet hours: no notification is sent between `start` and `end` (HH:MM, in `timezone`); what would have been sent goes out when they end, if the alert still fires. */
export const QuietHoursSchema = z
  .object({
    start: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM'),
    end: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM'),
    timezone: z.string().min(1).max(64).default('UTC'),
  })
  .strict();
export type QuietHours = z.infer<typeof QuietHoursSchema>;

export const MAX_CHANNELS = 5;
export const MAX_HOLD_SECONDS = 86_400;

/** A rule's fields, without defaults (AlertRulePatchSchema leaves out what it keeps). */
const ruleFields = {
  name: z.string().trim().min(1).max(100),
  metric: z.enum(ALERT_METRICS),
  /** A mount point for disk, a process name for process, a container name for container; else absent. */
  target: z.string().min(1).max(256).optional(),
  warning: z.number().finite().min(0).max(1e6).optional(),
  critical: z.number().finite().min(0).max(1e6).optional(),
  /** The level of an offline, process or container rule. */
  level: AlertLevelSchema.optional(),
  hold_seconds: z.number().int().min(0).max(MAX_HOLD_SECONDS),
  recovery_seconds: z.number().int().min(0).max(MAX_HOLD_SECONDS).optional(),
  team_id: z.string().min(1).max(64).nullable().optional(),
  device_id: DeviceIdSchema.nullable().optional(),
  enabled: z.boolean(),
  channels: z.array(ChannelSchema).max(MAX_CHANNELS),
  /** While the alert fires unacknowledged, notify again this often; absent: once. */
  resend_minutes: z.number().int().min(1).max(10_080).optional(),
  /** At most this many notifications per alert (the first included). */
  resend_cap: z.number().int().min(1).max(100),
  quiet_hours: QuietHoursSchema.nullable().optional(),
};

export const AlertRuleInputSchema = z
  .object({
    ...ruleFields,
    hold_seconds: ruleFields.hold_seconds.default(300),
    enabled: ruleFields.enabled.default(true),
    channels: ruleFields.channels.default([]),
    resend_cap: ruleFields.resend_cap.default(5),
  })
  .strict()
  .superRefine((r, ctx) => {
    const threshold = (THRESHOLD_METRICS as readonly string[]).includes(r.metric);
    if (threshold && r.warning === undefined && r.critical === undefined) ctx.addIssue({ code: 'custom', path: ['warning'], message: `a ${r.metric} rule needs warning, critical or both` });
    if (threshold && r.warning !== undefined && r.critical !== undefined && r.critical < r.warning) ctx.addIssue({ code: 'custom', path: ['critical'], message: 'critical must not be under warning' });
    if (!threshold && (r.warning !== undefined || r.critical !== undefined)) ctx.addIssue({ code: 'custom', path: ['warning'], message: `a ${r.metric} rule has a level, not thresholds` });
    if ((r.metric === 'process' || r.metric === 'container') && !r.target) ctx.addIssue({ code: 'custom', path: ['target'], message: `a ${r.metric} rule names the ${r.metric} to look for in target` });
    if (r.target !== undefined && !['disk', 'process', 'container'].includes(r.metric)) ctx.addIssue({ code: 'custom', path: ['target'], message: 'only disk, process and container rules take a target' });
    if (r.metric === 'disk' && r.target !== undefined && !r.target.startsWith('/')) ctx.addIssue({ code: 'custom', path: ['target'], message: 'a disk rule targets a mount point such as /home' });
  });
export type AlertRuleInput = z.infer<typeof AlertRuleInputSchema>;

/**
 * PATCH /api/v1/alert-rules/{id}: any of the fields; what is left out is kept. The merged rule
 * is checked again with AlertRuleInputSchema (its cross-field checks); `null` clears
 * recovery_seconds (back to the hold), resend_minutes, quiet_hours, target and the thresholds.
 */
export const AlertRulePatchSchema = z
  .object({
    ...ruleFields,
    target: ruleFields.target.nullable(),
    warning: ruleFields.warning.nullable(),
    critical: ruleFields.critical.nullable(),
    level: ruleFields.level.nullable(),
    recovery_seconds: ruleFields.recovery_seconds.nullable(),
    resend_minutes: ruleFields.resend_minutes.nullable(),
  })
  .partial()
  .strict();
export type AlertRulePatch = z.infer<typeof AlertRulePatchSchema>;

export const AlertRuleSchema = z.object({
  id: z.string(),
  name: z.string(),
  metric: z.enum(ALERT_METRICS),
  target: z.string().nullable(),
  warning: z.number().nullable(),
  critical: z.number().nullable(),
  level: AlertLevelSchema.nullable(),
  hold_seconds: z.number().int(),
  recovery_seconds: z.number().int(),
  team_id: z.string().nullable(),
  device_id: z.string().nullable(),
  enabled: z.boolean(),
  channels: z.array(ChannelViewSchema),
  resend_minutes: z.number().int().nullable(),
  resend_cap: z.number().int(),
  quiet_hours: QuietHoursSchema.nullable(),
  created_at: z.string(),
  updated_at: z.string().nullable(),
});
export type AlertRule = z.infer<typeof AlertRuleSchema>;

/** What caused an alert: the top processes (or containers) of the sample it fired on. */
export const AlertCauseSchema = z.object({
  processes: z.array(SampleProcessSchema).max(5).optional(),
  containers: z.array(SampleContainerSchema).max(5).optional(),
});
export type AlertCause = z.infer<typeof AlertCauseSchema>;

export const ALERT_STATES = ['firing', 'resolved'] as const;

/** Tyto's alert, plus ours: the rule, the state, when it resolved and who acknowledged it, the cause and a sentence. */
export const AlertSchema = z.object({
  id: z.string(),
  type: z.enum(ALERT_METRICS),
  level: AlertLevelSchema,
  value: z.number().nullable(),
  threshold: z.number().nullable(),
  agent_id: z.string(),
  created_at: z.string(),
  acknowledged: z.boolean(),
  rule_id: z.string(),
  team_id: z.string(),
  state: z.enum(ALERT_STATES),
  resolved_at: z.string().nullable(),
  acknowledged_at: z.string().nullable(),
  acknowledged_by: z.string().nullable(),
  message: z.string(),
  cause: AlertCauseSchema,
});
export type Alert = z.infer<typeof AlertSchema>;

/** Tyto's config: warning/critical per metric, as the relay-wide rules hold them. */
export const ThresholdPairSchema = z.object({ warning: z.number().finite().min(0).max(1e6), critical: z.number().finite().min(0).max(1e6) }).strict().refine((t) => t.critical >= t.warning, { message: 'critical must not be under warning', path: ['critical'] });
export const AlertConfigSchema = z.partialRecord(z.enum(THRESHOLD_METRICS), ThresholdPairSchema).refine((c) => Object.keys(c).length > 0, 'name at least one of cpu, memory, disk, temperature, load');
export type AlertConfig = z.infer<typeof AlertConfigSchema>;

export const TytoAlertsSchema = z.object({ alerts: z.array(AlertSchema), config: z.record(z.string(), z.object({ warning: z.number().nullable(), critical: z.number().nullable() })) });

export const DELIVERY_EVENTS = ['fired', 'escalated', 'resolved', 'resent', 'test'] as const;
export type DeliveryEvent = (typeof DELIVERY_EVENTS)[number];
/** pending: to be tried (again) at next_attempt_at; delivered: a 2xx; given_up: every retry failed; suppressed: held by quiet hours, then dropped because the alert no longer fired. */
export const DELIVERY_STATUSES = ['pending', 'delivered', 'given_up', 'suppressed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];
/** Attempts per delivery (the first included), with backoff between them: 10 s, 30 s, 90 s, 270 s. */
export const DELIVERY_ATTEMPTS = 5;

export const DeliverySchema = z.object({
  id: z.string(),
  alert_id: z.string().nullable(),
  rule_id: z.string().nullable(),
  channel: ChannelViewSchema,
  event: z.enum(DELIVERY_EVENTS),
  status: z.enum(DELIVERY_STATUSES),
  attempts: z.number().int(),
  response_status: z.number().int().nullable(),
  error: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string().nullable(),
  next_attempt_at: z.string().nullable(),
});
export type Delivery = z.infer<typeof DeliverySchema>;

/** The body of a generic webhook notification. */
export const AlertNotificationSchema = z.object({
  event: z.enum(DELIVERY_EVENTS),
  alert: AlertSchema.nullable(),
  rule: z.object({ id: z.string(), name: z.string() }).nullable(),
  device: z.object({ id: z.string(), name: z.string() }).nullable(),
  text: z.string(),
  sent_at: z.string(),
});
export type AlertNotification = z.infer<typeof AlertNotificationSchema>;
