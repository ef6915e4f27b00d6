// The delivery record as the API lists it (GET /api/v1/alert-deliveries) and the answers of the
// test notifications (POST /api/v1/alert-rules/{id}/test, POST /api/v1/alerts/test-channel).
// Beside shared/api/alerts.ts, which holds the delivery itself (DeliverySchema).
import { z } from 'zod';
import { ChannelSchema, ChannelViewSchema, DELIVERY_STATUSES, DeliverySchema } from './alerts.ts';

export const DELIVERY_PAGE_DEFAULT = 50;
export const DELIVERY_PAGE_MAX = 200;

export const DeliveryListQuerySchema = z
  .object({
    alert_id: z.string().min(1).max(64).optional(),
    rule_id: z.string().min(1).max(64).optional(),
    status: z.enum(DELIVERY_STATUSES).optional(),
    limit: z.coerce.number().int().min(1).max(DELIVERY_PAGE_MAX).default(DELIVERY_PAGE_DEFAULT),
    offset: z.coerce.number().int().min(0).max(100_000).default(0),
  })
  .strict();
export type DeliveryListQuery = z.infer<typeof DeliveryListQuerySchema>;

/** Newest first; `total` counts every delivery the filters match. */
export const DeliveryPageSchema = z.object({ deliveries: z.array(DeliverySchema), total: z.number().int(), limit: z.number().int(), offset: z.number().int() });
export type DeliveryPage = z.infer<typeof DeliveryPageSchema>;

/** A rule's test: one delivery (event `test`) per channel, each tried once. */
export const RuleTestResultSchema = z.object({ deliveries: z.array(DeliverySchema) });

export const ChannelTestSchema = z.object({ channel: ChannelSchema }).strict();

/** A channel tried before it is saved: nothing is recorded, the answer is the outcome. */
export const ChannelTestResultSchema = z.object({
  channel: ChannelViewSchema,
  delivered: z.boolean(),
  response_status: z.number().int().nullable(),
  error: z.string().nullable(),
});
export type ChannelTestResult = z.infer<typeof ChannelTestResultSchema>;
