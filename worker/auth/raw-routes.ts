// The routes that are not @hono/zod-openapi routes, so are absent from /api/v1/openapi.json:
// PiTunnel's API and tunnel-control's at the relay root, Pipetower's under /api, TinyPilot's under
// /tinypilot/<key>/api/v1, the agents' dial-in, the document itself. Each declares here who may call it; its module builds its check from this entry (see
// guardOf in access.ts). Plain data with no imports, so the e2e permission matrix can read it
// next to the OpenAPI document, and test/worker/route-declarations.test.ts fails for a route
// that is in neither.

/** tunnel-control's calls and the permission each needs; the seed's /tunnel-api/<call>. */
export const TUNNEL_CONTROL_CALLS = {
  connect: 'tunnels:write',
  disconnect: 'tunnels:write',
  client_status: 'tunnels:read',
  set_allow_clientless: 'tunnels:write',
} as const;

export interface RawRoute {
  methods: readonly ('GET' | 'POST')[];
  /** The path a client calls; a parameter is written {name}, as in the OpenAPI document. */
  path: string;
  /** The Hono pattern that serves it, when several paths share one (default: path). */
  pattern?: string;
  /**
   * Who may call it: every permission listed ([] = any valid credential), or no user credential at
   * all (public; a device's own JWT; the secret in the path, pathKey; a terminal token offered as a
   * subprotocol, terminalToken: every user credential alone gets a 401).
   */
  access: { permissions: readonly string[] } | { public: true } | { device: true } | { pathKey: true } | { terminalToken: true };
  /** The error shape of the compat layer it belongs to: ours ({error, code, details}) or the seed's. */
  errors: 'native' | 'tunnel-control' | 'pipetower' | 'tinypilot';
  /** Routes that take a device_id parameter. */
  deviceParam?: true;
}

const both = ['GET', 'POST'] as const;

/** TinyPilot's API for one device (worker/compat/tinypilot.ts): the base path a TinyPilot key makes. */
export const TINYPILOT_BASE = '/tinypilot/:key/api/v1';

/**
 * A call of TinyPilot's API. The secret in the path (a TinyPilot key, worker/routes/tinypilot-keys.ts)
 * is the credential, with a token of it for all but /auth; no user credential opens it. Its errors are
 * TinyPilot's (text/plain), and an unknown key is a 404 whoever asks.
 */
const tinypilot = (method: 'GET' | 'POST', call: string): RawRoute => ({
  methods: [method],
  path: `/tinypilot/{key}/api/v1/${call}`,
  pattern: `${TINYPILOT_BASE}/${call}`,
  access: { pathKey: true },
  errors: 'tinypilot',
});

/** A read of Pipetower's API (worker/compat/pipetower.ts); it answers in Laravel's error shape. */
const pipetower = (path: string, permissions: readonly string[]): RawRoute => ({
  methods: ['GET'],
  path,
  ...(path.includes('{') ? { pattern: path.replace(/\{(\w+)\}/g, ':$1') } : {}),
  access: { permissions },
  errors: 'pipetower',
});

export const RAW_ROUTES: readonly RawRoute[] = [
  { methods: ['GET'], path: '/api/v1/openapi.json', access: { public: true }, errors: 'native' },
  // The device's own EdDSA JWT is the credential (worker/routes/agent-connect.ts); no user credential passes.
  { methods: ['GET'], path: '/agent/connect', access: { device: true }, errors: 'native' },
  { methods: both, path: '/devices', access: { permissions: ['devices:read'] }, errors: 'native' },
  { methods: both, path: '/device_info', access: { permissions: ['devices:read'] }, errors: 'native', deviceParam: true },
  { methods: both, path: '/process_list', access: { permissions: ['devices:read'] }, errors: 'native', deviceParam: true },
  { methods: both, path: '/tunnels', access: { permissions: ['tunnels:read'] }, errors: 'native', deviceParam: true },
  { methods: both, path: '/screenshot', access: { permissions: ['screen:read'] }, errors: 'native', deviceParam: true },
  { methods: both, path: '/terminal', access: { permissions: ['terminal:open'] }, errors: 'native', deviceParam: true },
  // A WebSocket whose only credential is a terminal link's (or resume) token, offered as the
  // subprotocol pirelay-token.<token> (worker/devices/terminal.ts); it re-checks the token's user.
  { methods: ['GET'], path: '/api/v1/devices/{id}/terminal/socket', pattern: '/api/v1/devices/:id/terminal/socket', access: { terminalToken: true }, errors: 'native' },
  ...Object.entries(TUNNEL_CONTROL_CALLS).map(
    ([call, permission]): RawRoute => ({
      methods: both,
      path: `/tunnel-api/${call}`,
      pattern: '/tunnel-api/:call',
      access: { permissions: [permission] },
      errors: 'tunnel-control',
      deviceParam: true,
    }),
  ),
  // Without a call name the answer is only "invalid API call" (code 21), whoever asks.
  { methods: both, path: '/tunnel-api', access: { public: true }, errors: 'tunnel-control' },
  { methods: both, path: '/tunnel-api/', access: { public: true }, errors: 'tunnel-control' },
  tinypilot('POST', 'auth'),
  tinypilot('GET', 'screenshot'),
  tinypilot('POST', 'keystroke'),
  tinypilot('POST', 'mouseEvent'),
  pipetower('/api/status', []),
  pipetower('/api/account', []),
  pipetower('/api/account/vars', ['variables:read']),
  pipetower('/api/teams', ['teams:read']),
  pipetower('/api/teams/{id}', ['teams:read']),
  pipetower('/api/teams/{id}/vars', ['variables:read']),
  pipetower('/api/servers', ['devices:read']),
  pipetower('/api/servers/{id}', ['devices:read']),
  pipetower('/api/servers/{id}/vars', ['variables:read']),
  pipetower('/api/servers/{id}/metrics', ['metrics:read']),
];
