// Users and roles (being built).
import { Page, Empty } from '../ui/bits.tsx';

export default function UsersPage() {
  return (
    <Page title="Users and roles">
      <Empty title="This page is being built." />
    </Page>
  );
}
