// Picks the screen backend: the one asked for, or the first that works here.
//
// FOUNDATION STUB: only `none`. The screen work adds the simulated backend and the real ones
// (V4L2 through ffmpeg, uStreamer's snapshot, grim, X11, the framebuffer), keeping openScreen.
import type { ScreenSource } from './types.ts';

export interface ScreenOptions {
  /** auto, simulated, v4l2, ustreamer, grim, x11, fbdev, none. */
  backend: string;
  /** The simulated backend: no video signal while DIR/no-signal exists. */
  hidDir?: string;
  videoDevice?: string;
}

export function openScreen(_options: ScreenOptions): ScreenSource {
  return {
    name: 'none',
    capture: async () => null,
    state: () => ({ backend: 'none', signal: false, width: null, height: null, message: 'no screen backend' }),
    close() {},
  };
}
