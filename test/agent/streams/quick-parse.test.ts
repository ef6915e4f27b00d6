// The hand-written fast checks of OPEN and ACCEPT payloads must never accept what their zod
// schemas refuse, nor return anything else than zod would. Random payloads near the valid shapes
// (each field of the right type, at its limit, one past it, of the wrong type, or missing) are
// judged by both; the fast check may pass a payload on to zod, but must agree when it answers.
import { describe, expect, it } from 'bun:test';
import { HEAD_LIMITS } from '../../../shared/protocol/http-rules.ts';
import { quickStreamAccept, quickStreamOpen, StreamAcceptSchema } from '../../../shared/protocol/heads.ts';
import { StreamOpenSchema } from '../../../shared/protocol/messages.ts';
import { prng } from './helpers.ts';

type Pick = <T>(options: readonly T[]) => T;

function pickerOf(seed: number): Pick {
  const rand = prng(seed);
  return (options) => options[Math.floor(rand() * options.length)]!;
}

const text = (n: number) => 'x'.repeat(n);
const odd = [null, 1, true, {}, [], undefined, 'str', 1.5, -1, Number.MAX_SAFE_INTEGER];

function stringNear(pick: Pick, max: number): unknown {
  return pick<unknown>(['', 'a', text(max), text(max + 1), 'h\u00e9\u{1f600}', pick(odd)]);
}

function headersNear(pick: Pick): unknown {
  const kind = pick(['ok', 'ok', 'ok', 'many', 'tooMany', 'badEntry', 'odd']);
  if (kind === 'odd') return pick(odd);
  const count = kind === 'tooMany' ? HEAD_LIMITS.headers + 1 : kind === 'many' ? HEAD_LIMITS.headers : pick([0, 1, 3]);
  const list: unknown[] = [];
  for (let i = 0; i < count; i++) list.push(['x-h', 'v']);
  if (kind === 'badEntry' && count) {
    list[pick([0, count - 1])] = pick<unknown>([['only-name'], ['a', 'b', 'c'], [1, 'v'], ['n', null], [text(HEAD_LIMITS.name + 1), 'v'], ['n', text(HEAD_LIMITS.value + 1)], [text(HEAD_LIMITS.name), text(HEAD_LIMITS.value)], 'flat', null]);
  }
  return list;
}

function openNear(pick: Pick): unknown {
  if (pick([0, 0, 0, 0, 1]) === 1) return pick(odd);
  const o: Record<string, unknown> = {
    kind: pick<unknown>(['http', 'http', 'tcp', 'websocket', 'ftp', 1]),
    tunnel: stringNear(pick, 64),
    method: stringNear(pick, 16),
    path: stringNear(pick, HEAD_LIMITS.path),
    headers: headersNear(pick),
    protocols: pick<unknown>([[], ['chat'], undefined, 'chat']),
  };
  if (pick([0, 1])) o.extra = 'stripped by zod';
  for (const key of Object.keys(o)) if (pick([0, 0, 0, 0, 0, 1])) delete o[key];
  return o;
}

function acceptNear(pick: Pick): unknown {
  if (pick([0, 0, 0, 0, 1]) === 1) return pick(odd);
  const o: Record<string, unknown> = {
    status: pick<unknown>([99, 100, 200, 204, 599, 600, 200.5, '200', null, undefined, Number.NaN]),
    headers: headersNear(pick),
    protocol: stringNear(pick, 256),
  };
  if (pick([0, 1])) o.extra = 'stripped by zod';
  for (const key of Object.keys(o)) if (pick([0, 0, 1])) delete o[key];
  return o;
}

function agree<T>(quick: (v: unknown) => T | undefined, schema: { safeParse(v: unknown): { success: boolean; data?: unknown } }, value: unknown): 'fast' | 'zod' {
  const fast = quick(value);
  if (fast === undefined) return 'zod';
  const judged = schema.safeParse(value);
  if (!judged.success) throw new Error(`the quick check accepted what zod refuses: ${JSON.stringify(value)?.slice(0, 300)}`);
  expect(fast as unknown).toEqual(judged.data);
  return 'fast';
}

describe('quick payload checks', () => {
  it('accept the usual OPEN and ACCEPT without zod, with zod\'s result', () => {
    const open = { kind: 'http', tunnel: 't1', method: 'GET', path: '/a?b', headers: [['accept', '*/*']] };
    expect(quickStreamOpen(open)).toEqual(StreamOpenSchema.parse(open));
    expect(quickStreamOpen({ kind: 'tcp', tunnel: 't', extra: 1 })).toEqual({ kind: 'tcp', tunnel: 't' });
    const accept = { status: 200, headers: [['content-type', 'text/plain']] };
    expect(quickStreamAccept(accept)).toEqual(StreamAcceptSchema.parse(accept));
    expect(quickStreamAccept({})).toEqual({});
  });

  for (const seed of [1, 2, 3]) {
    it(`never disagree with zod on 3,000 random payloads (seed ${seed})`, () => {
      const pick = pickerOf(seed);
      const used = { open: { fast: 0, zod: 0 }, accept: { fast: 0, zod: 0 } };
      for (let i = 0; i < 3_000; i++) {
        // Through JSON, as payloads arrive (undefined fields vanish, NaN becomes null).
        used.open[agree(quickStreamOpen, StreamOpenSchema, JSON.parse(JSON.stringify(openNear(pick)) ?? 'null'))]++;
        used.accept[agree(quickStreamAccept, StreamAcceptSchema, JSON.parse(JSON.stringify(acceptNear(pick)) ?? 'null'))]++;
      }
      // Both paths were exercised, or the comparison proved nothing.
      expect(Math.min(used.open.fast, used.open.zod, used.accept.fast, used.accept.zod)).toBeGreaterThan(100);
    });
  }
});
