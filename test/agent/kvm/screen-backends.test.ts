// The real screen backends, without the hardware: each one's exact command line for typical
// options (through a fake runner), how it tells "no signal" from a failure, uStreamer against a
// real local HTTP server playing uStreamer, the command runner against real processes (a missing
// binary, a failing one, one that hangs), and how `auto` chooses, with fake probes.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  fbdevArgs,
  fbdevScreen,
  ffmpegQuality,
  grimArgs,
  grimScreen,
  scaleFilter,
  transcodeArgs,
  ustreamerScreen,
  v4l2Args,
  v4l2Screen,
  x11Args,
  x11Screen,
} from '../../../agent/kvm/screen/backends.ts';
import { runCommand, type CommandOptions, type CommandResult, type CommandRunner } from '../../../agent/kvm/screen/command.ts';
import { createImage, words, rgb } from '../../../agent/kvm/screen/image.ts';
import { encodeJpeg } from '../../../agent/kvm/screen/jpeg.ts';
import { encodePng } from '../../../agent/kvm/screen/png.ts';
import { AUTO_ORDER, chooseBackend, openScreen } from '../../../agent/kvm/screen/select.ts';
import { SCREEN_BACKENDS } from '../../../agent/kvm/screen/types.ts';
import { SimulatedScreen } from '../../../agent/kvm/screen/simulated.ts';
import { ScreenError, type CaptureOptions, type ScreenSource } from '../../../agent/kvm/screen/types.ts';
import { unusedPort } from '../tunnels/helpers.ts';

const FF = ['ffmpeg', '-hide_banner', '-nostats', '-loglevel', 'error'];
const FF_INFO = ['ffmpeg', '-hide_banner', '-nostats', '-loglevel', 'info'];
const BLACK = ['-frames:v', '1', '-vf', 'blackframe=amount=100:threshold=32', '-f', 'null', '-'];
const OUT = ['-f', 'image2pipe', 'pipe:1'];
const jpeg80: CaptureOptions = { format: 'jpeg', quality: 80 };
const SCALE_640 = "scale=w='min(iw,640)':h='min(ih,360)':force_original_aspect_ratio=decrease";

function picture(width: number, height: number) {
  const image = createImage(width, height);
  words(image).fill(rgb(30, 60, 90));
  return image;
}
const JPEG = encodeJpeg(picture(64, 48), 70) as Uint8Array<ArrayBuffer>;
const PNG = encodePng(picture(32, 24));

/** A runner that records each call and answers from a script. */
function fakeRunner(answer: (argv: string[], options: CommandOptions) => Partial<CommandResult> | Error) {
  const calls: { argv: string[]; options: CommandOptions }[] = [];
  const run: CommandRunner = async (argv, options) => {
    calls.push({ argv, options });
    const a = answer(argv, options);
    if (a instanceof Error) throw a;
    return { stdout: new Uint8Array(0), stderr: '', exitCode: 0, timedOut: false, ...a };
  };
  return { run, calls };
}

async function failure(p: Promise<unknown>): Promise<ScreenError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ScreenError) return e;
    throw e;
  }
  throw new Error('expected a ScreenError');
}

