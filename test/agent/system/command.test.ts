import { expect, test } from 'bun:test';
import { createRunCommand } from '../../../agent/system/command.ts';

test('returns stdout of a successful command', async () => {
  expect(await createRunCommand()(['echo', "temp=41.2'C"])).toBe("temp=41.2'C\n");
});

test('rejects on a non-zero exit', async () => {
  await expect(createRunCommand()(['sh', '-c', 'echo oops; exit 3'])).rejects.toThrow('sh exited with 3');
});

test('rejects on a missing binary', async () => {
  await expect(createRunCommand()(['/nonexistent/vcgencmd', 'measure_temp'])).rejects.toThrow();
});

test('kills a command that outlives its timeout', async () => {
  const started = performance.now();
  await expect(createRunCommand(100)(['sleep', '5'])).rejects.toThrow();
  expect(performance.now() - started).toBeLessThan(2000);
});
