// Add a device (being built).
import { Page, Empty } from '../ui/bits.tsx';

export default function Add_devicePage() {
  return (
    <Page title="Add a device">
      <Empty title="This page is being built." />
    </Page>
  );
}
