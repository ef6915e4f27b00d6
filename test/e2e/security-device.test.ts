// A device's identity against the real relay and real agents: the connect token goes only in the
// Authorization header, works once, and an unknown device looks like a bad signature (requests
// written on a raw socket, as an attacker would); two agent processes sharing one config (a
// cloned SD card) settle down instead of pushing each other off many times a second, and the
// device shows the conflict; a restarted agent still takes over from its half-dead old socket.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChildProcess } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { AGENT_MAIN, runBun, startDevEnv, waitFor, type DevEnv } from '../../scripts/dev-env.ts';
import { newKeyPair, signConnectToken } from '../../agent/identity.ts';
import { AgentConfigSchema, type AgentConfig } from '../../agent/config.ts';
import { freePort, http, tempDir } from './harness.ts';

let env: DevEnv;
let dir: string;
let url: string;
let key: string;
let config: AgentConfig;
let deviceId: string;
const extra: ChildProcess[] = [];
/** What workerd printed (the relay's log), which Miniflare hands to this process' console. */
let relayLog = '';
for (const level of ['log', 'info', 'warn', 'error'] as const) {
  const original = console[level].bind(console);
  console[level] = (...args: unknown[]) => {
    relayLog += args.map(String).join(' ') + '\n';
    original(...args);
  };
}

/** One request on a raw socket; resolves with the status and the parsed JSON body. */
function raw(path: string, headers: Record<string, string>): Promise<{ status: number; body: any }> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), '127.0.0.1');
    let got = '';
    sock.on('error', reject);
    // Error answers carry a Content-Length: done once that many bytes follow the head.
    sock.on('data', (d) => {
      got += d;
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = got.slice(0, end);
      if (head.startsWith('HTTP/1.1 101')) {
        // Upgraded: the relay let the token in (what these tests say it must not do).
        sock.destroy();
        return resolve({ status: 101, body: null });
      }
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? NaN);
      const text = got.slice(end + 4);
      if (!(Buffer.byteLength(text) >= length)) return;
      sock.destroy();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON
      }
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), body });
    });
    sock.on('end', () => reject(new Error(`connection ended before a whole answer: ${JSON.stringify(got.slice(0, 300))}`)));
    const lines = [`GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    sock.write(lines.join('\r\n') + '\r\n\r\n');
  });
}

const UPGRADE = { Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '13' };

async function device(): Promise<any> {
  const r = await http(`${url}/api/v1/devices/${deviceId}`, { key });
  expect(r.status).toBe(200);
  return r.body;
}

const replacements = async () => ((await device()).identity_conflict?.replacements as number | undefined) ?? 0;

function startClone(name: string): ChildProcess {
  const path = join(dir, `${name}.json`);
  copyFileSync(join(dir, 'agents', 'twin.json'), path);
  const child = runBun([AGENT_MAIN, 'run', '--simulate', '--config', path, '--max-backoff-ms', '1000'], { logs: 'ignore' });
  extra.push(child);
  return child;
}

beforeAll(async () => {
  dir = await tempDir('security-device');
  env = await startDevEnv({ dir, port: await freePort(), demoDevices: ['twin'], agentArgs: ['--max-backoff-ms', '1000'] });
  url = env.state.url;
  key = env.state.apiKey;
  deviceId = env.state.devices[0]!.id;
  config = AgentConfigSchema.parse(JSON.parse(readFileSync(join(dir, 'agents', 'twin.json'), 'utf8')));
  await waitFor('device online', async () => (await device()).online === true, 30_000);
});

afterAll(async () => {
  for (const c of extra) c.kill('SIGKILL');
  await env?.stop();
});

describe('agent connect tokens', () => {
  it('are single-use: a token the device signed is refused the second time', async () => {
    const token = await signConnectToken(deviceId, config.private_key);
    const first = await raw('/agent/connect', { Authorization: `Bearer ${token}` });
    // All is well but the upgrade: the token was good.
    expect(first).toMatchObject({ status: 426, body: { code: 'UPGRADE_REQUIRED' } });
    const replayed = await raw('/agent/connect', { ...UPGRADE, Authorization: `Bearer ${token}` });
    expect(replayed).toMatchObject({ status: 401, body: { code: 'UNAUTHORIZED' } });
    expect((await device()).online).toBe(true);
  });

  it('are refused in the query string', async () => {
    const token = await signConnectToken(deviceId, config.private_key);
    const res = await raw(`/agent/connect?token=${encodeURIComponent(token)}`, UPGRADE);
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ code: 'UNAUTHORIZED' });
    expect(res.body.error).toMatch(/Authorization header/);
  });

  it('an unknown device gets exactly the answer a bad signature gets', async () => {
    const stranger = await newKeyPair();
    const unknownDevice = await raw('/agent/connect', { ...UPGRADE, Authorization: `Bearer ${await signConnectToken('f'.repeat(40), config.private_key)}` });
    const badSignature = await raw('/agent/connect', { ...UPGRADE, Authorization: `Bearer ${await signConnectToken(deviceId, stranger.privateJwk)}` });
    expect(badSignature.status).toBe(401);
    expect(unknownDevice).toEqual(badSignature);
  });
});

describe('two agents with one identity', () => {
  it('a restarted agent takes over from its half-dead old socket, once, with no ping-pong', async () => {
    const old = env.agents.get(deviceId)!;
    // Frozen: its socket stays open on the relay but nobody answers, as after a crash behind NAT.
    old.kill('SIGSTOP');
    startClone('restarted');
    await waitFor('the new agent to replace the old socket', async () => (await replacements()) === 1, 20_000);
    await env.stopAgent(deviceId, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await replacements()).toBe(1);
    expect((await device()).online).toBe(true);
  });

  it('two live agents (a cloned config) back off: few replacements over 12 s, and the device shows the conflict', async () => {
    const before = await replacements();
    const startedAt = Date.now();
    startClone('clone');
    await waitFor('the clone to connect', async () => (await replacements()) > before, 20_000);
    await new Promise((r) => setTimeout(r, 12_000));
    const shown = (await device()).identity_conflict;
    // Without the backoff each took the connection back about every 0.7 s (27 times each in 20 s).
    expect(shown.replacements - before).toBeGreaterThanOrEqual(1);
    expect(shown.replacements - before).toBeLessThanOrEqual(6);
    expect(Date.parse(shown.last_at)).toBeGreaterThanOrEqual(startedAt - 1_000);
    expect(Date.parse(shown.first_at)).toBeLessThanOrEqual(Date.parse(shown.last_at));
    expect(shown.addresses.length).toBeGreaterThanOrEqual(1);
    expect((await device()).online).toBe(true);
    // ...and the relay said so in its log.
    expect(relayLog).toMatch(new RegExp(`DeviceHub: device ${deviceId}: a connection from \\S+ replaced a live one from \\S+ \\(\\d+ since `));
  });
});