let dir: string;
let videoDevice: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pirelay-screen-backends-'));
  videoDevice = join(dir, 'video0');
  writeFileSync(videoDevice, '');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('command lines', () => {
  test('quality 1..100 maps onto ffmpeg qscale 31..2', () => {
    expect([ffmpegQuality(100), ffmpegQuality(80), ffmpegQuality(50), ffmpegQuality(1), ffmpegQuality(0), ffmpegQuality(500)]).toEqual([2, 8, 17, 31, 31, 2]);
  });

  test('the scale filter fits the box, keeps the aspect ratio and never enlarges', () => {
    expect(scaleFilter()).toBeNull();
    expect(scaleFilter(640, 360)).toBe(SCALE_640);
    expect(scaleFilter(800)).toBe("scale=w='min(iw,800)':h=ih:force_original_aspect_ratio=decrease");
    expect(scaleFilter(undefined, 480)).toBe("scale=w=iw:h='min(ih,480)':force_original_aspect_ratio=decrease");
  });

  test('v4l2: the card’s MJPEG passes through when JPEG at full size is asked, a second output looking for a black frame', () => {
    expect(v4l2Args('/dev/video0', jpeg80)).toEqual([...FF_INFO, '-f', 'v4l2', '-input_format', 'mjpeg', '-i', '/dev/video0', '-frames:v', '1', '-c:v', 'copy', ...OUT, ...BLACK]);
    expect(v4l2Args('/dev/video0', jpeg80, { detectBlack: false })).toEqual([...FF, '-f', 'v4l2', '-input_format', 'mjpeg', '-i', '/dev/video0', '-frames:v', '1', '-c:v', 'copy', ...OUT]);
  });

  test('v4l2: scaled, re-encoded at the quality asked, or PNG, or from a YUYV card', () => {
    expect(v4l2Args('/dev/video2', { format: 'jpeg', quality: 80, maxWidth: 640, maxHeight: 360 })).toEqual([
      ...FF_INFO, '-f', 'v4l2', '-input_format', 'mjpeg', '-i', '/dev/video2', '-frames:v', '1', '-vf', SCALE_640, '-c:v', 'mjpeg', '-q:v', '8', ...OUT, ...BLACK,
    ]);
    expect(v4l2Args('/dev/video0', { format: 'png', quality: 80 }, { detectBlack: false })).toEqual([...FF, '-f', 'v4l2', '-input_format', 'mjpeg', '-i', '/dev/video0', '-frames:v', '1', '-c:v', 'png', ...OUT]);
    expect(v4l2Args('/dev/video0', jpeg80, { inputFormat: 'yuyv422', detectBlack: false })).toEqual([...FF, '-f', 'v4l2', '-input_format', 'yuyv422', '-i', '/dev/video0', '-frames:v', '1', '-c:v', 'mjpeg', '-q:v', '8', ...OUT]);
  });

  test('x11, fbdev, grim, and the transcoder', () => {
    expect(x11Args(':0', { format: 'jpeg', quality: 100, maxWidth: 640, maxHeight: 360 })).toEqual([...FF, '-f', 'x11grab', '-i', ':0', '-frames:v', '1', '-vf', SCALE_640, '-c:v', 'mjpeg', '-q:v', '2', ...OUT]);
    expect(fbdevArgs('/dev/fb0', { format: 'png', quality: 80 })).toEqual([...FF, '-f', 'fbdev', '-i', '/dev/fb0', '-frames:v', '1', '-c:v', 'png', ...OUT]);
    expect(grimArgs(jpeg80)).toEqual(['grim', '-t', 'jpeg', '-q', '80', '-']);
    expect(grimArgs({ format: 'png', quality: 80 })).toEqual(['grim', '-t', 'png', '-']);
    expect(transcodeArgs('jpeg', { format: 'png', quality: 50, maxWidth: 640, maxHeight: 360 })).toEqual([...FF, '-f', 'jpeg_pipe', '-i', 'pipe:0', '-frames:v', '1', '-vf', SCALE_640, '-c:v', 'png', ...OUT]);
    expect(transcodeArgs('png', { format: 'jpeg', quality: 50 })).toEqual([...FF, '-f', 'png_pipe', '-i', 'pipe:0', '-frames:v', '1', '-c:v', 'mjpeg', '-q:v', '17', ...OUT]);
  });
});

