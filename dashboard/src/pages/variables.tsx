// Variables (being built).
import { Page, Empty } from '../ui/bits.tsx';

export default function VariablesPage() {
  return (
    <Page title="Variables">
      <Empty title="This page is being built." />
    </Page>
  );
}
