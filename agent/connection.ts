// The agent's one WebSocket to the relay: dials out (works behind NAT), says hello, keeps a
// heartbeat, and hands everything else to the capability modules it was given (capability.ts):
// RPCs by method, hub messages by `t`, streams the hub opens by their kind; it knows none of them
// by name. It reconnects forever with capped exponential backoff plus jitter. While
// the relay is unreachable it probes /health every second, so it is back as soon as the relay is.
// When the relay says another agent took over this device's connection (4000), it waits minutes.
import type { JWK } from 'jose';
import { AGENT_CONNECT_PATH, RECONNECT_CAP_MS } from '../shared/constants.ts';
import { CloseCode, ErrorCode, readErrorBody, ResetCode } from '../shared/codes.ts';
import { HEARTBEAT_PING, parseMessage } from '../shared/protocol/envelope.ts';
import { HubMessageSchema, type AgentMessage } from '../shared/protocol/messages.ts';
import { StreamMux } from '../shared/protocol/mux.ts';
import { FRAME_BATCH_FEATURE, FrameBatcher } from '../shared/protocol/batch.ts';
import { PROTOCOL_VERSION, AGENT_VERSION } from '../shared/version.ts';
import type { DeviceFacts } from '../shared/api/device-info.ts';
import { backoffDelay, REPLACED_BACKOFF, REPLACED_QUIET_MS } from './backoff.ts';
import { registry, type AgentCapability, type CapabilityRegistry } from './capability.ts';
import { signConnectToken } from './identity.ts';
import type { Logger } from './log.ts';
import { dispatchRpc } from './rpc.ts';

export interface ConnectionOptions {
  relay: string;
  deviceId: string;
  privateJwk: JWK;
  /** What this agent serves (agent/capabilities.ts); hello's capability list is derived from them. */
  modules: readonly AgentCapability[];
  facts: () => Promise<DeviceFacts | undefined>;
  log: Logger;
  maxBackoffMs?: number;
  /** Backoff after the relay replaced this connection with another (close 4000); REPLACED_BACKOFF by default. */
  replacedBackoff?: { baseMs: number; capMs: number };
  /** Called whenever the connection state changes (for tests and status output). */
  onState?: (state: ConnectionState) => void;
}

export type ConnectionState = 'connecting' | 'online' | 'offline' | 'waiting-approval' | 'refused' | 'stopped';

/** How one connection ended: whether the hub acknowledged our hello, the close code, how long it was up. */
interface Ending {
  acked: boolean;
  code: number | null;
  upMs: number;
}

type Diagnosis = { kind: 'unreachable' } | { kind: 'pending' } | { kind: 'refused'; code: string; status: number } | { kind: 'ok' };

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

export class AgentConnection {
  private stopper = new AbortController();
  private ws: WebSocket | null = null;
  private loop: Promise<void> | null = null;
  private readonly capabilities: CapabilityRegistry;

  constructor(private readonly opts: ConnectionOptions) {
    this.capabilities = registry(opts.modules);
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    try {
      this.ws?.close(1000, 'agent stopping');
    } catch {
      // already closed
    }
    await this.loop;
    this.opts.onState?.('stopped');
  }

  private get stopped() {
    return this.stopper.signal.aborted;
  }

