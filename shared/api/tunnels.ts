// The tunnels API as clients see it: what a tunnel is called, where it points on the device, who
// may use it, and the Tunnel the relay answers with. Plain zod, so the CLI (`pirelay tcp`), the
// dashboard and the Worker share one rule for names and targets; the parsing helpers here use
// web-standard APIs only.
import { z } from 'zod';
import { TUNNEL_KINDS } from '../protocol/tunnels.ts';
import { PasswordSchema } from './auth.ts';

export { TUNNEL_KINDS };
export const TUNNEL_ACCESS_MODES = ['public', 'basic', 'bearer', 'pirelay'] as const;
export type TunnelKind = (typeof TUNNEL_KINDS)[number];
export type TunnelAccessMode = (typeof TUNNEL_ACCESS_MODES)[number];

/** One DNS label, lower case: the name is the subdomain `<name>.<TUNNEL_DOMAIN>`. */
export const TUNNEL_NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Subdomains the relay keeps for itself: a Host with one of these labels is served by the relay's
 * API and dashboard, never by a tunnel, so the relay can live at e.g. `api.<TUNNEL_DOMAIN>`.
 */
export const RESERVED_TUNNEL_NAMES: ReadonlySet<string> = new Set([
  'api', 'www', 'relay', 'admin', 'app', 'dashboard', 'agent', 'pirelay', 'status', 'docs', 'static', 'assets', 'mail', 'tunnel', 'tunnels',
]);

export const TunnelNameSchema = z
  .string()
  .regex(TUNNEL_NAME_PATTERN, 'a tunnel name is a DNS label: 1-63 of a-z 0-9 "-", not starting or ending with "-"')
  .refine((n) => !RESERVED_TUNNEL_NAMES.has(n), { message: 'this name is reserved for the relay itself' });

// ---- targets ----

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

function isIpv6(text: string): boolean {
  if (!text.includes(':') || !/^[0-9a-f:.]+$/i.test(text)) return false;
  try {
    new URL(`http://[${text}]/`);
    return true;
  } catch {
    return false;
  }
}

/**
 * The host a target names, as stored (IPv6 without brackets, hostnames in lower case), or null when
 * it is none of an IPv4 address, an IPv6 address (bracketed or bare) or a hostname. A dotted string
 * of digits must be a valid IPv4 address, so "999.1.1.1" is refused rather than taken as a name.
 */
export function normalizeTargetHost(host: string): string | null {
  const h = host.trim();
  if (h.startsWith('[') && h.endsWith(']')) return isIpv6(h.slice(1, -1)) ? h.slice(1, -1).toLowerCase() : null;
  if (IPV4.test(h)) return h;
  if (/^[0-9.]+$/.test(h)) return null;
  if (isIpv6(h)) return h.toLowerCase();
  return HOSTNAME.test(h) ? h.toLowerCase() : null;
}

export interface TunnelTargetAddress {
  target_host: string;
  target_port: number;
}

/** "127.0.0.1:8080", "[::1]:22" or "nas.local:445" → host and port; null if malformed. */
export function parseTarget(text: string): TunnelTargetAddress | null {
  const m = /^(\[[^\]]*\]|[^:[\]]+):(\d{1,5})$/.exec(text.trim());
  if (!m) return null;
  const port = Number(m[2]);
  const host = normalizeTargetHost(m[1]!);
  if (!host || port < 1 || port > 65535) return null;
  return { target_host: host, target_port: port };
}

