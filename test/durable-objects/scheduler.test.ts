// The hub's scheduler: many named deadlines on the one alarm, kept in storage (a restarted hub —
// a new Scheduler over the same storage — still knows them), each fired once when due; one kept
// at the earliest of many times with atOrBefore.
import { env, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { Scheduler } from '../../durable-objects/hub/scheduler.ts';


describe('Scheduler', () => {
  it('sets the one alarm to the earliest deadline, fires only what is due, and keeps the rest across a restart', async () => {
    await runInDurableObject(env.DEVICE_HUB.get(env.DEVICE_HUB.idFromName('sched-1')), async (_i, state) => {
      const fired: string[] = [];
      const handlers = { a: () => void fired.push('a'), b: () => void fired.push('b'), c: () => void fired.push('c') };
      const s = new Scheduler(state.storage, handlers);
      const t0 = Date.now() + 60_000;
      await s.at('b', t0 + 2000);
      await s.at('a', t0 + 1000);
      await s.at('c', t0 + 3000);
      expect(await state.storage.getAlarm()).toBe(t0 + 1000);
      await s.cancel('a');
      expect(await state.storage.getAlarm()).toBe(t0 + 2000);

      // A new instance over the same storage: what a restarted or woken hub sees.
      const restarted = new Scheduler(state.storage, handlers);
      expect(await restarted.when('b')).toBe(t0 + 2000);
      await restarted.run(t0 + 2500);
      expect(fired).toEqual(['b']);
      expect(await restarted.when('b')).toBeNull();
      expect(await state.storage.getAlarm()).toBe(t0 + 3000);
      await restarted.run(t0 + 2600);
      expect(fired).toEqual(['b']);
      await restarted.run(t0 + 3000);
      expect(fired).toEqual(['b', 'c']);
      expect(await state.storage.getAlarm()).toBeNull();
    });
  });

  it('lets a handler set its own deadline again, and one failing handler does not stop the others', async () => {
    await runInDurableObject(env.DEVICE_HUB.get(env.DEVICE_HUB.idFromName('sched-2')), async (_i, state) => {
      const fired: string[] = [];
      const s: Scheduler = new Scheduler(state.storage, {
        beat: async (now) => {
          fired.push('beat');
          await s.at('beat', now + 500);
        },
        broken: () => {
          throw new Error('boom');
        },
        after: () => void fired.push('after'),
      });
      const t0 = Date.now() + 60_000;
      await s.at('broken', t0);
      await s.at('beat', t0);
      await s.at('after', t0);
      await s.run(t0);
      expect(fired).toEqual(['beat', 'after']);
      expect(await s.when('beat')).toBe(t0 + 500);
      expect(await s.when('broken')).toBeNull();
      expect(await state.storage.getAlarm()).toBe(t0 + 500);
    });
  });

  it('atOrBefore keeps the earlier of its times (the earliest of many expiries), whatever the order they come in', async () => {
    await runInDurableObject(env.DEVICE_HUB.get(env.DEVICE_HUB.idFromName('sched-3')), async (_i, state) => {
      const s = new Scheduler(state.storage, { next: () => {} });
      const t0 = Date.now() + 60_000;
      await s.atOrBefore('next', t0 + 2000);
      await s.atOrBefore('next', t0 + 3000);
      expect(await s.when('next')).toBe(t0 + 2000);
      await s.atOrBefore('next', t0 + 1000);
      expect(await s.when('next')).toBe(t0 + 1000);
      expect(await state.storage.getAlarm()).toBe(t0 + 1000);
    });
  });
});
