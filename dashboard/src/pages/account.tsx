// Account (being built).
import { Page, Empty } from '../ui/bits.tsx';

export default function AccountPage() {
  return (
    <Page title="Account">
      <Empty title="This page is being built." />
    </Page>
  );
}
