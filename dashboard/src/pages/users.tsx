// /users: accounts and the roles that give them their permissions, as two tabs (/users and
// /users?tab=roles, so each can be linked to). Each tab loads only what it shows, so someone who
// may manage roles but not read users still gets the Roles tab, and a refusal is the API's own
// message in place of the tab, not a broken page.
import { useLocation } from 'preact-iso';
import { Page } from '../ui/bits.tsx';
import { RolesTab } from './users/roles-tab.tsx';
import { UsersTab } from './users/users-tab.tsx';
import './teams.css';
import './users.css';

const TABS = [
  { id: 'users', label: 'Users', href: '/users' },
  { id: 'roles', label: 'Roles', href: '/users?tab=roles' },
];

export default function UsersPage() {
  const { query } = useLocation();
  const tab = query.tab === 'roles' ? 'roles' : 'users';
  return (
    <Page title="Users and roles">
      <nav aria-label="Users and roles">
        <ul class="tabs">
          {TABS.map((t) => (
            <li key={t.id}>
              <a href={t.href} aria-current={tab === t.id ? 'page' : undefined}>
                {t.label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <div class="access">{tab === 'roles' ? <RolesTab /> : <UsersTab />}</div>
    </Page>
  );
}