describe('v4l2', () => {
  test('a frame: its bytes, type and size, and the capture is killed after the deadline', async () => {
    const { run, calls } = fakeRunner(() => ({ stdout: JPEG }));
    const screen = v4l2Screen(videoDevice, { run, timeoutMs: 1234 });
    const frame = (await screen.capture(jpeg80))!;
    expect(frame.bytes).toEqual(JPEG);
    expect([frame.contentType, frame.width, frame.height]).toEqual(['image/jpeg', 64, 48]);
    expect(calls[0]!.argv).toEqual(v4l2Args(videoDevice, jpeg80));
    expect(calls[0]!.options.timeoutMs).toBe(1234);
    expect(screen.state()).toEqual({ backend: 'v4l2', signal: true, width: 64, height: 48 });
  });

  test('no signal: no frame before the deadline, no output, the driver saying there is no link, or a black frame', async () => {
    const black = { stdout: JPEG, stderr: 'Input #0, video4linux2,v4l2, from \'/dev/video0\':\n[Parsed_blackframe_0 @ 0x5581] frame:0 pblack:100 pts:0 t:0.000000 type:I last_keyframe:0\n' };
    for (const answer of [{ timedOut: true, exitCode: null }, { stdout: new Uint8Array(0) }, { exitCode: 1, stderr: '[video4linux2,v4l2 @ 0x1] ioctl(VIDIOC_STREAMON): Link has been severed\n' }, black]) {
      const screen = v4l2Screen(videoDevice, { run: fakeRunner(() => answer).run });
      expect(await screen.capture(jpeg80)).toBeNull();
      expect(screen.state()).toMatchObject({ backend: 'v4l2', signal: false, message: 'no signal' });
    }
  });

  test('a failure says what ffmpeg said; a missing device says so', async () => {
    const busy = v4l2Screen(videoDevice, { run: fakeRunner(() => ({ exitCode: 1, stderr: 'x\n/dev/video0: Device or resource busy\n' })).run });
    const e = await failure(busy.capture(jpeg80));
    expect(e.code).toBe('CAPTURE_FAILED');
    expect(e.message).toContain('Device or resource busy');
    expect(busy.state()).toMatchObject({ signal: false, message: e.message });
    const { run, calls } = fakeRunner(() => ({ stdout: JPEG }));
    const missing = await failure(v4l2Screen(join(dir, 'video9'), { run }).capture(jpeg80));
    expect([missing.code, missing.message]).toEqual(['SCREEN_UNAVAILABLE', `no capture device at ${join(dir, 'video9')}`]);
    expect(calls).toHaveLength(0);
  });

  test('output that is not an image is a failure, not a frame', async () => {
    const screen = v4l2Screen(videoDevice, { run: fakeRunner(() => ({ stdout: new TextEncoder().encode('garbage') })).run });
    expect((await failure(screen.capture(jpeg80))).message).toContain('not a JPEG or PNG');
  });

  test('an absent ffmpeg is a clear error', async () => {
    const run: CommandRunner = (argv, o) => runCommand(['pirelay-no-such-ffmpeg', ...argv.slice(1)], o);
    const e = await failure(v4l2Screen(videoDevice, { run }).capture(jpeg80));
    expect([e.code, e.message]).toEqual(['SCREEN_UNAVAILABLE', 'pirelay-no-such-ffmpeg is not installed (not found in PATH)']);
  });
});

describe('desktop backends', () => {
  test('x11 captures $DISPLAY; without it, a clear error', async () => {
    const { run, calls } = fakeRunner(() => ({ stdout: PNG }));
    const frame = (await x11Screen({ run, env: { DISPLAY: ':1' } }).capture({ format: 'png', quality: 80 }))!;
    expect([frame.contentType, frame.width, frame.height]).toEqual(['image/png', 32, 24]);
    expect(calls[0]!.argv).toEqual(x11Args(':1', { format: 'png', quality: 80 }));
    const e = await failure(x11Screen({ run, env: {} }).capture(jpeg80));
    expect(e.code).toBe('SCREEN_UNAVAILABLE');
    expect(e.message).toContain('DISPLAY is not set');
  });

  test('a desktop that does not answer in time is a failure, not "no signal"', async () => {
    const screen = x11Screen({ run: fakeRunner(() => ({ timedOut: true, exitCode: null })).run, env: { DISPLAY: ':0' } });
    expect((await failure(screen.capture(jpeg80))).message).toContain('did not finish in time');
  });

  test('fbdev captures the framebuffer device', async () => {
    const fb = join(dir, 'fb0');
    writeFileSync(fb, '');
    const { run, calls } = fakeRunner(() => ({ stdout: JPEG }));
    expect(await fbdevScreen(fb, { run }).capture({ format: 'jpeg', quality: 80, maxWidth: 640, maxHeight: 360 })).not.toBeNull();
    expect(calls[0]!.argv).toEqual(fbdevArgs(fb, { format: 'jpeg', quality: 80, maxWidth: 640, maxHeight: 360 }));
    expect((await failure(fbdevScreen(join(dir, 'fb9'), { run }).capture(jpeg80))).code).toBe('SCREEN_UNAVAILABLE');
  });

  test('grim: its JPEG as is when it fits, through ffmpeg when a smaller size is asked', async () => {
    const { run, calls } = fakeRunner((argv) => ({ stdout: argv[0] === 'grim' ? JPEG : encodeJpeg(picture(32, 24), 50) }));
    const grim = grimScreen({ run, env: { WAYLAND_DISPLAY: 'wayland-1' } });
    expect((await grim.capture({ format: 'jpeg', quality: 80, maxWidth: 64 }))!.bytes).toEqual(JPEG);
    expect(calls.map((c) => c.argv[0])).toEqual(['grim']);
    const small = (await grim.capture({ format: 'jpeg', quality: 80, maxWidth: 32 }))!;
    expect([small.width, small.height]).toEqual([32, 24]);
    expect(calls.map((c) => c.argv)).toEqual([grimArgs(jpeg80), grimArgs(jpeg80), transcodeArgs('jpeg', { format: 'jpeg', quality: 80, maxWidth: 32 })]);
    expect(calls[2]!.options.stdin).toEqual(JPEG);
    expect((await failure(grimScreen({ run, env: {} }).capture(jpeg80))).message).toContain('WAYLAND_DISPLAY is not set');
  });

  test('an absent grim is a clear error', async () => {
    const run: CommandRunner = (argv, o) => runCommand(['pirelay-no-such-grim', ...argv.slice(1)], o);
    const e = await failure(grimScreen({ run, env: { WAYLAND_DISPLAY: 'wayland-0' } }).capture(jpeg80));
    expect([e.code, e.message]).toEqual(['SCREEN_UNAVAILABLE', 'pirelay-no-such-grim is not installed (not found in PATH)']);
  });
});

