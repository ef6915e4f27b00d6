// What a screen backend is to the rest of the agent: something that captures the target's current
// image (or says there is no signal) and, for the simulated one, sees the HID reports so its test
// image changes with them. The backends live beside this file; select.ts picks one.

/** The backends `--screen` names, `auto` first (select.ts says in which order auto tries them). */
export const SCREEN_BACKENDS = ['auto', 'simulated', 'ustreamer', 'v4l2', 'grim', 'x11', 'fbdev', 'none'] as const;
export type ScreenBackend = (typeof SCREEN_BACKENDS)[number];
/** The capture card the v4l2 backend reads unless --video-device says otherwise. */
export const DEFAULT_VIDEO_DEVICE = '/dev/video0';

export interface CaptureOptions {
  format: 'jpeg' | 'png';
  /** 1..100 (JPEG only). */
  quality: number;
  maxWidth?: number;
  maxHeight?: number;
}

export interface Frame {
  contentType: 'image/jpeg' | 'image/png';
  bytes: Uint8Array;
  width: number;
  height: number;
  /** When it was captured (ms since the epoch, fractional where the clock allows). */
  capturedAt: number;
}

export interface ScreenState {
  backend: string;
  signal: boolean;
  width: number | null;
  height: number | null;
  message?: string;
}

export interface ScreenSource {
  /** simulated, v4l2, ustreamer, grim, x11, fbdev, none. */
  readonly name: string;
  /** The current image, or null when there is no video signal; rejects when the backend fails. */
  capture(options: CaptureOptions): Promise<Frame | null>;
  state(): ScreenState;
  /** The simulated backend draws what it sees; real ones ignore this. */
  observe?(gadget: 'keyboard' | 'mouse', report: Uint8Array): void;
  close(): void;
}

/**
 * Why a capture failed (as opposed to "no signal", which is a null frame): the backend's tool is
 * missing or cannot reach the device (SCREEN_UNAVAILABLE), or it ran and failed (CAPTURE_FAILED).
 */
export class ScreenError extends Error {
  constructor(
    readonly code: 'SCREEN_UNAVAILABLE' | 'CAPTURE_FAILED',
    message: string,
  ) {
    super(message);
    this.name = 'ScreenError';
  }
}
