// The device's Metrics tab: live charts of the device's samples and their history.
import { Empty } from '../../ui/bits.tsx';
import type { DeviceTabProps } from './shared.ts';

export default function MetricsTab(_props: DeviceTabProps) {
  return <Empty title="Metrics are coming." />;
}
