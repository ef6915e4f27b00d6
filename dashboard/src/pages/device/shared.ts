// What the device page hands to each of its tabs, and the few helpers more than one tab uses:
// the device as last read (kept live by the page from the stream), its team, and the calls a tab
// makes to change it, so a rename in Settings shows in the header at once.
import type { Device } from '../../../../shared/api/devices.ts';
import type { Team } from '../../../../shared/api/teams.ts';
import { administers } from '../../session.ts';

export interface DeviceTabProps {
  device: Device;
  /** The teams the user may see (undefined while loading, or without teams:read). */
  teams: Team[] | undefined;
  /** Replace the device with the API's answer to a change. */
  onDeviceChange: (device: Device) => void;
  reloadDevice: () => Promise<void>;
}

/** The API path of this device (ids are URL-safe, but never trust that in a path). */
export const devicePath = (id: string, rest = '') => `/api/v1/devices/${encodeURIComponent(id)}${rest}`;

/** The dashboard path of one of the device's tabs ('' is the overview). */
export const tabHref = (id: string, tab: string) => `/device/${encodeURIComponent(id)}${tab ? `/${tab}` : ''}`;

/** Online and offline for an approved device; otherwise its status (pending, rejected, revoked). */
export const shownStatus = (d: Device) => (d.status === 'approved' ? (d.online ? 'online' : 'offline') : d.status);

/**
 * Whether the user holds the admin role in the device's team (or is an instance admin): what
 * approving, revoking, removing and moving need besides `devices:admin`. Unknown teams (no
 * teams:read) count as yes, so the controls show and the API decides.
 */
export function adminsTeam(teams: Team[] | undefined, teamId: string): boolean {
  return !teams || administers(teams.find((t) => t.id === teamId)?.role);
}
