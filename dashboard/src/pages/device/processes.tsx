// The device's processes, read live from it (GET …/processes, PiTunnel's process list): sortable
// by every column, busiest first, filtered by name, command or user in the page. Read when the
// tab opens or the device comes online, and on Refresh — a process list is a snapshot, and
// polling a device for one would cost it CPU for a table nobody may be reading.
import { useMemo, useState } from 'preact/hooks';
import type { Process, ProcessList } from '../../../../shared/api/device-info.ts';
import { get } from '../../api.ts';
import { Empty, LoadError, Loading, Time } from '../../ui/bits.tsx';
import { formatBytes } from '../../../../shared/bytes.ts';
import { Button, TextField } from '../../ui/form.tsx';
import { SortableTable, type Column } from '../../ui/table.tsx';
import { useLoad } from '../../ui/use-load.ts';
import { devicePath, tabHref, type DeviceTabProps } from './shared.ts';

const COLUMNS: Column<Process>[] = [
  { id: 'pid', header: 'PID', value: (p) => p.pid, class: 'num' },
  { id: 'name', header: 'Name', value: (p) => p.name },
  { id: 'user', header: 'User', value: (p) => p.user },
  { id: 'cpu', header: 'CPU %', value: (p) => p.cpu_percent, cell: (p) => p.cpu_percent.toFixed(1), descFirst: true, class: 'num' },
  { id: 'memory', header: 'Memory', value: (p) => p.rss, cell: (p) => `${formatBytes(p.rss)} (${p.memory_percent.toFixed(1)} %)`, descFirst: true, class: 'num' },
  { id: 'command', header: 'Command', value: (p) => p.cmdline || `[${p.name}]`, cell: (p) => <span class="cmd" title={p.cmdline}>{p.cmdline || `[${p.name}]`}</span>, class: 'command' },
];

export default function Processes({ device }: DeviceTabProps) {
  const live = device.status === 'approved' && device.online;
  const [filter, setFilter] = useState('');
  const list = useLoad(
    (signal) => (live ? get<ProcessList>(devicePath(device.id, '/processes'), { signal }).then((r) => ({ ...r, readAt: new Date().toISOString() })) : Promise.resolve(undefined)),
    [device.id, live],
  );
  const all = list.data?.processes;
  const shown = useMemo(() => {
    const f = filter.trim().toLowerCase();
    if (!all || !f) return all ?? [];
    return all.filter((p) => p.name.toLowerCase().includes(f) || p.cmdline.toLowerCase().includes(f) || p.user.toLowerCase().includes(f));
  }, [all, filter]);

  if (!live)
    return (
      <Empty title="The process list is read from the device, which must be online.">
        <p>
          This device is {device.status === 'approved' ? 'offline' : device.status}. Once its agent is connected the list appears here;{' '}
          <a href={tabHref(device.id, '')}>the overview</a> says what to check.
        </p>
      </Empty>
    );

  return (
    <section aria-labelledby="processes-title">
      <div class="section-head">
        <h2 id="processes-title">Processes</h2>
        <Button busy={list.loading} busyLabel="Reading…" onClick={() => void list.reload()}>
          Refresh
        </Button>
      </div>
      <div class="filters">
        <TextField label="Filter" type="search" value={filter} onValue={setFilter} hint="By name, command or user" autoComplete="off" spellcheck={false} />
      </div>
      {list.error && <LoadError error={list.error} retry={list.reload} />}
      {all ? (
        <>
          <p class="muted" aria-live="polite">
            {shown.length === all.length ? `${all.length} processes` : `${shown.length} of ${all.length} processes`}, read <Time iso={list.data!.readAt} />.
          </p>
          <SortableTable
            class="cards processes"
            caption={`Processes on ${device.name}`}
            rows={shown}
            columns={COLUMNS}
            rowKey={(p) => String(p.pid)}
            initialSort={[{ id: 'cpu', desc: true }]}
            empty={<p class="muted">No process matches “{filter.trim()}”.</p>}
          />
        </>
      ) : (
        !list.error && <Loading what="the process list from the device" />
      )}
    </section>
  );
}
