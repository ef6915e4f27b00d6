// API docs (being built).
import { Page, Empty } from '../ui/bits.tsx';

export default function DocsPage() {
  return (
    <Page title="API docs">
      <Empty title="This page is being built." />
    </Page>
  );
}
