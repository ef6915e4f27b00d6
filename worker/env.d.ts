// Secrets are not in wrangler.toml, so `wrangler types` cannot see them; declare them here.
declare namespace Cloudflare {
  interface Env {
    /** The dashboard's built files (wrangler.toml [assets]); absent when the Worker runs without them. */
    ASSETS?: Fetcher;
    /** HMAC key for session JWTs, at least 32 characters (`wrangler secret put SESSION_SECRET`). */
    SESSION_SECRET?: string;
    /** AES-256 key (64 hex or base64) sealing variable and TOTP secrets at rest (`wrangler secret put VARIABLES_KEY`). */
    VARIABLES_KEY?: string;
    /** The key VARIABLES_KEY replaced, still opened until POST /api/v1/admin/reseal has moved every value off it. */
    VARIABLES_KEY_PREVIOUS?: string;
    /** Pipetower's API throttle: calls a minute per credential (default 60, Laravel's). */
    PIPETOWER_CALLS_PER_MINUTE?: string;
    /** One-time token that allows creating the first admin (`wrangler secret put BOOTSTRAP_TOKEN`). */
    BOOTSTRAP_TOKEN?: string;
    /** "true" lets anyone create a viewer account through POST /api/v1/auth/register. */
    ALLOW_REGISTRATION?: string;
    /** The client address to assume when CF-Connecting-IP is absent or not trusted (set by the local relay on loopback). */
    LOCAL_CLIENT_IP?: string;
    /** Days a device's log lines are kept in its hub (default 7). */
    LOG_RETENTION_DAYS?: string;
    /** Log lines a device's hub keeps at most, the oldest deleted first (default 500000). */
    LOG_MAX_LINES?: string;
    /** "true" lets alert notifications go to local and private addresses (a local relay's demo and tests); Cloudflare cannot reach them anyway. */
    ALERT_ALLOW_PRIVATE_TARGETS?: string;
    /** How long a device's hub keeps raw metrics points, by when it received them (ms; default 1 hour). */
    METRICS_RETENTION_RAW_MS?: string;
    /** How long a device's hub keeps 1m rollups (ms; default 7 days). */
    METRICS_RETENTION_1M_MS?: string;
    /** How long a device's hub keeps 5m rollups (ms; default 30 days). */
    METRICS_RETENTION_5M_MS?: string;
    /** How long a device's hub keeps 1h rollups (ms; default 365 days); also the oldest timestamp a sample may carry. */
    METRICS_RETENTION_1H_MS?: string;
  }
}
