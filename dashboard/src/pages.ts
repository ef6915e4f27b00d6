// Every page of the dashboard: its path, its title, where it sits in the navigation, and the code
// that draws it, loaded only when the page is opened (so the first load stays small, and a page's
// heavy library — the API reference renderer, later charts and the terminal — costs nothing elsewhere).
// The Worker serves index.html for any path that is not a file or the API (worker/dashboard.ts),
// so these paths work on reload and as links; none may collide with an API path at the root
// (PiTunnel's /devices, /device_info, /process_list, /tunnels …), hence /device/:id.
import type { ComponentType } from 'preact';

export interface PageDef {
  path: string;
  title: string;
  /** Shown in the main navigation under this label. */
  nav?: string;
  /** Shown only to users who hold this permission. */
  needs?: string;
  /** The page's code; its component takes the route's params as props (each page names its own). */
  load: () => Promise<{ default: ComponentType<any> }>;
}

export const PAGES: PageDef[] = [
  { path: '/', title: 'Fleet', nav: 'Fleet', needs: 'devices:read', load: () => import('./pages/fleet.tsx') },
  { path: '/add-device', title: 'Add a device', nav: 'Add a device', needs: 'devices:admin', load: () => import('./pages/add-device.tsx') },
  { path: '/device/:id/:tab?', title: 'Device', needs: 'devices:read', load: () => import('./pages/device.tsx') },
  { path: '/alerts', title: 'Alerts', nav: 'Alerts', needs: 'alerts:read', load: () => import('./pages/alerts.tsx') },
  { path: '/teams', title: 'Teams', nav: 'Teams', load: () => import('./pages/teams.tsx') },
  { path: '/teams/:id', title: 'Team', load: () => import('./pages/team.tsx') },
  { path: '/users', title: 'Users and roles', nav: 'Users and roles', needs: 'users:read', load: () => import('./pages/users.tsx') },
  { path: '/variables', title: 'Variables', nav: 'Variables', load: () => import('./pages/variables.tsx') },
  { path: '/api-keys', title: 'API keys', nav: 'API keys', load: () => import('./pages/api-keys.tsx') },
  { path: '/audit', title: 'Audit log', nav: 'Audit log', needs: 'audit:read', load: () => import('./pages/audit.tsx') },
  { path: '/account', title: 'Account', load: () => import('./pages/account.tsx') },
  { path: '/docs', title: 'API docs', nav: 'API docs', load: () => import('./pages/docs.tsx') },
];

/**
 * Pages outside the session gate: they carry their own credential and never ask who is signed in
 * (the terminal link's token is in its URL's fragment, so a PiTunnel user with no dashboard
 * account opens it directly). Not in the navigation, not swept with the signed-in pages.
 */
export const PUBLIC_PAGES: PageDef[] = [{ path: '/terminal/:id', title: 'Terminal', load: () => import('./pages/terminal-view.tsx') }];

/** Whether `pathname` is one of PUBLIC_PAGES (each `:param` one path segment). */
export const isPublicPath = (pathname: string) =>
  PUBLIC_PAGES.some((p) => new RegExp(`^${p.path.replace(/:[^/]+/g, '[^/]+')}/?$`).test(pathname));
