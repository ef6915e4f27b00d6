// Malformed HTTP requests for the fuzz test. The native routes come from the relay's own OpenAPI
// document (so a new route is fuzzed without anyone listing it here), the compatibility layers
// and the tunnel ingress from their seeds; each request starts from a plausible one (real ids,
// a body sampled from the route's schema) and is then broken in one or more ways picked by the
// seeded PRNG. Requests that would legitimately destroy the fixture (revoking the admin's key,
// deleting the demo device) only ever name spare resources made for the purpose, or junk.
import { Prng } from './prng.ts';

type Schema = Record<string, any>;

export interface FuzzRequest {
  /** The route as documented ("POST /api/v1/users/{id}"), for coverage counts and reports. */
  route: string;
  method: string;
  /** Relay-relative path and query, or an absolute URL (tunnel ingress). */
  url: string;
  headers: Record<string, string>;
  body?: Uint8Array;
  /** The mutations applied, for the report of a failure. */
  mutations: string[];
  /**
   * The answer may be a 503 about the state of a tunnel (disabled, closed) that earlier fuzz
   * requests were free to set: the request named a spare tunnel that well-formed PATCHes change.
   */
  tunnelState?: boolean;
}

export interface Fixtures {
  apiKey: string;
  /** Keys of the admin spent on tunnel-control, whose budget is 60 calls a minute per key. */
  controlKeys: string[];
  demoDevice: { id: string; name: string };
  fakeDevice: string;
  /** Devices nobody needs: the ones fuzz requests may reject, revoke or delete. */
  spareDevices: string[];
  adminUser: string;
  spareUsers: string[];
  adminRole: string;
  spareRoles: string[];
  spareKeys: string[];
  spareEnrollmentTokens: string[];
  /** The demo device's http tunnel the ingress fuzz visits; never changed. */
  webTunnel: { id: string; name: string };
  /** A basic-auth http tunnel of the demo device; never changed. */
  basicTunnel: string;
  /** Spare tunnels of the demo device (id and name) that fuzz requests may change or delete. */
  spareTunnels: { id: string; name: string; port: number }[];
  port: number;
}

interface Route {
  method: string;
  path: string;
  params: { name: string; in: string; schema: Schema }[];
  body?: Schema;
}

const enc = new TextEncoder();
const MiB = 1024 * 1024;

/** Path and query values that are not what any route expects. */
const JUNK = [
  '', 'x', '0', '-1', '1e309', 'NaN', 'null', 'undefined', 'true', '[]', '{}', '%00', '%FF', '%FF%FE', '%C0%80', '%ED%A0%80', '%E2%82',
  '%', '%%', '%zz', '%2F', '..%2F..%2Fetc', '%0D%0Aset-cookie:x', '%20', '%E2%80%AE', '%F0%9F%92%A9', "'%20OR%201=1--", '*', '~', '.', '..',
  'a'.repeat(65), 'A'.repeat(4096), '9'.repeat(400), '18446744073709551616', '-0', '0x10', '1.5', 'garage-pi', 'demo-pi', '__proto__', 'constructor',
];

/** Values of another type than a field holds. */
const WRONG_TYPES: unknown[] = [null, true, false, 0, -1, 1.5, 1e308, -1e308, '', 'x', [], [1, 2], {}, { a: 1 }, [[[]]], 'true', '1', '\u0000', '\ud800'];

/** Numbers JSON can spell but a JavaScript number cannot hold exactly (or at all), and non-JSON ones. */
const NUMBER_TEXTS = ['1e309', '-1e309', '18446744073709551616', '-9223372036854775809', '9007199254740993', '-0', '1e-400', '0.0000000000000000000000001', '1.0', '1E2', 'NaN', 'Infinity', '-Infinity', '0x10', '01', '+1', '.5', '1.', '1e', '--1'];

/** Byte sequences that are not UTF-8: a lone continuation, overlong encodings, a surrogate, truncations. */
const BAD_UTF8 = [[0xff], [0xfe, 0xff], [0x80], [0xc0, 0x80], [0xc1, 0xbf], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82], [0xf0, 0x9f, 0x92]];

