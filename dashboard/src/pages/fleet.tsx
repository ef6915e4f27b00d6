// Fleet (being built).
import { Page, Empty } from '../ui/bits.tsx';

export default function FleetPage() {
  return (
    <Page title="Fleet">
      <Empty title="This page is being built." />
    </Page>
  );
}
