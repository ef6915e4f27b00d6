// The live event stream (GET /api/v1/stream) as clients see it: the status event's data, the
// event ids Last-Event-ID resumes from, and the JSON messages of its WebSocket form both ways
// (which are also what a hub and the Worker's SSE bridge say to each other). Plain zod, so the
// hubs, the Worker, the dashboard and the CLI read the stream from one source.
import { z } from 'zod';
import { DeviceIdSchema } from './devices.ts';
import { MetricsEventSchema } from './metrics.ts';

/** Event ids are decimal counters, strictly increasing per hub; the client only echoes them back. */
export const EventIdSchema = z.string().regex(/^\d{1,15}$/, 'an event id is the decimal id of an event this stream sent');

/**
 * What a client may resume GET /api/v1/stream from: an event id, or the composite id of a stream
 * that merges two hubs' sequences (`agent_id=` with `metrics`: the FleetHub's status events and
 * the device hub's metrics events), "<status id>:<metrics id>", either side empty until that feed
 * sent its first event. A plain decimal id, which every stream sent before metrics, stands for the
 * status side. The hubs themselves only ever see EventIdSchema ids.
 */
export const StreamResumeIdSchema = z
  .string()
  .regex(/^(?:\d{1,15}|\d{0,15}:\d{0,15})$/, 'an event id is the id ("<n>", or "<status n>:<metrics n>") of an event this stream sent');

/**
 * Tyto's `event: status`: a device went online (its agent said hello) or offline (its socket went
 * away or fell silent). `team_id` is the device's team when it happened: a stream shows a caller
 * only the events of the teams they may see.
 */
export const StatusEventSchema = z.object({
  agent_id: DeviceIdSchema,
  team_id: z.string().min(1).max(64),
  status: z.enum(['online', 'offline']),
  timestamp: z.iso.datetime(),
  name: z.string().max(64).optional(),
  hostname: z.string().max(255).optional(),
});
export type StatusEvent = z.infer<typeof StatusEventSchema>;

/** `status` (device online/offline) and `metrics` (a device's sample, shared/api/metrics.ts MetricsEventSchema). */
export const STREAM_TOPICS = ['status', 'metrics'] as const;
export type StreamTopic = (typeof STREAM_TOPICS)[number];

/**
 * Events a watcher may hold unacknowledged; one more and it is dropped. A hub cannot see how far
 * behind a socket is (workerd's send() never blocks), so a watcher says what it has handled.
 */
export const STREAM_WINDOW = 256;

/**
 * The one message a watcher sends (besides `{"t":"ping"}`, answered with `{"t":"pong"}`): it has
 * handled `n` more `event` messages (replayed or live). Acknowledge in batches, well before
 * STREAM_WINDOW events are outstanding.
 */
export const StreamAckSchema = z.object({ t: z.literal('ack'), n: z.number().int().positive().max(2 ** 31) }).strict();
export type StreamAck = z.infer<typeof StreamAckSchema>;

/**
 * One message of the WebSocket form, hub to client. `gap`: the events after the id the client resumed from are no
 * longer kept (re-read the device list); its id is where to resume from next time. `dropped`: the
 * client left more than STREAM_WINDOW events unacknowledged; the socket is then closed
 * (StreamCloseCode.DROPPED, 1013). A socket closed with StreamCloseCode.ACCESS_CHANGED (4003) sends
 * nothing first: the caller's teams changed, and a reconnect is filtered by the new ones.
 * `error`: the client sent something other than an ack, or acknowledged more than it was sent
 * (the message is ignored and counted; the socket stays open).
 */
export const StreamMessageSchema = z.discriminatedUnion('t', [
  // Two kinds of event under one `t`: a union of its own, discriminated by `event` (zod refuses one `t` twice).
  z.discriminatedUnion('event', [
    z.object({ t: z.literal('event'), id: EventIdSchema, event: z.literal('status'), data: StatusEventSchema }),
    z.object({ t: z.literal('event'), id: EventIdSchema, event: z.literal('metrics'), data: MetricsEventSchema }),
  ]),
  z.object({ t: z.literal('gap'), id: EventIdSchema }),
  z.object({ t: z.literal('dropped'), reason: z.string() }),
  z.object({ t: z.literal('error'), code: z.string(), reason: z.string() }),
]);
export type StreamMessage = z.infer<typeof StreamMessageSchema>;
