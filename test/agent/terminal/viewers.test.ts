// Several viewers of one session: the owner types, the others watch and are told so; a read-only
// viewer's keystrokes are refused with READ_ONLY (once per burst), never typed; the owner hands
// typing to a viewer holding terminal:share (the requester is told handed_over), the typist can
// pass it on, the owner takes it back; a handover to a viewer without terminal:share, or by
// someone who is neither owner nor typist, is NOT_ALLOWED; when the typist leaves, typing goes
// back to the owner's viewer, else to nobody until the owner attaches. Only the typist resizes.
import { afterEach, describe, expect, test } from 'bun:test';
import { rig, sleep, until } from './helpers.ts';

let current: ReturnType<typeof rig> | null = null;
afterEach(async () => {
  await current?.cleanup();
  current = null;
});

describe('terminal: viewers and the typist', () => {
  test('two viewers, one writer: both see the output, the read-only one is refused and told who types', async () => {
    const r = (current = rig());
    const owner = await r.open({ name: 'Olga' });
    await owner.waitControl('attached');
    const watcher = await r.open({ session: owner.session, user: 'watcher-1', name: 'Walt', may_share: true });
    await watcher.waitControl('attached');
    expect(watcher.attached.typing).toBe(false);
    expect(watcher.attached.session.typist?.name).toBe('Olga');
    // The owner's viewer hears that someone joined.
    const joined = await owner.waitControl('session', (s) => s.session.viewers.length === 2);
    expect(joined.typing).toBe(true);
    expect(joined.session.viewers.map((v) => [v.name, v.typing, v.may_share])).toEqual([
      ['Olga', true, false],
      ['Walt', false, true],
    ]);

    await owner.run('echo from-the-owner');
    await watcher.waitFor('from-the-owner');
    const from = watcher.text.length;
    await watcher.type('touch /tmp/should-not-exist-pirelay; echo SNEAKY\r');
    await watcher.type('more keys');
    const error = await watcher.waitControl('error');
    expect(error).toEqual({ t: 'error', code: 'READ_ONLY', message: expect.stringContaining('Olga types') });
    await sleep(200);
    expect(watcher.of('error')).toHaveLength(1); // one error per burst
    await owner.run('true');
    expect(owner.text).not.toContain('SNEAKY');
    expect(watcher.text.slice(from)).not.toContain('SNEAKY');
    // Still refused after the burst window, and told again.
    await sleep(1100);
    await watcher.type('x');
    await until(() => watcher.of('error').length === 2, 'a second READ_ONLY');
  });

  test('a handover: the owner hands typing to a viewer with terminal:share, who types; the owner takes it back', async () => {
    const r = (current = rig());
    const owner = await r.open({ name: 'Olga' });
    await owner.waitControl('attached');
    const helper = await r.open({ session: owner.session, user: 'helper-1', name: 'Hal', may_share: true });
    await helper.waitControl('attached');
    await owner.control({ t: 'handover', to: helper.spec.viewer.id });
    expect(await owner.waitControl('handed_over')).toEqual({ t: 'handed_over', from: { user_id: 'owner-1', name: 'Olga' }, to: { user_id: 'helper-1', name: 'Hal' } });
    await helper.waitControl('session', (s) => s.typing);
    await owner.waitControl('session', (s) => !s.typing && s.session.typist?.name === 'Hal');
    expect(await helper.run('echo typed-by-hal')).toContain('typed-by-hal');
    // The owner is read-only now.
    await owner.type('echo NOPE\r');
    expect((await owner.waitControl('error')).code).toBe('READ_ONLY');
    // Only the typist's resize counts.
    await owner.control({ t: 'resize', cols: 100, rows: 30 });
    await owner.waitControl('size', (s) => s.cols === 80);
    await helper.control({ t: 'resize', cols: 100, rows: 30 });
    await owner.waitControl('size', (s) => s.cols === 100 && s.rows === 30);
    await owner.control({ t: 'take' });
    expect((await owner.waitControl('handed_over', (h) => h.to.user_id === 'owner-1')).from).toEqual({ user_id: 'helper-1', name: 'Hal' });
    await helper.waitControl('session', (s) => !s.typing);
    expect(await owner.run('echo owner-again')).toContain('owner-again');
    expect(owner.text).not.toContain('NOPE\r\n');
  });

  test('refused: a handover to a viewer without terminal:share, by a read-only viewer, to nobody; take by a non-owner', async () => {
    const r = (current = rig());
    const owner = await r.open();
    await owner.waitControl('attached');
    const plain = await r.open({ session: owner.session, user: 'plain-1', may_share: false });
    const sharer = await r.open({ session: owner.session, user: 'sharer-1', may_share: true });
    await plain.waitControl('attached');
    await sharer.waitControl('attached');
    await owner.control({ t: 'handover', to: plain.spec.viewer.id });
    expect((await owner.waitControl('error')).code).toBe('NOT_ALLOWED');
    await sharer.control({ t: 'handover', to: sharer.spec.viewer.id });
    expect((await sharer.waitControl('error')).code).toBe('NOT_ALLOWED');
    await plain.control({ t: 'take' });
    expect((await plain.waitControl('error')).code).toBe('NOT_ALLOWED');
    await plain.control({ t: 'close' });
    await until(() => plain.of('error').length === 2, 'close refused');
    await owner.control({ t: 'handover', to: 'no-such-viewer-id' });
    await until(() => owner.of('error').length === 2, 'handover to nobody refused');
    expect(owner.of('handed_over')).toEqual([]);
    expect(owner.typing).toBe(true);
  });

  test('the typist passes typing on; when it leaves, typing goes back to the owner, else to nobody until the owner attaches', async () => {
    const r = (current = rig());
    const owner = await r.open();
    await owner.waitControl('attached');
    const a = await r.open({ session: owner.session, user: 'a-1', may_share: true });
    const b = await r.open({ session: owner.session, user: 'b-1', may_share: true });
    await a.waitControl('attached');
    await b.waitControl('attached');
    await owner.control({ t: 'handover', to: a.spec.viewer.id });
    await a.waitControl('session', (s) => s.typing);
    await a.control({ t: 'handover', to: b.spec.viewer.id });
    expect(await a.waitControl('handed_over')).toMatchObject({ from: { user_id: 'a-1' }, to: { user_id: 'b-1' } });
    await b.waitControl('session', (s) => s.typing);
    await b.close();
    await owner.waitControl('session', (s) => s.typing && s.session.viewers.length === 2);
    // Now the owner leaves while c (another sharer) types: nobody types until the owner is back.
    const c = await r.open({ session: owner.session, user: 'c-1', may_share: true });
    await c.waitControl('attached');
    await owner.control({ t: 'handover', to: c.spec.viewer.id });
    await c.waitControl('session', (s) => s.typing);
    await owner.close();
    await c.close();
    await a.waitControl('session', (s) => s.session.viewers.length === 1 && s.session.typist === null);
    await a.type('x');
    expect((await a.waitControl('error')).message).toContain('nobody types');
    const back = await r.open({ session: owner.session });
    await back.waitControl('attached');
    expect(back.attached.typing).toBe(true);
    await a.waitControl('session', (s) => s.session.typist?.id === back.spec.viewer.id);
  });

  test('a viewer id attaching again replaces its old stream and keeps its typing', async () => {
    const r = (current = rig());
    const first = await r.open({ id: 'tab-0000001' });
    await first.waitControl('attached');
    const again = await r.open({ id: 'tab-0000001', session: first.session });
    await again.waitControl('attached');
    expect(again.attached.typing).toBe(true);
    await until(() => first.ended !== null, 'the old stream to end');
    expect(again.attached.session.viewers).toHaveLength(1);
  });
});
