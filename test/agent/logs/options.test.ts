// The log flags: files as PATH or PATH=NAME (resolved, named), --no-journal, the spool's bound and
// its floor, the state dir beside the config, and $PIRELAY_JOURNALCTL naming another journalctl.
import { describe, expect, it } from 'bun:test';
import { resolve } from 'node:path';
import { DEFAULT_SPOOL_BYTES, logOptions, type LogFlags } from '../../../agent/logs/options.ts';

describe('log options', () => {
  it('reads files, names, the journal switch and the state dir', () => {
    const r = logOptions({ 'log-file': ['/var/log/app.log=app', 'rel.log'], 'no-journal': true }, '/etc/pirelay/agent.json', {});
    expect(r).toEqual({
      ok: true,
      options: {
        journal: 'off',
        files: [
          { path: '/var/log/app.log', name: 'app' },
          { path: resolve('rel.log'), name: 'rel.log' },
        ],
        stateDir: '/etc/pirelay/logs/agent',
        spoolBytes: DEFAULT_SPOOL_BYTES,
      },
    });
  });

  it('gives agents whose configs share a folder a state folder each (the demo devices do)', () => {
    const a = logOptions({}, '/demo/agents/pi-1.json');
    const b = logOptions({}, '/demo/agents/pi-2.json');
    expect(a.ok && a.options.stateDir).toBe('/demo/agents/logs/pi-1');
    expect(b.ok && b.options.stateDir).toBe('/demo/agents/logs/pi-2');
  });

  it('takes another journalctl from the environment', () => {
    const r = logOptions({}, '/c/agent.json', { PIRELAY_JOURNALCTL: '/opt/fake-journalctl' });
    expect(r.ok && r.options).toMatchObject({ journal: 'auto', journalctl: '/opt/fake-journalctl' });
  });

  it('refuses a bad file spec or spool bound, naming the flag', () => {
    for (const [flags, word] of [
      [{ 'log-file': ['=name'] }, '--log-file'],
      [{ 'log-file': ['/a.log='] }, '--log-file'],
      [{ 'log-file': [`/a.log=${'n'.repeat(257)}`] }, '--log-file'],
      [{ 'log-spool-bytes': '1000' }, '--log-spool-bytes'],
      [{ 'log-spool-bytes': 'lots' }, '--log-spool-bytes'],
    ] as [LogFlags, string][]) {
      const r = logOptions(flags, '/c/agent.json', {});
      expect(r.ok).toBe(false);
      expect(!r.ok && r.message).toContain(word);
    }
  });
});
