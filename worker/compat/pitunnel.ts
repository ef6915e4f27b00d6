// PiTunnel's API at the relay root, as its documentation shows it, so scripts written for
// api.pitunnel.com work by changing the host: `curl https://relay/devices -u KEY:` and
// `curl https://relay/device_info -u KEY: -d device_id=…`. The device id may come as a form
// field (what `curl -d` sends), a query parameter or a JSON body; errors keep our one shape.
//
// Choices where the seed is silent: only approved devices are listed (pending ones are not yet
// "registered" to PiTunnel's mind); gpu_temp and cpu_temp are null, not missing, when a device
// has no such sensor, so clients indexing the key directly do not break; mac_address is upper
// case without separators, as in the seed's example.
//
// /tunnels lists a device's active tunnels: enabled, open (tunnel-control connect) and usable now
// (the device is approved and online, or the tunnel allows clientless connections). available_at is where the
// public reaches one: for http the hostname (`myapp.example.com`, with the port under localhost),
// the seed's "HTTPS subdomain"; for tcp the WebSocket URL `pirelay tcp` dials, as we have no raw
// TCP ports to hand out.
//
// /screenshot is the device's screen as the KVM capability sees it (the HDMI capture, or the Pi's
// own desktop): PNG, as the seed's `> out.png` expects, with the Content-Type the device answered
// and a Content-Length; 204 and no body when there is no video signal. It needs screen:read.
//
// /terminal answers `{"terminal_url": …}` as the seed shows: the same link as the native
// GET /api/v1/devices/{id}/terminal (a new session; the token works once, for a minute), for an
// online device only (503 DEVICE_OFFLINE otherwise). It needs terminal:open.
//
// /device_info answers from a fresh sample when the device's hub has one (taken less than two
// refresh intervals ago: the metrics capability's latest), so a script polling it costs the
// device nothing more; otherwise from the device_info RPC as before (which needs it online).
// From a sample: disk_usage is the root mount's [total, used, free, used %], cpu_temp the CPU's
// sensor (else the hottest), gpu_temp the first GPU's or a sensor named so, else null.
//
// Like the native API, every route sees only the caller's teams' devices (worker/auth/scope.ts):
// another team's device is missing from /devices and a 404 everywhere else.
import { z } from 'zod';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { App } from '../openapi.ts';
import type { AppEnv } from '../app-env.ts';
import { guardOf } from '../auth/access.ts';
import { principalOf } from '../auth/middleware.ts';
import { authorizeDevice, visibleTeams } from '../auth/scope.ts';
import { ApiError, notFound, validationError } from '../errors.ts';
import { DeviceIdSchema } from '../../shared/api/devices.ts';
import type { DeviceInfo, ProcessList } from '../../shared/api/device-info.ts';
import { callApprovedDevice, hubFor } from '../devices/hub.ts';
import { refreshSeconds } from '../devices/metrics.ts';
import type { MetricsSample } from '../../shared/api/metrics.ts';
import { screenRequest } from '../devices/kvm.ts';
import { terminalLink } from '../devices/terminal.ts';
import { findDevice, requireApprovedDevice } from '../devices/queries.ts';
import { listDevices, type DeviceRow } from '../devices/queries.ts';
import { formatTarget } from '../../shared/api/tunnels.ts';
import type { Tunnel } from '../../shared/db/schema.ts';
import { findDeviceRef, listTunnels } from '../tunnels/queries.ts';
import { publicHost, tcpConnectUrl, type UrlBase } from '../tunnels/present.ts';
import { tunnelDomain } from '../tunnels/ingress.ts';

const DeviceIdInput = z.object({ device_id: DeviceIdSchema });

/** A device_id is a few dozen bytes; nothing PiTunnel accepts needs more than this. */
const MAX_BODY_BYTES = 16 * 1024;
const limitBody = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: () => {
    throw new ApiError(413, 'PAYLOAD_TOO_LARGE', `Request body is larger than ${MAX_BODY_BYTES} bytes`);
  },
});

export function pitunnelDevice(row: DeviceRow) {
  return {
    id: row.id,
    hostname: row.hostname,
    serial: row.serial,
    display_name: row.name,
    os: row.os,
    os_version: row.osVersion,
    hardware: row.hardware,
    online: row.online,
  };
}

