// Notification formats on their own: the request each channel type gets (checked against each
// service's documented body: Slack incoming webhooks {text, blocks} in mrkdwn, Discord's execute
// webhook {content, embeds} within its limits, ntfy's plain-text publish with Title/Priority/Tags
// headers, Telegram's sendMessage in HTML), what the text says (device, rule, level, value vs
// threshold, top processes), the escaping that keeps a hostile name from pinging anyone, the
// targets the relay refuses, and that error texts never carry a channel's secrets.
import { describe, expect, it } from 'vitest';
import { AlertNotificationSchema, type Alert, type Channel } from '../../shared/api/alerts.ts';
import { channelHost, channelRequest, notification, scrub, targetRefusal } from '../../durable-objects/capabilities/alert-notify.ts';

const NOW = Date.parse('2026-12-01T12:00:00Z');

function alertOf(over: Partial<Alert> = {}): Alert {
  return {
    id: 'al_1',
    type: 'cpu',
    level: 'critical',
    value: 97.46,
    threshold: 90,
    agent_id: 'dev_1',
    created_at: '2026-12-01T11:59:00.000Z',
    acknowledged: false,
    rule_id: 'rule_1',
    team_id: 'team_1',
    state: 'firing',
    resolved_at: null,
    acknowledged_at: null,
    acknowledged_by: null,
    message: 'cpu 97.5 % ≥ 90 %',
    cause: { processes: [{ pid: 4242, name: 'stress-ng', cpu: 95.2, memory: 52_428_800 }, { pid: 17, name: 'node', cpu: 2, memory: 104_857_600 }] },
    ...over,
  };
}

const fired = (over: Partial<Alert> = {}, device = 'pi-kitchen', rule = 'High CPU') =>
  notification({ event: 'fired', alert: alertOf(over), rule: { id: 'rule_1', name: rule }, device: { id: 'dev_1', name: device }, now: NOW });

const body = (ch: Channel, n = fired()) => JSON.parse(channelRequest(ch, n).init.body);

describe('the notification', () => {
  it('is AlertNotificationSchema, and its text names the device, the rule, the level, the value vs threshold and the top processes', () => {
    const n = fired();
    expect(AlertNotificationSchema.parse(n)).toEqual(n);
    expect(n.sent_at).toBe('2026-12-01T12:00:00.000Z');
    expect(n.text).toContain('pi-kitchen');
    expect(n.text).toContain('High CPU');
    expect(n.text).toContain('CRITICAL');
    expect(n.text).toContain('97.5 %');
    expect(n.text).toContain('90 %');
    expect(n.text).toContain('stress-ng (pid 4242): 95.2 % CPU, 50 MiB');
    expect(n.text).toContain('node (pid 17)');
  });

  it('says resolved for a resolved alert, and test for a test', () => {
    const r = notification({ event: 'resolved', alert: alertOf({ state: 'resolved' }), rule: { id: 'r', name: 'High CPU' }, device: { id: 'd', name: 'pi' }, now: NOW });
    expect(r.text).toMatch(/^RESOLVED: High CPU on pi/);
    expect(r.text).toContain('back under 90 %');
    const t = notification({ event: 'test', alert: null, rule: { id: 'r', name: 'High CPU' }, device: null, now: NOW });
    expect(t.text).toMatch(/^Test: High CPU/);
  });
});

