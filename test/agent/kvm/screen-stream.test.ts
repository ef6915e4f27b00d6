// `screen` streams over a real StreamMux pair (the in-process loopback), the test playing the hub:
// a screenshot's statuses, headers and body (inline in the ACCEPT or as DATA), and the live view:
// strict multipart parts holding JPEGs, the frame-rate bound, frames dropped (not queued) for a
// reader that does not read, the "no signal" picture, and the capture loop ending with the stream.
import { describe, expect, test } from 'bun:test';
import { MAX_DATA_CHUNK, INITIAL_WINDOW } from '../../../shared/protocol/flow.ts';
import { FrameType } from '../../../shared/protocol/frames.ts';
import type { ScreenOpen } from '../../../shared/protocol/kvm.ts';
import { StreamResetError, type MuxStream } from '../../../shared/protocol/mux.ts';
import { keyboardReport } from '../../../shared/hid/reports.ts';
import { HID_USAGES } from '../../../shared/hid/keycodes.ts';
import { imageSize } from '../../../agent/kvm/screen/image.ts';
import { noScreen } from '../../../agent/kvm/screen/select.ts';
import { SimulatedScreen } from '../../../agent/kvm/screen/simulated.ts';
import { LIVE_BOUNDARY, LIVE_CONTENT_TYPE, livePart, MAX_LIVE_VIEWS, serveScreen, type ScreenServing } from '../../../agent/kvm/screen/stream.ts';
import { ScreenError, type CaptureOptions, type Frame, type ScreenSource } from '../../../agent/kvm/screen/types.ts';
import { loopback, readAll, sleep, bytes as randomBytes } from '../streams/helpers.ts';
import { waitFor } from '../tunnels/helpers.ts';
import { decodeJpeg, parseMultipart, readText, type Part } from './screen-helpers.ts';

const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** A screen whose captures the test scripts, counting them. */
class FakeScreen implements ScreenSource {
  readonly name = 'fake';
  captures = 0;
  asked: CaptureOptions[] = [];
  constructor(public next: (n: number) => Frame | null | Error) {}
  async capture(options: CaptureOptions): Promise<Frame | null> {
    this.captures++;
    this.asked.push(options);
    const r = this.next(this.captures);
    if (r instanceof Error) throw r;
    return r;
  }
  state() {
    return { backend: 'fake', signal: true, width: 1, height: 1 };
  }
  close() {}
}

function frameOf(bytes: Uint8Array, contentType: Frame['contentType'] = 'image/jpeg'): Frame {
  return { contentType, bytes, width: 10, height: 10, capturedAt: 1_700_000_000_000.25 };
}

function rig(screen: ScreenSource, options: Parameters<typeof loopback>[0] = {}) {
  const served: ScreenServing[] = [];
  const link = loopback({
    ...options,
    agent: { onOpen: (stream, open) => (open.kind === 'screen' ? served.push(serveScreen(stream, open, screen)) : stream.reset('REFUSED')) },
  });
  const open = (o: Omit<ScreenOpen, 'kind'>) => link.hub.open({ kind: 'screen', ...o }, { fin: true });
  return { link, served, open };
}

const header = (h: [string, string][] | undefined, name: string) => h?.find(([k]) => k === name)?.[1];

async function response(stream: MuxStream) {
  const head = await stream.accepted;
  const body = await readAll(stream.readable);
  return { status: head.status, headers: head.headers, body };
}

/** Reads the live view until `enough` says stop; returns the parts and what the reader saw. */
async function readParts(stream: MuxStream, enough: (parts: Part[]) => boolean): Promise<Part[]> {
  const reader = stream.readable.getReader();
  let buffer = new Uint8Array(0);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error('the live view ended');
    const joined = new Uint8Array(buffer.length + value.length);
    joined.set(buffer);
    joined.set(value, buffer.length);
    buffer = joined;
    const { parts } = parseMultipart(buffer, LIVE_BOUNDARY);
    if (enough(parts)) {
      await reader.cancel();
      return parts;
    }
  }
}

