// Seeded fuzzing of the agent's HTTP/1.1 response parsers (agent/tunnels/http1-parse.ts), which
// read whatever a device's local server sends. Valid responses built from a model must parse to
// what a simple reference derives from that model; random and mutated ones may be refused, but
// only with BadResponseError, and what is accepted must never leave the body's framing ambiguous
// (Content-Length values that disagree, or Transfer-Encoding with Content-Length on a reused
// connection), nor carry a header a proxy could not forward as it is.
import { describe, expect, it } from 'bun:test';
import { TOKEN } from '../../../shared/protocol/http-rules.ts';
import { BadResponseError, headEnd, parseChunkSize, readResponseHead, type Framing, type ResponseHead } from '../../../agent/tunnels/http1-parse.ts';
import { prng, randInt } from '../streams/helpers.ts';

type Rand = () => number;
const pick = <T,>(rand: Rand, options: readonly T[]): T => options[Math.floor(rand() * options.length)]!;
const latin1 = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

/** A response as the generator means it; `reference` derives what a parser must make of it. */
interface Model {
  minor: 0 | 1;
  status: number;
  reason: string | null;
  interim: number[];
  headers: [string, string][];
  method: 'GET' | 'HEAD';
  eol: '\r\n' | '\n';
  body: Uint8Array;
}

const TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const VALUE_CHARS = 'abcXYZ019 \t"(),/:;<=>?@[]{}\u00e9\u00ff';

function token(rand: Rand): string {
  let s = '';
  for (let i = randInt(rand, 1, 12); i > 0; i--) s += TOKEN_CHARS[randInt(rand, 0, TOKEN_CHARS.length - 1)];
  return s;
}

function fieldValue(rand: Rand): string {
  let s = '';
  for (let i = randInt(rand, 0, 20); i > 0; i--) s += VALUE_CHARS[randInt(rand, 0, VALUE_CHARS.length - 1)];
  return s;
}

/** Optional whitespace around a value, which the parser strips. */
const ows = (rand: Rand) => pick(rand, ['', ' ', '  ', '\t', ' \t']);

function model(rand: Rand): Model {
  const headers: [string, string][] = [];
  for (let i = randInt(rand, 0, 6); i > 0; i--) {
    const name = token(rand);
    if (!/^(content-length|transfer-encoding|connection)$/i.test(name)) headers.push([name, ows(rand) + fieldValue(rand).trim() + ows(rand)]);
  }
  const length = randInt(rand, 0, 5000);
  switch (pick(rand, ['none', 'length', 'length-twice', 'length-list', 'chunked', 'gzip-chunked', 'gzip', 'chunked-and-length'] as const)) {
    case 'length':
      headers.push([pick(rand, ['Content-Length', 'content-length', 'CONTENT-LENGTH']), ows(rand) + length + ows(rand)]);
      break;
    case 'length-twice':
      headers.push(['Content-Length', String(length)], ['content-length', String(length)]);
      break;
    case 'length-list':
      headers.push(['Content-Length', `${length}, ${length}`]);
      break;
    case 'chunked':
      headers.push(['Transfer-Encoding', pick(rand, ['chunked', 'Chunked', ' chunked '])]);
      break;
    case 'gzip-chunked':
      if (rand() < 0.5) headers.push(['Transfer-Encoding', 'gzip, chunked']);
      else headers.push(['Transfer-Encoding', 'gzip'], ['Transfer-Encoding', 'chunked']);
      break;
    case 'gzip':
      headers.push(['Transfer-Encoding', 'gzip']);
      break;
    case 'chunked-and-length':
      headers.push(['Transfer-Encoding', 'chunked'], ['Content-Length', String(length)]);
      break;
  }
  if (rand() < 0.3) headers.push(['Connection', pick(rand, ['close', 'keep-alive', 'Keep-Alive, Close', 'upgrade'])]);
  // Shuffle, so framing headers are not always last.
  for (let i = headers.length - 1; i > 0; i--) {
    const j = randInt(rand, 0, i);
    [headers[i], headers[j]] = [headers[j]!, headers[i]!];
  }
  return {
    minor: rand() < 0.8 ? 1 : 0,
    status: pick(rand, [200, 201, 204, 206, 301, 304, 404, 418, 500, 503, 599]),
    reason: pick(rand, [null, '', 'OK', 'Not Found', 'Some  reason\twith tabs']),
    interim: rand() < 0.2 ? [pick(rand, [100, 103])] : [],
    headers,
    method: rand() < 0.15 ? 'HEAD' : 'GET',
    eol: rand() < 0.8 ? '\r\n' : '\n',
    body: latin1('x'.repeat(randInt(rand, 0, 40))),
  };
}