  private async run(): Promise<void> {
    const { log } = this.opts;
    let attempt = 0;
    /** Replacements in a row (each after less than REPLACED_QUIET_MS of connection). */
    let replaced = 0;
    let lastDiagnosis = '';
    while (!this.stopped) {
      this.opts.onState?.('connecting');
      const ending = await this.connectOnce().catch((e): Ending => {
        log.warn('connection attempt failed', { error: String(e) });
        return { acked: false, code: null, upMs: 0 };
      });
      const { acked } = ending;
      if (this.stopped) break;
      this.opts.onState?.('offline');
      if (acked) attempt = 0;
      if (ending.upMs >= REPLACED_QUIET_MS) replaced = 0;
      if (ending.code === CloseCode.REPLACED) {
        const { baseMs, capMs } = this.opts.replacedBackoff ?? REPLACED_BACKOFF;
        const delay = backoffDelay(replaced++, capMs, Math.random, baseMs);
        log.warn('another agent with this device identity took over the connection (is a copy of this config running elsewhere?); waiting before reconnecting', { in_ms: delay, times: replaced });
        await sleep(delay, this.stopper.signal);
        continue;
      }
      let delay = backoffDelay(attempt++, this.opts.maxBackoffMs ?? RECONNECT_CAP_MS);
      const why = acked ? ({ kind: 'ok' } as Diagnosis) : await this.diagnose();
      const label = why.kind === 'refused' ? `refused:${why.code}` : why.kind;
      if (label !== lastDiagnosis) {
        if (why.kind === 'pending') log.info('device is waiting for approval on the relay');
        else if (why.kind === 'refused') log.error('relay refused this device', { status: why.status, code: why.code });
        else if (why.kind === 'unreachable') log.warn('relay unreachable; retrying', { relay: this.opts.relay });
        lastDiagnosis = label;
      }
      if (why.kind === 'pending') {
        this.opts.onState?.('waiting-approval');
        delay = Math.min(delay, 5_000);
      } else if (why.kind === 'refused') {
        this.opts.onState?.('refused');
      }
      log.debug('reconnecting', { in_ms: delay, attempt });
      if (why.kind === 'unreachable') await this.waitForRelay(delay);
      else await sleep(delay, this.stopper.signal);
    }
  }

  /** Sleeps up to `ms`, but returns as soon as the relay answers /health again. */
  private async waitForRelay(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (!this.stopped && Date.now() < until) {
      await sleep(Math.min(1_000, until - Date.now()), this.stopper.signal);
      try {
        const res = await fetch(new URL('/health', this.opts.relay), { signal: AbortSignal.timeout(1_000) });
        if (res.ok) return;
      } catch {
        // still down
      }
    }
  }

  /** After a failed connect: ask the relay (a plain GET) why, or learn that it is unreachable. */
  private async diagnose(): Promise<Diagnosis> {
    try {
      const token = await signConnectToken(this.opts.deviceId, this.opts.privateJwk);
      const res = await fetch(new URL(AGENT_CONNECT_PATH, this.opts.relay), {
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(5_000),
      });
      if (res.status === 426) return { kind: 'ok' };
      const body = readErrorBody(await res.json().catch(() => null));
      if (res.status === 403 && body?.code === ErrorCode.DEVICE_PENDING) return { kind: 'pending' };
      if (res.status >= 500) return { kind: 'unreachable' };
      return { kind: 'refused', code: body?.code ?? String(res.status), status: res.status };
    } catch {
      return { kind: 'unreachable' };
    }
  }

