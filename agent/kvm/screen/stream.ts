// A `screen` stream: one screenshot, or the live view as MJPEG, answered on the agent's side.
//
// snapshot: ACCEPT 200 with content-type, content-length, x-capture-time (ms since the epoch) and
//   x-screen-width/-height, the image as the body (inside the ACCEPT when it fits one frame), then
//   FIN. No signal: 204 and FIN, no body. No screen: 503 {error, code: NO_SCREEN, details}. A
//   capture that failed: 502 {error, code: CAPTURE_FAILED, details}.
// live: the first frame is captured before the ACCEPT, so the statuses are the snapshot's (503,
//   502; 204 is not used: no signal still opens the view). Then ACCEPT 200
//   `multipart/x-mixed-replace; boundary=pirelay-frame`; the body opens with `--pirelay-frame\r\n`
//   and each frame is one part followed at once by the next delimiter:
//     Content-Type: image/jpeg\r\nContent-Length: N\r\nX-Capture-Time: T\r\n\r\n<N bytes>\r\n--pirelay-frame\r\n
//   (a browser shows a part when it sees the delimiter after it: sent with the frame, not with the
//   next one, it costs no frame of delay). At most `fps` frames a second (default 15), each
//   captured fresh. While the previous part is still waiting for the reader's credit no new frame
//   is captured: that tick's frame is dropped, never queued, so memory stays at one part plus the
//   stream's window however slow the viewer is.
//   When the signal goes, one "no signal" picture is sent (a browser's <img> keeps showing the
//   last part), then capture goes on at the frame rate until the signal is back. The view ends
//   when the stream is reset or closed (the viewer left): the capture loop stops with it.
//   A screen serves at most MAX_LIVE_VIEWS at once; one more is answered 429 SCREEN_BUSY (try again once
//   one ends).
import { MAX_DATA_CHUNK } from '../../../shared/protocol/flow.ts';
import type { MuxStream } from '../../../shared/protocol/mux.ts';
import type { ScreenOpen } from '../../../shared/protocol/kvm.ts';
import { CELL_HEIGHT, CELL_WIDTH, drawText } from './font.ts';
import { createImage, fitWithin, rgb, words } from './image.ts';
import { encodeJpeg } from './jpeg.ts';
import { encodePng } from './png.ts';
import { ScreenError, type CaptureOptions, type Frame, type ScreenSource } from './types.ts';

export const LIVE_BOUNDARY = 'pirelay-frame';
export const LIVE_CONTENT_TYPE = `multipart/x-mixed-replace; boundary=${LIVE_BOUNDARY}`;
export const DEFAULT_LIVE_FPS = 15;
/** Failed captures in a row after which a live view ends (reset CAPTURE_FAILED). */
const LIVE_FAILURES = 3;
const LIVE_RETRY_MS = 1000;
/**
 * Live views of one screen at a time: each captures and encodes on its own, so without a bound a
 * viewer opening view after view could take the agent's whole CPU (and starve its keystrokes).
 */
export const MAX_LIVE_VIEWS = 4;
const liveViews = new WeakMap<ScreenSource, number>();
/** The "no signal" picture's size when no frame told us the screen's. */
const NO_SIGNAL_SIZE = { width: 1280, height: 720 };

export interface ScreenServing {
  /** Settles when the stream is answered (snapshot) or the live view ended. Never rejects. */
  done: Promise<void>;
  /** Live view counters: parts sent, frames dropped for a reader without credit, captures made. */
  stats(): { sent: number; dropped: number; captures: number };
}

const encoder = new TextEncoder();

function captureOptions(open: ScreenOpen): CaptureOptions {
  return { format: open.format, quality: open.quality, maxWidth: open.max_width, maxHeight: open.max_height };
}

export function serveScreen(stream: MuxStream, open: ScreenOpen, screen: ScreenSource): ScreenServing {
  const counters = { sent: 0, dropped: 0, captures: 0 };
  const run = open.mode === 'live' ? live(stream, open, screen, counters) : snapshot(stream, captureOptions(open), screen);
  const done = run.catch((e) => {
    // Nothing above should throw; if it does, the stream ends with it and the agent goes on.
    stream.reset('INTERNAL_ERROR', e instanceof Error ? e.message : String(e));
  });
  return { done, stats: () => ({ ...counters }) };
}

function errorAnswer(stream: MuxStream, error: unknown, screen: ScreenSource): void {
  const unavailable = error instanceof ScreenError && error.code === 'SCREEN_UNAVAILABLE';
  const message = error instanceof Error ? error.message : String(error);
  const body = encoder.encode(JSON.stringify({ error: message, code: unavailable ? 'NO_SCREEN' : 'CAPTURE_FAILED', details: { backend: screen.name } }));
  stream.accept({ status: unavailable ? 503 : 502, headers: [['content-type', 'application/json'], ['content-length', String(body.length)]] }, { body, fin: true });
}

async function snapshot(stream: MuxStream, options: CaptureOptions, screen: ScreenSource): Promise<void> {
  let frame: Frame | null;
  try {
    frame = await screen.capture(options);
  } catch (e) {
    return errorAnswer(stream, e, screen);
  }
  if (!frame) return stream.accept({ status: 204, headers: [['cache-control', 'no-store']] }, { fin: true });
  const headers: [string, string][] = [
    ['content-type', frame.contentType],
    ['content-length', String(frame.bytes.length)],
    ['x-capture-time', frame.capturedAt.toFixed(1)],
    ['x-screen-width', String(frame.width)],
    ['x-screen-height', String(frame.height)],
    ['cache-control', 'no-store'],
  ];
  if (frame.bytes.length <= MAX_DATA_CHUNK) return stream.accept({ status: 200, headers }, { body: frame.bytes, fin: true });
  stream.accept({ status: 200, headers });
  const writer = stream.writable.getWriter();
  try {
    await writer.write(frame.bytes);
    await writer.close();
  } catch {
    // The viewer went away mid-image: the stream is already reset.
  }
}

