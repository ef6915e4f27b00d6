// Teams (being built).
import { Page, Empty } from '../ui/bits.tsx';

export default function TeamsPage() {
  return (
    <Page title="Teams">
      <Empty title="This page is being built." />
    </Page>
  );
}