describe('each format', () => {
  it('webhook: POST our JSON with its own headers', () => {
    const n = fired();
    const req = channelRequest({ type: 'webhook', url: 'https://hooks.example.com/in/abc', headers: { 'X-Token': 'sekrit-value' } }, n);
    expect(req.url).toBe('https://hooks.example.com/in/abc');
    expect(req.init.method).toBe('POST');
    expect(req.init.headers['content-type']).toBe('application/json');
    expect(req.init.headers['X-Token']).toBe('sekrit-value');
    expect(JSON.parse(req.init.body)).toEqual(n);
  });

  it('slack: {text, blocks} with a mrkdwn section, escaping &, < and > so "<!channel>" pings nobody', () => {
    const b = body({ type: 'slack', url: 'https://hooks.slack.com/services/T0/B0/XXXX' }, fired({}, '<!channel> & co'));
    expect(typeof b.text).toBe('string');
    expect(b.blocks[0]).toMatchObject({ type: 'section', text: { type: 'mrkdwn' } });
    expect(b.blocks[0].text.text).toContain('&lt;!channel&gt; &amp; co');
    expect(b.blocks[0].text.text).toContain('stress-ng');
    expect(JSON.stringify(b)).not.toContain('<!channel>');
    expect(b.blocks[0].text.text.length).toBeLessThanOrEqual(3000);
  });

  it("discord: {content, embeds:[{title, description, color, fields, timestamp}]}, no mentions parsed, within Discord's limits", () => {
    const b = body({ type: 'discord', url: 'https://discord.com/api/webhooks/1/abc' }, fired({}, '@everyone'));
    expect(b.allowed_mentions).toEqual({ parse: [] });
    const [e] = b.embeds;
    expect(e.color).toBe(0xd93025);
    expect(e.timestamp).toBe('2026-12-01T12:00:00.000Z');
    expect(e.fields).toEqual(expect.arrayContaining([{ name: 'Device', value: '@everyone', inline: true }, { name: 'Level', value: 'critical', inline: true }]));
    expect(e.fields.find((f: { name: string }) => f.name.startsWith('Top processes')).value).toContain('stress-ng');
    // A warning is amber, a resolved green.
    expect(body({ type: 'discord', url: 'https://discord.com/api/webhooks/1/abc' }, fired({ level: 'warning' })).embeds[0].color).toBe(0xf9a825);
    const long = fired({ type: 'process', value: null, threshold: null, message: 'm'.repeat(5000), cause: { processes: Array.from({ length: 5 }, (_, i) => ({ pid: i + 1, name: 'p'.repeat(250), cpu: 1, memory: 1 })) } }, 'd'.repeat(3000), 'r'.repeat(100));
    const lb = body({ type: 'discord', url: 'https://discord.com/api/webhooks/1/abc' }, long);
    expect(lb.content.length).toBeLessThanOrEqual(2000);
    expect(lb.embeds[0].title.length).toBeLessThanOrEqual(256);
    expect(lb.embeds[0].description.length).toBeLessThanOrEqual(4096);
    const e0 = lb.embeds[0];
    expect(e0.title.length + e0.description.length + e0.fields.reduce((n: number, f: { name: string; value: string }) => n + f.name.length + f.value.length, 0)).toBeLessThanOrEqual(6000);
    for (const f of lb.embeds[0].fields) expect(f.value.length).toBeLessThanOrEqual(1024);
  });

  it('ntfy: POST the text to the topic, Title/Priority/Tags by level, the token as Bearer', () => {
    const ch: Channel = { type: 'ntfy', url: 'https://ntfy.sh/pirelay-alerts', token: 'tk_secret123' };
    const req = channelRequest(ch, fired());
    expect(req.url).toBe('https://ntfy.sh/pirelay-alerts');
    expect(req.init.body).toBe(fired().text);
    expect(req.init.headers).toMatchObject({ title: 'CRITICAL: High CPU on pi-kitchen', priority: '5', tags: 'rotating_light', authorization: 'Bearer tk_secret123' });
    expect(channelRequest(ch, fired({ level: 'warning' })).init.headers).toMatchObject({ priority: '4', tags: 'warning' });
    const resolved = notification({ event: 'resolved', alert: alertOf(), rule: { id: 'r', name: 'x' }, device: { id: 'd', name: 'pi' }, now: NOW });
    expect(channelRequest(ch, resolved).init.headers).toMatchObject({ priority: '3', tags: 'white_check_mark' });
    // No token: no Authorization. A channel's own priority replaces the level's while firing.
    expect(channelRequest({ type: 'ntfy', url: 'https://ntfy.sh/t', priority: 2 }, fired()).init.headers).not.toHaveProperty('authorization');
    expect(channelRequest({ type: 'ntfy', url: 'https://ntfy.sh/t', priority: 2 }, fired()).init.headers.priority).toBe('2');
  });

  it('ntfy: a title that is not ASCII goes as RFC 2047 UTF-8 (a header cannot carry it raw)', () => {
    const t = channelRequest({ type: 'ntfy', url: 'https://ntfy.sh/t' }, fired({}, 'küche-π')).init.headers.title!;
    const m = /^=\?UTF-8\?B\?(.+)\?=$/.exec(t);
    expect(m).not.toBeNull();
    expect(new TextDecoder().decode(Uint8Array.from(atob(m![1]!), (c) => c.charCodeAt(0)))).toBe('CRITICAL: High CPU on küche-π');
    expect(() => new Headers({ title: t })).not.toThrow();
  });

  it('telegram: POST {api}/bot<token>/sendMessage {chat_id, text, parse_mode: HTML, disable_web_page_preview}, with HTML escaped', () => {
    const token = '123456:ABCdefGHIjklMNOpqrSTUvwx';
    const req = channelRequest({ type: 'telegram', bot_token: token, chat_id: '-100200' }, fired({}, '<b>evil</b> & co'));
    expect(req.url).toBe(`https://api.telegram.org/bot${token}/sendMessage`);
    const b = JSON.parse(req.init.body);
    expect(b).toMatchObject({ chat_id: '-100200', parse_mode: 'HTML', disable_web_page_preview: true });
    expect(b.text).toMatch(/^<b>CRITICAL: High CPU on &lt;b&gt;evil&lt;\/b&gt; &amp; co<\/b>\n/);
    expect(b.text).not.toContain('<b>evil</b>');
    expect(channelRequest({ type: 'telegram', bot_token: token, chat_id: '1', api_url: 'https://tg.example.org/' }, fired()).url).toBe(`https://tg.example.org/bot${token}/sendMessage`);
    expect(channelHost({ type: 'telegram', bot_token: token, chat_id: '1' })).toBe('api.telegram.org');
  });
});

