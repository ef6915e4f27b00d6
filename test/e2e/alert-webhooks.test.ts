// Notifications end to end: the relay in workerd (as `npm start` runs it, with
// ALERT_ALLOW_PRIVATE_TARGETS so it may reach this machine) sends to a real node:http server
// here, and the server checks what arrives against each service's documented format — a
// generic webhook's JSON, a Slack incoming webhook's {text, blocks}, a Discord webhook's
// {content, embeds}, an ntfy publish (text body, Title/Priority/Tags, Bearer token) and a
// Telegram sendMessage. Then what a hostile or broken target does: hang (the attempt gives up
// after its timeout), redirect (not followed), answer 404 (given up, recorded), answer a huge or
// a secret-echoing body (read bounded, scrubbed). Last, with the alerts capability present, a
// rule's notification through the device's hub: a target failing twice then answering gets 3
// attempts, recorded by the deliveries route.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { startDevEnv, waitFor, waitOnline, type DevEnv } from '../../scripts/dev-env.ts';
import { seal, alertRulePlace } from '../../shared/secret-box.ts';
import { AlertNotificationSchema, type Channel } from '../../shared/api/alerts.ts';
import { freePort, http, tempDir } from './harness.ts';

interface Received {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

const VARIABLES_KEY = randomBytes(32).toString('hex');
const SECRET = `s${randomBytes(8).toString('hex')}`;
const BOT_TOKEN = `123456:${randomBytes(16).toString('hex')}`;
const NTFY_TOKEN = `tk_${randomBytes(8).toString('hex')}`;

let env: DevEnv;
let dir: string;
let url: string;
let key: string;
let server: Server;
let target: string;
const received: Received[] = [];
/** Path → how many times it fails (503) before answering 200. */
const flaky = new Map<string, number>();

function startTarget(): Promise<Server> {
  const srv = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ method: req.method ?? '', path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      if (path.startsWith('/hang')) return; // never answers
      if (path.startsWith('/redirect')) return void res.writeHead(302, { location: `${target}/redirected${path}` }).end();
      if (path.startsWith('/dead')) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('no_service');
      if (path.startsWith('/huge')) {
        res.writeHead(400, { 'content-type': 'text/plain' });
        return void res.end('x'.repeat(4 * 1024 * 1024));
      }
      if (path.startsWith('/echo')) return void res.writeHead(401, { 'content-type': 'text/plain' }).end(`bad token ${req.headers.authorization} for ${target}${path}`);
      const fails = flaky.get(path.split('?')[0]!) ?? 0;
      if (fails > 0) {
        flaky.set(path.split('?')[0]!, fails - 1);
        return void res.writeHead(503).end('busy');
      }
      if (path.startsWith('/slack')) return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      if (path.startsWith('/discord')) return void res.writeHead(204).end();
      if (path.includes('/sendMessage')) return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true,"result":{}}');
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"id":"m1"}');
    });
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

/** Posts a test notification to `channel` and returns the relay's answer and what reached the server at `path`. */
async function testChannel(channel: Channel, path: string) {
  const before = received.length;
  const r = await http(`${url}/api/v1/alerts/test-channel`, { key, json: { channel } });
  return { answer: r, got: received.slice(before).filter((x) => x.path.startsWith(path)) };
}

beforeAll(async () => {
  server = await startTarget();
  target = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  dir = await tempDir('alerts');
  env = await startDevEnv({ dir, port: await freePort(), demoDevices: ['alerts-pi'], vars: { VARIABLES_KEY, ALERT_ALLOW_PRIVATE_TARGETS: 'true', HEARTBEAT_INTERVAL_MS: '500' } });
  await waitOnline(env, 30_000);
  url = env.state.url;
  key = env.state.apiKey;
}, 90_000);