/**
 * Methods a route does not expect. Only ones workerd knows: it answers any other (FOO, LINK,
 * M-SEARCH) with its own 501 before the Worker sees the request, which is HTTP's rule for an
 * unrecognized method and nothing the Worker could change.
 */
const ODD_METHODS = ['PROPFIND', 'OPTIONS', 'HEAD', 'PATCH', 'PUT', 'DELETE', 'POST', 'GET', 'PURGE', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'REPORT', 'SEARCH'];

const CONTENT_TYPES = [
  undefined, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data', 'multipart/form-data; boundary=', 'multipart/form-data; boundary=zz',
  'application/json; charset=utf-16', 'application/json; charset=latin1', 'APPLICATION/JSON', 'application/json;;;;', 'application/jsonx', 'application/xml',
  'application/octet-stream', '*/*', 'json', ';', 'application/vnd.api+json', 'text/json', 'application/json; boundary=x',
];

export function routesFrom(doc: Schema): Route[] {
  const resolve = (s: Schema | undefined): Schema | undefined => {
    if (!s?.$ref) return s;
    return doc.components.schemas[String(s.$ref).split('/').pop()!];
  };
  const routes: Route[] = [];
  for (const [path, ops] of Object.entries<Schema>(doc.paths)) {
    for (const [method, op] of Object.entries<Schema>(ops)) {
      const body = resolve(op.requestBody?.content?.['application/json']?.schema);
      routes.push({ method: method.toUpperCase(), path, params: op.parameters ?? [], body: body && { ...body, __doc: doc } });
    }
  }
  return routes;
}

/** The compatibility layers and the other routes the OpenAPI document does not list. */
export const EXTRA_ROUTES = [
  'GET /devices', 'POST /devices', 'GET /device_info', 'POST /device_info', 'GET /process_list', 'POST /process_list', 'GET /tunnels', 'POST /tunnels',
  'GET /tunnel-api/connect', 'POST /tunnel-api/connect', 'GET /tunnel-api/disconnect', 'POST /tunnel-api/disconnect', 'GET /tunnel-api/client_status',
  'POST /tunnel-api/client_status', 'GET /tunnel-api/set_allow_clientless', 'POST /tunnel-api/set_allow_clientless', 'GET /tunnel-api/{call}', 'POST /tunnel-api',
  'GET /agent/connect', 'INGRESS web', 'INGRESS basic', 'INGRESS unknown', 'GET /', 'GET /api/v1/openapi.json',
];

export class RequestFuzzer {
  private r = new Prng(0);

  constructor(
    private readonly seed: number,
    private readonly routes: Route[],
    private readonly fx: Fixtures,
  ) {}

  /** All route names, native then extra, in a fixed order: request i goes to route i mod n. */
  get names(): string[] {
    return [...this.routes.map((r) => `${r.method} ${r.path}`), ...EXTRA_ROUTES];
  }

