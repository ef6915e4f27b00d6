// Whatever holders do, and however often the gadget fails, the host ends up seeing exactly the
// keys the agent says are held: a seeded random mix of REST holds, two live input streams,
// keystrokes and failing writes, checked after every step against the last report written, and
// all released at the end once every holder is gone.
import { describe, expect, it } from 'bun:test';
import { HID_USAGES, MODIFIER_BITS } from '../../../shared/hid/keycodes.ts';
import { prng } from '../streams/helpers.ts';
import { hex, kvmRig, waitFor } from './helpers.ts';

const KEYS = ['ShiftLeft', 'ControlLeft', 'AltRight', 'KeyA', 'KeyB', 'KeyC', 'KeyD', 'KeyE', 'KeyF', 'KeyG', 'Enter', 'F13'];

/** The report that says exactly `held` (keys in any order). */
function says(report: Uint8Array | undefined, held: string[]): boolean {
  const r = report ?? new Uint8Array(8);
  let modifiers = 0;
  const usages: number[] = [];
  for (const code of held) {
    if (code in MODIFIER_BITS) modifiers |= MODIFIER_BITS[code as keyof typeof MODIFIER_BITS];
    else usages.push(HID_USAGES[code]!);
  }
  const inReport = [...r.subarray(2)].filter((b) => b !== 0).sort();
  return r[0] === modifiers && r[1] === 0 && JSON.stringify(inReport) === JSON.stringify(usages.sort());
}

describe('kvm capability: the host converges to the state', () => {
  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: after every step the last report says what is held`, async () => {
      const rand = prng(seed);
      const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
      const rig = kvmRig();
      const streams = [await rig.hid(), await rig.hid()];
      const sent = [0, 0];
      /** Sends a message, then a line that is no message: its error line says the message was handled. */
      const viaStream = async (i: number, message: object) => {
        const s = streams[i]!;
        await s.send(message, 'sync');
        sent[i]! += 2;
        const n = sent[i]!;
        await s.next('error', (e) => e.code === 'BAD_MESSAGE' && (e.details as { line?: number })?.line === n);
      };
      const sink = rig.gadgets.keyboard;
      let failures = 0;
      for (let step = 0; step < 150; step++) {
        const failing = rand() < 0.3;
        sink.fail = failing ? () => (failures++, 'HID_TIMEOUT') : null;
        const r = rand();
        const code = pick(KEYS);
        if (r < 0.3) await rig.call('hid_key', { action: 'down', code, lease_ms: 60_000 });
        else if (r < 0.5) await rig.call('hid_key', { action: 'up', code });
        else if (r < 0.6) await rig.call('hid_keystroke', { code, modifiers: Math.floor(rand() * 256) });
        else if (r < 0.95) await viaStream(rand() < 0.5 ? 0 : 1, { t: rand() < 0.6 ? 'down' : 'up', code });
        else await viaStream(rand() < 0.5 ? 0 : 1, { t: 'release' });
        sink.fail = null;
        const deadline = Date.now() + 15_000;
        for (;;) {
          const { held } = (await rig.ok('kvm_status')) as { held: string[] };
          if (says(sink.reports.at(-1), held)) break;
          if (Date.now() > deadline) throw new Error(`step ${step}: the host sees ${sink.lastHex()} but the agent holds ${held.join(', ')}`);
          await new Promise((res) => setTimeout(res, 10));
        }
      }
      // The mix did exercise failing writes.
      expect(failures).toBeGreaterThan(3);
      for (const s of streams) await s.close();
      await rig.ok('hid_release');
      await waitFor(() => sink.lastHex() === hex(new Uint8Array(8)), 15_000, 'everything released');
      expect((await rig.ok('kvm_status')).held).toEqual([]);
    }, 60_000);
  }
});
