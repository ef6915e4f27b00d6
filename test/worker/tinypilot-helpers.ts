// The fake KVM agent as the compat layers' tests (TinyPilot's API, PiTunnel's /screenshot) use it:
// kvm-helpers.ts's fake agent, recording every hid_* RPC and answering it as the agent would (or
// with the error a test sets, e.g. HID_MISSING), and answering `screen` stream OPENs with the image
// a test sets (or 204 without a signal), recording what each OPEN asked for.
import { fakeKvmAgent as fakeAgent } from './kvm-helpers.ts';

export interface KvmCall {
  method: string;
  params: Record<string, unknown>;
}

export interface FakeScreen {
  status: 200 | 204 | 503;
  type?: string;
  body?: Uint8Array;
}

/** A few bytes that start like a JPEG; the relay passes them through without decoding. */
export const FAKE_JPEG = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0xff, 0xd9]);
export const FAKE_PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d]);

/** `calls` holds the hid_* RPCs only (the compat layers send no others). */
export async function fakeKvmAgent(deviceId: string, privateKey: CryptoKey) {
  const calls: KvmCall[] = [];
  const screenOpens: Record<string, unknown>[] = [];
  const state = {
    /** Every hid_* RPC fails with this while it is set. */
    failWith: null as { code: string; message: string } | null,
    screen: { status: 200, type: 'image/jpeg', body: FAKE_JPEG } as FakeScreen,
  };
  const agent = await fakeAgent(deviceId, privateKey, {
    rpc: (method, params) => {
      if (!method.startsWith('hid_')) return undefined;
      calls.push({ method, params });
      return state.failWith ? { error: { ...state.failWith, details: { path: '/dev/hidg0' } } } : undefined;
    },
    onOpen: (stream, open) => {
      screenOpens.push({ ...open });
      const s = state.screen;
      if (s.status === 204) return stream.accept({ status: 204, headers: [] }, { fin: true });
      if (s.status === 503) {
        const body = new TextEncoder().encode(JSON.stringify({ error: 'there is no screen', code: 'NO_SCREEN', details: {} }));
        return stream.accept({ status: 503, headers: [['content-type', 'application/json']] }, { body, fin: true });
      }
      stream.accept({ status: 200, headers: [['content-type', s.type ?? 'image/jpeg']] }, { body: s.body ?? FAKE_JPEG, fin: true });
    },
  });
  return { ...agent, calls, screenOpens, state };
}
