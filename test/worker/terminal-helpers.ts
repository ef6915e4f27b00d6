// Test helpers for the terminal: a fake agent that answers the hub's `terminal` streams and RPCs the
// way the real agent does (shared/protocol/terminal.ts): it ACCEPTs (or refuses a session it does
// not keep with 404 and an error body), sends `attached` and the screen, echoes a typist's bytes
// back as output, tells a read-only viewer so, hands typing over, answers resizes, lists and closes
// sessions (sending `exit`); and a viewer: the terminal socket opened with a token, its messages.
//
// Every answer of the fake agent goes out in ONE write: in this harness an agent's messages can
// reach the hub out of order (see fakeTunnelAgent), and one record split across two messages that
// swapped would be garbage. The first write (`attached` and the screen) is padded to exactly
// 64 KiB, and a flood is made of 64 KiB records, so the stream's credit stays a multiple of 64 KiB,
// every DATA frame of a flood is whole records, and frames that swap still make the same bytes.
import { SELF } from 'cloudflare:test';
import { BASE } from './helpers.ts';
import { kvmDevice } from './kvm-helpers.ts';
import { waitFor } from './device-helpers.ts';
import { errorBody } from '../../shared/codes.ts';
import type { MuxStream } from '../../shared/protocol/mux.ts';
import { encodeWsRecord, WsRecordDecoder, WsRecordKind } from '../../shared/protocol/ws-records.ts';
import { TerminalOpenSchema, type TerminalAgentControl, type TerminalSession, type TerminalViewer } from '../../shared/protocol/terminal.ts';
import { TERMINAL_SUBPROTOCOL, TERMINAL_TOKEN_PROTOCOL_PREFIX } from '../../shared/api/terminal.ts';

/** What every write of a flood is: one BINARY record of exactly 64 KiB with its header. */
export const FLOOD_RECORD = 64 * 1024;
const encoder = new TextEncoder();

interface AgentViewer {
  viewer: TerminalViewer;
  stream: MuxStream;
  write(bytes: Uint8Array): Promise<void>;
}

interface AgentSession {
  info: TerminalSession;
  viewers: Map<string, AgentViewer>;
}

export interface FakeTerminalAgent {
  sessions: Map<string, AgentSession>;
  /** Every OPEN the hub sent, in order. */
  opens: ReturnType<typeof TerminalOpenSchema.parse>[];
  /** Bytes and control messages each viewer sent, by viewer id. */
  input: Map<string, { bytes: number[]; controls: Record<string, unknown>[] }>;
  /** Set: streams opened from now on are not read (the device does not take input). */
  deaf: boolean;
  /** Writes `total` bytes of output to a viewer in FLOOD_RECORD records, as fast as the credit allows; `written` counts them. */
  flood(viewerId: string, total: number): { written: () => number; done: Promise<void> };
  /** Writes one raw record to a viewer (a control message of the test's own). */
  send(viewerId: string, kind: 'text' | 'binary', payload: string | Uint8Array): Promise<void>;
  ws: WebSocket;
}

const text = (msg: TerminalAgentControl) => encodeWsRecord(WsRecordKind.TEXT, JSON.stringify(msg));
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.byteLength));
  return out;
};

function listed(s: AgentSession, now = Date.now()): TerminalSession {
  const viewers = [...s.viewers.values()].map((v) => ({ id: v.viewer.id, user_id: v.viewer.user_id, name: v.viewer.name, typing: s.info.typist?.id === v.viewer.id, may_share: v.viewer.may_share, attached_at: now }));
  return { ...s.info, viewers, typist: viewers.find((v) => v.typing) ?? null, idle_since: viewers.length ? null : now, closes_at: null };
}

