// The real screen backends: each builds one command line (or one HTTP request) per capture and
// reads its output as the image, so what runs on a device is exactly what the unit tests check.
// - v4l2: an HDMI-to-USB capture card, through ffmpeg. When the card gives MJPEG and neither PNG
//   nor a smaller size is asked for, its JPEG is passed through untouched (no decode, no encode).
// - ustreamer: uStreamer's /snapshot (PiKVM's streamer, when it already owns the card).
// - grim (Wayland), x11 (ffmpeg x11grab), fbdev (ffmpeg on /dev/fb0): the device's own desktop.
// No video signal is a null frame, never an error: for v4l2, ffmpeg getting no frame before the
// deadline (a card without signal stops delivering frames), an empty output, the driver's "no
// link" errors, or an all-black frame (what other cards send; ffmpeg's blackframe filter on a
// second output tells, so the passed-through JPEG is still the card's own); for uStreamer, a 503 or X-UStreamer-Online: false (it then serves its own "no
// signal" picture, which we do not pass on). Anything else that fails is a ScreenError.
import { existsSync } from 'node:fs';
import { lastLine, runCommand, type CommandRunner } from './command.ts';
import { imageSize } from './image.ts';
import { DEFAULT_VIDEO_DEVICE, ScreenError, type CaptureOptions, type Frame, type ScreenSource, type ScreenState } from './types.ts';

/** A capture that takes longer is killed. */
export const CAPTURE_TIMEOUT_MS = 5000;
export const DEFAULT_FRAMEBUFFER = '/dev/fb0';
export const DEFAULT_USTREAMER_URL = 'http://127.0.0.1:8080/snapshot';
/** A snapshot larger than this is refused (a 4K JPEG is a few MB). */
export const MAX_SNAPSHOT_BYTES = 32 * 1024 * 1024;

/** Driver errors that mean "no signal" (tc358743 and friends refuse to stream without one). */
const NO_SIGNAL_ERRORS = /Link has been severed|ENOLINK|no signal|Resource temporarily unavailable|Inappropriate ioctl.*STREAMON/i;

export interface BackendOptions {
  run?: CommandRunner;
  fetch?: typeof fetch;
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

/** 1..100 → ffmpeg's MJPEG qscale 31..2 (lower is better). */
export function ffmpegQuality(quality: number): number {
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  return Math.round(2 + ((100 - q) * 29) / 99);
}

/** Fits the image in the box, keeping its aspect ratio, never enlarging it. */
export function scaleFilter(maxWidth?: number, maxHeight?: number): string | null {
  if (!maxWidth && !maxHeight) return null;
  const w = maxWidth ? `'min(iw,${maxWidth})'` : 'iw';
  const h = maxHeight ? `'min(ih,${maxHeight})'` : 'ih';
  return `scale=w=${w}:h=${h}:force_original_aspect_ratio=decrease`;
}

const FFMPEG = ['ffmpeg', '-hide_banner', '-nostats', '-loglevel', 'error'];

function ffmpegOutput(options: CaptureOptions, passthrough: boolean): string[] {
  if (passthrough) return ['-c:v', 'copy', '-f', 'image2pipe', 'pipe:1'];
  const filter = scaleFilter(options.maxWidth, options.maxHeight);
  const codec = options.format === 'png' ? ['-c:v', 'png'] : ['-c:v', 'mjpeg', '-q:v', String(ffmpegQuality(options.quality))];
  return [...(filter ? ['-vf', filter] : []), ...codec, '-f', 'image2pipe', 'pipe:1'];
}

export interface V4l2Options {
  /** What the card is asked for: mjpeg (most HDMI-to-USB cards), or yuyv422 for those without it. */
  inputFormat?: string;
  /**
   * A second output runs ffmpeg's blackframe filter on the same frame, which logs (at level info)
   * only when every pixel is black: what many cards send without a signal. A console with a single
   * line of text is not black (pblack is a whole percent, 100 only when no pixel is lit).
   */
  detectBlack?: boolean;
}

/** blackframe logs "pblack:100" when every pixel's luma is below the threshold (of 255). */
export const BLACK_FILTER = 'blackframe=amount=100:threshold=32';

export function v4l2Args(device: string, options: CaptureOptions, v4l2: V4l2Options = {}): string[] {
  const inputFormat = v4l2.inputFormat ?? 'mjpeg';
  const detectBlack = v4l2.detectBlack ?? true;
  const passthrough = inputFormat === 'mjpeg' && options.format === 'jpeg' && !options.maxWidth && !options.maxHeight;
  const base = detectBlack ? [...FFMPEG.slice(0, -1), 'info'] : FFMPEG;
  const black = detectBlack ? ['-frames:v', '1', '-vf', BLACK_FILTER, '-f', 'null', '-'] : [];
  return [...base, '-f', 'v4l2', '-input_format', inputFormat, '-i', device, '-frames:v', '1', ...ffmpegOutput(options, passthrough), ...black];
}

export function x11Args(display: string, options: CaptureOptions): string[] {
  return [...FFMPEG, '-f', 'x11grab', '-i', display, '-frames:v', '1', ...ffmpegOutput(options, false)];
}

export function fbdevArgs(device: string, options: CaptureOptions): string[] {
  return [...FFMPEG, '-f', 'fbdev', '-i', device, '-frames:v', '1', ...ffmpegOutput(options, false)];
}

export function grimArgs(options: CaptureOptions): string[] {
  return options.format === 'png' ? ['grim', '-t', 'png', '-'] : ['grim', '-t', 'jpeg', '-q', String(Math.min(100, Math.max(1, Math.round(options.quality)))), '-'];
}

/** Re-encodes (and scales) an image ffmpeg reads from stdin: for backends that cannot scale or give PNG. */
export function transcodeArgs(from: 'jpeg' | 'png', options: CaptureOptions): string[] {
  return [...FFMPEG, '-f', from === 'png' ? 'png_pipe' : 'jpeg_pipe', '-i', 'pipe:0', '-frames:v', '1', ...ffmpegOutput(options, false)];
}

function contentType(format: CaptureOptions['format']): Frame['contentType'] {
  return format === 'png' ? 'image/png' : 'image/jpeg';
}

type Grab = (options: CaptureOptions) => Promise<{ bytes: Uint8Array; contentType: Frame['contentType'] } | null>;

/** A backend's state as its last capture left it; the grab itself is the backend's. */
class CaptureSource implements ScreenSource {
  private last: ScreenState;

