// Audit log (being built).
import { Page, Empty } from '../ui/bits.tsx';

export default function AuditPage() {
  return (
    <Page title="Audit log">
      <Empty title="This page is being built." />
    </Page>
  );
}
