// Capability "kvm": this device as the USB keyboard and mouse of another computer, and that
// computer's screen. It is opened lazily: the gadgets, the screen and the service that drives
// them (service.ts, with the typing tables it imports on the first type job) are loaded with the
// first KVM call or stream, so an agent nobody drives opens no device and loads none of it.
import { ResetCode } from '../../shared/codes.ts';
import { HOLD_LEASE, KVM_CAPABILITY } from '../../shared/protocol/kvm.ts';
import type { MuxStream } from '../../shared/protocol/mux.ts';
import type { AgentCapability } from '../capability.ts';
import type { Logger } from '../log.ts';
import type { ScreenSource } from './screen/types.ts';
import type { KvmService } from './service.ts';
import type { HidGadgets } from './types.ts';

export interface KvmDeps {
  log: Logger;
  /** Opens the keyboard and mouse gadgets (called once, on first use; may import its module then). */
  gadgets: () => HidGadgets | Promise<HidGadgets>;
  /** Opens the screen backend (called once, on first use). */
  screen: () => ScreenSource | Promise<ScreenSource>;
}

/** Stands in for a screen backend that failed to open, so the keyboard and mouse still work. */
function brokenScreen(e: unknown): ScreenSource {
  const message = `the screen backend failed to open: ${e instanceof Error ? e.message : String(e)}`.slice(0, 1024);
  return { name: 'none', capture: async () => null, state: () => ({ backend: 'none', signal: false, width: null, height: null, message }), close() {} };
}

export function kvmCapability(deps: KvmDeps): AgentCapability {
  const { log } = deps;
  let screenOpened: Promise<ScreenSource> | null = null;
  const screen = () =>
    (screenOpened ??= Promise.resolve()
      .then(deps.screen)
      .catch((e) => {
        log.error('the screen backend failed to open', { error: String(e) });
        return brokenScreen(e);
      }));
  let service: KvmService | null = null;
  let loading: Promise<KvmService> | null = null;

  const load = () =>
    (loading ??= Promise.all([import('./service.ts'), Promise.resolve().then(deps.gadgets), screen()])
      .then(([{ KvmService }, gadgets, screen]) => (service = new KvmService({ log, gadgets, screen })))
      .catch((e) => {
        // A failed open (say, a gadget that cannot be opened at all) is tried again by the next call.
        loading = null;
        throw e;
      }));

  const failed = (stream: MuxStream, what: string) => (e: unknown) => {
    log.error(`the kvm ${what} failed to start`, { error: String(e) });
    stream.reset(ResetCode.INTERNAL_ERROR, `the kvm ${what} failed to start`);
  };

  return {
    name: KVM_CAPABILITY,
    rpc: {
      kvm_status: async () => (await load()).status(),
      hid_keystroke: async ({ code, modifiers }) => (await load()).keystroke(code, modifiers),
      hid_key: async ({ action, code, lease_ms }) => {
        const s = await load();
        return action === 'down' ? s.keyDown(s.rest, code, lease_ms ?? HOLD_LEASE.defaultMs) : s.keyUp(s.rest, code);
      },
      hid_release: async () => (await load()).releaseAll(),
      hid_mouse: async (params) => {
        const s = await load();
        await s.mouse(s.rest, params);
        return {};
      },
      hid_type_start: async (params) => (await load()).startType(null, params),
      hid_type_status: async ({ job }) => (await load()).typeStatus(job),
      hid_type_cancel: async ({ job }) => (await load()).cancelType(job),
    },
    streams: {
      hid: (stream) => {
        // Accepted at once: the viewer's first keys may already be on their way.
        stream.accept({ status: 200 });
        Promise.all([load(), import('./hid-stream.ts')]).then(([s, { serveHid }]) => serveHid(stream, s, log), failed(stream, 'live input'));
      },
      screen: (stream, open) => {
        Promise.all([import('./screen/stream.ts'), screen()]).then(([{ serveScreen }, source]) => serveScreen(stream, open, source), failed(stream, 'screen'));
      },
    },
    onGone: () => service?.gone(),
  };
}
