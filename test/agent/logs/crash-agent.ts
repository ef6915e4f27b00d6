// A logs-only agent for the crash test: follows the journal through the fake journalctl, and its
// "hub" stores every batch by appending it to a file before acknowledging it — as the real hub
// stores before it acks. The test kills it with SIGKILL at any moment and starts another.
import { appendFileSync } from 'node:fs';
import { logsCapability } from '../../../agent/logs/index.ts';
import { quietLogger } from '../tunnels/helpers.ts';

const [stateDir, journalctl, out] = process.argv.slice(2) as [string, string, string];
const cap = logsCapability({ log: quietLogger(), options: { journal: 'auto', files: [], stateDir, spoolBytes: 8 * 1024 * 1024, journalctl }, shipIntervalMs: 20 });
await cap.ready;
cap.onHello!((message) => {
  appendFileSync(out, JSON.stringify(message) + '\n');
  const { boot, seq } = message as { boot: string; seq: number };
  setTimeout(() => cap.messages!.logs_ack!({ t: 'logs_ack', boot, seq }), 5);
  return true;
});
setInterval(() => {}, 1_000);
