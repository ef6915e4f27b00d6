// The device's Terminal tab: a shell on the device in the browser (xterm.js), kept by the agent
// when the page goes away and re-attached when it comes back; the sessions the device keeps.
import type { DeviceTabProps } from './shared.ts';

export default function TerminalTab(_props: DeviceTabProps) {
  return <p>The terminal is not built yet.</p>;
}
