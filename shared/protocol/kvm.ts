// Capability "kvm": the device as the USB keyboard and mouse of another computer, and that
// computer's screen. Its RPC methods (one report or one job each), and two stream kinds the hub
// opens toward the agent: `screen` (one screenshot, or a live MJPEG view as one stream, never an
// RPC per frame) and `hid` (live input from one viewer, whose keys are released when it ends).
import { z } from 'zod';

export const KVM_CAPABILITY = 'kvm';

const Code = z.string().min(1).max(32);
const Layout = z.string().min(2).max(16);

/** What the keyboard holds and what its host's LEDs say (null: no LED report seen yet). */
export const HidStateSchema = z.object({
  held: z.array(Code).max(14),
  leds: z.object({ num_lock: z.boolean(), caps_lock: z.boolean(), scroll_lock: z.boolean() }).nullable(),
});
export type HidState = z.infer<typeof HidStateSchema>;

/** A gadget as the agent found it last: `ok`, or why writing to it fails. */
export const GadgetStateSchema = z.object({
  path: z.string().max(4096),
  state: z.enum(['ok', 'missing', 'unplugged', 'busy', 'error', 'unknown']),
  message: z.string().max(1024).optional(),
});

export const ScreenStateSchema = z.object({
  /** simulated, v4l2, ustreamer, grim, x11, fbdev, or none. */
  backend: z.string().max(32),
  signal: z.boolean(),
  width: z.number().int().nonnegative().nullable(),
  height: z.number().int().nonnegative().nullable(),
  message: z.string().max(1024).optional(),
});

export const KvmStatusSchema = HidStateSchema.extend({
  keyboard: GadgetStateSchema,
  mouse: GadgetStateSchema,
  screen: ScreenStateSchema,
});
export type KvmStatus = z.infer<typeof KvmStatusSchema>;

/** A text being typed: progress, and where it stopped if it did not finish. */
export const TypeJobSchema = z.object({
  id: z.string().min(1).max(64),
  layout: Layout,
  state: z.enum(['typing', 'done', 'failed', 'cancelled']),
  /** Characters delivered so far (every one of them, in order). */
  typed: z.number().int().nonnegative(),
  total: z.number().int().nonnegative(),
  /** Characters the layout lacks that were typed as their ASCII forms (smart quotes, dashes…). */
  substitutions: z.array(z.object({ char: z.string().max(8), as: z.string().max(8), count: z.number().int().positive() })).max(64),
  error: z.object({ code: z.string().max(64), message: z.string().max(1024), at: z.number().int().nonnegative() }).optional(),
});
export type TypeJob = z.infer<typeof TypeJobSchema>;

/** The longest text one type job takes (characters). */
export const MAX_TYPE_TEXT = 100_000;
/** A REST hold's lease: default, and the bounds a caller may ask for. */
export const HOLD_LEASE = { defaultMs: 1000, minMs: 100, maxMs: 60_000 } as const;

export const kvmRpc = {
  kvm_status: { params: z.object({}).strict(), result: KvmStatusSchema },
  /** Presses `code` with `modifiers` (the report's byte 0), then releases both. */
  hid_keystroke: { params: z.object({ code: Code, modifiers: z.number().int().min(0).max(255) }).strict(), result: HidStateSchema },
  /** A REST hold: `down` holds the key for `lease_ms` (a repeated down renews it); `up` releases it. */
  hid_key: {
    params: z.object({ action: z.enum(['down', 'up']), code: Code, lease_ms: z.number().int().min(HOLD_LEASE.minMs).max(HOLD_LEASE.maxMs).optional() }).strict(),
    result: HidStateSchema,
  },
  /** Releases every key and button, whoever holds them. */
  hid_release: { params: z.object({}).strict(), result: HidStateSchema },
  hid_mouse: {
    params: z
      .object({ buttons: z.number().int().min(0).max(31), x: z.number().min(0).max(1), y: z.number().min(0).max(1), wheel: z.number().int().min(-127).max(127), hwheel: z.number().int().min(-127).max(127) })
      .strict(),
    result: z.object({}),
  },
  hid_type_start: {
    params: z.object({ text: z.string().min(1).max(MAX_TYPE_TEXT), layout: Layout, interval_ms: z.number().int().min(0).max(1000).optional() }).strict(),
    result: TypeJobSchema,
  },
  hid_type_status: { params: z.object({ job: z.string().min(1).max(64) }).strict(), result: TypeJobSchema },
  hid_type_cancel: { params: z.object({ job: z.string().min(1).max(64) }).strict(), result: TypeJobSchema },
} as const;

export const ScreenFormatSchema = z.enum(['jpeg', 'png']);

/**
 * OPEN of a `screen` stream. The agent ACCEPTs with status 200 and the Content-Type (image/jpeg,
 * image/png, or multipart/x-mixed-replace for `live`), 204 with FIN when there is no video signal,
 * or 503 with a JSON error body when there is no screen at all. A live stream sends one part per
 * frame, at most `fps` a second, and drops (never queues) a frame its reader is not ready for.
 */
export const ScreenOpenSchema = z.object({
  kind: z.literal('screen'),
  mode: z.enum(['snapshot', 'live']),
  format: ScreenFormatSchema,
  quality: z.number().int().min(1).max(100),
  max_width: z.number().int().min(16).max(8192).optional(),
  max_height: z.number().int().min(16).max(8192).optional(),
  fps: z.number().int().min(1).max(60).optional(),
});
export type ScreenOpen = z.infer<typeof ScreenOpenSchema>;

/**
 * OPEN of a `hid` stream: one viewer's live input. Each direction carries newline-delimited JSON:
 * toward the agent the HidInput messages of shared/api/kvm.ts (already checked by the hub), back
 * the HidOutput messages. Every key and button it pressed is released when the stream ends.
 */
export const HidOpenSchema = z.object({ kind: z.literal('hid') });

export const kvmStreams = [ScreenOpenSchema, HidOpenSchema] as const;
