// Capability "kvm" on the hub: screenshots and the live view as `screen` streams to the agent
// (bytes passed through, never one RPC per frame), and a viewer's live-input WebSocket bridged onto
// one `hid` stream whose end releases everything that viewer held (kvm-input.ts). Its RPC methods
// (keystrokes, holds, the mouse, type jobs, status) go through the hub's generic call().
//
// What the device answers is not trusted: a screen response keeps only a status, a Content-Type
// of an image (or the MJPEG multipart, or a JSON error) and a Content-Length, and goes out with
// headers that keep a browser from running anything in it, so a device cannot set a cookie or
// serve a page on the relay's origin.
import { errorBody, readErrorBody, ResetCode } from '../../shared/codes.ts';
import { joinBytes } from '../../shared/bytes.ts';
import { DEFAULT_RPC_TIMEOUT_MS } from '../../shared/constants.ts';
import { numberVar } from '../../shared/env-vars.ts';
import { parseContentLength } from '../../shared/protocol/http-rules.ts';
import { StreamResetError, type MuxStream } from '../../shared/protocol/mux.ts';
import type { Accepted } from '../../shared/protocol/heads.ts';
import type { StreamOpen } from '../../shared/protocol/messages.ts';
import type { ScreenRequest } from '../hub/contract.ts';
import { bridgeInput } from './kvm-input.ts';
import type { HubCapability, HubContext } from './types.ts';

