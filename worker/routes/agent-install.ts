// GET /api/v1/agent-install: where a new device gets the agent, and which relay it enrolls with,
// for the dashboard's "Add a device" page (the download, enroll and install-service commands it
// shows). Its own route rather than a field of the enrollment token: it is the relay's
// configuration, the same for every token, and the page shows it before and after making one.
// For those who add devices (devices:admin), like the tokens themselves.
import { createRoute } from '@hono/zod-openapi';
import type { App } from '../openapi.ts';
import { authErrors, errorResponse } from '../openapi.ts';
import { allows } from '../auth/access.ts';
import { ApiError } from '../errors.ts';
import * as S from '../devices/api-schemas.ts';
import { AGENT_ARCHITECTURES, AgentInstallSchema, agentFileName, DEFAULT_AGENT_DOWNLOAD_URL } from '../../shared/api/agent-install.ts';
import { AGENT_VERSION } from '../../shared/version.ts';

/** AGENT_DOWNLOAD_URL without its trailing slashes; unset or empty is the default, anything but an http(s) URL a configuration error. */
export function agentDownloadUrl(value: string | undefined): string {
  const raw = (value ?? '').trim() || DEFAULT_AGENT_DOWNLOAD_URL;
  let url: URL | null = null;
  try {
    url = new URL(raw);
  } catch {
    url = null;
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    throw new ApiError(503, 'AGENT_DOWNLOAD_URL_INVALID', `AGENT_DOWNLOAD_URL is not an http(s) URL (${raw.slice(0, 200)}); set it in wrangler.toml [vars]`);
  }
  return raw.replace(/\/+$/, '');
}

export function registerAgentInstallRoutes(app: App) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/agent-install',
      tags: ['enrollment'],
      summary: 'Where to download the agent (AGENT_DOWNLOAD_URL, one file per architecture) and the relay URL to enroll with',
      security: S.security,
      ...allows('devices:admin'),
      responses: {
        200: S.json(AgentInstallSchema.openapi('AgentInstall'), 'The download folder, its files and this relay'),
        ...authErrors,
        503: errorResponse('AGENT_DOWNLOAD_URL is not an http(s) URL (AGENT_DOWNLOAD_URL_INVALID)'),
      },
    }),
    (c) => {
      const base = agentDownloadUrl(c.env.AGENT_DOWNLOAD_URL);
      return c.json(
        {
          relay_url: new URL(c.req.url).origin,
          version: AGENT_VERSION,
          download_url: base,
          architectures: AGENT_ARCHITECTURES.map((arch) => ({ arch, file: agentFileName(arch), url: `${base}/${agentFileName(arch)}` })),
        },
        200,
      );
    },
  );
}