/** An approved device in TEST_TEAM whose fake agent offers the terminal. */
export async function terminalDevice(adminKey: string) {
  const agent: FakeTerminalAgent = {
    sessions: new Map(),
    opens: [],
    input: new Map(),
    deaf: false,
    flood: (viewerId, total) => {
      const v = find(viewerId);
      const record = encodeWsRecord(WsRecordKind.BINARY, new Uint8Array(FLOOD_RECORD - 5).fill(0x41));
      let written = 0;
      const done = (async () => {
        while (written < total) {
          await v.write(record);
          written += record.byteLength - 5;
        }
      })().catch(() => {});
      return { written: () => written, done };
    },
    send: (viewerId, kind, payload) => find(viewerId).write(encodeWsRecord(kind === 'text' ? WsRecordKind.TEXT : WsRecordKind.BINARY, payload)),
    ws: null as unknown as WebSocket,
  };
  const find = (viewerId: string): AgentViewer => {
    for (const s of agent.sessions.values()) {
      const v = s.viewers.get(viewerId);
      if (v) return v;
    }
    throw new Error(`no viewer ${viewerId}`);
  };

  const d = await kvmDevice(adminKey, {
    capabilities: ['tunnels', 'terminal_list', 'terminal_close'],
    rpc: (method, params) => {
      if (method === 'terminal_list') return { result: { sessions: [...agent.sessions.values()].map((s) => listed(s)) } };
      if (method !== 'terminal_close') return undefined;
      const s = agent.sessions.get(String(params.session));
      if (!s) return { error: { code: 'SESSION_NOT_FOUND', message: `no terminal session ${String(params.session)}` } };
      const info = listed(s);
      agent.sessions.delete(info.id);
      for (const v of s.viewers.values()) void v.write(text({ t: 'exit', code: null, signal: 'SIGHUP', reason: 'closed' })).catch(() => {});
      return { result: { session: info } };
    },
    onOpen: (stream, raw) => {
      const open = TerminalOpenSchema.parse(raw);
      agent.opens.push(open);
      let s = open.session ? agent.sessions.get(open.session) : undefined;
      if (open.session && !s) {
        const body = encoder.encode(JSON.stringify(errorBody('SESSION_NOT_FOUND', `no terminal session ${open.session}`)));
        return stream.accept({ status: 404, headers: [['content-type', 'application/json']] }, { body, fin: true });
      }
      if (!s) {
        const id = `s${crypto.randomUUID().replace(/-/g, '').slice(0, 15)}`;
        const owner = { user_id: open.viewer.user_id, name: open.viewer.name };
        s = {
          info: { id, owner, typist: null, viewers: [], command: ['/bin/bash', '-l'], user: 'pi', pid: 4242, cols: open.cols, rows: open.rows, created_at: Date.now(), idle_since: null, closes_at: null },
          viewers: new Map(),
        };
        agent.sessions.set(id, s);
      }
      const session = s;
      stream.accept({ status: 200 });
      const writer = stream.writable.getWriter();
      const me: AgentViewer = { viewer: open.viewer, stream, write: (b) => writer.write(b) };
      session.viewers.set(open.viewer.id, me);
      // The owner types when nobody does.
      if (!session.info.typist && open.viewer.user_id === session.info.owner.user_id) session.info.typist = { id: open.viewer.id, user_id: open.viewer.user_id, name: open.viewer.name, typing: true, may_share: open.viewer.may_share, attached_at: Date.now() };
      const typing = () => session.info.typist?.id === open.viewer.id;
      const attached = text({ t: 'attached', session: listed(session), viewer: open.viewer.id, typing: typing() });
      const screen = encodeWsRecord(WsRecordKind.BINARY, new Uint8Array(FLOOD_RECORD - attached.byteLength - 5).fill(0x20));
      void me.write(concat(attached, screen)).catch(() => {});
      const mine = { bytes: [] as number[], controls: [] as Record<string, unknown>[] };
      agent.input.set(open.viewer.id, mine);
      if (agent.deaf) return;
      void (async () => {
        const decoder = new WsRecordDecoder();
        try {
          for await (const chunk of stream.readable) {
            for (const r of decoder.push(chunk)) {
              if (r.kind === 'binary') {
                mine.bytes.push(...r.data);
                await me.write(typing() ? encodeWsRecord(WsRecordKind.BINARY, r.data) : text({ t: 'error', code: 'READ_ONLY', message: 'you are watching; the typist types' }));
              } else if (r.kind === 'text') {
                const msg = JSON.parse(r.text) as Record<string, unknown>;
                mine.controls.push(msg);
                if (msg.t === 'resize') await me.write(text({ t: 'size', cols: Number(msg.cols) || 80, rows: Number(msg.rows) || 24 }));
                if (msg.t === 'handover') {
                  const to = session.viewers.get(String(msg.to));
                  if (!to) continue;
                  const from = session.info.typist;
                  session.info.typist = { id: to.viewer.id, user_id: to.viewer.user_id, name: to.viewer.name, typing: true, may_share: to.viewer.may_share, attached_at: Date.now() };
                  await me.write(text({ t: 'handed_over', from: from ? { user_id: from.user_id, name: from.name } : null, to: { user_id: to.viewer.user_id, name: to.viewer.name } }));
                }
              }
            }
          }
        } catch {
          // the viewer went: the session lives
        }
        session.viewers.delete(open.viewer.id);
      })();
    },
  });
  agent.ws = d.agent.ws;
  return { deviceId: d.deviceId, privateKey: d.privateKey, agent };
}