/** How long a request waits for an agent that is saying hello or just went away (a restart). */
const RECONNECT_WAIT_MS = 5_000;
/** The most of a device's error body the hub reads (it re-renders it, never passes it on). */
const MAX_ERROR_BODY = 16 * 1024;
/** The image types a screenshot may have. */
const SNAPSHOT_TYPES = new Set(['image/jpeg', 'image/png']);
/** The live view's type, with a boundary of RFC 2046's characters (quoted or not). */
const LIVE_TYPE = /^multipart\/x-mixed-replace\s*;\s*boundary=(?:"([0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?])"|([0-9A-Za-z'()+_\-./:=?]{1,70}))\s*$/i;
/**
 * Sent with every screen answer: no caching (a screenshot is of now, and may show secrets), no
 * sniffing, and a sandbox without scripts in case a browser renders a part as a document.
 */
const SCREEN_HEADERS: Readonly<Record<string, string>> = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; sandbox",
};

const json = (status: number, code: string, message: string, details: Record<string, unknown> = {}) =>
  Response.json(errorBody(code, message, details), { status, headers: { 'cache-control': 'no-store' } });

export class KvmCapability implements HubCapability {
  readonly name = 'kvm';
  readonly rpc = ['kvm_status', 'hid_keystroke', 'hid_key', 'hid_release', 'hid_mouse', 'hid_type_start', 'hid_type_status', 'hid_type_cancel'] as const;

  /** GET …/screenshot and …/screen/live: the agent's answer as the response, its body streamed. */
  async screen(hub: HubContext, _request: Request, screen: ScreenRequest): Promise<Response> {
    const agent = await readyAgent(hub);
    if (!agent) return json(503, 'DEVICE_OFFLINE', 'Device is offline');
    // Nothing goes toward the agent after the OPEN: it carries FIN. The agent ends a live view
    // when the stream is reset (the viewer went away) or its writes fail.
    const open: StreamOpen = { kind: 'screen', ...screen };
    let opened: { stream: MuxStream; head: Accepted };
    try {
      opened = await openAndAccept(hub, agent, open, { fin: true });
    } catch (e) {
      return streamFailure(e);
    }
    const { stream, head } = opened;
    const status = head.status ?? 200;
    const type = headerValue(head.headers, 'content-type');
    if (status === 204) {
      stream.readable.cancel().catch(() => {});
      return new Response(null, { status: 204, headers: SCREEN_HEADERS });
    }
    if (status !== 200) return deviceError(stream, head, status);
    // The Content-Type goes out rebuilt from what was checked, never as the device spelled it.
    const contentType = screen.mode === 'live' ? liveType(type) : snapshotType(type);
    if (!contentType) {
      stream.reset(ResetCode.PROTOCOL_ERROR, `a ${screen.mode} screen answer may not be ${type ?? 'untyped'}`);
      return json(502, 'BAD_DEVICE_RESPONSE', `The device answered the ${screen.mode === 'live' ? 'live view' : 'screenshot'} with Content-Type ${JSON.stringify(type ?? null)}`);
    }
    const headers = new Headers(SCREEN_HEADERS);
    headers.set('content-type', contentType);
    if (screen.mode === 'live') headers.set('x-accel-buffering', 'no');
    // A small screenshot that came whole in the ACCEPT goes out as bytes: no stream to pump.
    if (head.complete) {
      headers.set('content-length', String(head.complete.byteLength));
      return new Response(head.complete as Uint8Array<ArrayBuffer>, { status: 200, headers, encodeBody: 'manual' });
    }
    // Through a native pipe (as tunnels do): a viewer that goes away fails the pipe, which cancels
    // the readable, which resets the stream up to the agent, which stops capturing. A screenshot of
    // known length goes through a FixedLengthStream, so one cut short is seen as cut short.
    const length = screen.mode === 'snapshot' ? parseContentLength(headerValue(head.headers, 'content-length')) : null;
    if (length !== null) headers.set('content-length', String(length));
    const pipe = length !== null ? new FixedLengthStream(length) : new IdentityTransformStream();
    // A live view has no end of its own: when the device goes away it ends where it is (the viewer
    // keeps its last frame), rather than failing the response, which workerd reports as uncaught.
    const done = stream.readable.pipeTo(pipe.writable, { preventAbort: length === null });
    done.catch(() => (length === null ? pipe.writable.close().catch(() => {}) : undefined));
    return new Response(pipe.readable, { status: 200, headers, encodeBody: 'manual' });
  }

  /** GET …/hid (a WebSocket upgrade, as the contract checked): one viewer's live input. */
  async input(hub: HubContext, _request: Request): Promise<Response> {
    const agent = await readyAgent(hub);
    if (!agent) return json(503, 'DEVICE_OFFLINE', 'Device is offline');
    let stream: MuxStream;
    try {
      const opened = await openAndAccept(hub, agent, { kind: 'hid' });
      stream = opened.stream;
      if ((opened.head.status ?? 200) >= 300) return deviceError(stream, opened.head, opened.head.status!);
    } catch (e) {
      return streamFailure(e);
    }
    return bridgeInput(stream);
  }
}

/** The ready agent, after a short wait for one that is saying hello or just left (a restart). The terminal's attach waits the same way. */
export async function readyAgent(hub: HubContext): Promise<WebSocket | null> {
  const ws = hub.readyAgent();
  if (ws) return ws;
  const goneAt = hub.agentGoneAt();
  const reconnecting = hub.agent() !== null || (goneAt !== null && Date.now() - goneAt < RECONNECT_WAIT_MS);
  return reconnecting ? hub.waitForAgent(RECONNECT_WAIT_MS) : null;
}

/** Opens a stream and waits for its ACCEPT under the RPC deadline; a late one is reset with TARGET_TIMEOUT. */
export async function openAndAccept(hub: HubContext, agent: WebSocket, open: StreamOpen, options?: { fin?: boolean }): Promise<{ stream: MuxStream; head: Accepted }> {
  const stream = hub.openStream(agent, open, options);
  const ms = numberVar(hub.env.RPC_TIMEOUT_MS, DEFAULT_RPC_TIMEOUT_MS, 1);
  const timer = setTimeout(() => stream.reset(ResetCode.TARGET_TIMEOUT, `the device did not answer within ${ms / 1000} s`), ms);
  try {
    return { stream, head: await stream.accepted };
  } catch (e) {
    stream.reset(e instanceof StreamResetError ? e.code : ResetCode.CANCELLED, 'no answer');
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** A stream that failed before its ACCEPT: 504 for a slow device, 503 for one that went away or refused the kind, else 502. */
function streamFailure(e: unknown): Response {
  const err = e instanceof StreamResetError ? e : new StreamResetError(ResetCode.INTERNAL_ERROR, String(e));
  if (err.code === ResetCode.TARGET_TIMEOUT) return json(504, 'DEVICE_TIMEOUT', 'Device did not answer in time');
  if (err.code === ResetCode.SOCKET_CLOSED || err.code === ResetCode.STREAM_LIMIT) return json(503, 'DEVICE_OFFLINE', 'Device is offline');
  // An agent without the kvm capability refuses the kind.
  if (err.code === ResetCode.REFUSED) return json(503, 'KVM_UNAVAILABLE', 'The device does not offer KVM (its agent is older, or KVM is off)');
  return json(502, err.code.slice(0, 64), `The device failed: ${err.message.slice(0, 500)}`);
}

/**
 * A device's error answer (503 NO_SCREEN, say), re-rendered: its code and message are kept, its
 * status if it is an error status, and nothing else it sent.
 */
async function deviceError(stream: MuxStream, head: Accepted, status: number): Promise<Response> {
  const body = head.complete ?? (await readSome(stream, MAX_ERROR_BODY));
  stream.readable.cancel().catch(() => {});
  let parsed: ReturnType<typeof readErrorBody> = null;
  try {
    parsed = readErrorBody(JSON.parse(new TextDecoder().decode(body)));
  } catch {
    // not JSON: the status alone speaks
  }
  const code = typeof parsed?.code === 'string' && /^[A-Z][A-Z0-9_]{0,63}$/.test(parsed.code) ? parsed.code : 'DEVICE_ERROR';
  const message = typeof parsed?.error === 'string' ? parsed.error.slice(0, 1024) : `The device answered ${status}`;
  return json(DEVICE_STATUSES.has(status) ? status : 502, code, message);
}

/**
 * The error statuses a device may give its screen answer. Not 401 or 403, which would tell a
 * client (the dashboard) that its own credential failed; anything else is the device failing (502).
 */
const DEVICE_STATUSES = new Set([400, 409, 429, 502, 503, 504]);

/** Up to `max` bytes of a stream's body, within a short wait; what a device sends past that is not read. */
export async function readSome(stream: MuxStream, max: number): Promise<Uint8Array> {
  const reader = stream.readable.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  const timer = setTimeout(() => stream.reset(ResetCode.TARGET_TIMEOUT, 'error body too slow'), 2_000);
  try {
    while (size < max) {
      const next = await reader.read();
      if (next.done) break;
      parts.push(next.value);
      size += next.value.byteLength;
    }
  } catch {
    // a reset: what came is what there is
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
  return joinBytes(parts, size).subarray(0, max);
}

/** A screenshot's Content-Type: the media type alone, if it is one of ours. */
function snapshotType(type: string | undefined): string | null {
  const media = (type ?? '').split(';', 1)[0]!.trim().toLowerCase();
  return SNAPSHOT_TYPES.has(media) ? media : null;
}

/** The live view's Content-Type, rebuilt around its boundary. */
function liveType(type: string | undefined): string | null {
  const m = LIVE_TYPE.exec(type ?? '');
  if (!m) return null;
  const boundary = m[1] ?? m[2]!;
  return `multipart/x-mixed-replace; boundary=${m[1] !== undefined ? `"${boundary}"` : boundary}`;
}

/** The one value of a header in a stream head (the first, if a device sent several). */
function headerValue(headers: readonly (readonly [string, string])[] | undefined, name: string): string | undefined {
  for (const [n, v] of headers ?? []) if (n.toLowerCase() === name) return v;
  return undefined;
}
