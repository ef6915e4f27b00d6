// The live event stream (GET /api/v1/stream) as clients see it: the status event's data, the
// event ids Last-Event-ID resumes from, and the JSON messages of its WebSocket form (which are
// also what the FleetHub sends the Worker, which turns them into Server-Sent Events). Plain zod,
// so the dashboard and the CLI can read the stream without pulling in the Worker.
import { z } from 'zod';
import { DeviceIdSchema } from './devices.ts';

/** Event ids are decimal counters, strictly increasing per stream; the client only echoes them back. */
export const EventIdSchema = z.string().regex(/^\d{1,15}$/, 'an event id is the decimal id of an event this stream sent');

/** Tyto's `event: status`: a device went online (its agent said hello) or offline (its socket went away or fell silent). */
export const StatusEventSchema = z.object({
  agent_id: DeviceIdSchema,
  status: z.enum(['online', 'offline']),
  timestamp: z.iso.datetime(),
  name: z.string().max(64).optional(),
  hostname: z.string().max(255).optional(),
});
export type StatusEvent = z.infer<typeof StatusEventSchema>;

export const STREAM_TOPICS = ['status'] as const;
export type StreamTopic = (typeof STREAM_TOPICS)[number];

/**
 * One message of the WebSocket form. `gap`: the events after the id the client resumed from are no
 * longer kept (re-read the device list); its id is where to resume from next time. `dropped`: the
 * client fell too far behind and the stream ends. `error`: the client sent something the stream
 * does not take (it takes nothing; the socket stays open).
 */
export const StreamMessageSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('event'), id: EventIdSchema, event: z.literal('status'), data: StatusEventSchema }),
  z.object({ t: z.literal('gap'), id: EventIdSchema }),
  z.object({ t: z.literal('dropped'), reason: z.string() }),
  z.object({ t: z.literal('error'), code: z.string(), reason: z.string() }),
]);
export type StreamMessage = z.infer<typeof StreamMessageSchema>;
