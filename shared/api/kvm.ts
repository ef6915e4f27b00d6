// The KVM API's bodies and messages (native, under /api/v1/devices/:id/): keystrokes, held keys,
// the mouse, typing a text, screenshots and the live view, and the messages of the live input
// WebSocket (GET …/hid). The device's answers (KvmStatus, HidState, TypeJob) are the protocol's
// own schemas, re-exported, so the API and the wire cannot drift.
import { z } from 'zod';
import { HOLD_LEASE, MAX_TYPE_TEXT, ScreenFormatSchema } from '../protocol/kvm.ts';
import { isKeyCode, MODIFIER_CODES, type ModifierCode } from '../hid/keycodes.ts';

export { HidStateSchema, KvmStatusSchema, TypeJobSchema, type HidState, type KvmStatus, type TypeJob } from '../protocol/kvm.ts';

export const KeyCodeSchema = z
  .string()
  .max(32)
  .refine(isKeyCode, { message: 'not a KeyboardEvent.code with a HID usage (e.g. KeyA, Enter, F13, Numpad1, IntlBackslash)' });

export const ModifierCodeSchema = z.enum(MODIFIER_CODES as [ModifierCode, ...ModifierCode[]]);

export const KeystrokeBodySchema = z
  .object({
    code: KeyCodeSchema,
    /** Held while `code` is pressed, e.g. ["ControlLeft", "AltLeft"]. */
    modifiers: z.array(ModifierCodeSchema).max(8).default([]),
  })
  .strict();

export const KeyDownBodySchema = z
  .object({
    code: KeyCodeSchema,
    /** Released by itself after this long unless renewed by another key-down of the same key. */
    lease_ms: z.number().int().min(HOLD_LEASE.minMs).max(HOLD_LEASE.maxMs).default(HOLD_LEASE.defaultMs),
  })
  .strict();

export const KeyUpBodySchema = z.object({ code: KeyCodeSchema }).strict();

export const MouseBodySchema = z
  .object({
    /** 0 (left edge) … 1 (right edge) of the screen. */
    x: z.number().min(0).max(1),
    y: z.number().min(0).max(1),
    /** Bit 0 left, 1 right, 2 middle, 3 back, 4 forward. */
    buttons: z.number().int().min(0).max(31).default(0),
    wheel: z.number().int().min(-127).max(127).default(0),
    hwheel: z.number().int().min(-127).max(127).default(0),
  })
  .strict();

export const TypeBodySchema = z
  .object({
    text: z.string().min(1).max(MAX_TYPE_TEXT),
    /** The target's keyboard layout, e.g. de-DE (GET /api/v1/kvm/layouts lists them). */
    layout: z.string().min(2).max(16),
    /** Pause between characters; the default types as fast as the target reliably takes. */
    interval_ms: z.number().int().min(0).max(1000).optional(),
  })
  .strict();

const Int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const ScreenshotQuerySchema = z
  .object({
    format: ScreenFormatSchema.default('jpeg'),
    quality: Int(1, 100).default(80),
    max_width: Int(16, 8192).optional(),
    max_height: Int(16, 8192).optional(),
  })
  .strict();

export const LiveQuerySchema = ScreenshotQuerySchema.omit({ format: true }).extend({ fps: Int(1, 30).default(15) }).strict();

export const LayoutSchema = z.object({ id: z.string(), name: z.string() });
export const LayoutListSchema = z.object({ layouts: z.array(LayoutSchema) });

/** What a viewer sends on the live input WebSocket (JSON text messages). */
export const HidInputSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('down'), code: KeyCodeSchema }).strict(),
  z.object({ t: z.literal('up'), code: KeyCodeSchema }).strict(),
  z.object({ t: z.literal('keystroke'), code: KeyCodeSchema, modifiers: z.array(ModifierCodeSchema).max(8).default([]) }).strict(),
  /** The latest position wins: moves the device has not written yet are replaced, not queued. */
  z.object({ t: z.literal('mouse'), x: z.number().min(0).max(1), y: z.number().min(0).max(1), buttons: z.number().int().min(0).max(31), wheel: z.number().int().min(-127).max(127).default(0), hwheel: z.number().int().min(-127).max(127).default(0) }).strict(),
  /** Releases every key and button this viewer holds. */
  z.object({ t: z.literal('release') }).strict(),
  z.object({ t: z.literal('type'), text: z.string().min(1).max(MAX_TYPE_TEXT), layout: z.string().min(2).max(16), interval_ms: z.number().int().min(0).max(1000).optional() }).strict(),
  z.object({ t: z.literal('cancel') }).strict(),
]);
export type HidInput = z.infer<typeof HidInputSchema>;

/** What the live input WebSocket sends back. */
export type HidOutput =
  | { t: 'state'; held: string[]; leds: { num_lock: boolean; caps_lock: boolean; scroll_lock: boolean } | null }
  | { t: 'type'; job: import('../protocol/kvm.ts').TypeJob }
  | { t: 'error'; code: string; message: string; details?: Record<string, unknown> };

export const TinypilotKeyBodySchema = z.object({ name: z.string().trim().min(1).max(64).default('TinyPilot API') }).strict();

export const TinypilotKeySchema = z.object({
  id: z.string(),
  device_id: z.string(),
  name: z.string(),
  created_at: z.string(),
  last_used_at: z.string().nullable(),
});
/** The answer to creating one: the key and its base URL, shown this once. */
export const CreatedTinypilotKeySchema = TinypilotKeySchema.extend({ key: z.string(), base_url: z.string() });
export const TinypilotKeyListSchema = z.object({ keys: z.array(TinypilotKeySchema) });
