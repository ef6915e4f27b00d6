// The test-notification routes as an attacker meets them: this relay (like the workers tests'
// env) has no ALERT_ALLOW_PRIVATE_TARGETS, so a test channel or a rule aimed at loopback, a
// private network or the cloud metadata address is refused before anything is sent; a rule of
// another team cannot be tested (nor told apart from one that does not exist), a relay-wide one
// only by an instance admin, and not at all without alerts:write; a failed test is recorded
// with an error naming the host only. (Real sends to a real server: test/e2e/alert-webhooks.)
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { Channel } from '../../shared/api/alerts.ts';
import { sealChannels } from '../../worker/alerts/channels.ts';
import { randomId } from '../../worker/auth/crypto.ts';
import { TEST_TEAM, api, userWithKey } from './helpers.ts';

const SECRET = 'pathSecret0123456789';
/** A public name that never resolves (RFC 2606), so a send fails without leaving this machine. */
const NOWHERE: Channel = { type: 'webhook', url: `https://alerts.nowhere.invalid/hook/${SECRET}`, headers: { 'X-Auth': 'header-secret-xyz' } };

async function rule(team: string | null, channels: Channel[] = [NOWHERE]): Promise<string> {
  const id = `rule_${randomId(6)}`;
  // Sealed directly: sealChannels refuses private targets, so a private one is sealed by hand, as an older rule might be.
  const { sealed, views } = await sealChannels({ ...env, ALERT_ALLOW_PRIVATE_TARGETS: 'true' }, id, channels);
  await env.DB.prepare(
    `INSERT INTO alert_rules (id, name, metric, warning, hold_seconds, recovery_seconds, team_id, enabled, channels_sealed, channel_views, resend_cap, created_at)
     VALUES (?1, 'Disk full', 'disk', 90, 60, 60, ?2, 1, ?3, ?4, 5, ?5)`,
  ).bind(id, team, sealed, JSON.stringify(views), Date.now()).run();
  return id;
}

async function otherTeam(): Promise<string> {
  const id = `team-${randomId(4)}`;
  await env.DB.prepare('INSERT INTO teams (id, name, require_2fa, created_at, updated_at) VALUES (?1, ?1, 0, 0, 0)').bind(id).run();
  return id;
}

describe('POST /api/v1/alerts/test-channel', () => {
  it('refuses local and private targets (422 CHANNEL_TARGET_REFUSED) and sends nothing', async () => {
    const op = await userWithKey(['operator']);
    for (const channel of [
      { type: 'webhook', url: 'http://127.0.0.1:8787/api/v1/admin/reseal' },
      { type: 'webhook', url: 'http://localhost/x' },
      { type: 'slack', url: 'http://[::1]/x' },
      { type: 'discord', url: 'http://169.254.169.254/latest/meta-data/' },
      { type: 'ntfy', url: 'http://192.168.1.10/topic' },
      { type: 'webhook', url: 'http://0x7f000001/x' },
      { type: 'telegram', bot_token: '123456:ABCdefGHIjklMNOpqrSTUvwx', chat_id: '1', api_url: 'http://10.0.0.2' },
    ]) {
      const res = await api('/api/v1/alerts/test-channel', { key: op.key, json: { channel } });
      const body = await res.json<{ code: string; details: { index: number } }>();
      expect(res.status, JSON.stringify(channel)).toBe(422);
      expect(body.code).toBe('CHANNEL_TARGET_REFUSED');
    }
  });

  it('needs alerts:write, validates the channel, and answers a failed send with the host only', async () => {
    const viewer = await userWithKey(['viewer']);
    expect((await api('/api/v1/alerts/test-channel', { key: viewer.key, json: { channel: NOWHERE } })).status).toBe(403);
    const op = await userWithKey(['operator']);
    expect((await api('/api/v1/alerts/test-channel', { key: op.key, json: { channel: { type: 'webhook', url: 'file:///etc/passwd' } } })).status).toBe(400);
    expect((await api('/api/v1/alerts/test-channel', { key: op.key, json: { channel: { type: 'pager' } } })).status).toBe(400);
    const res = await api('/api/v1/alerts/test-channel', { key: op.key, json: { channel: NOWHERE } });
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(JSON.parse(text)).toMatchObject({ channel: { type: 'webhook', host: 'alerts.nowhere.invalid' }, delivered: false, response_status: null });
    expect(JSON.parse(text).error).toContain('alerts.nowhere.invalid');
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('header-secret-xyz');
  });
});