/** The "host:port" form, with IPv6 hosts in brackets. */
export function formatTarget(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

// ---- loops ----

/** Lower case, no brackets around IPv6, no trailing dot: how hosts are compared for loops. */
function comparableHost(host: string): string {
  const h = host.toLowerCase().replace(/\.+$/, '');
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

const isLoopbackName = (host: string) => host === 'localhost' || host.endsWith('.localhost');
const isLoopback = (host: string) => isLoopbackName(host) || host === '::1' || (IPV4.test(host) && host.startsWith('127.'));

/**
 * Why a target would send the tunnel's traffic back into the relay, or null when it does not.
 * Names under the tunnel domain are the relay's own tunnels, and the domain itself is the relay,
 * except `localhost`, which on the device names the device. The relay's own host (where the API
 * was called) loops by name; an address or a loopback name only on the relay's own port, as
 * `127.0.0.1:8080` on the device is the device's web server (and a relay called on loopback runs
 * beside its agent, so any loopback target on its port is the relay). Loops through other names
 * or addresses that reach the relay are caught at run time (CDN-Loop).
 */
export function targetLoopReason(target: TunnelTargetAddress, relay: { tunnelDomain: string; requestUrl: URL }): string | null {
  const host = comparableHost(target.target_host);
  const domain = comparableHost(relay.tunnelDomain);
  if (host.endsWith(`.${domain}`)) return `${host} is a tunnel name under this relay's tunnel domain (${domain})`;
  if (host === domain && !isLoopbackName(domain)) return `${host} is this relay's tunnel domain`;
  const own = comparableHost(relay.requestUrl.hostname);
  const ownPort = Number(relay.requestUrl.port || (relay.requestUrl.protocol === 'https:' ? 443 : 80));
  const byName = !IPV4.test(own) && !isIpv6(own) && !isLoopbackName(own);
  const same = host === own && (byName || target.target_port === ownPort);
  if (same || (isLoopback(own) && isLoopback(host) && target.target_port === ownPort)) return `${formatTarget(host, target.target_port)} is this relay's own address`;
  return null;
}

const TARGET_HOST_RULE = 'target_host must be an IPv4 address, an IPv6 address or a hostname';
export const TargetHostSchema = z.string().max(255).refine((h) => normalizeTargetHost(h) !== null, { message: TARGET_HOST_RULE });
export const TargetPortSchema = z.number().int().min(1).max(65535);
export const TargetObjectSchema = z.object({ target_host: TargetHostSchema, target_port: TargetPortSchema }).strict();
export const TargetStringSchema = z
  .string()
  .max(300)
  .refine((t) => parseTarget(t) !== null, { message: 'target must be "host:port" (IPv4, [IPv6] or hostname; port 1-65535)' });
/** Where the agent connects on the device's side: "host:port" or {target_host, target_port}. */
export const TargetSchema = z.union([TargetStringSchema, TargetObjectSchema]);

// ---- access ----

/** A basic-auth user name: no ":" (Basic cannot carry one) and no control characters. */
export const BasicUsernameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[^:\p{Cc}]+$/u, 'a user name may not contain ":" or control characters');

const PublicAccess = z.object({ mode: z.literal('public') }).strict();
const PirelayAccess = z.object({ mode: z.literal('pirelay') }).strict();

/**
 * Who may use a tunnel. public: anyone. basic: HTTP Basic with this user and password (only a
 * PBKDF2 hash is kept). bearer: `Authorization: Bearer <token>` with a token the relay makes and
 * shows once. pirelay: a pirelay session or API key whose holder has `tunnels:use`.
 */
export const CreateTunnelAccessSchema = z.discriminatedUnion('mode', [
  PublicAccess,
  z.object({ mode: z.literal('basic'), username: BasicUsernameSchema, password: PasswordSchema }).strict(),
  z.object({ mode: z.literal('bearer') }).strict(),
  PirelayAccess,
]);

/**
 * As at creation, except: a basic tunnel may keep its password (leave `password` out), and a
 * bearer tunnel keeps its token unless `rotate` is true. Switching to bearer always makes a token.
 */
export const UpdateTunnelAccessSchema = z.discriminatedUnion('mode', [
  PublicAccess,
  z.object({ mode: z.literal('basic'), username: BasicUsernameSchema, password: PasswordSchema.optional() }).strict(),
  z.object({ mode: z.literal('bearer'), rotate: z.boolean().optional() }).strict(),
  PirelayAccess,
]);
export type UpdateTunnelAccess = z.infer<typeof UpdateTunnelAccessSchema>;

export const RateLimitSchema = z.number().int().min(1).max(1_000_000).nullable();

export const TCP_ACCESS_RULE = 'a tcp tunnel is reached with a pirelay credential (tunnels:use), so its access mode is "pirelay"';

// ---- requests ----

const targetFields = {
  target: TargetSchema.optional(),
  target_host: TargetHostSchema.optional(),
  target_port: TargetPortSchema.optional(),
};

/** Says which of the two target forms a body used, or why it is neither. */
function checkTargetForms(b: { target?: unknown; target_host?: unknown; target_port?: unknown }, required: boolean, ctx: z.RefinementCtx) {
  const split = b.target_host !== undefined || b.target_port !== undefined;
  if (b.target !== undefined && split) {
    ctx.addIssue({ code: 'custom', path: ['target'], message: 'give target, or target_host and target_port, not both' });
  } else if (split && (b.target_host === undefined || b.target_port === undefined)) {
    ctx.addIssue({ code: 'custom', path: [b.target_host === undefined ? 'target_host' : 'target_port'], message: 'target_host and target_port go together' });
  } else if (required && b.target === undefined && !split) {
    ctx.addIssue({ code: 'custom', path: ['target'], message: 'target is required ("host:port")' });
  }
}

export const CreateTunnelSchema = z
  .object({
    name: TunnelNameSchema,
    /** http when left out. */
    kind: z.enum(TUNNEL_KINDS).optional(),
    ...targetFields,
    /** public for http, pirelay for tcp when left out. */
    access: CreateTunnelAccessSchema.optional(),
    /** Requests (http) or connections (tcp) per minute; null or left out: no limit. */
    rate_limit_per_minute: RateLimitSchema.optional(),
    enabled: z.boolean().optional(),
    /** Whether the tunnel stays open (visitors wait a little) while the device is offline. */
    allow_clientless: z.boolean().optional(),
  })
  .strict()
  .superRefine((b, ctx) => {
    checkTargetForms(b, true, ctx);
    if (b.kind === 'tcp' && b.access && b.access.mode !== 'pirelay') ctx.addIssue({ code: 'custom', path: ['access', 'mode'], message: TCP_ACCESS_RULE });
  });
export type CreateTunnel = z.infer<typeof CreateTunnelSchema>;

export const UpdateTunnelSchema = z
  .object({
    name: TunnelNameSchema.optional(),
    kind: z.enum(TUNNEL_KINDS).optional(),
    ...targetFields,
    access: UpdateTunnelAccessSchema.optional(),
    rate_limit_per_minute: RateLimitSchema.optional(),
    enabled: z.boolean().optional(),
    allow_clientless: z.boolean().optional(),
  })
  .strict()
  .superRefine((b, ctx) => {
    checkTargetForms(b, false, ctx);
    if (Object.values(b).every((v) => v === undefined)) ctx.addIssue({ code: 'custom', path: [], message: 'give at least one field to change' });
  });
export type UpdateTunnel = z.infer<typeof UpdateTunnelSchema>;

/** The target a valid create/update body names, in either form; undefined if it names none. */
export function targetOf(b: { target?: string | TunnelTargetAddress; target_host?: string; target_port?: number }): TunnelTargetAddress | undefined {
  if (typeof b.target === 'string') return parseTarget(b.target) ?? undefined;
  const t = b.target ?? (b.target_host !== undefined && b.target_port !== undefined ? { target_host: b.target_host, target_port: b.target_port } : undefined);
  if (!t) return undefined;
  const host = normalizeTargetHost(t.target_host);
  return host ? { target_host: host, target_port: t.target_port } : undefined;
}

// ---- responses ----

export const TunnelAccessSchema = z.object({
  mode: z.enum(TUNNEL_ACCESS_MODES),
  /** basic only. */
  username: z.string().optional(),
  /** bearer only: the first characters of the token, to tell tokens apart; never the token. */
  token_prefix: z.string().optional(),
});

export const TunnelSchema = z.object({
  id: z.string(),
  device_id: z.string(),
  name: z.string(),
  kind: z.enum(TUNNEL_KINDS),
  /** "host:port" on the device's side. */
  target: z.string(),
  target_host: z.string(),
  target_port: z.number().int(),
  access: TunnelAccessSchema,
  rate_limit_per_minute: z.number().int().nullable(),
  enabled: z.boolean(),
  /** Open (tunnel-control connect) or closed (disconnect). */
  connected: z.boolean(),
  allow_clientless: z.boolean(),
  /** http: the visitors' URL. tcp: the WebSocket URL a TCP client (`pirelay tcp`) dials. */
  public_url: z.string(),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
});
export type Tunnel = z.infer<typeof TunnelSchema>;

/** Create and update answers: `bearer_token` is present only when a token was just made. */
export const SavedTunnelSchema = TunnelSchema.extend({ bearer_token: z.string().optional() });
export type SavedTunnel = z.infer<typeof SavedTunnelSchema>;

export const TunnelListSchema = z.object({ tunnels: z.array(TunnelSchema) });

/** Path part naming a tunnel of a device: its id or its name. */
export const TunnelRefSchema = z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/, 'a tunnel id or name');
