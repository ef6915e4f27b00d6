// The device's Logs tab: its stored lines, searched and filtered (level, source, time), and the
// live tail from the relay's log stream.
import type { DeviceTabProps } from './shared.ts';

export default function LogsTab(_props: DeviceTabProps) {
  return <p>Logs are not built yet.</p>;
}