  constructor(
    readonly name: string,
    private readonly grab: Grab,
  ) {
    this.last = { backend: name, signal: false, width: null, height: null, message: 'nothing captured yet' };
  }

  async capture(options: CaptureOptions): Promise<Frame | null> {
    const capturedAt = performance.timeOrigin + performance.now();
    let got: Awaited<ReturnType<Grab>>;
    try {
      got = await this.grab(options);
    } catch (e) {
      const error = e instanceof ScreenError ? e : new ScreenError('CAPTURE_FAILED', e instanceof Error ? e.message : String(e));
      this.last = { backend: this.name, signal: false, width: null, height: null, message: error.message };
      throw error;
    }
    if (!got) {
      this.last = { backend: this.name, signal: false, width: null, height: null, message: 'no signal' };
      return null;
    }
    const size = imageSize(got.bytes);
    if (!size) {
      this.last = { backend: this.name, signal: false, width: null, height: null, message: 'the capture is not a JPEG or PNG image' };
      throw new ScreenError('CAPTURE_FAILED', `${this.name}: the capture is not a JPEG or PNG image`);
    }
    this.last = { backend: this.name, signal: true, ...size };
    return { contentType: got.contentType, bytes: got.bytes, ...size, capturedAt };
  }

  state(): ScreenState {
    return this.last;
  }

