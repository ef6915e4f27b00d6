// GET /api/v1/agent-install: the download folder of the agent (AGENT_DOWNLOAD_URL, wrangler.toml's
// default or a relay's own), one file per architecture, and this relay's URL to enroll with; only
// for those who may add devices, and a clear error for a download URL that is not one.
import { beforeAll, describe, expect, it } from 'vitest';
import { api, userWithKey } from './helpers.ts';
import { expectError, withEnv } from './auth-helpers.ts';
import { AgentInstallSchema, DEFAULT_AGENT_DOWNLOAD_URL } from '../../shared/api/agent-install.ts';
import { AGENT_VERSION } from '../../shared/version.ts';

let admin: string;
let operator: string;
let viewer: string;
beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
  operator = (await userWithKey(['operator'])).key;
  viewer = (await userWithKey(['viewer'])).key;
});

const bearer = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });

describe('GET /api/v1/agent-install', () => {
  it("answers wrangler.toml's download folder, a file per architecture, the agent version and this relay", async () => {
    const res = await api('/api/v1/agent-install', { key: admin });
    expect(res.status).toBe(200);
    const body = AgentInstallSchema.parse(await res.json());
    expect(body).toEqual({
      relay_url: 'http://relay.test',
      version: AGENT_VERSION,
      download_url: DEFAULT_AGENT_DOWNLOAD_URL,
      architectures: [
        { arch: 'arm64', file: 'pirelay-agent-linux-arm64', url: `${DEFAULT_AGENT_DOWNLOAD_URL}/pirelay-agent-linux-arm64` },
        { arch: 'x64', file: 'pirelay-agent-linux-x64', url: `${DEFAULT_AGENT_DOWNLOAD_URL}/pirelay-agent-linux-x64` },
      ],
    });
  });

  it('is for those who may add devices (devices:admin): an operator yes, a viewer no, nobody without credentials', async () => {
    expect((await api('/api/v1/agent-install', { key: operator })).status).toBe(200);
    await expectError(await api('/api/v1/agent-install', { key: viewer }), 403, 'FORBIDDEN');
    await expectError(await api('/api/v1/agent-install'), 401, 'UNAUTHORIZED');
  });

  it("uses the relay's own AGENT_DOWNLOAD_URL, without its trailing slash", async () => {
    const res = await withEnv({ AGENT_DOWNLOAD_URL: 'https://downloads.example.net/pirelay/0.1.0/' }, '/api/v1/agent-install', bearer(admin));
    expect(res.status).toBe(200);
    const body = AgentInstallSchema.parse(await res.json());
    expect(body.download_url).toBe('https://downloads.example.net/pirelay/0.1.0');
    expect(body.architectures.map((a) => a.url)).toEqual([
      'https://downloads.example.net/pirelay/0.1.0/pirelay-agent-linux-arm64',
      'https://downloads.example.net/pirelay/0.1.0/pirelay-agent-linux-x64',
    ]);
  });

  it('falls back to the release downloads when AGENT_DOWNLOAD_URL is unset or empty', async () => {
    for (const value of [undefined, '', '  ']) {
      const res = await withEnv({ AGENT_DOWNLOAD_URL: value }, '/api/v1/agent-install', bearer(admin));
      expect(AgentInstallSchema.parse(await res.json()).download_url).toBe(DEFAULT_AGENT_DOWNLOAD_URL);
    }
  });

  it('says so when AGENT_DOWNLOAD_URL is not an http(s) URL', async () => {
    for (const value of ['downloads.example.net/pirelay', 'ftp://example.net/pirelay', 'javascript:alert(1)']) {
      const body = await expectError(await withEnv({ AGENT_DOWNLOAD_URL: value }, '/api/v1/agent-install', bearer(admin)), 503, 'AGENT_DOWNLOAD_URL_INVALID');
      expect(body.error).toContain('AGENT_DOWNLOAD_URL is not an http(s) URL');
    }
  });
});
