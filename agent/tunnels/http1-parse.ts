// The pure parsers of the agent's HTTP/1.1 client (http1.ts): a response head (status line and
// header block, interim 1xx heads skipped), the framing its body has (RFC 9112 §6.3) and whether
// the connection may be reused after it, and chunk-size lines. No sockets and no state, so they
// are fuzzed on their own (test/agent/tunnels/http1-parse.test.ts): whatever a target sends, they
// return or throw BadResponseError, and never accept a head whose body could be framed two ways.
import { Buffer } from 'node:buffer';
import { parseContentLength, TOKEN } from '../../shared/protocol/http-rules.ts';
import type { HeaderList } from './headers.ts';

/** A response the target sent that no HTTP/1.1 client could accept. */
export class BadResponseError extends Error {
  override name = 'BadResponseError';
}

/** The largest response head we read (the stream's HEAD_LIMITS are checked after parsing). */
export const MAX_RESPONSE_HEAD = 1024 * 1024;
/** The longest chunk-size (or trailer) line we read. */
export const MAX_CHUNK_LINE = 4096;

/** Characters no header field value may hold (RFC 9110 §5.5): controls other than HTAB. */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: ([^\r\n]*))?$/;
const CHUNK_SIZE = /^[0-9a-fA-F]{1,8}$/;
const LINE_BREAK = /\r?\n/;
const EDGE_SPACE = /^[ \t]+|[ \t]+$/g;

/** How a response body is delimited. */
export type Framing = { kind: 'none' } | { kind: 'length'; left: number } | { kind: 'chunked' } | { kind: 'close' };

export interface ResponseHead {
  partial: false;
  status: number;
  statusText: string;
  /** As received, names lower-cased, repeated fields kept apart (every Set-Cookie line). */
  headers: HeaderList;
  framing: Framing;
  /** Whether the connection may carry another exchange once this body is complete. */
  reusable: boolean;
  /** The bytes after the head: the start of the body, or more than this response if the target misbehaves. */
  rest: Uint8Array;
}

/** A head that has not all arrived: keep `rest` (interim 1xx heads before it are done with) and wait for more. */
export interface PartialHead {
  partial: true;
  rest: Uint8Array;
}

/**
 * Parses the response heads at the start of `data`, skipping 1xx interim ones: the final head
 * (one object per response: this runs per tunnel request), or a PartialHead while it has not all
 * arrived. `method` is the request's (a HEAD response has no body).
 */
export function readResponseHead(data: Uint8Array, method: string): ResponseHead | PartialHead {
  for (;;) {
    const end = headEnd(data);
    if (end < 0) {
      if (data.byteLength > MAX_RESPONSE_HEAD) throw new BadResponseError(`the response head is longer than ${MAX_RESPONSE_HEAD} bytes`);
      return { partial: true, rest: data };
    }
    const text = Buffer.from(data.buffer, data.byteOffset, end).toString('latin1');
    data = data.subarray(end);
    const lines = text.split(LINE_BREAK);
    const m = STATUS_LINE.exec(lines[0]!);
    if (!m) throw new BadResponseError(`the target did not answer with HTTP/1.x (${JSON.stringify(lines[0]!.slice(0, 40))})`);
    const status = Number(m[2]);
    if (status === 101) throw new BadResponseError('the target switched protocols on a plain request');
    if (status < 200 && status >= 100) continue; // 100 Continue, 103 Early Hints…
    if (status < 100) throw new BadResponseError(`status ${status} is not an HTTP status`);
    const headers = parseHeaderLines(lines);
    const framing = framingOf(method, status, headers);
    // Transfer-Encoding with Content-Length is how responses get smuggled: never reuse after one.
    const both = headers.some(([n]) => n === 'transfer-encoding') && headers.some(([n]) => n === 'content-length');
    const reusable = m[1] === '1' && framing.kind !== 'close' && !both && !hasToken(headers, 'connection', 'close');
    return { partial: false, status, statusText: m[3] ?? '', headers, framing, reusable, rest: data };
  }
}

/** Where the head ends (just past its blank line), or -1 while it has not all arrived. CRLF or bare LF. */
export function headEnd(data: Uint8Array): number {
  let at = data.indexOf(10);
  while (at >= 0) {
    if (data[at + 1] === 10) return at + 2;
    if (data[at + 1] === 13 && data[at + 2] === 10) return at + 3;
    at = data.indexOf(10, at + 1);
  }
  return -1;
}

/** The header block after the status line (lines[0]); strict: no obsolete folding, names are tokens, no controls in values. */
export function parseHeaderLines(lines: readonly string[]): HeaderList {
  const headers: HeaderList = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line) continue; // the blank line(s) that end the head
    if (line[0] === ' ' || line[0] === '\t') throw new BadResponseError('the response head uses obsolete line folding');
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!TOKEN.test(name)) throw new BadResponseError(`bad response header line ${JSON.stringify(line.slice(0, 40))}`);
    const value = line.slice(colon + 1).replace(EDGE_SPACE, '');
    // RFC 9110 §5.5: no control characters in a field value but HTAB (a NUL or a lone CR included).
    if (CONTROL.test(value)) throw new BadResponseError(`control character in the ${name} header`);
    headers.push([name.toLowerCase(), value]);
  }
  return headers;
}

/** Whether a comma-separated header holds `token` (names lower-cased, as parseHeaderLines leaves them). */
export function hasToken(headers: HeaderList, name: string, token: string): boolean {
  for (const [n, v] of headers) if (n === name && v.toLowerCase().split(',').some((t) => t.trim() === token)) return true;
  return false;
}

/**
 * How the response body is delimited (RFC 9112 §6.3). Transfer-Encoding wins over Content-Length
 * (the head is then never reused); Content-Length values that disagree, or are no number, are refused.
 */
export function framingOf(method: string, status: number, headers: HeaderList): Framing {
  if (method === 'HEAD' || status === 204 || status === 304) return { kind: 'none' };
  let te: string | null = null;
  let length: number | null = null;
  for (const [n, v] of headers) {
    if (n === 'transfer-encoding') te = te === null ? v : `${te},${v}`;
    else if (n === 'content-length') {
      for (const part of v.split(',')) {
        const n = parseContentLength(part);
        if (n === null) throw new BadResponseError(`bad Content-Length ${JSON.stringify(v.slice(0, 32))}`);
        if (length !== null && n !== length) throw new BadResponseError('conflicting Content-Length values');
        length = n;
      }
    }
  }
  if (te !== null) {
    const codings = te.toLowerCase().split(',').map((s) => s.trim()).filter(Boolean);
    return codings.at(-1) === 'chunked' ? { kind: 'chunked' } : { kind: 'close' };
  }
  if (length !== null) return { kind: 'length', left: length };
  return { kind: 'close' };
}

/** The size in a chunk-size line (RFC 9112 §7.1; CR already stripped, extensions ignored): 1 to 8 hex digits. */
export function parseChunkSize(line: string): number {
  const hex = line.split(';', 1)[0]!.trim();
  if (!CHUNK_SIZE.test(hex)) throw new BadResponseError(`bad chunk size ${JSON.stringify(hex.slice(0, 16))}`);
  return parseInt(hex, 16);
}
