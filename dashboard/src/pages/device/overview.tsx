// The device's overview: the facts the relay keeps (from enrollment and the agent's last hello)
// and, while it is online, PiTunnel's device info read live from the device (GET …/info: CPU,
// memory, disks, temperatures). Read once when the tab opens or the device comes online, and on
// Refresh — never polled; meanwhile its CPU, load, memory and uptime follow the device's samples
// on the fleet stream (`event: metrics`, at the relay's refresh interval). Offline, it says the
// facts are from when the device was last seen and what to check.
import { Fragment, type ComponentChildren } from 'preact';
import { useEffect } from 'preact/hooks';
import type { DeviceInfo } from '../../../../shared/api/device-info.ts';
import type { Device } from '../../../../shared/api/devices.ts';
import type { MetricsEvent } from '../../../../shared/api/metrics.ts';
import { get } from '../../api.ts';
import { onStreamEvent } from '../../fleet-stream.ts';
import { LoadError, Loading, Time } from '../../ui/bits.tsx';
import { formatBytes } from '../../../../shared/bytes.ts';
import { Button } from '../../ui/form.tsx';
import { useLoad } from '../../ui/use-load.ts';
import { devicePath, tabHref, type DeviceTabProps } from './shared.ts';

const percent = (n: number) => `${n.toFixed(1)} %`;
const celsius = (n: number | null) => (n === null ? 'not reported' : `${n.toFixed(1)} °C`);

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : `${m} min`;
}

/** A usage figure with its bar; the number is the text, the bar only shows it. */
function Usage({ label, value, detail }: { label: string; value: number; detail: string }) {
  return (
    <div class="usage">
      <p class="usage-figure">
        <span class="usage-value">{percent(value)}</span> <span class="muted">{detail}</span>
      </p>
      <meter min={0} max={100} low={70} high={90} optimum={0} value={value} aria-label={label} />
    </div>
  );
}

