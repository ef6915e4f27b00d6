// Capability "kvm" on the hub: screenshots and the live view as `screen` streams to the agent
// (bytes passed through, never one RPC per frame), and a viewer's live-input WebSocket bridged onto
// one `hid` stream whose end releases everything that viewer held (kvm-input.ts). Its RPC methods
// (keystrokes, holds, the mouse, type jobs, status) go through the hub's generic call().
//
// What the device answers is not trusted: a screen response keeps only a status, a Content-Type
// of an image (or the MJPEG multipart, or a JSON error) and a Content-Length, and goes out with
// headers that keep a browser from running anything in it, so a device cannot set a cookie or
// serve a page on the relay's origin.
import { ResetCode } from '../../shared/codes.ts';
import { parseContentLength } from '../../shared/protocol/http-rules.ts';
import type { MuxStream } from '../../shared/protocol/mux.ts';
import type { Accepted } from '../../shared/protocol/heads.ts';
import type { StreamOpen } from '../../shared/protocol/messages.ts';
import type { ScreenRequest } from '../hub/contract.ts';
import { deviceError, json, openAndAccept, readyAgent, streamFailure } from './device-stream.ts';
import { bridgeInput } from './kvm-input.ts';
import type { HubCapability, HubContext } from './types.ts';

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

/**
 * The error statuses a device may give its screen answer. Not 401 or 403, which would tell a
 * client (the dashboard) that its own credential failed; anything else is the device failing (502).
 */
const DEVICE_STATUSES = new Set([400, 409, 429, 502, 503, 504]);
/** What a device without the kvm capability is told apart by: it refuses the stream kind. */
const UNAVAILABLE = { code: 'KVM_UNAVAILABLE', message: 'The device does not offer KVM (its agent is older, or KVM is off)' };

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
      return streamFailure(e, UNAVAILABLE);
    }
    const { stream, head } = opened;
    const status = head.status ?? 200;
    const type = headerValue(head.headers, 'content-type');
    if (status === 204) {
      stream.readable.cancel().catch(() => {});
      return new Response(null, { status: 204, headers: SCREEN_HEADERS });
    }
    if (status !== 200) return deviceError(stream, head, status, DEVICE_STATUSES);
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
      if ((opened.head.status ?? 200) >= 300) return deviceError(stream, opened.head, opened.head.status!, DEVICE_STATUSES);
    } catch (e) {
      return streamFailure(e, UNAVAILABLE);
    }
    return bridgeInput(stream);
  }
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
