// The agent as capability modules: hello's capability list is derived from what is registered
// (what the hub saw before the modules: device_info, process_list, tunnels; then the kvm methods), routes are
// claimed once, and the tunnels module serves its first stream through the service it loads then,
// with the table the hub sent before.
import { describe, expect, it } from 'bun:test';
import { agentCapabilities } from '../../agent/capabilities.ts';
import { advertised, registry, type AgentCapability } from '../../agent/capability.ts';
import { createSystemReader } from '../../agent/system/reader.ts';
import { loopback } from './streams/helpers.ts';
import { httpOpen, quietLogger, resetOf, tunnel } from './tunnels/helpers.ts';

const system = createSystemReader();
const kvm = { screen: 'none', videoDevice: '/dev/null', hidDir: '/nonexistent/hid' } as const;
const terminal = { idleMs: 600_000 };
const logs = { journal: 'off', files: [], stateDir: '/nonexistent/logs', spoolBytes: 1 << 20 } as const;
const SYSTEM_METHODS = ['device_info', 'process_list', 'process_get', 'process_signal'];
const TERMINAL_METHODS = ['terminal_list', 'terminal_close'];
const KVM_METHODS = ['kvm_status', 'hid_keystroke', 'hid_key', 'hid_release', 'hid_mouse', 'hid_type_start', 'hid_type_status', 'hid_type_cancel'];

describe('agent capabilities', () => {
  it('hello lists the system, tunnels, kvm and terminal methods and logs, plus simulated under --simulate', () => {
    expect(registry(agentCapabilities({ log: quietLogger(), system, simulate: false, kvm, terminal, logs: { ...logs, files: [] } })).names).toEqual([...SYSTEM_METHODS, 'tunnels', ...KVM_METHODS, ...TERMINAL_METHODS, 'logs']);
    expect(registry(agentCapabilities({ log: quietLogger(), system, simulate: true, kvm, terminal })).names).toEqual([...SYSTEM_METHODS, 'tunnels', ...KVM_METHODS, ...TERMINAL_METHODS, 'simulated']);
  });

  it('a module is known by the RPC methods it serves (never the universal ping), else by its name', () => {
    expect(advertised({ name: 'x', rpc: { ping: () => ({ now: 1 }), process_list: () => ({ processes: [] }) } })).toEqual(['process_list']);
    expect(advertised({ name: 'x', rpc: { ping: () => ({ now: 1 }) } })).toEqual(['x']);
    expect(advertised({ name: 'screen', streams: {} })).toEqual(['screen']);
  });

  it('refuses two modules claiming one RPC method, stream kind or message', () => {
    const serve = () => {};
    const twice = (m: Omit<AgentCapability, 'name'>) => () => registry([{ name: 'a', ...m }, { name: 'b', ...m }]);
    expect(twice({ rpc: { ping: () => ({ now: 1 }) } })).toThrow(/RPC method ping .* b/);
    expect(twice({ streams: { tcp: serve } })).toThrow(/stream kind tcp .* b/);
    expect(twice({ messages: { tunnels: serve } })).toThrow(/message tunnels .* b/);
  });

  it('the tunnels module loads its service with the first stream and applies the table it was sent', async () => {
    const caps = registry(agentCapabilities({ log: quietLogger(), system, simulate: false, kvm, terminal }));
    const tunnels = { t: 'tunnels' as const, tunnels: [tunnel('t1', 'http', 9), tunnel('t2', 'tcp', 9)] };
    caps.message(tunnels)!(tunnels);
    const link = loopback({ agent: { onOpen: (stream, open) => caps.stream(open)!(stream, open) } });
    // Both answers come from the service's checks against the table: a kind that does not fit, a tunnel it lacks.
    expect(await resetOf(link.hub.open({ kind: 'tcp', tunnel: 't1' }, { fin: true }))).toMatchObject({ code: 'KIND_MISMATCH' });
    expect(await resetOf(link.hub.open(httpOpen('t9', 'GET', '/'), { fin: true }))).toMatchObject({ code: 'UNKNOWN_TUNNEL' });
    caps.gone(quietLogger());
  });
});