function LiveInfo({ info, readAt }: { info: DeviceInfo; readAt: string }) {
  const [rootTotal, rootUsed, rootAvailable, rootPercent] = info.disk_usage;
  return (
    <>
      <div class="grid">
        <section class="panel stat" aria-labelledby="info-cpu">
          <h3 id="info-cpu">CPU</h3>
          <Usage label="CPU usage" value={info.cpu.usage_percent} detail={`of ${info.cpu.cores} ${info.cpu.cores === 1 ? 'core' : 'cores'}`} />
          <p class="muted">Load average {info.cpu.load_average.map((l) => l.toFixed(2)).join(' · ')}</p>
        </section>
        <section class="panel stat" aria-labelledby="info-memory">
          <h3 id="info-memory">Memory</h3>
          <Usage label="Memory used" value={info.memory.used_percent} detail={`${formatBytes(info.memory.used)} of ${formatBytes(info.memory.total)}`} />
          <p class="muted">
            {formatBytes(info.memory.available)} available · {info.memory.swap_total ? `swap ${formatBytes(info.memory.swap_used)} of ${formatBytes(info.memory.swap_total)}` : 'no swap'}
          </p>
        </section>
        <section class="panel stat" aria-labelledby="info-disk">
          <h3 id="info-disk">Disk (/)</h3>
          <Usage label="Root filesystem used" value={rootPercent} detail={`${formatBytes(rootUsed)} of ${formatBytes(rootTotal)}`} />
          <p class="muted">{formatBytes(rootAvailable)} free</p>
        </section>
        <section class="panel stat" aria-labelledby="info-temp">
          <h3 id="info-temp">Temperatures</h3>
          <dl class="facts">
            <dt>CPU</dt>
            <dd>{celsius(info.cpu_temp)}</dd>
            <dt>GPU</dt>
            <dd>{celsius(info.gpu_temp)}</dd>
            <dt>Uptime</dt>
            <dd>{duration(info.uptime)}</dd>
          </dl>
        </section>
      </div>
      {info.disks.length > 0 && (
        <div class="table-wrap">
          <table class="cards">
            <caption class="visually-hidden">Filesystems</caption>
            <thead>
              <tr>
                <th scope="col">Mount</th>
                <th scope="col">Device</th>
                <th scope="col">Type</th>
                <th scope="col" class="num">Size</th>
                <th scope="col" class="num">Used</th>
                <th scope="col" class="num">Free</th>
              </tr>
            </thead>
            <tbody>
              {info.disks.map((k) => (
                <tr key={k.mount}>
                  <td data-label="Mount" class="mono">{k.mount}</td>
                  <td data-label="Device" class="mono">{k.device}</td>
                  <td data-label="Type">{k.fstype}</td>
                  <td data-label="Size" class="num">{formatBytes(k.total)}</td>
                  <td data-label="Used" class="num">{formatBytes(k.used)}</td>
                  <td data-label="Free" class="num">
                    {formatBytes(k.available)} ({percent(k.percent_free)})
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <p class="muted">
        Read from the device <Time iso={readAt} />.
      </p>
    </>
  );
}

/** Why there is no live info, and what to do about it. */
function NotLive({ device }: { device: Device }) {
  if (device.status === 'pending')
    return (
      <p class="notice">
        This device is waiting for approval. Until it is approved it may not connect; {' '}
        <a href={tabHref(device.id, 'settings')}>approve it in Settings</a> or from the fleet.
      </p>
    );
  if (device.status === 'rejected' || device.status === 'revoked')
    return (
      <p class="notice">
        This device is {device.status}: the relay refuses its key. To bring it back, enroll it again (<code>pirelay-agent enroll --force</code> with a new enrollment token).
      </p>
    );
  return (
    <div class="notice">
      <p>
        <strong>This device is offline</strong>
        {device.last_seen ? (
          <>
            {' '}
            — last seen <Time iso={device.last_seen} />. The facts below are from then.
          </>
        ) : (
          ' — it has not connected yet.'
        )}
      </p>
      <p>
        Live information (CPU, memory, disks, temperatures) and its processes need the device online. Check its agent on the device:{' '}
        <code>systemctl status pirelay-agent</code> and <code>journalctl -u pirelay-agent -f</code> — it must be running and able to reach this relay. This page updates by itself when
        it comes back.
      </p>
    </div>
  );
}

/** The info with the figures a sample carries too, as the sample has them. */
function withSample(info: DeviceInfo, e: MetricsEvent): DeviceInfo {
  const m = e.memory;
  const l = e.cpu.loadAverage;
  return {
    ...info,
    uptime: e.system.uptime,
    cpu: { ...info.cpu, usage_percent: e.cpu.totalUsage, load_average: [l.one, l.five, l.fifteen] },
    memory: m.total > 0 ? { total: m.total, available: m.available, used: m.used, used_percent: (100 * m.used) / m.total, swap_total: m.swapTotal, swap_used: m.swapUsed } : info.memory,
  };
}

export default function Overview({ device }: DeviceTabProps) {
  const live = device.status === 'approved' && device.online;
  const info = useLoad(
    (signal) => (live ? get<DeviceInfo>(devicePath(device.id, '/info'), { signal }).then((i) => ({ info: i, readAt: new Date().toISOString() })) : Promise.resolve(undefined)),
    [device.id, live],
  );
  useEffect(
    () =>
      onStreamEvent('metrics', (e) => {
        if (e.agent_id !== device.id) return;
        info.set((old) => old && (Date.parse(e.timestamp) > Date.parse(old.readAt) ? { info: withSample(old.info, e), readAt: e.timestamp } : old));
      }),
    // info.set is new on each render but only calls the load's state setter, which is not: once per device.
    [device.id],
  );
  const facts: [string, ComponentChildren][] = [
    ['Hostname', device.hostname || '—'],
    ['Hardware', device.hardware || '—'],
    ['Operating system', [device.os, device.os_version].filter(Boolean).join(' ') || '—'],
    ...(info.data?.info.kernel ? ([['Kernel', info.data.info.kernel]] as [string, string][]) : []),
    ['Architecture', device.architecture || '—'],
    ['Serial', <span class="mono">{device.serial || '—'}</span>],
    ['MAC address', <span class="mono">{device.mac_address || '—'}</span>],
    ['Agent version', device.agent_version || '—'],
    ['Device id', <span class="mono">{device.id}</span>],
    ['Registered', <Time iso={device.registered_at} />],
    ['Approved', <Time iso={device.approved_at} empty="not approved" />],
    ['Last seen', device.online ? 'now (online)' : <Time iso={device.last_seen} />],
  ];
  const conflict = device.identity_conflict;
  return (
    <>
      {!live && <NotLive device={device} />}
      {conflict && (
        <div class="notice notice-warn" role="note">
          <p>
            <strong>Another agent is using this device's identity.</strong> Its connection was replaced {conflict.replacements}{' '}
            {conflict.replacements === 1 ? 'time' : 'times'} (last <Time iso={conflict.last_at} />, from {conflict.addresses.join(', ') || 'unknown addresses'}). One replacement
            may be a restart; a growing count means two agents share this identity (a cloned SD card or a copied agent.json): enroll one of them again with{' '}
            <code>pirelay-agent enroll --force</code>.
          </p>
        </div>
      )}
      <section class="panel" aria-labelledby="device-facts">
        <h2 id="device-facts">Facts</h2>
        <dl class="facts">
          {facts.map(([k, v]) => (
            <Fragment key={k}>
              <dt>{k}</dt>
              <dd>{v}</dd>
            </Fragment>
          ))}
        </dl>
      </section>
      {live && (
        <section aria-labelledby="device-info">
          <div class="section-head">
            <h2 id="device-info">Live info</h2>
            <Button busy={info.loading} busyLabel="Reading…" onClick={() => void info.reload()}>
              Refresh
            </Button>
          </div>
          {info.error ? (
            <LoadError error={info.error} retry={info.reload} />
          ) : info.data ? (
            <LiveInfo info={info.data.info} readAt={info.data.readAt} />
          ) : (
            <Loading what="live info from the device" />
          )}
        </section>
      )}
    </>
  );
}
