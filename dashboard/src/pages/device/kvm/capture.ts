// Keyboard and mouse captured over the remote screen and sent as live input. Keys go by
// KeyboardEvent.code (the physical key: the target's own layout makes the character), as a down
// and an up, never the browser's auto-repeats — a held key is held on the device and the target
// repeats it itself, so a laggy link can neither repeat nor stick a key. The mouse is absolute
// (0..1 over the picture, letterbox excluded), at most one move per animation frame with the
// latest position winning, and the wheel in whole steps. Anything that takes the keyboard away
// (blur, a hidden tab, leaving the tab) releases everything on the device.
import { isKeyCode } from '../../../../../shared/hid/keycodes.ts';
import type { HidInput } from '../../../../../shared/api/kvm.ts';

/** Ctrl+Alt+Shift together (as Guacamole does): stops capturing; nothing else is that chord. */
export const RELEASE_CHORD = 'Ctrl+Alt+Shift';
const CHORD = ['Control', 'Alt', 'Shift'];

/** Older browsers name the Windows/Command keys OSLeft/OSRight. */
const ALIASES: Record<string, string> = { OSLeft: 'MetaLeft', OSRight: 'MetaRight' };

/** Pixels of wheel travel that make one step (Chromium and Firefox report 100 and 3 lines a notch). */
const PIXELS_PER_STEP = 100;
const LINES_PER_STEP = 3;

export interface CaptureOptions {
  send: (m: HidInput) => boolean;
  /** The element the picture is drawn in (its content box, letterboxed by object-fit: contain). */
  picture: () => HTMLImageElement | null;
  /** Called when the release chord or a loss of focus ends capture. */
  onStop: () => void;
}

/** Where on the remote screen a point of the page is (0..1 each, clamped), given the picture's letterbox. */
export function screenPoint(img: HTMLImageElement, clientX: number, clientY: number): { x: number; y: number } {
  const r = img.getBoundingClientRect();
  let left = r.left;
  let top = r.top;
  let width = r.width;
  let height = r.height;
  const nw = img.naturalWidth;
  const nh = img.naturalHeight;
  if (nw > 0 && nh > 0 && width > 0 && height > 0) {
    const scale = Math.min(width / nw, height / nh);
    const w = nw * scale;
    const h = nh * scale;
    left += (width - w) / 2;
    top += (height - h) / 2;
    width = w;
    height = h;
  }
  const clamp = (v: number) => (Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 0);
  return { x: clamp((clientX - left) / width), y: clamp((clientY - top) / height) };
}

/**
 * One capture session's state: the keys this viewer sent down (so an up is only sent for a key
 * that went down here, e.g. not for the Enter that started capture), the mouse's position and
 * buttons, and the wheel's fraction of a step.
 */
export class Capture {
  private down = new Set<string>();
  private x = 0.5;
  private y = 0.5;
  private buttons = 0;
  private pendingMove = false;
  private frame = 0;
  private wheelY = 0;
  private wheelX = 0;
  active = false;

  constructor(private readonly opts: CaptureOptions) {}

  start() {
    this.active = true;
  }

  /** Stops capturing and releases everything on the device (a no-op when nothing was captured). */
  stop() {
    if (!this.active) return;
    this.active = false;
    this.release();
  }

  /** Releases every key and button, on the device and here. */
  release() {
    cancelAnimationFrame(this.frame);
    this.pendingMove = false;
    this.down.clear();
    this.buttons = 0;
    this.wheelX = this.wheelY = 0;
    this.opts.send({ t: 'release' });
  }

  /** The socket dropped: the device released everything; what we held is gone too. */
  forget() {
    this.down.clear();
    this.buttons = 0;
  }

  key(e: KeyboardEvent) {
    if (!this.active) return;
    e.preventDefault();
    e.stopPropagation();
    if (e.type === 'keydown' && CHORD.every((m) => e.getModifierState(m)) && /^(Control|Alt|Shift)/.test(e.code)) {
      this.stop();
      this.opts.onStop();
      return;
    }
    if (e.repeat) return;
    const code = ALIASES[e.code] ?? e.code;
    if (!isKeyCode(code)) return;
    if (e.type === 'keydown') {
      // A second down without an up (a lost keyup) is a repeat too: the key is already held.
      if (this.down.has(code)) return;
      if (this.opts.send({ t: 'down', code })) this.down.add(code);
    } else if (this.down.delete(code)) {
      this.opts.send({ t: 'up', code });
    }
  }

  /** A pointer event over the picture: its position (absolute, or moved by movementX/Y under pointer lock) and buttons. */
  pointer(e: PointerEvent | MouseEvent, locked: boolean) {
    if (!this.active) return;
    const img = this.opts.picture();
    if (!img) return;
    if (locked) {
      const r = img.getBoundingClientRect();
      if (r.width > 0 && r.height > 0) {
        this.x = Math.min(1, Math.max(0, this.x + e.movementX / r.width));
        this.y = Math.min(1, Math.max(0, this.y + e.movementY / r.height));
      }
    } else {
      ({ x: this.x, y: this.y } = screenPoint(img, e.clientX, e.clientY));
    }
    const buttons = e.buttons & 31;
    if (buttons !== this.buttons) {
      // A press or release goes at once, at its own position (any pending move is folded into it).
      this.buttons = buttons;
      this.flush(0, 0);
    } else if (!this.pendingMove) {
      this.pendingMove = true;
      this.frame = requestAnimationFrame(() => this.pendingMove && this.flush(0, 0));
    }
  }

  wheel(e: WheelEvent) {
    if (!this.active) return;
    e.preventDefault();
    const per = e.deltaMode === WheelEvent.DOM_DELTA_LINE ? LINES_PER_STEP : e.deltaMode === WheelEvent.DOM_DELTA_PAGE ? 1 : PIXELS_PER_STEP;
    this.wheelY += e.deltaY / per;
    this.wheelX += e.deltaX / per;
    const steps = (v: number) => Math.max(-127, Math.min(127, Math.trunc(v)));
    // The page scrolls down for a positive deltaY; the HID wheel scrolls down for a negative value.
    const wheel = -steps(this.wheelY);
    const hwheel = steps(this.wheelX);
    if (!wheel && !hwheel) return;
    this.wheelY += wheel;
    this.wheelX -= hwheel;
    this.flush(wheel, hwheel);
  }

  private flush(wheel: number, hwheel: number) {
    cancelAnimationFrame(this.frame);
    this.pendingMove = false;
    this.opts.send({ t: 'mouse', x: this.x, y: this.y, buttons: this.buttons, wheel, hwheel });
  }
}