/** "b8:27:eb:2a:7f:c1" → "B827EB2A7FC1", the form PiTunnel shows. */
export function pitunnelMac(mac: string): string {
  return mac.replace(/[^0-9a-fA-F]/g, '').toUpperCase();
}

export function pitunnelDeviceInfo(info: DeviceInfo) {
  return {
    disk_usage: info.disk_usage,
    cpu_usage: info.cpu.usage_percent,
    mem_used_percent: info.memory.used_percent,
    mem_total: info.memory.total,
    mem_available: info.memory.available,
    cpu_temp: info.cpu_temp,
    gpu_temp: info.gpu_temp,
    mac_address: pitunnelMac(info.mac_address),
    hostname: info.hostname,
  };
}

/** A sample younger than this many refresh intervals answers /device_info. */
const FRESH_INTERVALS = 2;

const round = (v: number, digits: number) => Number(v.toFixed(digits));

/** /device_info from a sample (see the module comment); `mac` is the device row's. */
export function pitunnelInfoOfSample(s: MetricsSample, mac: string) {
  const root = s.disk.mounts.find((m) => m.mountpoint === '/') ?? s.disk.mounts[0];
  const sensors = s.temperature.sensors;
  const cpuSensor = sensors.find((t) => /cpu|core|package|soc|k10temp|coretemp/i.test(t.name));
  const hottest = sensors.length ? Math.max(...sensors.map((t) => t.value)) : null;
  const gpu = s.gpu.gpus.find((g) => g.temperature !== undefined)?.temperature ?? sensors.find((t) => /gpu/i.test(t.name))?.value ?? null;
  const m = s.memory;
  return {
    disk_usage: root ? [root.total, root.used, root.free, root.used + root.free ? round((100 * root.used) / (root.used + root.free), 1) : 0] : [0, 0, 0, 0],
    cpu_usage: round(s.cpu.totalUsage, 1),
    mem_used_percent: m.total ? round((100 * (m.total - m.available)) / m.total, 1) : 0,
    mem_total: m.total,
    mem_available: m.available,
    cpu_temp: cpuSensor?.value ?? hottest,
    gpu_temp: gpu,
    mac_address: pitunnelMac(mac),
    hostname: s.system.hostname,
  };
}

export function pitunnelProcessList(list: ProcessList) {
  return list.processes.map((p) => ({ memory_percent: p.memory_percent, pid: p.pid, name: p.name, cpu_percent: p.cpu_percent }));
}

export function pitunnelTunnel(t: Tunnel, base: UrlBase) {
  return {
    destination: formatTarget(t.targetHost, t.targetPort),
    available_at: t.kind === 'tcp' ? tcpConnectUrl(t.name, base) : publicHost(t.name, base),
    name: t.name,
  };
}

/** The body as UTF-8 (read as bytes: workerd warns when .text() meets a form content type). */
async function bodyText(c: Context<AppEnv>): Promise<string> {
  return new TextDecoder().decode(await c.req.arrayBuffer());
}

/** Reads device_id from the body (form, multipart or JSON) or else the query string. */
async function deviceIdOf(c: Context<AppEnv>): Promise<string> {
  let fromBody: unknown;
  if (c.req.method === 'POST') {
    const type = (c.req.header('content-type') ?? '').toLowerCase();
    if (type.includes('json')) {
      const text = await bodyText(c);
      if (text.trim()) {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          throw new ApiError(400, 'BAD_REQUEST', 'Malformed JSON in request body');
        }
        if (json && typeof json === 'object') fromBody = (json as Record<string, unknown>).device_id;
      }
    } else if (type.startsWith('multipart/form-data')) {
      let form: FormData;
      try {
        form = await c.req.formData();
      } catch {
        throw new ApiError(400, 'BAD_REQUEST', 'Malformed multipart body');
      }
      fromBody = form.get('device_id') ?? undefined;
    } else {
      // application/x-www-form-urlencoded, or a bare `-d device_id=…` without a content type.
      fromBody = new URLSearchParams(await bodyText(c)).get('device_id') ?? undefined;
    }
  }
  const parsed = DeviceIdInput.safeParse({ device_id: fromBody ?? c.req.query('device_id') });
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message, code: i.code }));
    const missing = fromBody === undefined && c.req.query('device_id') === undefined;
    throw validationError(missing ? 'device_id is required (form field or query parameter)' : 'Invalid device_id', { issues });
  }
  return parsed.data.device_id;
}

