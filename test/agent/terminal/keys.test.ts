// Control keys are bytes into the PTY: Ctrl-C interrupts, Ctrl-Z stops (the shell says so), Ctrl-D
// at an empty prompt ends the shell (every viewer gets exit). And bad input from a viewer: a text
// message that is not JSON or not a control is answered BAD_MESSAGE (the session goes on); a
// record over the cap resets that viewer's stream PROTOCOL_ERROR, and only that one.
import { afterEach, describe, expect, test } from 'bun:test';
import { TERMINAL_MAX_RECORD } from '../../../shared/protocol/terminal.ts';
import { encodeWsRecord, WsRecordKind } from '../../../shared/protocol/ws-records.ts';
import { rig, sleep, until } from './helpers.ts';

let current: ReturnType<typeof rig> | null = null;
afterEach(async () => {
  await current?.cleanup();
  current = null;
});

describe('terminal: control keys', () => {
  test('Ctrl-C interrupts sleep 100', async () => {
    const r = (current = rig());
    const v = await r.open();
    await v.waitControl('attached');
    await v.run('true');
    await v.type('sleep 100\r');
    await sleep(300);
    const from = v.text.length;
    await v.type(new Uint8Array([0x03]));
    expect(await v.waitFor('^C', 10_000, from)).toBeTruthy();
    expect(await v.run('echo "status=$?"')).toContain('status=130');
  });

  test('Ctrl-Z stops sleep 100 with the shell\'s job message; fg and Ctrl-C end it', async () => {
    const r = (current = rig());
    const v = await r.open();
    await v.waitControl('attached');
    await v.run('true');
    await v.type('sleep 100\r');
    await sleep(300);
    await v.type(new Uint8Array([0x1a]));
    await v.waitFor(/\[1\]\+\s+Stopped\s+sleep 100/);
    expect(await v.run('jobs')).toMatch(/Stopped\s+sleep 100/);
    await v.type('fg\r');
    await sleep(200);
    await v.type(new Uint8Array([0x03]));
    expect(await v.run('jobs; echo none-left')).not.toMatch(/Stopped/);
  });

  test('Ctrl-D at an empty prompt exits the shell: exit, then the stream ends', async () => {
    const r = (current = rig());
    const v = await r.open();
    await v.waitControl('attached');
    await v.run('true');
    await v.type(new Uint8Array([0x04]));
    expect(await v.waitControl('exit')).toEqual({ t: 'exit', code: 0, signal: null, reason: 'exited' });
    await until(() => v.ended === 'fin', 'the stream to end');
  });
});

describe('terminal: bad input from a viewer', () => {
  test('not JSON, not a control, a wrong field: BAD_MESSAGE each, and the session goes on', async () => {
    const r = (current = rig());
    const v = await r.open();
    await v.waitControl('attached');
    await v.control({ t: 'resize', cols: 'wide', rows: 10 });
    await v.control({ t: 'explode' });
    await v.control({ t: 'take', extra: true });
    await v.control({ t: 'resize', cols: -1, rows: 10 });
    await v.control({ t: 'handover', to: 'bad id with spaces' });
    await v.raw(encodeWsRecord(WsRecordKind.TEXT, '{not json'));
    await v.raw(encodeWsRecord(WsRecordKind.TEXT, '"a string"'));
    await until(() => v.of('error').length === 7, 'seven errors');
    expect(v.of('error').every((e) => e.code === 'BAD_MESSAGE')).toBe(true);
    expect(await v.run('echo still-fine')).toContain('still-fine');
  });

  test('a record over the cap resets that stream PROTOCOL_ERROR; the session and other viewers go on', async () => {
    const r = (current = rig());
    const a = await r.open();
    await a.waitControl('attached');
    const b = await r.open({ session: a.session, user: 'other' });
    await b.waitControl('attached');
    const header = new Uint8Array(5);
    header[0] = WsRecordKind.BINARY;
    new DataView(header.buffer).setUint32(1, TERMINAL_MAX_RECORD + 1, false);
    await b.raw(header);
    await until(() => b.ended !== null, 'the stream to be reset');
    expect(b.ended).toBe('PROTOCOL_ERROR');
    expect(await a.run('echo a-goes-on')).toContain('a-goes-on');
    // A record of an unknown kind too.
    const c = await r.open({ session: a.session, user: 'third' });
    await c.waitControl('attached');
    await c.raw(new Uint8Array([9, 0, 0, 0, 1, 0]));
    await until(() => c.ended === 'PROTOCOL_ERROR', 'the stream to be reset');
  });
});
