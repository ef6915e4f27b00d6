// Run in a fresh Bun process by idle.test.ts: builds the agent's capabilities exactly as `run`
// does and prints which KVM modules are loaded, and which files exist, idle and after calls.
import { readdirSync, existsSync } from 'node:fs';
import { agentCapabilities } from '../../../agent/capabilities.ts';
import { registry } from '../../../agent/capability.ts';
import { dispatchRpc } from '../../../agent/rpc.ts';
import { createSystemReader } from '../../../agent/system/reader.ts';

const hidDir = process.argv[2]!;
const log = { debug() {}, info() {}, warn() {}, error() {} };
const WATCHED = ['agent/kvm/service.ts', 'agent/kvm/hid-stream.ts', 'agent/kvm/gadget.ts', 'agent/kvm/screen/select.ts', 'agent/kvm/screen/stream.ts', 'shared/hid/typing.ts'];
const snapshot = () => ({
  loaded: WATCHED.filter((m) => Object.keys(require.cache).some((k) => k.endsWith(`/${m}`))),
  files: existsSync(hidDir) ? readdirSync(hidDir).sort() : [],
});

const caps = registry(agentCapabilities({ log, system: createSystemReader(), simulate: true, kvm: { hidDir, screen: 'none', videoDevice: '/dev/null' }, terminal: { idleMs: 600_000 } }));
caps.hello(log, () => true);
caps.gone(log);
const idle = snapshot();
const status = await dispatchRpc(caps.rpc, 'kvm_status', {});
const afterStatus = snapshot();
const typed = await dispatchRpc(caps.rpc, 'hid_type_start', { text: 'ok', layout: 'en-US' });
if (typed.ok) {
  const id = (typed.result as { id: string }).id;
  for (let i = 0; i < 500; i++) {
    const s = await dispatchRpc(caps.rpc, 'hid_type_status', { job: id });
    if (s.ok && (s.result as { state: string }).state !== 'typing') break;
    await new Promise((r) => setTimeout(r, 10));
  }
}
const afterType = snapshot();
const keyboard = existsSync(`${hidDir}/hidg0`) ? [...(await Bun.file(`${hidDir}/hidg0`).bytes())] : [];
console.log(JSON.stringify({ idle, status, afterStatus, typed: typed.ok, afterType, keyboard }));