  close(): void {}
}

function ffmpegFailure(what: string, result: { stderr: string; exitCode: number | null }): ScreenError {
  return new ScreenError('CAPTURE_FAILED', `ffmpeg (${what}) exited with ${result.exitCode}: ${lastLine(result.stderr) || 'no message'}`);
}

export function v4l2Screen(device = DEFAULT_VIDEO_DEVICE, options: BackendOptions & V4l2Options = {}): ScreenSource {
  const run = options.run ?? runCommand;
  const timeoutMs = options.timeoutMs ?? CAPTURE_TIMEOUT_MS;
  return new CaptureSource('v4l2', async (o) => {
    if (!existsSync(device)) throw new ScreenError('SCREEN_UNAVAILABLE', `no capture device at ${device}`);
    const result = await run(v4l2Args(device, o, options), { timeoutMs });
    if (result.timedOut) return null;
    if (result.exitCode !== 0) {
      if (NO_SIGNAL_ERRORS.test(result.stderr)) return null;
      throw ffmpegFailure(`v4l2 ${device}`, result);
    }
    if (result.stdout.length === 0 || /\bpblack:\d+/.test(result.stderr)) return null;
    return { bytes: result.stdout, contentType: contentType(o.format) };
  });
}

export function x11Screen(options: BackendOptions = {}): ScreenSource {
  const run = options.run ?? runCommand;
  const env = options.env ?? process.env;
  const timeoutMs = options.timeoutMs ?? CAPTURE_TIMEOUT_MS;
  return new CaptureSource('x11', async (o) => {
    const display = env.DISPLAY;
    if (!display) throw new ScreenError('SCREEN_UNAVAILABLE', 'DISPLAY is not set: no X11 desktop to capture');
    return desktopGrab(await run(x11Args(display, o), { timeoutMs }), `x11grab ${display}`, o);
  });
}

export function fbdevScreen(device = DEFAULT_FRAMEBUFFER, options: BackendOptions = {}): ScreenSource {
  const run = options.run ?? runCommand;
  const timeoutMs = options.timeoutMs ?? CAPTURE_TIMEOUT_MS;
  return new CaptureSource('fbdev', async (o) => {
    if (!existsSync(device)) throw new ScreenError('SCREEN_UNAVAILABLE', `no framebuffer at ${device}`);
    return desktopGrab(await run(fbdevArgs(device, o), { timeoutMs }), `fbdev ${device}`, o);
  });
}

/** A desktop always has a picture: a timeout or an empty output is a failure, not "no signal". */
function desktopGrab(result: Awaited<ReturnType<CommandRunner>>, what: string, o: CaptureOptions) {
  if (result.timedOut) throw new ScreenError('CAPTURE_FAILED', `ffmpeg (${what}) did not finish in time`);
  if (result.exitCode !== 0 || result.stdout.length === 0) throw ffmpegFailure(what, result);
  return { bytes: result.stdout, contentType: contentType(o.format) };
}

/** Scales or converts an image a backend gave when it is not what was asked (needs ffmpeg). */
async function fit(bytes: Uint8Array, from: 'jpeg' | 'png', o: CaptureOptions, run: CommandRunner, timeoutMs: number) {
  const size = imageSize(bytes);
  const fits = size !== null && (!o.maxWidth || size.width <= o.maxWidth) && (!o.maxHeight || size.height <= o.maxHeight);
  if (fits && from === o.format) return { bytes, contentType: contentType(o.format) };
  const result = await run(transcodeArgs(from, o), { timeoutMs, stdin: bytes });
  if (result.timedOut || result.exitCode !== 0 || result.stdout.length === 0) throw ffmpegFailure('scaling the capture', result);
  return { bytes: result.stdout, contentType: contentType(o.format) };
}

export function grimScreen(options: BackendOptions = {}): ScreenSource {
  const run = options.run ?? runCommand;
  const env = options.env ?? process.env;
  const timeoutMs = options.timeoutMs ?? CAPTURE_TIMEOUT_MS;
  return new CaptureSource('grim', async (o) => {
    if (!env.WAYLAND_DISPLAY) throw new ScreenError('SCREEN_UNAVAILABLE', 'WAYLAND_DISPLAY is not set: no Wayland desktop to capture');
    const result = await run(grimArgs(o), { timeoutMs });
    if (result.timedOut) throw new ScreenError('CAPTURE_FAILED', 'grim did not finish in time');
    if (result.exitCode !== 0 || result.stdout.length === 0) throw new ScreenError('CAPTURE_FAILED', `grim exited with ${result.exitCode}: ${lastLine(result.stderr) || 'no message'}`);
    return fit(result.stdout, o.format, o, run, timeoutMs);
  });
}

export function ustreamerScreen(url = DEFAULT_USTREAMER_URL, options: BackendOptions = {}): ScreenSource {
  const run = options.run ?? runCommand;
  const get = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? CAPTURE_TIMEOUT_MS;
  return new CaptureSource('ustreamer', async (o) => {
    let response: Response;
    try {
      response = await get(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'image/jpeg' } });
    } catch (e) {
      throw new ScreenError('SCREEN_UNAVAILABLE', `uStreamer is not answering at ${url}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (response.status === 503) {
      await response.body?.cancel();
      return null;
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new ScreenError('CAPTURE_FAILED', `uStreamer answered ${response.status} at ${url}`);
    }
    if (response.headers.get('x-ustreamer-online') === 'false') {
      await response.body?.cancel();
      return null;
    }
    if (Number(response.headers.get('content-length') ?? 0) > MAX_SNAPSHOT_BYTES) {
      await response.body?.cancel();
      throw new ScreenError('CAPTURE_FAILED', `uStreamer's snapshot is larger than ${MAX_SNAPSHOT_BYTES} bytes`);
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes.length > MAX_SNAPSHOT_BYTES) throw new ScreenError('CAPTURE_FAILED', `uStreamer's snapshot is larger than ${MAX_SNAPSHOT_BYTES} bytes`);
    if (bytes.length === 0) return null;
    return fit(bytes, 'jpeg', o, run, timeoutMs);
  });
}