describe('uStreamer', () => {
  let server: ReturnType<typeof Bun.serve>;
  let base: string;
  beforeAll(() => {
    server = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      fetch(request) {
        const path = new URL(request.url).pathname;
        const jpeg = { 'content-type': 'image/jpeg' };
        if (path === '/snapshot') return new Response(JPEG, { headers: { ...jpeg, 'x-ustreamer-online': 'true', 'x-ustreamer-width': '64', 'x-ustreamer-height': '48' } });
        if (path === '/offline') return new Response(encodeJpeg(picture(16, 16), 50) as Uint8Array<ArrayBuffer>, { headers: { ...jpeg, 'x-ustreamer-online': 'false' } });
        if (path === '/busy') return new Response('Service Unavailable', { status: 503 });
        if (path === '/state') return Response.json({ ok: true });
        return new Response('nope', { status: 500 });
      },
    });
    base = `http://127.0.0.1:${server.port}`;
  });
  afterAll(() => server.stop(true));

  test('GET /snapshot: the JPEG as uStreamer gave it', async () => {
    const frame = (await ustreamerScreen(`${base}/snapshot`).capture(jpeg80))!;
    expect(frame.bytes).toEqual(JPEG);
    expect([frame.contentType, frame.width, frame.height]).toEqual(['image/jpeg', 64, 48]);
  });

  test('no signal: 503, or X-UStreamer-Online: false (its own "no signal" picture is not passed on)', async () => {
    expect(await ustreamerScreen(`${base}/busy`).capture(jpeg80)).toBeNull();
    expect(await ustreamerScreen(`${base}/offline`).capture(jpeg80)).toBeNull();
  });

  test('another status is a failure; nothing listening is "unavailable"', async () => {
    const e = await failure(ustreamerScreen(`${base}/other`).capture(jpeg80));
    expect([e.code, e.message]).toEqual(['CAPTURE_FAILED', `uStreamer answered 500 at ${base}/other`]);
    const port = await unusedPort();
    const gone = await failure(ustreamerScreen(`http://127.0.0.1:${port}/snapshot`).capture(jpeg80));
    expect(gone.code).toBe('SCREEN_UNAVAILABLE');
    expect(gone.message).toContain(`uStreamer is not answering at http://127.0.0.1:${port}/snapshot`);
  });

  test('PNG or a smaller size goes through ffmpeg, fed the JPEG on stdin', async () => {
    const { run, calls } = fakeRunner(() => ({ stdout: PNG }));
    const frame = (await ustreamerScreen(`${base}/snapshot`, { run }).capture({ format: 'png', quality: 80 }))!;
    expect(frame.contentType).toBe('image/png');
    expect(calls[0]!.argv).toEqual(transcodeArgs('jpeg', { format: 'png', quality: 80 }));
    expect(calls[0]!.options.stdin).toEqual(JPEG);
  });
});

