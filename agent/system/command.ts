// Runs a short helper program (vcgencmd) and returns its stdout. Injectable so tests and the
// simulated backend never spawn anything, and bounded by a timeout so a wedged firmware mailbox
// cannot hold up a device_info reply.
export type RunCommand = (argv: readonly string[]) => Promise<string>;

export function createRunCommand(timeoutMs = 2_000): RunCommand {
  return async (argv) => {
    const child = Bun.spawn([...argv], {
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'ignore',
      timeout: timeoutMs,
    });
    const [stdout, exitCode] = await Promise.all([new Response(child.stdout).text(), child.exited]);
    if (exitCode !== 0) throw new Error(`${argv[0]} exited with ${exitCode}`);
    return stdout;
  };
}
