// The Alerts page: rules, active alerts, acknowledgement, delivery history and a test notification.
import { Empty, Page } from '../ui/bits.tsx';

export default function AlertsPage() {
  return (
    <Page title="Alerts">
      <Empty title="Alerts are coming." />
    </Page>
  );
}
