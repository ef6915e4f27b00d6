// Team (being built).
import { Page, Empty } from '../ui/bits.tsx';

export default function TeamPage() {
  return (
    <Page title="Team">
      <Empty title="This page is being built." />
    </Page>
  );
}