afterAll(async () => {
  await env?.stop();
  server?.closeAllConnections();
  server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('each format reaches a real server as its service documents it', () => {
  it('webhook: POST application/json, AlertNotificationSchema, with the channel\'s own headers', async () => {
    const { answer, got } = await testChannel({ type: 'webhook', url: `${target}/hook/${SECRET}`, headers: { 'X-Pirelay-Token': SECRET } }, '/hook');
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ channel: { type: 'webhook', host: new URL(target).host }, delivered: true, response_status: 200, error: null });
    expect(got).toHaveLength(1);
    expect(got[0]!.method).toBe('POST');
    expect(got[0]!.headers['content-type']).toBe('application/json');
    expect(got[0]!.headers['x-pirelay-token']).toBe(SECRET);
    const body = AlertNotificationSchema.parse(JSON.parse(got[0]!.body));
    expect(body).toMatchObject({ event: 'test', alert: null });
    expect(body.text).toMatch(/^Test: /);
  });

  it('slack: {text, blocks} with a mrkdwn section', async () => {
    const { answer, got } = await testChannel({ type: 'slack', url: `${target}/slack/services/T0/B0/${SECRET}` }, '/slack');
    expect(answer.body.delivered).toBe(true);
    const b = JSON.parse(got[0]!.body);
    expect(got[0]!.headers['content-type']).toBe('application/json');
    expect(typeof b.text).toBe('string');
    expect(b.blocks[0]).toMatchObject({ type: 'section', text: { type: 'mrkdwn', text: expect.stringContaining('*Test: ') } });
  });

  it('discord: {content, embeds:[{title, description, color, timestamp}]} answered 204', async () => {
    const { answer, got } = await testChannel({ type: 'discord', url: `${target}/discord/api/webhooks/1/${SECRET}` }, '/discord');
    expect(answer.body).toMatchObject({ delivered: true, response_status: 204 });
    const b = JSON.parse(got[0]!.body);
    expect(b.content).toMatch(/^Test: /);
    expect(b.embeds[0]).toMatchObject({ title: expect.stringMatching(/^Test: /), color: 0x1e88e5, timestamp: expect.any(String) });
    expect(b.allowed_mentions).toEqual({ parse: [] });
  });

  it('ntfy: the text as the body, Title, Priority and Tags headers, the token as Bearer', async () => {
    const { answer, got } = await testChannel({ type: 'ntfy', url: `${target}/ntfy/pirelay-${SECRET}`, token: NTFY_TOKEN }, '/ntfy');
    expect(answer.body.delivered).toBe(true);
    const r = got[0]!;
    expect(r.body).toMatch(/^Test: /);
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    expect(r.headers).toMatchObject({ title: expect.stringMatching(/^Test: /), priority: '3', tags: 'test_tube', authorization: `Bearer ${NTFY_TOKEN}` });
  });

  it('telegram: POST {api_url}/bot<token>/sendMessage {chat_id, text, parse_mode: HTML, disable_web_page_preview}', async () => {
    const { answer, got } = await testChannel({ type: 'telegram', bot_token: BOT_TOKEN, chat_id: '-1001234', api_url: target }, `/bot${BOT_TOKEN}/sendMessage`);
    expect(answer.body.delivered).toBe(true);
    const b = JSON.parse(got[0]!.body);
    expect(b).toMatchObject({ chat_id: '-1001234', parse_mode: 'HTML', disable_web_page_preview: true });
    expect(b.text).toMatch(/^<b>Test: .*<\/b>\n/);
    // The token is in the URL Telegram wants, and nowhere in what the relay answers.
    expect(JSON.stringify(answer.body)).not.toContain(BOT_TOKEN);
  });
});

describe('a hostile or broken target', () => {
  it('one that never answers is given up after the attempt timeout (about 10 s), not held on to', async () => {
    const started = Date.now();
    const { answer, got } = await testChannel({ type: 'webhook', url: `${target}/hang/${SECRET}` }, '/hang');
    expect(got).toHaveLength(1);
    expect(answer.body).toMatchObject({ delivered: false, response_status: null, error: expect.stringContaining('no answer from') });
    expect(Date.now() - started).toBeGreaterThanOrEqual(9_000);
    expect(JSON.stringify(answer.body)).not.toContain(SECRET);
  });

  it('a redirect is not followed', async () => {
    const { answer } = await testChannel({ type: 'webhook', url: `${target}/redirect/${SECRET}` }, '/redirect');
    expect(answer.body).toMatchObject({ delivered: false, response_status: 302, error: expect.stringContaining('redirects are not followed') });
    await new Promise((r) => setTimeout(r, 300));
    expect(received.some((x) => x.path.startsWith('/redirected'))).toBe(false);
    expect(JSON.stringify(answer.body)).not.toContain(SECRET);
  });

  it('a huge answer is read only in part; an answer that echoes the URL and token back is scrubbed of them', async () => {
    const huge = await testChannel({ type: 'webhook', url: `${target}/huge` }, '/huge');
    expect(huge.answer.body).toMatchObject({ delivered: false, response_status: 400 });
    expect(huge.answer.body.error.length).toBeLessThan(300);
    const echo = await testChannel({ type: 'ntfy', url: `${target}/echo/topic-${SECRET}`, token: NTFY_TOKEN }, '/echo');
    expect(echo.answer.body).toMatchObject({ delivered: false, response_status: 401 });
    expect(echo.answer.body.error).toContain('bad token');
    expect(echo.answer.body.error).not.toContain(SECRET);
    expect(echo.answer.body.error).not.toContain(NTFY_TOKEN);
  });
});