describe('targets', () => {
  it('refuses loopback, private, link-local and local names, in every disguise the URL parser undoes', () => {
    for (const url of [
      'http://localhost:9/x',
      'http://foo.localhost/x',
      'http://127.0.0.1/x',
      'http://127.1/x',
      'http://0x7f.1/x',
      'http://2130706433/x',
      'http://0.0.0.0/x',
      'http://10.1.2.3/x',
      'http://172.20.0.1/x',
      'http://192.168.1.1/x',
      'http://169.254.169.254/latest/meta-data',
      'http://100.64.0.1/x',
      'http://[::1]/x',
      'http://[::ffff:127.0.0.1]/x',
      'http://[fd00::1]/x',
      'http://[fe80::1]/x',
      'http://printer.local/x',
      'http://metadata.google.internal/x',
    ]) {
      expect(targetRefusal(url, false), url).toMatch(/local or private/);
      expect(targetRefusal(url, true), url).toBeNull();
    }
    for (const url of ['https://hooks.slack.com/services/x', 'https://8.8.8.8/x', 'https://172.32.0.1/x', 'https://[2606:4700::1111]/x']) expect(targetRefusal(url, false), url).toBeNull();
    expect(targetRefusal('https://user:pw@hooks.example.com/x', true)).toMatch(/credentials/);
    expect(targetRefusal('ftp://example.com/x', true)).toMatch(/http/);
  });

  it("scrubs a channel's secrets and every URL's path out of an error text", () => {
    const text = scrub('POST https://hooks.slack.com/services/T0/B0/SEKRIT failed; token tk_abcdef123 rejected; see https://api.slack.com/docs?x=1', ['tk_abcdef123', 'SEKRIT']);
    expect(text).not.toContain('SEKRIT');
    expect(text).not.toContain('tk_abcdef123');
    expect(text).not.toContain('/services');
    expect(text).toContain('https://hooks.slack.com/…');
  });
});