export interface TerminalViewerSocket {
  ws: WebSocket;
  protocol: string | null;
  /** Text messages, parsed. */
  messages: Record<string, unknown>[];
  /** Binary messages, in order. */
  output: Uint8Array[];
  outputBytes(): number;
  closed: Promise<{ code: number; reason: string }>;
  send(msg: unknown): void;
  /** The `attached` and `resume` messages and the screen, once all came. */
  ready(): Promise<{ session: string; viewer: string; resume: string }>;
}

/** Sec-WebSocket-Protocol as the page offers it. */
export const protocols = (token: string) => `${TERMINAL_SUBPROTOCOL}, ${TERMINAL_TOKEN_PROTOCOL_PREFIX}${token}`;

export function openSocket(deviceId: string, token: string | null, headers: Record<string, string> = {}, query = '') {
  return SELF.fetch(`${BASE}/api/v1/devices/${encodeURIComponent(deviceId)}/terminal/socket${query}`, {
    headers: { upgrade: 'websocket', ...(token !== null ? { 'sec-websocket-protocol': protocols(token) } : {}), ...headers },
  });
}

/** The token in a terminal URL's fragment. */
export const tokenOf = (url: string) => new URL(url).hash.slice(1);

/** A viewer connected with `token` (it must be let in). */
export async function viewer(deviceId: string, token: string, query = ''): Promise<TerminalViewerSocket> {
  const res = await openSocket(deviceId, token, {}, query);
  if (res.status !== 101) throw new Error(`no upgrade: ${res.status} ${await res.text()}`);
  const ws = res.webSocket!;
  ws.accept();
  ws.binaryType = 'arraybuffer';
  const messages: Record<string, unknown>[] = [];
  const output: Uint8Array[] = [];
  ws.addEventListener('message', (e) => {
    if (typeof e.data === 'string') messages.push(JSON.parse(e.data) as Record<string, unknown>);
    else output.push(new Uint8Array(e.data as ArrayBuffer));
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.addEventListener('close', (e) => resolve({ code: e.code, reason: e.reason })));
  const v: TerminalViewerSocket = {
    ws,
    protocol: res.headers.get('sec-websocket-protocol'),
    messages,
    output,
    outputBytes: () => output.reduce((n, b) => n + b.byteLength, 0),
    closed,
    send: (m) => ws.send(typeof m === 'string' || m instanceof Uint8Array ? m : JSON.stringify(m)),
    ready: async () => {
      await waitFor(() => messages.some((m) => m.t === 'resume') && output.length > 0, 'attached, its resume token and the screen');
      const attached = messages.find((m) => m.t === 'attached') as { session: { id: string }; viewer: string };
      const resume = messages.find((m) => m.t === 'resume') as { token: string };
      return { session: attached.session.id, viewer: attached.viewer, resume: resume.token };
    },
  };
  return v;
}