describe('snapshot', () => {
  test('200: a JPEG of the simulated screen with its headers, in the ACCEPT itself, then FIN', async () => {
    const screen = new SimulatedScreen();
    const { open } = rig(screen);
    const stream = open({ mode: 'snapshot', format: 'jpeg', quality: 80 });
    const head = await stream.accepted;
    expect(head.status).toBe(200);
    expect(head.complete).toBeDefined(); // the whole image rode in the ACCEPT frame
    const body = head.complete!;
    expect(header(head.headers, 'content-type')).toBe('image/jpeg');
    expect(header(head.headers, 'content-length')).toBe(String(body.length));
    expect(Number(header(head.headers, 'x-capture-time'))).toBeGreaterThan(1_600_000_000_000);
    expect([header(head.headers, 'x-screen-width'), header(head.headers, 'x-screen-height')]).toEqual(['1280', '720']);
    const decoded = decodeJpeg(body);
    expect([decoded.width, decoded.height]).toEqual([1280, 720]);
  });

  test('PNG, the maximum size and the quality reach the backend', async () => {
    const screen = new SimulatedScreen();
    const { open } = rig(screen);
    const { status, headers, body } = await response(open({ mode: 'snapshot', format: 'png', quality: 40, max_width: 640, max_height: 400 }));
    expect(status).toBe(200);
    expect(header(headers, 'content-type')).toBe('image/png');
    expect(imageSize(body)).toEqual({ width: 640, height: 360 });
    const fake = new FakeScreen(() => frameOf(new Uint8Array([1])));
    await response(rig(fake).open({ mode: 'snapshot', format: 'jpeg', quality: 33, max_height: 100 }));
    expect(fake.asked).toEqual([{ format: 'jpeg', quality: 33, maxWidth: undefined, maxHeight: 100 }]);
  });

  test('an image larger than one frame comes whole as DATA after the ACCEPT', async () => {
    const big = randomBytes(MAX_DATA_CHUNK * 2 + 12345, 7);
    const { open } = rig(new FakeScreen(() => frameOf(big, 'image/png')));
    const { status, headers, body } = await response(open({ mode: 'snapshot', format: 'png', quality: 80 }));
    expect(status).toBe(200);
    expect(header(headers, 'content-length')).toBe(String(big.length));
    expect(body).toEqual(big);
  });

  test('204 and no body when there is no signal', async () => {
    const { open } = rig(new FakeScreen(() => null));
    const { status, body } = await response(open({ mode: 'snapshot', format: 'jpeg', quality: 80 }));
    expect(status).toBe(204);
    expect(body.length).toBe(0);
  });

  test('503 NO_SCREEN when there is no screen backend', async () => {
    const { open } = rig(noScreen());
    for (const mode of ['snapshot', 'live'] as const) {
      const { status, headers, body } = await response(open({ mode, format: 'jpeg', quality: 80 }));
      expect(status).toBe(503);
      expect(header(headers, 'content-type')).toBe('application/json');
      expect(JSON.parse(text(body))).toEqual({ error: 'no screen backend (--screen none)', code: 'NO_SCREEN', details: { backend: 'none' } });
    }
  });

  test('502 CAPTURE_FAILED with the backend’s message when a capture fails, whatever it threw', async () => {
    for (const thrown of [new ScreenError('CAPTURE_FAILED', 'ffmpeg (v4l2 /dev/video0) exited with 1: busy'), new Error('surprise'), new TypeError('x is undefined')]) {
      const { open } = rig(new FakeScreen(() => thrown));
      const { status, body } = await response(open({ mode: 'snapshot', format: 'jpeg', quality: 80 }));
      expect(status).toBe(502);
      expect(JSON.parse(text(body))).toEqual({ error: thrown.message, code: 'CAPTURE_FAILED', details: { backend: 'fake' } });
    }
  });

  test('a viewer that goes away before the capture is done costs nothing more', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const screen: ScreenSource = { ...new FakeScreen(() => null), name: 'slow', state: () => ({ backend: 'slow', signal: true, width: 1, height: 1 }), close() {}, capture: async () => (await gate, frameOf(new Uint8Array(10))) };
    const { open, served } = rig(screen);
    const stream = open({ mode: 'snapshot', format: 'jpeg', quality: 80 });
    await waitFor(() => served.length === 1);
    stream.reset('CANCELLED', 'the viewer left');
    release();
    await served[0]!.done; // settles, never rejects, and the agent's side stays up
  });
});

