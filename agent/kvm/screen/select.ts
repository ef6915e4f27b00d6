// Picks the screen backend: the one asked for, or (`auto`) the first that works here. The order
// `auto` tries, and why:
// 1. ustreamer — when uStreamer runs it owns the capture card (a V4L2 device streams to one reader
//    at a time, so ffmpeg would get EBUSY), and its snapshot is already encoded: the cheapest.
// 2. v4l2 — a capture card shows the target computer, which is what a KVM is for.
// 3. grim (Wayland), 4. x11, 5. fbdev — the device's own desktop. Wayland first: under Wayland
//    $DISPLAY is usually XWayland's too, where x11grab records black. The framebuffer last: on a
//    desktop it shows the console, not the desktop.
// 6. none — screenshots answer 503 NO_SCREEN.
// Probing is cheap (a file exists, a binary is on PATH, uStreamer's /state answers) and lazy: it
// runs at the first capture or status, never at start-up, and again after a backend turned out
// unavailable (a card unplugged), so plugging one in later works without a restart.
import { existsSync } from 'node:fs';
import { DEFAULT_FRAMEBUFFER, DEFAULT_USTREAMER_URL, fbdevScreen, grimScreen, ustreamerScreen, v4l2Screen, x11Screen, type BackendOptions } from './backends.ts';
import { SimulatedScreen } from './simulated.ts';
import { DEFAULT_VIDEO_DEVICE, SCREEN_BACKENDS, ScreenError, type CaptureOptions, type ScreenBackend, type Frame, type ScreenSource, type ScreenState } from './types.ts';

/** The order `auto` tries. */
export const AUTO_ORDER = ['ustreamer', 'v4l2', 'grim', 'x11', 'fbdev'] as const;
type RealBackend = (typeof AUTO_ORDER)[number];

export interface ScreenOptions {
  /** auto, simulated, v4l2, ustreamer, grim, x11, fbdev, none. */
  backend: string;
  /** The simulated backend: no video signal while DIR/no-signal exists. */
  hidDir?: string;
  videoDevice?: string;
  /** uStreamer's snapshot URL (default http://127.0.0.1:8080/snapshot). */
  ustreamerUrl?: string;
  framebuffer?: string;
  /** The simulated screen's size (default 1280×720). */
  width?: number;
  height?: number;
  /** For tests: how backends run commands, fetch, and read the environment. */
  backendOptions?: BackendOptions;
  /** For tests: whether each real backend can work here. */
  probes?: Partial<Record<RealBackend, () => boolean | Promise<boolean>>>;
}

export function isScreenBackend(name: string): name is ScreenBackend {
  return (SCREEN_BACKENDS as readonly string[]).includes(name);
}

/** No screen: every capture fails with SCREEN_UNAVAILABLE (503 NO_SCREEN to a viewer). */
export function noScreen(message = 'no screen backend (--screen none)'): ScreenSource {
  return {
    name: 'none',
    capture: async () => {
      throw new ScreenError('SCREEN_UNAVAILABLE', message);
    },
    state: () => ({ backend: 'none', signal: false, width: null, height: null, message }),
    close() {},
  };
}

export function openScreen(options: ScreenOptions): ScreenSource {
  const backend = options.backend;
  if (!isScreenBackend(backend)) throw new RangeError(`unknown screen backend "${backend}" (one of ${SCREEN_BACKENDS.join(', ')})`);
  if (backend === 'none') return noScreen();
  if (backend === 'simulated') return new SimulatedScreen({ hidDir: options.hidDir, width: options.width, height: options.height });
  if (backend === 'auto') return new AutoScreen(options);
  return realScreen(backend, options);
}

function realScreen(backend: RealBackend, options: ScreenOptions): ScreenSource {
  const b = options.backendOptions ?? {};
  switch (backend) {
    case 'ustreamer':
      return ustreamerScreen(options.ustreamerUrl ?? DEFAULT_USTREAMER_URL, b);
    case 'v4l2':
      return v4l2Screen(options.videoDevice ?? DEFAULT_VIDEO_DEVICE, b);
    case 'grim':
      return grimScreen(b);
    case 'x11':
      return x11Screen(b);
    case 'fbdev':
      return fbdevScreen(options.framebuffer ?? DEFAULT_FRAMEBUFFER, b);
  }
}

/** The probes `auto` uses on a real device. */
export function defaultProbes(options: ScreenOptions): Record<RealBackend, () => boolean | Promise<boolean>> {
  const env = options.backendOptions?.env ?? process.env;
  const has = (binary: string) => Bun.which(binary) !== null;
  return {
    ustreamer: async () => {
      try {
        const state = new URL('/state', options.ustreamerUrl ?? DEFAULT_USTREAMER_URL);
        const response = await (options.backendOptions?.fetch ?? fetch)(state, { signal: AbortSignal.timeout(500) });
        await response.body?.cancel();
        return response.ok;
      } catch {
        return false;
      }
    },
    v4l2: () => existsSync(options.videoDevice ?? DEFAULT_VIDEO_DEVICE) && has('ffmpeg'),
    grim: () => Boolean(env.WAYLAND_DISPLAY) && has('grim'),
    x11: () => Boolean(env.DISPLAY) && has('ffmpeg'),
    fbdev: () => existsSync(options.framebuffer ?? DEFAULT_FRAMEBUFFER) && has('ffmpeg'),
  };
}

/** Runs the probes in AUTO_ORDER; the first that says yes wins, else none. */
export async function chooseBackend(probes: Partial<Record<RealBackend, () => boolean | Promise<boolean>>>): Promise<RealBackend | 'none'> {
  for (const name of AUTO_ORDER) {
    const probe = probes[name];
    if (!probe) continue;
    try {
      if (await probe()) return name;
    } catch {
      // A probe that throws says no.
    }
  }
  return 'none';
}

const NOTHING_WORKS = 'no screen backend works here (no uStreamer, capture card, Wayland, X11 or framebuffer)';

/** `auto`: probes at first use, then behaves as the backend it found. */
class AutoScreen implements ScreenSource {
  private chosen: ScreenSource | null = null;
  private choosing: Promise<ScreenSource> | null = null;
  /** What the backend given up on said last, shown until the next probe finds one. */
  private lastState: ScreenState | null = null;

  constructor(private readonly options: ScreenOptions) {}

  get name(): string {
    return this.chosen?.name ?? 'auto';
  }

  async capture(options: CaptureOptions): Promise<Frame | null> {
    const screen = await this.choose();
    try {
      return await screen.capture(options);
    } catch (e) {
      if (e instanceof ScreenError && e.code === 'SCREEN_UNAVAILABLE') this.forget();
      throw e;
    }
  }

  state(): ScreenState {
    if (this.chosen) return this.chosen.state();
    void this.choose();
    return this.lastState ?? { backend: 'auto', signal: false, width: null, height: null, message: 'looking for a screen backend' };
  }

  close(): void {
    this.chosen?.close();
    this.chosen = null;
  }

  /** The backend found, or none (whose capture fails, so the next use looks again). */
  private choose(): Promise<ScreenSource> {
    if (this.chosen) return Promise.resolve(this.chosen);
    this.choosing ??= chooseBackend({ ...defaultProbes(this.options), ...this.options.probes }).then((name) => {
      this.choosing = null;
      this.chosen = name === 'none' ? noScreen(NOTHING_WORKS) : realScreen(name, this.options);
      return this.chosen;
    });
    return this.choosing;
  }

  private forget(): void {
    this.lastState = this.chosen?.state() ?? null;
    this.chosen?.close();
    this.chosen = null;
  }
}
