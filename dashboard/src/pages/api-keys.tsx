// API keys (being built).
import { Page, Empty } from '../ui/bits.tsx';

export default function Api_keysPage() {
  return (
    <Page title="API keys">
      <Empty title="This page is being built." />
    </Page>
  );
}
