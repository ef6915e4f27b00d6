// Deadlines on one timer: each fires once when due (swept with a clock the test moves), extend()
// starts its wait over, cancel() stops it, and a callback that throws does not stop the others.
import { describe, expect, it } from 'vitest';
import { Deadlines } from '../../durable-objects/capabilities/tunnels/deadlines.ts';

function clocked() {
  let now = 1_000;
  const deadlines = new Deadlines(60_000, () => now); // the timer never fires during a test
  return { deadlines, advance: (ms: number) => (now += ms) };
}

describe('Deadlines', () => {
  it('fires each entry once, when due, and forgets it', () => {
    const { deadlines, advance } = clocked();
    const fired: string[] = [];
    deadlines.add(100, () => fired.push('a'));
    deadlines.add(300, () => fired.push('b'));
    advance(99);
    deadlines.sweep();
    expect(fired).toEqual([]);
    advance(1);
    deadlines.sweep();
    expect(fired).toEqual(['a']);
    advance(500);
    deadlines.sweep();
    deadlines.sweep();
    expect(fired).toEqual(['a', 'b']);
    expect(deadlines.size).toBe(0);
  });

  it('extend() starts the wait over and cancel() ends it', () => {
    const { deadlines, advance } = clocked();
    const fired: string[] = [];
    const slow = deadlines.add(100, () => fired.push('slow'));
    const gone = deadlines.add(100, () => fired.push('gone'));
    advance(80);
    slow.extend();
    gone.cancel();
    advance(80);
    deadlines.sweep();
    expect(fired).toEqual([]);
    advance(20);
    deadlines.sweep();
    expect(fired).toEqual(['slow']);
  });

  it('a callback that throws does not keep the others from firing', () => {
    const { deadlines, advance } = clocked();
    const fired: string[] = [];
    deadlines.add(10, () => {
      throw new Error('boom');
    });
    deadlines.add(10, () => fired.push('second'));
    advance(10);
    expect(() => deadlines.sweep()).not.toThrow();
    expect(fired).toEqual(['second']);
  });

  it('its own timer sweeps while entries are pending', async () => {
    const deadlines = new Deadlines(20);
    const fired = await new Promise<number>((resolve) => {
      const start = Date.now();
      deadlines.add(30, () => resolve(Date.now() - start));
    });
    expect(fired).toBeGreaterThanOrEqual(30);
    expect(deadlines.size).toBe(0);
  });
});