describe('runCommand, with real processes', () => {
  test('an absent binary: SCREEN_UNAVAILABLE, not a crash', async () => {
    const e = await failure(runCommand(['pirelay-no-such-binary', '-x'], { timeoutMs: 1000 }));
    expect(e.code).toBe('SCREEN_UNAVAILABLE');
  });

  test('stdout, stderr and the exit code of a failing command', async () => {
    const r = await runCommand(['sh', '-c', 'printf abc; echo boom >&2; exit 3'], { timeoutMs: 5000 });
    expect([new TextDecoder().decode(r.stdout), r.stderr.trim(), r.exitCode, r.timedOut]).toEqual(['abc', 'boom', 3, false]);
  });

  test('stdin reaches the command', async () => {
    const r = await runCommand(['cat'], { timeoutMs: 5000, stdin: JPEG });
    expect(r.stdout).toEqual(JPEG);
  });

  test('a command that hangs is killed at the deadline', async () => {
    const r = await runCommand(['sleep', '60'], { timeoutMs: 200 });
    expect([r.timedOut, r.exitCode]).toEqual([true, null]);
  });

  test('a command that prints too much is killed and fails', async () => {
    const e = await failure(runCommand(['sh', '-c', 'head -c 200000 /dev/zero'], { timeoutMs: 5000, maxBytes: 1000 }));
    expect([e.code, e.message]).toEqual(['CAPTURE_FAILED', 'sh printed more than 1000 bytes']);
  });
});

describe('choosing the backend', () => {
  const all = (value: boolean) => Object.fromEntries(AUTO_ORDER.map((n) => [n, () => value]));

  test('auto tries uStreamer, then a capture card, then Wayland, X11, the framebuffer', async () => {
    expect(AUTO_ORDER).toEqual(['ustreamer', 'v4l2', 'grim', 'x11', 'fbdev']);
    expect(await chooseBackend(all(true))).toBe('ustreamer');
    expect(await chooseBackend({ ...all(false), v4l2: () => true, grim: () => true })).toBe('v4l2');
    expect(await chooseBackend({ ...all(false), grim: async () => true, x11: () => true })).toBe('grim');
    expect(await chooseBackend({ ...all(false), x11: () => true, fbdev: () => true })).toBe('x11');
    expect(await chooseBackend({ ...all(false), fbdev: () => true })).toBe('fbdev');
    expect(await chooseBackend(all(false))).toBe('none');
    expect(await chooseBackend({ ...all(false), ustreamer: () => { throw new Error('boom'); }, x11: () => true })).toBe('x11');
  });

  test('an explicit backend is used as asked', () => {
    for (const name of SCREEN_BACKENDS.filter((n) => n !== 'auto')) expect(openScreen({ backend: name }).name).toBe(name);
    expect(openScreen({ backend: 'simulated', width: 640, height: 480 })).toBeInstanceOf(SimulatedScreen);
    expect(() => openScreen({ backend: 'vnc' })).toThrow(/unknown screen backend "vnc"/);
  });

  test('none: every capture fails as SCREEN_UNAVAILABLE', async () => {
    const none = openScreen({ backend: 'none' });
    expect((await failure(none.capture(jpeg80))).code).toBe('SCREEN_UNAVAILABLE');
    expect(none.state()).toMatchObject({ backend: 'none', signal: false });
  });

  test('auto probes lazily, at first use, and again after finding nothing', async () => {
    let probed = 0;
    const probes = Object.fromEntries(AUTO_ORDER.map((n) => [n, () => (probed++, false)]));
    const screen = openScreen({ backend: 'auto', probes });
    expect(probed).toBe(0);
    expect(screen.name).toBe('auto');
    expect((await failure(screen.capture(jpeg80))).code).toBe('SCREEN_UNAVAILABLE');
    expect(probed).toBe(5);
    expect(screen.state().backend).toBe('none');
    await failure(screen.capture(jpeg80));
    expect(probed).toBe(10);
  });

  test('auto then behaves as the backend it found, probing no more', async () => {
    let probed = 0;
    const { run, calls } = fakeRunner(() => ({ stdout: JPEG }));
    const screen: ScreenSource = openScreen({
      backend: 'auto',
      videoDevice,
      backendOptions: { run },
      probes: { ...all(false), v4l2: () => (probed++, true) },
    });
    expect(screen.state()).toMatchObject({ backend: 'auto', signal: false });
    expect((await screen.capture(jpeg80))!.bytes).toEqual(JPEG);
    expect(await screen.capture(jpeg80)).not.toBeNull();
    expect(probed).toBe(1);
    expect(screen.name).toBe('v4l2');
    expect(calls[0]!.argv).toEqual(v4l2Args(videoDevice, jpeg80));
    expect(screen.state()).toEqual({ backend: 'v4l2', signal: true, width: 64, height: 48 });
  });
});