describe('live view', () => {
  test('multipart/x-mixed-replace parts, each a JPEG with its capture time, that change with input', async () => {
    const screen = new SimulatedScreen();
    const { open } = rig(screen);
    const stream = open({ mode: 'live', format: 'jpeg', quality: 70, fps: 30 });
    const head = await stream.accepted;
    expect(head.status).toBe(200);
    expect(header(head.headers, 'content-type')).toBe(`multipart/x-mixed-replace; boundary=${LIVE_BOUNDARY}`);
    expect(LIVE_CONTENT_TYPE).toBe('multipart/x-mixed-replace; boundary=pirelay-frame');
    let typed = false;
    const parts = await readParts(stream, (p) => {
      if (p.length >= 2 && !typed) {
        typed = true;
        screen.observe('keyboard', keyboardReport(0, [HID_USAGES.KeyZ!]));
        screen.observe('keyboard', keyboardReport(0, []));
      }
      const last = p.at(-1);
      return last !== undefined && typed && readText(decodeJpeg(last.body), screen.placed.get('typed')!.x, screen.placed.get('typed')!.y, 3, 1) === 'z';
    });
    for (const part of parts) {
      expect(Object.keys(part.headers).sort()).toEqual(['content-length', 'content-type', 'x-capture-time']);
      expect(part.headers['content-type']).toBe('image/jpeg');
      expect(Number(part.headers['x-capture-time'])).toBeGreaterThan(1_600_000_000_000);
      expect(imageSize(part.body)).toEqual({ width: 1280, height: 720 });
    }
    const times = parts.map((p) => Number(p.headers['x-capture-time']));
    expect([...times].sort((a, b) => a - b)).toEqual(times); // each captured fresh, in order
    expect(new Set(times).size).toBe(times.length);
  });

  test('the exact bytes of a part: the first opens the body, each ends with the delimiter', () => {
    const frame = { contentType: 'image/jpeg' as const, bytes: new Uint8Array([0xff, 0xd8, 0xff, 0xd9]), capturedAt: 1234.56 };
    const head = 'Content-Type: image/jpeg\r\nContent-Length: 4\r\nX-Capture-Time: 1234.6\r\n\r\n';
    const first = livePart(frame, true);
    expect(text(first.subarray(0, first.length - 4 - 19))).toBe(`--pirelay-frame\r\n${head}`);
    expect([...first.subarray(-4 - 19, -19)]).toEqual([0xff, 0xd8, 0xff, 0xd9]);
    expect(text(first.subarray(-19))).toBe('\r\n--pirelay-frame\r\n');
    const next = livePart(frame);
    expect(text(next.subarray(0, head.length))).toBe(head);
    expect(next.length).toBe(first.length - '--pirelay-frame\r\n'.length);
  });

  test('never more than fps frames a second', async () => {
    const fake = new FakeScreen(() => frameOf(new Uint8Array(100)));
    const { open } = rig(fake);
    const started = performance.now();
    const stream = open({ mode: 'live', format: 'jpeg', quality: 80, fps: 4 });
    const parts = await readParts(stream, (p) => p.length >= 4);
    const elapsed = performance.now() - started;
    // The first frame goes at once, then one every 250 ms at most.
    expect(parts.length).toBeLessThanOrEqual(1 + Math.floor(elapsed / 250) + 1);
    expect(elapsed).toBeGreaterThanOrEqual(3 * 250 - 50);
  });

  test('a reader that does not read: frames are dropped, not queued, and memory stays bounded', async () => {
    let toHub = 0;
    const big = randomBytes(200_000, 3);
    const fake = new FakeScreen(() => frameOf(big));
    const { open, served } = rig(fake, { onDeliver: (from, frame) => from === 'agent' && frame.type === FrameType.DATA && (toHub += frame.payload.byteLength) });
    const stream = open({ mode: 'live', format: 'jpeg', quality: 80, fps: 30 });
    await stream.accepted;
    await waitFor(() => served[0] && served[0].stats().dropped >= 10, 10_000, 'frames to be dropped');
    const stats = served[0]!.stats();
    // One part went whole, the second is waiting for credit; nothing else was even captured.
    expect(stats.sent).toBe(2);
    expect(fake.captures).toBe(2);
    expect(toHub).toBeLessThanOrEqual(INITIAL_WINDOW);
    // Reading again: the waiting part arrives whole and fresh frames follow.
    const parts = await readParts(stream, (p) => p.length >= 4);
    expect(parts.every((p) => p.body.length === big.length)).toBe(true);
  });

  test('no signal: one "no signal" picture, then frames again when the signal is back', async () => {
    let signal = true;
    const screen = new SimulatedScreen({ width: 320, height: 180 });
    const flaky: ScreenSource = { name: 'flaky', state: () => screen.state(), close() {}, capture: (o) => (signal ? screen.capture(o) : Promise.resolve(null)) };
    const { open, served } = rig(flaky);
    const stream = open({ mode: 'live', format: 'jpeg', quality: 80, fps: 20 });
    const parts = await readParts(stream, (p) => {
      if (p.length === 2) signal = false;
      if (p.length === 3) setTimeout(() => (signal = true), 300);
      return p.length >= 5;
    });
    const noSignal = decodeJpeg(parts[2]!.body);
    expect([noSignal.width, noSignal.height]).toEqual([320, 180]); // the size of the last frame
    const scale = Math.max(1, Math.floor(320 / (9 * 6 * 3)));
    expect(readText(noSignal, Math.floor((320 - 9 * 6 * scale) / 2), Math.floor((180 - 8 * scale) / 2), scale, 9)).toBe('no signal');
    // While the signal was off, no further "no signal" parts: the next is the screen again.
    expect(readText(decodeJpeg(parts[3]!.body), 16, Math.floor(180 * 0.2) + 16, 2, 8)).toBe('pirelay ');
    expect(served[0]!.stats().captures).toBeGreaterThan(parts.length);
  });

  test('the capture loop stops when the reader goes away', async () => {
    const fake = new FakeScreen(() => frameOf(new Uint8Array(1000)));
    const { open, served } = rig(fake);
    const stream = open({ mode: 'live', format: 'jpeg', quality: 80, fps: 50 });
    await readParts(stream, (p) => p.length >= 3); // then cancels: a RESET to the agent
    await served[0]!.done;
    const after = fake.captures;
    await sleep(300);
    expect(fake.captures).toBe(after);
  });

  test('the capture loop stops when the socket goes', async () => {
    const fake = new FakeScreen(() => frameOf(new Uint8Array(1000)));
    const { open, served, link } = rig(fake);
    const stream = open({ mode: 'live', format: 'jpeg', quality: 80, fps: 50 });
    await readParts(stream, (p) => p.length >= 1).catch(() => {});
    link.agent.resetAll('SOCKET_CLOSED', 'gone');
    await served[0]!.done;
    const after = fake.captures;
    await sleep(200);
    expect(fake.captures).toBe(after);
  });

  test('captures failing in a row end the view with CAPTURE_FAILED', async () => {
    const fake = new FakeScreen((n) => (n === 1 ? frameOf(new Uint8Array(10)) : new ScreenError('CAPTURE_FAILED', 'the card went away')));
    const { open, served } = rig(fake);
    const stream = open({ mode: 'live', format: 'jpeg', quality: 80, fps: 50 });
    expect((await stream.accepted).status).toBe(200);
    let error: unknown;
    try {
      await readAll(stream.readable);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StreamResetError);
    expect([(error as StreamResetError).code, (error as StreamResetError).message]).toEqual(['CAPTURE_FAILED', 'the card went away']);
    await served[0]!.done;
    expect(fake.captures).toBe(4);
  });

  test(`at most ${MAX_LIVE_VIEWS} live views of one screen: one more is 429 SCREEN_BUSY, and a place frees when one ends`, async () => {
    const fake = new FakeScreen(() => frameOf(new Uint8Array(10)));
    const { open, served } = rig(fake);
    const views = Array.from({ length: MAX_LIVE_VIEWS }, () => open({ mode: 'live', format: 'jpeg', quality: 80, fps: 2 }));
    for (const v of views) expect((await v.accepted).status).toBe(200);
    const refused = await response(open({ mode: 'live', format: 'jpeg', quality: 80, fps: 2 }));
    expect(refused.status).toBe(429);
    expect(JSON.parse(text(refused.body))).toMatchObject({ code: 'SCREEN_BUSY', details: { limit: MAX_LIVE_VIEWS } });
    // Another screen is not affected.
    const other = rig(new FakeScreen(() => frameOf(new Uint8Array(10)))).open({ mode: 'live', format: 'jpeg', quality: 80, fps: 2 });
    expect((await other.accepted).status).toBe(200);
    other.reset('CANCELLED');
    views[0]!.reset('CANCELLED', 'the viewer left');
    await served[0]!.done;
    const again = open({ mode: 'live', format: 'jpeg', quality: 80, fps: 2 });
    expect((await again.accepted).status).toBe(200);
    for (const v of [...views.slice(1), again]) v.reset('CANCELLED');
    await Promise.all(served.map((s) => s.done));
  });
});
