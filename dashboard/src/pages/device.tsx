// Device (being built).
import { Page, Empty } from '../ui/bits.tsx';

export default function DevicePage() {
  return (
    <Page title="Device">
      <Empty title="This page is being built." />
    </Page>
  );
}
