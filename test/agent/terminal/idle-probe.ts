// Run in a fresh Bun process by idle.test.ts: builds the agent's capabilities exactly as `run`
// does and prints whether the terminal's modules and the terminal emulator are loaded, idle, after
// an RPC, and after the first terminal stream; and whether the emulator's thread runs while the
// session does, and not after.
import { agentCapabilities } from '../../../agent/capabilities.ts';
import { registry } from '../../../agent/capability.ts';
import { dispatchRpc } from '../../../agent/rpc.ts';
import { createSystemReader } from '../../../agent/system/reader.ts';
import { loopback } from '../streams/helpers.ts';

const log = { debug() {}, info() {}, warn() {}, error() {} };
const WATCHED = ['agent/terminal/sessions.ts', 'agent/terminal/session.ts', 'agent/terminal/screen.ts', '@xterm/headless', '@xterm/addon-serialize'];
const loaded = () => WATCHED.filter((m) => Object.keys(require.cache).some((k) => k.includes(m)));

const stops: (() => Promise<void>)[] = [];
const caps = registry(agentCapabilities({ log, system: createSystemReader(), simulate: true, kvm: { hidDir: '/nonexistent', screen: 'none', videoDevice: '/dev/null' }, terminal: { idleMs: 600_000, command: ['/bin/sh'] }, onStop: (f) => stops.push(f) }));
caps.hello(log, () => true);
caps.gone(log);
const idle = loaded();
const list = await dispatchRpc(caps.rpc, 'terminal_list', {});
const afterList = loaded();
const link = loopback({ agent: { onOpen: (stream, open) => caps.stream(open)!(stream, open) } });
const stream = link.hub.open({ kind: 'terminal', viewer: { id: 'probe-viewer', user_id: 'u', name: 'u', may_share: false }, cols: 80, rows: 24 });
const accepted = await stream.accepted;
const afterOpen = loaded();
// The emulator runs on its own thread: started with the first session, ended with the last.
const { screenThreadRunning } = await import('../../../agent/terminal/screen.ts');
const threadAfterOpen = screenThreadRunning();
await Promise.all(stops.map((f) => f()));
const threadAfterStop = screenThreadRunning();
const afterStop = await dispatchRpc(caps.rpc, 'terminal_list', {});
console.log(JSON.stringify({ idle, list, afterList, status: accepted.status, afterOpen, threadAfterOpen, threadAfterStop, stops: stops.length, afterStop }));
process.exit(0);
