// An agent nobody drives pays nothing for KVM: built as `run` builds it, it has loaded none of the
// kvm service, the gadget and screen modules or the typing tables, and opened no file; the first
// call loads the service and opens the gadgets, the first type job loads the typing tables, and
// the reports land in --hid-dir's hidg0, byte for byte. A fresh process, so nothing is cached.
import { describe, expect, it } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PROBE = join(import.meta.dir, 'idle-probe.ts');

describe('kvm capability: the idle agent', () => {
  it('loads and opens nothing until the first kvm call, then only what that call needs', () => {
    const root = mkdtempSync(join(tmpdir(), 'pirelay-kvm-idle-'));
    try {
      const hidDir = join(root, 'hid');
      const r = Bun.spawnSync([process.execPath, PROBE, hidDir], { stdout: 'pipe', stderr: 'pipe' });
      expect(r.stderr.toString()).toBe('');
      const out = JSON.parse(r.stdout.toString());
      expect(out.idle).toEqual({ loaded: [], files: [] });
      expect(out.status).toMatchObject({ ok: true, result: { held: [], keyboard: { path: join(hidDir, 'hidg0') }, mouse: { path: join(hidDir, 'hidg1') } } });
      expect(out.afterStatus.loaded).toEqual(expect.arrayContaining(['agent/kvm/service.ts', 'agent/kvm/gadget.ts', 'agent/kvm/screen/select.ts']));
      expect(out.afterStatus.loaded).not.toContain('shared/hid/typing.ts');
      expect(out.typed).toBe(true);
      expect(out.afterType.loaded).toContain('shared/hid/typing.ts');
      expect(out.afterType.loaded).not.toContain('agent/kvm/hid-stream.ts');
      expect(out.afterType.files).toContain('hidg0');
      // The release the job starts with, then o and k, each pressed and released.
      const zero = [0, 0, 0, 0, 0, 0, 0, 0];
      expect(out.keyboard).toEqual([...zero, 0, 0, 0x12, 0, 0, 0, 0, 0, ...zero, 0, 0, 0x0e, 0, 0, 0, 0, 0, ...zero]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
