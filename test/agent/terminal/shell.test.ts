// What a session runs, worked out without spawning: the account's login shell as a login shell,
// --terminal-command through /bin/sh -c, another account through setpriv (root only), a clean
// environment; and the flags' refusals at start (another account without root, no such account).
import { describe, expect, test } from 'bun:test';
import { terminalOptions } from '../../../agent/terminal/options.ts';
import { parsePasswd, shellPlan, ShellError, type ShellContext } from '../../../agent/terminal/shell.ts';

const PASSWD = [
  'root:x:0:0:root:/root:/bin/bash',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  '# a comment',
  'pi:x:1000:1000:Pi,,,:/home/pi:/usr/bin/zsh',
  'broken:line',
  'nosh:x:1001:1001::/home/nosh:',
].join('\n');
const accounts = parsePasswd(PASSWD);
const env = { PATH: '/usr/bin:/bin', LANG: 'en_GB.UTF-8', SECRET_TOKEN: 'do-not-leak', SHELL: '/bin/fish', HOME: '/elsewhere', TZ: 'Europe/London' };
const ctx = (uid: number, setpriv: string | null = '/usr/bin/setpriv'): ShellContext => ({ uid, accounts, env, setpriv });

describe('terminal: the shell plan', () => {
  test('passwd parsing skips comments and malformed lines', () => {
    expect(accounts.map((a) => a.name)).toEqual(['root', 'daemon', 'pi', 'nosh']);
    expect(accounts[2]).toEqual({ name: 'pi', uid: 1000, gid: 1000, home: '/home/pi', shell: '/usr/bin/zsh' });
  });

  test("the agent's own account: its login shell from passwd, as a login shell, in its home, with a clean environment", () => {
    const plan = shellPlan({}, ctx(1000));
    expect(plan).toEqual({
      argv: ['/usr/bin/zsh', '-l'],
      command: ['/usr/bin/zsh', '-l'],
      user: 'pi',
      cwd: '/home/pi',
      env: { PATH: '/usr/bin:/bin', LANG: 'en_GB.UTF-8', TZ: 'Europe/London', TERM: 'xterm-256color', COLORTERM: 'truecolor', HOME: '/home/pi', USER: 'pi', LOGNAME: 'pi', SHELL: '/usr/bin/zsh' },
    });
    expect(JSON.stringify(plan)).not.toContain('do-not-leak');
  });

  test('no shell in passwd: $SHELL for our own account, else /bin/sh; a nologin shell is not used', () => {
    expect(shellPlan({}, ctx(1001)).command).toEqual(['/bin/fish', '-l']);
    expect(shellPlan({}, { ...ctx(1001), env: { PATH: '/bin' } }).command).toEqual(['/bin/sh', '-l']);
    expect(shellPlan({}, { ...ctx(1001), env: {} }).env).toMatchObject({ PATH: expect.stringContaining('/usr/bin'), LANG: 'C.UTF-8' });
    expect(shellPlan({}, ctx(1)).command).toEqual(['/bin/fish', '-l']);
  });

  test('--terminal-command runs through /bin/sh -c', () => {
    const options = terminalOptions({ 'terminal-command': 'htop -d 10' }, { uid: 1000, name: 'pi', accounts });
    expect(options).toEqual({ ok: true, options: { idleMs: 600_000, command: ['/bin/sh', '-c', 'htop -d 10'] } });
    if (!options.ok) throw new Error('refused');
    expect(shellPlan(options.options, ctx(1000))).toMatchObject({ argv: ['/bin/sh', '-c', 'htop -d 10'], command: ['/bin/sh', '-c', 'htop -d 10'], user: 'pi' });
  });

  test('--terminal-user as root: setpriv with the account ids and its groups, the shell in place; the account\'s home and shell', () => {
    const plan = shellPlan({ user: 'pi' }, ctx(0));
    expect(plan.argv).toEqual(['/usr/bin/setpriv', '--reuid=1000', '--regid=1000', '--init-groups', '--', '/usr/bin/zsh', '-l']);
    expect(plan.command).toEqual(['/usr/bin/zsh', '-l']);
    expect(plan).toMatchObject({ user: 'pi', cwd: '/home/pi', env: { HOME: '/home/pi', USER: 'pi', LOGNAME: 'pi', SHELL: '/usr/bin/zsh' } });
    // Naming the agent's own account needs no wrapper.
    expect(shellPlan({ user: 'root' }, ctx(0)).argv).toEqual(['/bin/bash', '-l']);
  });

  test('refused at the session: an unknown account, another account without root, no setpriv', () => {
    expect(() => shellPlan({ user: 'ghost' }, ctx(0))).toThrow(ShellError);
    expect(() => shellPlan({ user: 'root' }, ctx(1000))).toThrow(/not root/);
    expect(() => shellPlan({ user: 'pi' }, ctx(0, null))).toThrow(/setpriv/);
  });

  test('refused at start by the flags: another account when the agent is not root, an unknown account, bad values', () => {
    const asPi = { uid: 1000, name: 'pi', accounts };
    expect(terminalOptions({ 'terminal-user': 'root' }, asPi)).toEqual({ ok: false, message: expect.stringContaining('needs the agent to run as root') });
    expect(terminalOptions({ 'terminal-user': 'pi' }, asPi)).toEqual({ ok: true, options: { idleMs: 600_000, user: 'pi' } });
    expect(terminalOptions({ 'terminal-user': 'ghost' }, { uid: 0, name: 'root', accounts })).toEqual({ ok: false, message: expect.stringContaining('no such account') });
    expect(terminalOptions({ 'terminal-user': 'pi' }, { uid: 0, name: 'root', accounts })).toMatchObject({ ok: true, options: { user: 'pi' } });
    expect(terminalOptions({ 'terminal-user': 'a b' }, asPi).ok).toBe(false);
    expect(terminalOptions({ 'terminal-command': '  ' }, asPi).ok).toBe(false);
    expect(terminalOptions({ 'terminal-idle-ms': '10' }, asPi).ok).toBe(false);
    expect(terminalOptions({ 'terminal-idle-ms': '5000' }, asPi)).toEqual({ ok: true, options: { idleMs: 5000 } });
  });
});

describe.if(process.getuid?.() === 0 && Bun.which('setpriv') !== null)('terminal: another account, for real (root only)', () => {
  test('the session runs as nobody', async () => {
    const { rig } = await import('./helpers.ts');
    const r = rig({ user: 'nobody', command: ['/bin/sh', '-i'] });
    try {
      const v = await r.open();
      await v.waitControl('attached');
      expect(v.attached.session.user).toBe('nobody');
      await v.type('id -un; echo DO""NE\r');
      expect(await v.waitFor('DONE')).toMatch(/nobody/);
    } finally {
      await r.cleanup();
    }
  });
});