function serialize(m: Model): Uint8Array {
  let text = '';
  for (const s of m.interim) text += `HTTP/1.1 ${s} Interim${m.eol}X-Interim: 1${m.eol}${m.eol}`;
  text += `HTTP/1.${m.minor} ${m.status}${m.reason === null ? '' : ` ${m.reason}`}${m.eol}`;
  for (const [n, v] of m.headers) text += `${n}:${v}${m.eol}`;
  text += m.eol;
  const head = latin1(text);
  const out = new Uint8Array(head.byteLength + m.body.byteLength);
  out.set(head);
  out.set(m.body, head.byteLength);
  return out;
}

/** What RFC 9112 §6.3 says the model's framing is, written out plainly. */
function reference(m: Model): Omit<ResponseHead, 'rest' | 'partial'> {
  const headers = m.headers.map(([n, v]): [string, string] => [n.toLowerCase(), v.replace(/^[ \t]+|[ \t]+$/g, '')]);
  const values = (name: string) => headers.filter(([n]) => n === name).flatMap(([, v]) => v.split(',').map((s) => s.trim().toLowerCase()));
  const te = values('transfer-encoding').filter(Boolean);
  const cl = values('content-length');
  let framing: Framing;
  if (m.method === 'HEAD' || m.status === 204 || m.status === 304) framing = { kind: 'none' };
  else if (headers.some(([n]) => n === 'transfer-encoding')) framing = te.at(-1) === 'chunked' ? { kind: 'chunked' } : { kind: 'close' };
  else if (cl.length) framing = { kind: 'length', left: Number(cl[0]) };
  else framing = { kind: 'close' };
  const both = headers.some(([n]) => n === 'transfer-encoding') && cl.length > 0;
  const reusable = m.minor === 1 && framing.kind !== 'close' && !both && !values('connection').includes('close');
  return { status: m.status, statusText: m.reason ?? '', headers, framing, reusable };
}

/** Parses, turning BadResponseError into null; any other throw fails the test. */
function attempt(data: Uint8Array, method: string): ReturnType<typeof readResponseHead> | null {
  try {
    return readResponseHead(data, method);
  } catch (e) {
    if (!(e instanceof BadResponseError)) throw new Error(`threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}, not BadResponseError`);
    return null;
  }
}

/** What must hold of any head the parser accepts, whatever the bytes were. */
function checkAccepted(head: ResponseHead, method: string): void {
  expect(head.status).toBeGreaterThanOrEqual(200);
  for (const [name, value] of head.headers) {
    expect(TOKEN.test(name)).toBe(true);
    expect(name).toBe(name.toLowerCase());
    expect(CONTROL.test(value)).toBe(false);
    expect(/^[ \t]|[ \t]$/.test(value)).toBe(false);
  }
  const te = head.headers.some(([n]) => n === 'transfer-encoding');
  const lengths = new Set(head.headers.filter(([n]) => n === 'content-length').flatMap(([, v]) => v.split(',').map((s) => s.trim())));
  const bodiless = method === 'HEAD' || head.status === 204 || head.status === 304;
  if (head.framing.kind === 'none') expect(bodiless).toBe(true);
  if (!bodiless) {
    // Never two readings of where the body ends.
    if (te) expect(head.framing.kind === 'chunked' || head.framing.kind === 'close').toBe(true);
    else if (lengths.size) {
      expect(lengths.size).toBe(1);
      const [only] = lengths;
      expect(/^\d{1,15}$/.test(only!)).toBe(true);
      expect(head.framing).toEqual({ kind: 'length', left: Number(only) });
    } else expect(head.framing.kind).toBe('close');
  }
  if (te && lengths.size) expect(head.reusable).toBe(false);
  if (head.framing.kind === 'close') expect(head.reusable).toBe(false);
}

describe('http1-parse: valid responses agree with the reference', () => {
  for (const seed of [1, 2, 3]) {
    it(`2,000 modelled responses (seed ${seed})`, () => {
      const rand = prng(seed);
      const seen = new Set<string>();
      for (let i = 0; i < 2000; i++) {
        const m = model(rand);
        const data = serialize(m);
        const head = readResponseHead(data, m.method);
        if (head.partial) throw new Error('a whole response came back partial');
        const { rest, partial: _, ...parsed } = head;
        expect(parsed).toEqual(reference(m));
        expect(rest).toEqual(m.body);
        checkAccepted(head, m.method);
        seen.add(head.framing.kind);
        // Every proper prefix of the head is incomplete, never misread.
        const end = data.byteLength - m.body.byteLength;
        const cut = randInt(rand, 0, end - 1);
        const prefix = attempt(data.subarray(0, cut), m.method);
        expect(prefix?.partial).toBe(true);
      }
      expect([...seen].sort()).toEqual(['chunked', 'close', 'length', 'none']);
    });
  }

  it('refuses Content-Length values that disagree, and ones that are no number', () => {
    for (const values of [['5', '6'], ['5, 6'], ['-1'], ['0x10'], ['1e3'], [''], ['5 5'], ['1234567890123456']]) {
      const text = `HTTP/1.1 200 OK\r\n${values.map((v) => `Content-Length: ${v}\r\n`).join('')}\r\n`;
      expect(() => readResponseHead(latin1(text), 'GET')).toThrow(BadResponseError);
    }
  });
});