describe('POST /api/v1/alert-rules/{id}/test', () => {
  it("records a test delivery per channel with its outcome, audited, never showing a channel's secret", async () => {
    const op = await userWithKey(['operator']);
    const id = await rule(TEST_TEAM, [NOWHERE, { type: 'ntfy', url: `https://ntfy.nowhere.invalid/${SECRET}`, token: 'tk_ntfysecret99' }]);
    const res = await api(`/api/v1/alert-rules/${id}/test`, { key: op.key, method: 'POST' });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    const { deliveries } = JSON.parse(text);
    expect(deliveries).toHaveLength(2);
    expect(deliveries.map((d: { channel: unknown }) => d.channel)).toEqual([{ type: 'webhook', host: 'alerts.nowhere.invalid' }, { type: 'ntfy', host: 'ntfy.nowhere.invalid' }]);
    for (const d of deliveries) expect(d).toMatchObject({ rule_id: id, alert_id: null, event: 'test', status: 'given_up', attempts: 1, next_attempt_at: null });
    for (const s of [SECRET, 'header-secret-xyz', 'tk_ntfysecret99']) expect(text).not.toContain(s);

    const listed = await api(`/api/v1/alert-deliveries?rule_id=${id}`, { key: op.key });
    const listedText = await listed.text();
    expect(JSON.parse(listedText).total).toBe(2);
    for (const s of [SECRET, 'header-secret-xyz', 'tk_ntfysecret99']) expect(listedText).not.toContain(s);
    const stored = await env.DB.prepare('SELECT error FROM alert_deliveries WHERE rule_id = ?').bind(id).all<{ error: string }>();
    for (const r of stored.results) expect(r.error).not.toContain(SECRET);

    const audit = await env.DB.prepare("SELECT details, team_id FROM audit_log WHERE action = 'alert_rule.test' AND target_id = ?").bind(id).first<{ details: string; team_id: string }>();
    expect(audit?.team_id).toBe(TEST_TEAM);
    expect(JSON.parse(audit!.details)).toMatchObject({ channels: 2, delivered: 0 });
  });

  it("another team's rule is a 404, like a rule that does not exist; a viewer may not test; a relay-wide rule is an instance admin's", async () => {
    const theirs = await rule(await otherTeam());
    const op = await userWithKey(['operator']);
    expect((await api(`/api/v1/alert-rules/${theirs}/test`, { key: op.key, method: 'POST' })).status).toBe(404);
    expect((await api('/api/v1/alert-rules/rule_nope/test', { key: op.key, method: 'POST' })).status).toBe(404);
    expect(await env.DB.prepare('SELECT count(*) AS n FROM alert_deliveries WHERE rule_id = ?').bind(theirs).first('n')).toBe(0);

    const ours = await rule(TEST_TEAM);
    const viewer = await userWithKey(['viewer']);
    expect((await api(`/api/v1/alert-rules/${ours}/test`, { key: viewer.key, method: 'POST' })).status).toBe(403);

    const global = await rule(null);
    const refused = await api(`/api/v1/alert-rules/${global}/test`, { key: op.key, method: 'POST' });
    expect(refused.status).toBe(403);
    const admin = await userWithKey(['admin']);
    const ok = await api(`/api/v1/alert-rules/${global}/test`, { key: admin.key, method: 'POST' });
    expect(ok.status).toBe(200);
    // A relay-wide rule's test deliveries are no team's: instance admins see them, team members do not.
    expect((await (await api(`/api/v1/alert-deliveries?rule_id=${global}`, { key: admin.key })).json<{ total: number }>()).total).toBe(1);
    expect((await (await api(`/api/v1/alert-deliveries?rule_id=${global}`, { key: op.key })).json<{ total: number }>()).total).toBe(0);
  });

  it('a rule saved with a private target (before the guard, or while it was allowed) is refused at test time too', async () => {
    const op = await userWithKey(['operator']);
    const id = await rule(TEST_TEAM, [{ type: 'webhook', url: 'http://127.0.0.1:9/x' }]);
    const res = await api(`/api/v1/alert-rules/${id}/test`, { key: op.key, method: 'POST' });
    expect(res.status).toBe(422);
    expect((await res.json<{ code: string }>()).code).toBe('CHANNEL_TARGET_REFUSED');
  });

  it('sealChannels refuses private targets when a rule is saved, and seals what it accepts so it opens only at its own place', async () => {
    await expect(sealChannels(env, 'r1', [{ type: 'webhook', url: 'http://10.0.0.1/x' }])).rejects.toMatchObject({ status: 422, code: 'CHANNEL_TARGET_REFUSED' });
    const { sealed, views } = await sealChannels(env, 'r1', [NOWHERE]);
    expect(views).toEqual([{ type: 'webhook', host: 'alerts.nowhere.invalid' }]);
    expect(sealed).not.toContain(SECRET);
    const { openChannels } = await import('../../worker/alerts/channels.ts');
    expect(await openChannels(env, 'r1', sealed)).toEqual([NOWHERE]);
    await expect(openChannels(env, 'r2', sealed)).rejects.toMatchObject({ status: 503, code: 'SECRETS_UNAVAILABLE' });
    expect(await sealChannels(env, 'r1', [])).toEqual({ sealed: null, views: [] });
  });
});

describe('key rotation', () => {
  it("moves a rule's sealed channels to the new key (POST /api/v1/admin/reseal's batch), after which they open with it alone", async () => {
    const { resealBatch } = await import('../../worker/variables/reseal.ts');
    const { openChannels } = await import('../../worker/alerts/channels.ts');
    const { sealedKeyId, currentKeyId } = await import('../../shared/secret-box.ts');
    const id = await rule(TEST_TEAM);
    const A = env.VARIABLES_KEY!;
    const B = 'ee'.repeat(32);
    const result = await resealBatch({ DB: env.DB, VARIABLES_KEY: B, VARIABLES_KEY_PREVIOUS: A });
    expect(result.failed).toBe(0);
    expect(result.remaining).toBe(0);
    const sealed = (await env.DB.prepare('SELECT channels_sealed FROM alert_rules WHERE id = ?').bind(id).first<string>('channels_sealed'))!;
    expect(sealedKeyId(sealed)).toBe(await currentKeyId({ VARIABLES_KEY: B }));
    expect(await openChannels({ ...env, VARIABLES_KEY: B, VARIABLES_KEY_PREVIOUS: undefined }, id, sealed)).toEqual([NOWHERE]);
  });
});