/** The hub's answer to a snapshot: the image with its type and length, 204 as it is, else the device's error in our shape. */
export async function pitunnelScreenshot(env: Env, deviceId: string, res: Response): Promise<Response> {
  if (res.status === 204) {
    await res.body?.cancel();
    return new Response(null, { status: 204 });
  }
  if (res.status === 200) {
    const image = await res.arrayBuffer();
    return new Response(image, { headers: { 'content-type': res.headers.get('content-type') ?? 'image/png', 'content-length': String(image.byteLength) } });
  }
  const body = (await res.json().catch(() => null)) as { error?: unknown; code?: unknown; details?: unknown } | null;
  if (typeof body?.error !== 'string' || typeof body.code !== 'string') {
    throw new ApiError(502, 'BAD_DEVICE_RESPONSE', `the device's screenshot answer was ${res.status} without an error`, { device_id: deviceId });
  }
  // Offline may mean never approved, or revoked: say which, as the other calls do (callApprovedDevice).
  if (body.code === 'DEVICE_OFFLINE') await requireApprovedDevice(env.DB, deviceId);
  const details = body.details && typeof body.details === 'object' && !Array.isArray(body.details) ? (body.details as Record<string, unknown>) : {};
  throw new ApiError(res.status as ContentfulStatusCode, body.code, body.error, { device_id: deviceId, ...details });
}

export function registerPiTunnelRoutes(app: App) {
  app.on(['GET', 'POST'], '/devices', guardOf('/devices'), async (c) => {
    const rows = await listDevices(c.env.DB, { teams: visibleTeams(principalOf(c)), status: 'approved' });
    return c.json({ devices: rows.map(pitunnelDevice) });
  });

  app.on(['GET', 'POST'], '/device_info', guardOf('/device_info'), limitBody, async (c) => {
    const id = await deviceIdOf(c);
    await authorizeDevice(c, id);
    const [latest, seconds, device] = await Promise.all([hubFor(c.env, id).latestMetrics(), refreshSeconds(c.env.DB), findDevice(c.env.DB, id)]);
    if (latest && device?.status === 'approved' && Date.now() - latest.receivedAt <= FRESH_INTERVALS * seconds * 1000) {
      return c.json({ device_info: pitunnelInfoOfSample(latest.sample, device.mac) });
    }
    return c.json({ device_info: pitunnelDeviceInfo(await callApprovedDevice(c.env, id, 'device_info', {})) });
  });

  app.on(['GET', 'POST'], '/process_list', guardOf('/process_list'), limitBody, async (c) => {
    const id = await deviceIdOf(c);
    await authorizeDevice(c, id);
    return c.json({ process_list: pitunnelProcessList(await callApprovedDevice(c.env, id, 'process_list', {})) });
  });

  app.on(['GET', 'POST'], '/screenshot', guardOf('/screenshot'), limitBody, async (c) => {
    const id = await deviceIdOf(c);
    await authorizeDevice(c, id);
    const res = await screenRequest(c.env, id, { mode: 'snapshot', format: 'png', quality: 80 }, c.req.raw.signal);
    return pitunnelScreenshot(c.env, id, res);
  });

  app.on(['GET', 'POST'], '/terminal', guardOf('/terminal'), limitBody, async (c) => {
    const id = await deviceIdOf(c);
    const teamId = await authorizeDevice(c, id);
    return c.json({ terminal_url: (await terminalLink(c, id, teamId)).terminal_url });
  });

  app.on(['GET', 'POST'], '/tunnels', guardOf('/tunnels'), limitBody, async (c) => {
    const id = await deviceIdOf(c);
    await authorizeDevice(c, id);
    const device = await findDeviceRef(c.env.DB, id);
    if (!device) throw notFound('Device', { device_id: id });
    const base: UrlBase = { requestUrl: new URL(c.req.url), domain: tunnelDomain(c.env) };
    const usable = device.status === 'approved';
    const active = (await listTunnels(c.env.DB, id)).filter((t) => usable && t.enabled && t.connected && (device.online || t.allowClientless));
    return c.json({ tunnels: active.map((t) => pitunnelTunnel(t, base)) });
  });
}