describe('http1-parse: random and mutated responses', () => {
  const INTERESTING = [0x00, 0x0d, 0x0a, 0x20, 0x09, 0x3a, 0x2c, 0x3b, 0x7f, 0x80, 0xff, 0x30, 0x39];

  function mutate(rand: Rand, data: Uint8Array): Uint8Array {
    let bytes = [...data];
    for (let n = randInt(rand, 1, 4); n > 0; n--) {
      const at = randInt(rand, 0, Math.max(0, bytes.length - 1));
      const byte = rand() < 0.7 ? pick(rand, INTERESTING) : randInt(rand, 0, 255);
      switch (pick(rand, ['flip', 'insert', 'delete', 'duplicate-line', 'truncate'] as const)) {
        case 'flip':
          bytes[at] = byte;
          break;
        case 'insert':
          bytes.splice(at, 0, byte);
          break;
        case 'delete':
          bytes.splice(at, 1);
          break;
        case 'duplicate-line': {
          const start = bytes.lastIndexOf(0x0a, at) + 1;
          const stop = bytes.indexOf(0x0a, at);
          if (stop > start) bytes.splice(stop + 1, 0, ...bytes.slice(start, stop + 1));
          break;
        }
        case 'truncate':
          bytes = bytes.slice(0, at);
          break;
      }
    }
    return Uint8Array.from(bytes);
  }

  for (const seed of [7, 8, 9]) {
    it(`5,000 mutated responses throw only BadResponseError and never frame a body two ways (seed ${seed})`, () => {
      const rand = prng(seed);
      const outcome = { accepted: 0, refused: 0, partial: 0 };
      for (let i = 0; i < 5000; i++) {
        const m = model(rand);
        const data = mutate(rand, serialize(m));
        const head = attempt(data, m.method);
        if (!head) outcome.refused++;
        else if (head.partial) {
          outcome.partial++;
          expect(headEnd(head.rest)).toBe(-1);
        } else {
          outcome.accepted++;
          checkAccepted(head, m.method);
        }
      }
      // The mutations must exercise every outcome, or this test proves little.
      expect(outcome.accepted).toBeGreaterThan(100);
      expect(outcome.refused).toBeGreaterThan(100);
      expect(outcome.partial).toBeGreaterThan(10);
    });
  }

  it('2,000 random byte strings throw only BadResponseError', () => {
    const rand = prng(42);
    for (let i = 0; i < 2000; i++) {
      const prefix = rand() < 0.5 ? 'HTTP/1.1 200 OK\r\n' : '';
      const random = Uint8Array.from({ length: randInt(rand, 0, 200) }, () => (rand() < 0.3 ? pick(rand, INTERESTING) : randInt(rand, 0, 255)));
      const data = new Uint8Array([...latin1(prefix), ...random, ...(rand() < 0.5 ? [13, 10, 13, 10] : [])]);
      const method = pick(rand, ['GET', 'HEAD']);
      const head = attempt(data, method);
      if (head && !head.partial) checkAccepted(head, method);
    }
  });
});

describe('http1-parse: chunk-size lines', () => {
  it('agree with parseInt on valid sizes (extensions and whitespace ignored) and refuse the rest', () => {
    const rand = prng(5);
    for (let i = 0; i < 3000; i++) {
      const size = randInt(rand, 0, 0xffffffff);
      let hex = size.toString(16);
      if (rand() < 0.3) hex = hex.toUpperCase();
      if (rand() < 0.2) hex = '0'.repeat(Math.max(0, 8 - hex.length)) + hex;
      const ext = rand() < 0.3 ? `;name=${token(rand)}` : '';
      expect(parseChunkSize(`${ows(rand)}${hex}${ows(rand)}${ext}`)).toBe(parseInt(hex, 16));
    }
    for (const bad of ['', ' ', ';ext', '-1', '+1', '0x10', 'g', '1 2', '123456789', '1.5', '\u0661']) {
      expect(() => parseChunkSize(bad)).toThrow(BadResponseError);
    }
  });
});