const OPENING = encoder.encode(`--${LIVE_BOUNDARY}\r\n`);
const DELIMITER = encoder.encode(`\r\n--${LIVE_BOUNDARY}\r\n`);

/** One frame's part: its headers, the image, and the delimiter that ends it; the first also opens the body. */
export function livePart(frame: Pick<Frame, 'contentType' | 'bytes' | 'capturedAt'>, first = false): Uint8Array {
  const head = encoder.encode(`Content-Type: ${frame.contentType}\r\nContent-Length: ${frame.bytes.length}\r\nX-Capture-Time: ${frame.capturedAt.toFixed(1)}\r\n\r\n`);
  const opening = first ? OPENING.length : 0;
  const part = new Uint8Array(opening + head.length + frame.bytes.length + DELIMITER.length);
  if (first) part.set(OPENING, 0);
  part.set(head, opening);
  part.set(frame.bytes, opening + head.length);
  part.set(DELIMITER, opening + head.length + frame.bytes.length);
  return part;
}

/** The picture a live view shows while there is no signal. */
export function noSignalFrame(options: CaptureOptions, size = NO_SIGNAL_SIZE): Frame {
  const { width, height } = fitWithin(size.width, size.height, options.maxWidth, options.maxHeight);
  const image = createImage(width, height);
  words(image).fill(rgb(0, 0, 0));
  const text = 'no signal';
  const scale = Math.max(1, Math.floor(width / (text.length * CELL_WIDTH * 3)));
  drawText(image, Math.floor((width - text.length * CELL_WIDTH * scale) / 2), Math.floor((height - CELL_HEIGHT * scale) / 2), text, scale, rgb(200, 200, 200));
  const png = options.format === 'png';
  return { contentType: png ? 'image/png' : 'image/jpeg', bytes: png ? encodePng(image) : encodeJpeg(image, options.quality), width, height, capturedAt: performance.timeOrigin + performance.now() };
}

async function live(stream: MuxStream, open: ScreenOpen, screen: ScreenSource, counters: { sent: number; dropped: number; captures: number }): Promise<void> {
  const views = liveViews.get(screen) ?? 0;
  if (views >= MAX_LIVE_VIEWS) {
    const body = encoder.encode(JSON.stringify({ error: `this screen already has ${views} live views (at most ${MAX_LIVE_VIEWS})`, code: 'SCREEN_BUSY', details: { limit: MAX_LIVE_VIEWS } }));
    return stream.accept({ status: 429, headers: [['content-type', 'application/json'], ['content-length', String(body.length)]] }, { body, fin: true });
  }
  liveViews.set(screen, views + 1);
  try {
    await view(stream, open, screen, counters);
  } finally {
    liveViews.set(screen, (liveViews.get(screen) ?? 1) - 1);
  }
}

async function view(stream: MuxStream, open: ScreenOpen, screen: ScreenSource, counters: { sent: number; dropped: number; captures: number }): Promise<void> {
  const options = captureOptions(open);
  const interval = 1000 / (open.fps ?? DEFAULT_LIVE_FPS);
  let first: Frame | null;
  try {
    counters.captures++;
    first = await screen.capture(options);
  } catch (e) {
    return errorAnswer(stream, e, screen);
  }
  stream.accept({ status: 200, headers: [['content-type', LIVE_CONTENT_TYPE], ['cache-control', 'no-store']] });

  let stopped = false;
  let wake: (() => void) | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stop = () => {
    stopped = true;
    clearTimeout(timer);
    wake?.();
  };
  stream.onReset(stop);
  void stream.closed.then(stop);
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stopped) return resolve();
      wake = resolve;
      timer = setTimeout(resolve, ms);
    });

  const writer = stream.writable.getWriter();
  let writing = false;
  const send = (frame: Frame) => {
    writing = true;
    writer.write(livePart(frame, counters.sent++ === 0)).then(
      () => (writing = false),
      () => stop(),
    );
  };

  let size = first ? { width: first.width, height: first.height } : NO_SIGNAL_SIZE;
  let noSignalShown = false;
  const show = (frame: Frame | null) => {
    if (frame) {
      size = { width: frame.width, height: frame.height };
      noSignalShown = false;
      send(frame);
    } else if (!noSignalShown) {
      noSignalShown = true;
      send(noSignalFrame(options, size));
    }
  };
  show(first);

  let next = performance.now() + interval;
  let failures = 0;
  while (!stopped) {
    const now = performance.now();
    if (next > now) await sleep(next - now);
    if (stopped) break;
    // After a stall (a slow capture) start counting again from now rather than catching up in a burst.
    next = Math.max(next + interval, performance.now());
    if (writing) {
      counters.dropped++;
      continue;
    }
    let frame: Frame | null;
    try {
      counters.captures++;
      frame = await screen.capture(options);
      failures = 0;
    } catch (e) {
      if (++failures >= LIVE_FAILURES) {
        stream.reset('CAPTURE_FAILED', e instanceof Error ? e.message : String(e));
        break;
      }
      next = performance.now() + LIVE_RETRY_MS;
      continue;
    }
    if (!stopped) show(frame);
  }
  stop();
}