  /** One connection's life. Resolves when it ends. */
  private async connectOnce(): Promise<Ending> {
    const { log } = this.opts;
    const token = await signConnectToken(this.opts.deviceId, this.opts.privateJwk);
    const url = new URL(AGENT_CONNECT_PATH, this.opts.relay);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const facts = await this.opts.facts().catch(() => undefined);

    return new Promise<Ending>((resolve) => {
      let acked = false;
      let ackedAt = 0;
      let lastRx = Date.now();
      let heartbeat: ReturnType<typeof setInterval> | null = null;
      // Bun's WebSocket takes headers, so the token never appears in a URL or an access log.
      const ws = new WebSocket(url.toString(), { headers: { authorization: `Bearer ${token}` } } as unknown as string[]);
      ws.binaryType = 'arraybuffer';
      this.ws = ws;
      const send = (msg: AgentMessage) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
      };
      // Streams live and die with this socket: after a reconnect both sides start from scratch.
      const capabilities = this.capabilities;
      // Small frames of one turn share a message (see batch.ts) once the relay said it reads them.
      const batcher = new FrameBatcher({
        send: (message) => {
          if (ws.readyState === WebSocket.OPEN) ws.send(message);
        },
        schedule: setImmediate,
        // Bun's WebSocket copies on send, so the mux may reuse its frame buffer.
        copiesOnSend: true,
        onError: (message) => log.warn('stream protocol error', { message }),
      });
      const mux = new StreamMux(
        batcher,
        {
          side: 'agent',
          onOpen: (stream, open) => {
            const serve = capabilities.stream(open);
            if (serve) serve(stream, open);
            else stream.reset(ResetCode.REFUSED, `this agent serves no ${open.kind} streams`);
          },
          onError: (message) => log.warn('stream protocol error', { message }),
        },
      );

      ws.addEventListener('open', () => {
        send({ t: 'hello', protocol: PROTOCOL_VERSION, agent_version: AGENT_VERSION, capabilities: capabilities.names, facts, features: [FRAME_BATCH_FEATURE] });
      });
      ws.addEventListener('message', (ev) => {
        lastRx = Date.now();
        if (typeof ev.data !== 'string') {
          mux.receive(ev.data as ArrayBuffer);
          return;
        }
        const msg = parseMessage(HubMessageSchema, ev.data);
        if (!msg) {
          log.warn('ignoring invalid message from relay', { sample: ev.data.slice(0, 120) });
          return;
        }
        switch (msg.t) {
          case 'hello_ack': {
            acked = true;
            ackedAt = Date.now();
            batcher.enabled = msg.features?.includes(FRAME_BATCH_FEATURE) ?? false;
            log.info('connected to relay', { device_id: msg.device_id, relay_version: msg.relay_version });
            this.opts.onState?.('online');
            capabilities.hello(log, (message) => {
              if (ws.readyState !== WebSocket.OPEN) return false;
              ws.send(JSON.stringify(message));
              return true;
            });
            const every = Math.max(100, msg.heartbeat_ms);
            if (heartbeat) clearInterval(heartbeat);
            heartbeat = setInterval(() => {
              if (Date.now() - lastRx > every * 3) {
                log.warn('relay stopped answering heartbeats; reconnecting');
                ws.close(CloseCode.HEARTBEAT_TIMEOUT, 'heartbeat timeout');
                return;
              }
              if (ws.readyState === WebSocket.OPEN) ws.send(HEARTBEAT_PING);
            }, every);
            return;
          }
          case 'req':
            void dispatchRpc(capabilities.rpc, msg.method, msg.params).then((reply) =>
              send(reply.ok ? { t: 'res', id: msg.id, ok: true, result: reply.result } : { t: 'res', id: msg.id, ok: false, error: reply.error }),
            );
            return;
          case 'ping':
            send({ t: 'pong' });
            return;
          case 'bye':
            log.warn('relay is closing the connection', { code: msg.code, reason: msg.reason });
            return;
          case 'pong':
            return;
          default: {
            const handle = capabilities.message(msg);
            if (handle) handle(msg);
            else log.debug('no capability reads this message', { t: msg.t });
          }
        }
      });
      let finished = false;
      const finish = (code: number | null) => {
        if (finished) return;
        finished = true;
        if (heartbeat) clearInterval(heartbeat);
        mux.resetAll(ResetCode.SOCKET_CLOSED, 'the relay connection closed');
        capabilities.gone(log);
        if (this.ws === ws) this.ws = null;
        resolve({ acked, code, upMs: acked ? Date.now() - ackedAt : 0 });
      };
      ws.addEventListener('close', (ev) => {
        if (acked) log.info('disconnected from relay', { code: ev.code, reason: ev.reason });
        finish(ev.code);
      });
      ws.addEventListener('error', () => {
        // 'close' normally follows; make sure a failed dial still ends this attempt.
        setTimeout(() => {
          if (ws.readyState === WebSocket.CLOSED) finish(null);
        }, 250);
      });
    });
  }
}