describe("a rule's test", () => {
  it('sends to each channel once, records each delivery with its outcome, and shows them without a secret', async () => {
    const db = await env.relay.mf!.getD1Database('DB');
    const id = `rule_${randomBytes(4).toString('hex')}`;
    const channels: Channel[] = [
      { type: 'webhook', url: `${target}/hook/rule-${SECRET}` },
      { type: 'slack', url: `${target}/dead/${SECRET}` },
    ];
    const sealed = await seal({ VARIABLES_KEY }, JSON.stringify(channels), alertRulePlace(id));
    const host = new URL(target).host;
    await db
      .prepare(
        `INSERT INTO alert_rules (id, name, metric, warning, hold_seconds, recovery_seconds, team_id, enabled, channels_sealed, channel_views, resend_cap, created_at)
         VALUES (?1, 'Disk full', 'disk', 90, 60, 60, NULL, 1, ?2, ?3, 5, ?4)`,
      )
      .bind(id, sealed, JSON.stringify([{ type: 'webhook', host }, { type: 'slack', host }]), Date.now())
      .run();
    const before = received.length;
    const r = await http(`${url}/api/v1/alert-rules/${id}/test`, { key, method: 'POST' });
    expect(r.status).toBe(200);
    expect(r.body.deliveries.map((d: { status: string; response_status: number; attempts: number }) => [d.status, d.response_status, d.attempts])).toEqual([['delivered', 200, 1], ['given_up', 404, 1]]);
    expect(received.slice(before).map((x) => x.path.split('/')[1])).toEqual(expect.arrayContaining(['hook', 'dead']));
    expect(received.slice(before)).toHaveLength(2);
    const listed = await http(`${url}/api/v1/alert-deliveries?rule_id=${id}`, { key });
    expect(listed.body.total).toBe(2);
    expect(JSON.stringify(listed.body)).not.toContain(SECRET);
    expect(listed.body.deliveries.find((d: { status: string }) => d.status === 'given_up').error).toBe(`${host} answered 404: no_service`);
  });
});

describe("an alert's notification through the device's hub", () => {
  it('a target failing twice then answering: 3 attempts, 10 s and 30 s apart, recorded', async (ctx) => {
    const device = env.state.devices[0]!;
    const path = `/flaky-${randomBytes(4).toString('hex')}`;
    flaky.set(path, 2);
    const created = await http(`${url}/api/v1/alert-rules`, {
      key,
      json: { name: 'Gone', metric: 'offline', level: 'critical', hold_seconds: 0, recovery_seconds: 0, device_id: device.id, channels: [{ type: 'webhook', url: `${target}${path}` }] },
    });
    // The rules routes and the hub's evaluation are the alerts capability's: without them there is no alert to notify.
    if (created.status === 404) ctx.skip();
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    await env.stopAgent(device.id);
    const hits = await waitFor('3 attempts at the flaky target', async () => {
      const got = received.filter((x) => x.path === path);
      return got.length >= 3 ? got : null;
    }, 120_000, 200);
    expect(hits[1]!.at - hits[0]!.at).toBeGreaterThanOrEqual(9_000);
    expect(hits[2]!.at - hits[1]!.at).toBeGreaterThanOrEqual(29_000);
    const body = AlertNotificationSchema.parse(JSON.parse(hits[2]!.body));
    expect(body.event).toBe('fired');
    expect(body.device?.name).toBe(device.name);
    const delivery = await waitFor('the delivery recorded as delivered', async () => {
      const r = await http(`${url}/api/v1/alert-deliveries?rule_id=${created.body.id}&status=delivered`, { key });
      return r.body.total >= 1 ? r.body.deliveries[0] : null;
    });
    expect(delivery).toMatchObject({ event: 'fired', status: 'delivered', attempts: 3, response_status: 200 });
  }, 180_000);
});