  /** Request i, from a PRNG of its own (seed and i), so it is the same however many ran before it. */
  make(i: number): FuzzRequest {
    this.r = new Prng((Math.imul(this.seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(i + 1, 0xc2b2ae35)) >>> 0);
    const names = this.names;
    const name = names[i % names.length]!;
    const native = this.routes.find((r) => `${r.method} ${r.path}` === name);
    const req = native ? this.native(native) : this.extra(name);
    this.auth(req, name);
    return req;
  }

  // ---- native routes ----

  private native(route: Route): FuzzRequest {
    const r = this.r;
    const mutations: string[] = [];
    // Chosen first: a GET turned DELETE must not name the demo device.
    const method = r.chance(0.06) ? r.pick(ODD_METHODS) : route.method;
    if (method !== route.method) mutations.push(`method ${method}`);
    const path = route.path.replace(/\{(\w+)\}/g, (_, p: string) => {
      if (r.chance(0.2)) {
        mutations.push(`junk ${p}`);
        return r.pick(JUNK);
      }
      return encodeURIComponent(this.realParam(route, method, p));
    });
    const query = new URLSearchParams();
    for (const p of route.params.filter((x) => x.in === 'query')) {
      if (r.chance(0.5)) query.set(p.name, p.schema.enum ? r.pick(p.schema.enum as string[]) : r.pick(['true', 'false', '1', this.fx.adminUser, this.fx.apiKey]));
    }
    let qs = query.toString();
    if (r.chance(0.25)) {
      qs = this.badQuery(qs, route.params.filter((x) => x.in === 'query').map((x) => x.name));
      mutations.push('bad query');
    }
    const req: FuzzRequest = { route: `${route.method} ${route.path}`, method: route.method, url: path + (qs ? `?${qs}` : ''), headers: {}, mutations };
    if (route.path.includes('/connect')) req.tunnelState = true;
    if (route.body) this.jsonBody(req, route.body);
    else if (r.chance(0.3)) this.strayBody(req);
    req.method = method;
    return req;
  }

  /** A real id for a path parameter, never one whose loss would break the fixture. */
  private realParam(route: Route, m: string, param: string): string {
    const { r, fx } = this;
    const p = route.path;
    const safe = ['GET', 'HEAD', 'OPTIONS', 'PROPFIND', 'SEARCH', 'REPORT'].includes(m);
    const destructive = (!safe && m !== route.method) || m === 'DELETE' || /\/(reject|revoke|password)$/.test(p) || (m === 'PUT' && !p.endsWith('/me'));
    if (param === 'tunnelId') {
      const spare = r.pick(fx.spareTunnels);
      if (destructive || m === 'PATCH') return r.chance(0.5) ? spare.id : spare.name;
      return r.pick([fx.webTunnel.id, fx.webTunnel.name, spare.id, spare.name]);
    }
    if (param === 'name') return r.pick([fx.webTunnel.name, ...fx.spareTunnels.map((t) => t.name)]);
    if (param === 'port') return String(r.chance(0.7) ? r.pick(fx.spareTunnels).port : r.pick([r.int(1, 65535), '65536', '99999', '00022', '0']));
    if (p.startsWith('/api/v1/users/')) return destructive ? r.pick(fx.spareUsers) : r.pick([fx.adminUser, ...fx.spareUsers]);
    if (p.startsWith('/api/v1/roles/')) return destructive ? r.pick(fx.spareRoles) : r.pick([fx.adminRole, ...fx.spareRoles]);
    if (p.startsWith('/api/v1/api-keys/')) return r.pick(fx.spareKeys);
    if (p.startsWith('/api/v1/enrollment-tokens/')) return r.pick(fx.spareEnrollmentTokens);
    // Device RPCs go to the demo device only: it must answer them, so a 503/504 there is a failure.
    if (/\/(info|processes)$/.test(p)) return fx.demoDevice.id;
    if (p.includes('/tcp/')) return r.pick([fx.demoDevice.id, fx.demoDevice.name]);
    if (p.includes('/tunnels')) return fx.demoDevice.id;
    if (destructive) return r.pick(fx.spareDevices);
    return r.pick([fx.demoDevice.id, fx.fakeDevice, ...fx.spareDevices]);
  }

  private badQuery(qs: string, names: string[]): string {
    const r = this.r;
    const name = names.length && r.chance(0.7) ? r.pick(names) : r.pick(['x', '', '%FF', 'a[b]', '__proto__', 'a'.repeat(2000)]);
    const parts = [qs, `${name}=${r.pick(JUNK)}`];
    if (r.chance(0.3)) parts.push(`${name}=${r.pick(JUNK)}`); // repeated
    if (r.chance(0.2)) parts.push(r.pick(['&&&', '=', '==', '%', `${name}`, `${name}[]=1`, 'x='.repeat(500)]));
    if (r.chance(0.05)) parts.push(`${name}=${'%FF'.repeat(3000)}`);
    return parts.filter(Boolean).join('&');
  }

  private jsonBody(req: FuzzRequest, schema: Schema): void {
    const r = this.r;
    let value = this.sample(schema, 0);
    let text: string | null = null;
    let bytes: Uint8Array | null = null;
    let type: string | undefined = 'application/json';
    const n = r.int(1, 2);
    for (let k = 0; k < n; k++) {
      const m = r.pick(['bad-json', 'wrong-type', 'missing', 'unknown', 'huge', 'deep', 'utf8', 'number', 'long-string', 'content-type', 'form', 'empty', 'control-chars', 'valid']);
      req.mutations.push(m);
      switch (m) {
        case 'wrong-type':
          value = this.mutateField(value, () => r.pick(WRONG_TYPES));
          break;
        case 'missing':
          if (value && typeof value === 'object' && !Array.isArray(value)) {
            const keys = Object.keys(value);
            if (keys.length) delete (value as Record<string, unknown>)[r.pick(keys)];
          }
          break;
        case 'unknown':
          if (value && typeof value === 'object' && !Array.isArray(value)) {
            Object.assign(value, { [r.pick(['extra', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '', 'id', 'role', 'admin'])]: r.pick(WRONG_TYPES) });
          } else {
            value = r.pick(WRONG_TYPES);
          }
          break;
        case 'long-string':
          value = this.mutateField(value, () => r.pick(['x', '\u00e9', '\ud83d\udca9', '\u0000']).repeat(r.int(1000, 200_000)));
          break;
        case 'control-chars':
          value = this.mutateField(value, () => r.pick(['\u0000', 'a\u0000b', '\r\n', '\u202e', '\ud800', '\udfff', '\u0007\u001b[31m', 'x\u2028y']));
          break;
        case 'number': {
          const marker = '"__NUM__"';
          value = this.mutateField(value, () => '__NUM__');
          text = JSON.stringify(value).replace(marker, r.pick(NUMBER_TEXTS));
          break;
        }
        case 'bad-json': {
          const t: string = text ?? JSON.stringify(value) ?? '';
          text = r.pick([
            t.slice(0, r.int(0, Math.max(0, t.length - 1))),
            t + r.pick(['}', ']', ',', 'x', '\u0000', '{}']),
            `{${t}`,
            t.replace(/"/g, "'"),
            t.replace(/:/, ''),
            '{"a":1,}',
            '{"a" 1}',
            "{'a':1}",
            '[1,2',
            '{"a":"\\x41"}',
            '{"a":"\\ud800"}',
            '{"a":"\\u12"}',
            '\ufeff' + t,
            '{"__proto__":{"polluted":true}}',
            'null',
            'true',
            '"a string"',
            '123',
            '[]',
          ]);
          break;
        }
        case 'huge': {
          const size = r.int(2, 4) * MiB;
          const how = r.pick(['string', 'array', 'whitespace', 'keys']);
          if (how === 'string') value = this.mutateField(value, () => 'h'.repeat(size));
          else if (how === 'array') text = `[${'1,'.repeat(size / 2)}1]`;
          else if (how === 'whitespace') text = ' '.repeat(size) + (text ?? JSON.stringify(value));
          else text = `{${Array.from({ length: size / 16 }, (_, j) => `"k${j}":${j}`).join(',')}}`;
          break;
        }
        case 'deep': {
          const depth = r.pick([1000, 10_000, 100_000]);
          const open = r.chance(0.5) ? '[' : '{"a":';
          const close = open === '[' ? ']' : '}';
          text = open.repeat(depth) + (r.chance(0.8) ? close.repeat(depth) : '');
          if (r.chance(0.5) && value && typeof value === 'object') {
            const keys = Object.keys(value);
            text = JSON.stringify(value).replace(/^\{/, `{"${keys[0] ?? 'x'}":${text},`);
          }
          break;
        }
        case 'utf8': {
          const t = enc.encode(text ?? JSON.stringify(value) ?? '{}');
          const bad = r.pick(BAD_UTF8);
          // Inside a string when there is one, else anywhere.
          const quote = t.indexOf(0x22, 1);
          const at = quote > 0 ? quote + 1 : r.int(0, t.length);
          bytes = new Uint8Array([...t.subarray(0, at), ...bad, ...t.subarray(at)]);
          break;
        }
        case 'content-type':
          type = r.pick(CONTENT_TYPES);
          break;
        case 'form':
          text = new URLSearchParams(Object.entries(value && typeof value === 'object' ? value : { v: value }).map(([k, v]) => [k, String(v)])).toString();
          type = r.pick(['application/x-www-form-urlencoded', 'application/json', undefined]);
          break;
        case 'empty':
          text = '';
          break;
        case 'valid':
          break;
      }
    }
    req.body = bytes ?? enc.encode(text ?? JSON.stringify(value) ?? '');
    if (type !== undefined) req.headers['content-type'] = type;
  }

  /** A body where the route takes none. */
  private strayBody(req: FuzzRequest): void {
    const r = this.r;
    req.mutations.push('stray body');
    const kind = r.pick(['json', 'bytes', 'form', 'huge']);
    if (kind === 'json') req.body = enc.encode('{"device_id":"x","a":[1,2,{}]}');
    else if (kind === 'bytes') req.body = r.bytes(r.int(1, 512));
    else if (kind === 'form') req.body = enc.encode('a=1&b=%FF&c');
    else req.body = new Uint8Array(r.int(1, 3) * MiB).fill(0x7b);
    const type = r.pick(CONTENT_TYPES);
    if (type) req.headers['content-type'] = type;
    if (req.method === 'GET' && r.chance(0.7)) req.method = 'POST';
  }

  /** Replaces one field (or the whole value when it has none) with what `make` returns. */
  private mutateField(value: unknown, make: () => unknown): unknown {
    if (!value || typeof value !== 'object' || Array.isArray(value)) return make();
    const keys = Object.keys(value);
    const key = keys.length && this.r.chance(0.85) ? this.r.pick(keys) : 'extra';
    const v = (value as Record<string, unknown>)[key];
    if (v && typeof v === 'object' && !Array.isArray(v) && this.r.chance(0.5)) (value as Record<string, unknown>)[key] = this.mutateField(v, make);
    else (value as Record<string, unknown>)[key] = make();
    return value;
  }

  /** A plausible value for a JSON schema (mostly valid, so the mutations break one thing at a time). */
  private sample(schema: Schema | undefined, depth: number): unknown {
    const r = this.r;
    if (!schema || depth > 6) return null;
    if (schema.$ref) return this.sample(schema.__doc?.components.schemas[String(schema.$ref).split('/').pop()!], depth + 1);
    const alts = schema.anyOf ?? schema.oneOf;
    if (alts) return this.sample({ ...r.pick(alts as Schema[]), __doc: schema.__doc }, depth + 1);
    if (schema.enum) return r.pick(schema.enum as unknown[]);
    const type = Array.isArray(schema.type) ? r.pick(schema.type as string[]) : schema.type;
    switch (type) {
      case 'null':
        return null;
      case 'boolean':
        return r.chance(0.5);
      case 'integer':
      case 'number': {
        const min = schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + 1 : 0);
        const max = schema.maximum ?? 1000;
        return r.int(Math.ceil(min), Math.min(Math.floor(max), Math.ceil(min) + 1000));
      }
      case 'string': {
        if (schema.format === 'email') return `fz${r.int(0, 1e6)}@example.com`;
        if (schema.format === 'date-time') return new Date(Date.now() + r.int(1, 1000) * 3600_000).toISOString();
        const len = Math.max(schema.minLength ?? 1, r.int(3, 12));
        let s = '';
        for (let k = 0; k < len; k++) s += 'abcdefghijklmnopqrstuvwxyz0123456789'[r.int(0, 35)];
        if (schema.pattern === '^[A-Za-z0-9_-]{43}$') return 'A'.repeat(43);
        return /^\^\[a-z0-9\]/.test(schema.pattern ?? '') ? `fz${s}` : s;
      }
      case 'array': {
        const n = Math.max(schema.minItems ?? 0, r.int(0, 2));
        return Array.from({ length: n }, () => this.sample({ ...schema.items, __doc: schema.__doc }, depth + 1));
      }
      default: {
        if (!schema.properties) return {};
        const out: Record<string, unknown> = {};
        const required = new Set<string>(schema.required ?? []);
        for (const [k, v] of Object.entries<Schema>(schema.properties)) {
          if (required.has(k) || r.chance(0.4)) out[k] = this.sample({ ...v, __doc: schema.__doc }, depth + 1);
        }
        return out;
      }
    }
  }

  // ---- compatibility layers, agent connect, ingress ----

  private extra(name: string): FuzzRequest {
    const r = this.r;
    const [method, path] = name.split(' ') as [string, string];
    const req: FuzzRequest = { route: name, method, url: path, headers: {}, mutations: [] };
    if (method === 'INGRESS') return this.ingress(req, path);
    if (path === '/agent/connect') return this.agentConnect(req);
    if (path === '/' || path.endsWith('openapi.json')) {
      if (r.chance(0.5)) this.strayBody(req);
      req.url += `?${this.badQuery('', ['x'])}`;
      return req;
    }
    const control = path.startsWith('/tunnel-api');
    if (path === '/tunnel-api/{call}') req.url = `/tunnel-api/${r.pick(['', 'x', 'connect/extra', '%FF', 'CONNECT', '__proto__', 'constructor', 'hasOwnProperty', 'toString', 'a'.repeat(500)])}`;
    const fields: Record<string, string> = {};
    // RPCs go to the demo device only (the fake one is offline meanwhile, a spare one may have been
    // approved by an earlier request): their 503 DEVICE_OFFLINE would be honest.
    const rpc = path === '/device_info' || path === '/process_list';
    const deviceId = r.chance(0.25) ? r.pick(JUNK) : rpc ? this.fx.demoDevice.id : r.pick([this.fx.demoDevice.id, ...this.fx.spareDevices]);
    if (r.chance(0.9)) fields.device_id = deviceId;
    if (control) {
      if (r.chance(0.8)) fields.tunnel = r.chance(0.7) ? r.pick(this.fx.spareTunnels).name : r.pick(JUNK);
      if (r.chance(0.5)) fields.allow = r.pick(['true', 'false', 'TRUE', 'yes', '', '1', 'null']);
      if (r.chance(0.3)) fields.api_key = r.pick([r.pick(this.fx.controlKeys), 'garbage', '', 'a'.repeat(5000)]);
    }
    if (r.chance(0.2)) fields[r.pick(['extra', '__proto__', 'constructor', 'device_id[]', ''])] = r.pick(JUNK);
    const asQuery = method === 'GET' || r.chance(0.3);
    if (asQuery) {
      req.url += `?${new URLSearchParams(fields)}`;
      if (r.chance(0.3)) {
        req.url += `&${this.badQuery('', Object.keys(fields))}`;
        req.mutations.push('bad query');
      }
      if (method === 'POST' && r.chance(0.5)) this.strayBody(req);
      return req;
    }
    const how = r.pick(['form', 'json', 'multipart', 'bad-json', 'utf8', 'huge', 'deep', 'wrong-type', 'bare', 'bad-multipart', 'content-type']);
    req.mutations.push(`body ${how}`);
    const form = new URLSearchParams(fields).toString();
    switch (how) {
      case 'form':
        req.headers['content-type'] = 'application/x-www-form-urlencoded';
        req.body = enc.encode(form);
        break;
      case 'bare':
        req.body = enc.encode(form);
        break;
      case 'json':
        req.headers['content-type'] = 'application/json';
        req.body = enc.encode(JSON.stringify(fields));
        break;
      case 'wrong-type':
        req.headers['content-type'] = 'application/json';
        req.body = enc.encode(JSON.stringify({ ...fields, device_id: r.pick(WRONG_TYPES), tunnel: r.pick(WRONG_TYPES), allow: r.pick(WRONG_TYPES) }));
        break;
      case 'bad-json':
        req.headers['content-type'] = 'application/json';
        req.body = enc.encode(r.pick(['{', '{"device_id":', '[1,', 'nul', '{"device_id":"x"}}', "{'device_id':'x'}", '{"device_id":1e309}', '{"device_id":"\\ud800"}']));
        break;
      case 'utf8': {
        req.headers['content-type'] = r.pick(['application/x-www-form-urlencoded', 'application/json', 'text/plain']);
        const t = enc.encode(req.headers['content-type'] === 'application/json' ? JSON.stringify(fields) : form);
        const at = r.int(0, t.length);
        req.body = new Uint8Array([...t.subarray(0, at), ...r.pick(BAD_UTF8), ...t.subarray(at)]);
        break;
      }
      case 'huge':
        req.headers['content-type'] = r.pick(['application/x-www-form-urlencoded', 'application/json', 'multipart/form-data; boundary=x']);
        req.body = enc.encode(`device_id=${'x'.repeat(r.int(1, 3) * MiB)}`);
        break;
      case 'deep':
        req.headers['content-type'] = 'application/json';
        req.body = enc.encode(`{"device_id":${'['.repeat(10_000)}${']'.repeat(10_000)}}`);
        break;
      case 'multipart': {
        const b = 'fuzzboundary';
        const parts = Object.entries(fields).map(([k, v]) => `--${b}\r\ncontent-disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`);
        req.headers['content-type'] = `multipart/form-data; boundary=${b}`;
        req.body = enc.encode(`${parts.join('')}--${b}--\r\n`);
        break;
      }
      case 'bad-multipart': {
        const b = 'fuzzboundary';
        req.headers['content-type'] = r.pick([`multipart/form-data; boundary=${b}`, 'multipart/form-data', 'multipart/form-data; boundary="', `multipart/form-data; boundary=${'b'.repeat(100)}`]);
        req.body = enc.encode(
          r.pick([
            `--${b}\r\ncontent-disposition: form-data; name="device_id"\r\n\r\nx`,
            `--${b}\r\ncontent-disposition: form-data; name="device_id"; filename="a.txt"\r\ncontent-type: text/plain\r\n\r\n${deviceId}\r\n--${b}--\r\n`,
            `--${b}\r\n\r\n\r\n--${b}--`,
            'garbage',
            `--${b}--`,
            `--${b}\r\ncontent-disposition: form-data\r\n\r\nx\r\n--${b}--\r\n`,
          ]),
        );
        break;
      }
      case 'content-type':
        req.headers['content-type'] = r.pick(CONTENT_TYPES) ?? 'text/plain';
        req.body = enc.encode(r.chance(0.5) ? form : JSON.stringify(fields));
        break;
    }
    return req;
  }

  private agentConnect(req: FuzzRequest): FuzzRequest {
    const r = this.r;
    const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
    const sub = r.pick<unknown>([this.fx.fakeDevice, this.fx.demoDevice.id, 'nope', '', 'a'.repeat(10_000), "' OR 1=1 --", 42, null, { a: 1 }, ['x'], '\u0000']);
    const claims = { sub, aud: r.pick(['pirelay-agent-connect', 'x', ['pirelay-agent-connect']]), iat: r.pick([Math.floor(Date.now() / 1000), 1e309, -1, 'now', 0]), exp: r.pick([Math.floor(Date.now() / 1000) + 60, 2 ** 64, 'x']), jti: r.pick(['a', 1, null]) };
    const header = r.pick([{ alg: 'EdDSA', typ: 'JWT' }, { alg: 'none' }, { alg: 'HS256' }, { alg: 'EdDSA', crit: ['x'] }, { alg: 'EdDSA', kid: '../../x' }, 'not json', {}]);
    const token = r.pick([
      `${b64(header)}.${b64(claims)}.${b64(r.bytes(64))}`,
      `${b64(header)}.${b64(claims)}.`,
      `${b64(header)}.${b64('garbage')}.x`,
      `${b64(header)}.%%%.x`,
      'a.b.c',
      'a.b',
      '...',
      'x'.repeat(r.int(1, 20_000)),
      Buffer.from(r.bytes(64)).toString('base64'),
      '',
    ]);
    req.mutations.push('agent token');
    if (r.chance(0.8)) req.headers.authorization = r.pick([`Bearer ${token}`, `bearer  ${token}`, `Basic ${Buffer.from(`${token}:`).toString('base64')}`, token]);
    else req.url += `?token=${encodeURIComponent(token)}`;
    if (r.chance(0.2)) this.strayBody(req);
    req.headers['x-no-auth'] = '1';
    return req;
  }

  private ingress(req: FuzzRequest, which: string): FuzzRequest {
    const r = this.r;
    const name = which === 'web' ? this.fx.webTunnel.name : which === 'basic' ? this.fx.basicTunnel : r.pick(['fznope', 'a', 'x'.repeat(63), '0', 'fz-nope-2']);
    req.method = r.pick(['GET', 'GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', ...ODD_METHODS]);
    let path = r.pick(['/', '/echo', '/a/b/c', '//', '/%00', '/%FF%FE', '/..%2F..%2Fetc%2Fpasswd', '/%E2%80%AE', '/?', '/#frag', `/${'p'.repeat(r.int(1000, 20_000))}`, '/;a=b']);
    if (r.chance(0.4)) path += `?${this.badQuery('a=1', ['a'])}`;
    req.url = `http://${name}.localhost:${this.fx.port}${path}`;
    req.mutations.push(`${req.method} ${path.slice(0, 60)}`);
    const h = req.headers;
    const m = r.pick(['none', 'headers', 'long-header', 'many-headers', 'body', 'huge', 'utf8', 'latin1-header', 'content-type', 'auth']);
    req.mutations.push(m);
    switch (m) {
      case 'headers':
        // Not Connection or Upgrade: the HTTP client refuses to send what it does not manage itself.
        Object.assign(h, { 'x-forwarded-for': r.pick(['1.2.3.4', 'garbage', '']), 'x-pirelay-kind': 'tunnel-tcp', 'x-pirelay-tunnel-id': 'x', 'x-pirelay-device-id': this.fx.fakeDevice, te: 'trailers', 'x-custom': 'yes' });
        break;
      case 'long-header':
        h['x-long'] = 'v'.repeat(r.int(8_000, 40_000));
        break;
      case 'many-headers':
        for (let k = 0; k < r.int(200, 400); k++) h[`x-h${k}`] = String(k);
        break;
      case 'latin1-header':
        h['x-latin1'] = String.fromCharCode(...r.pick(BAD_UTF8));
        h.cookie = `a=${String.fromCharCode(0xff)}; b`;
        break;
      case 'body':
        req.body = r.bytes(r.int(1, 64 * 1024));
        break;
      case 'huge':
        req.body = new Uint8Array(r.int(1, 4) * MiB).fill(0x61);
        break;
      case 'utf8':
        req.body = new Uint8Array(r.pick(BAD_UTF8));
        h['content-type'] = 'text/plain; charset=utf-8';
        break;
      case 'content-type':
        h['content-type'] = r.pick(CONTENT_TYPES) ?? 'x';
        req.body = enc.encode('{"a":');
        break;
      case 'auth':
        h.authorization = r.pick(['Basic !!!', 'Basic ' + Buffer.from('fz:wrong').toString('base64'), 'Bearer x', 'Basic', `Basic ${Buffer.from(String.fromCharCode(0xff, 0x3a, 0xfe)).toString('base64')}`]);
        break;
    }
    if (req.body && (req.method === 'GET' || req.method === 'HEAD')) req.method = 'POST';
    req.headers['x-no-auth'] = '1';
    return req;
  }

  // ---- credentials ----

  /** The admin's key most of the time, so requests pass auth and reach validation; sometimes garbage. */
  private auth(req: FuzzRequest, name: string): void {
    const r = this.r;
    const noAuth = req.headers['x-no-auth'] === '1';
    delete req.headers['x-no-auth'];
    if (noAuth || (req.url.includes('api_key=') && r.chance(0.8))) return;
    const key = name.includes('/tunnel-api') ? r.pick(this.fx.controlKeys) : this.fx.apiKey;
    if (r.chance(0.85)) {
      req.headers.authorization = r.chance(0.7) ? `Bearer ${key}` : `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
      return;
    }
    req.mutations.push('bad credentials');
    const bad = r.pick([
      undefined,
      'Bearer',
      'Bearer ',
      'Bearer garbage',
      `Bearer ${key}x`,
      `Bearer ${'k'.repeat(10_000)}`,
      'Basic !!!',
      'Basic ' + Buffer.from(':').toString('base64'),
      'Basic ' + Buffer.from(`${key}`).toString('base64'),
      `Basic ${String.fromCharCode(0xff, 0xfe)}`,
      `Bearer ${String.fromCharCode(0xff, 0xfe, 0x80)}`,
      'Digest username="x"',
      'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
      'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
      `Bearer pr_${'0'.repeat(40)}`,
    ]);
    if (bad !== undefined) req.headers.authorization = bad;
  }
}
