// A thread that keeps one core busy until its flag is set: the machine as a flood finds it, with
// the program, the agent and its emulator's thread all wanting a core (steady.test.ts).
const port = globalThis as unknown as { onmessage: ((e: MessageEvent<Int32Array>) => void) | null };
port.onmessage = ({ data: flag }) => {
  while (Atomics.load(flag, 0) === 0) for (let i = 0; i < 10_000; i++);
};
