// STUB (the notify helper's file; its version replaces this one at merge): the deliveries of an
// alert's notifications. The alerts capability hands each event of an alert here; this stub
// records nothing and sends nothing.
import type { Alert } from '../../shared/api/alerts.ts';
import type { AlertRuleRow } from '../../shared/db/schema.ts';
import type { HubContext } from './types.ts';

export class AlertDeliveries {
  /** The alert fired, escalated or resolved: its rule's channels are to be notified. */
  async enqueue(_hub: HubContext, _n: { event: 'fired' | 'escalated' | 'resolved'; alert: Alert; rule: AlertRuleRow; deviceName: string }): Promise<void> {}

  /** Deadline ALERT_NOTIFY: sends what is due. */
  async run(_hub: HubContext, _now: number): Promise<void> {}

  /** The alert was acknowledged: no more resends. */
  async acknowledged(_hub: HubContext, _alertId: string): Promise<void> {}
}
