// One viewer's connection to a terminal session: the WebSocket to …/terminal/socket, opened with a
// single-use token, kept up by itself. The session lives on the agent, so a dropped socket (the
// network, a relay restart) is not the end: the page dials again with the latest resume token the
// hub gave it (or, signed in, a fresh link for the same session), and the agent replays the screen.
// Only an `exit`, a refusal the relay names, or stop() ends it. A link token is never offered twice
// (it is single-use): a first socket that never opened means the link was refused — a browser
// cannot read the upgrade's 401, so that is all the page can know.
//
// Flow control: output is acknowledged ({t:"ack", n}) only once the screen has taken it (xterm's
// write callback), in batches, so a busy tab stops the relay at its window instead of growing.
// Framework-free, and the socket is injectable, so the logic is tested without a browser.
import type { TerminalClientMessage, TerminalServerMessage } from './protocol.ts';
import { ACK_BYTES, ACK_DELAY_MS, TERMINAL_SUBPROTOCOL, TERMINAL_TOKEN_PROTOCOL_PREFIX } from './protocol.ts';

export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'ended' | 'refused';

/** The part of a browser WebSocket this uses (a test hands in its own). */
export type SocketLike = Pick<WebSocket, 'binaryType' | 'readyState' | 'send' | 'close' | 'onopen' | 'onmessage' | 'onclose' | 'onerror'>;
const OPEN = 1;

export interface ConnectionOptions {
  /** Opens the socket for this size, offering these subprotocols. */
  open: (query: { cols: number; rows: number }, protocols: string[]) => SocketLike;
  /** The link's token: used once, for the first socket only. */
  token: string;
  /** The screen's size now (sent with every dial). */
  size: () => { cols: number; rows: number };
  /** Called with every state change; `why` says how it ended (for ended and refused). */
  onState: (state: ConnectionState, why?: string) => void;
  /** Every control message but `resume` (which is this module's business). */
  onMessage: (m: Exclude<TerminalServerMessage, { t: 'resume' }>) => void;
  /** Terminal bytes to draw; call `written()` once the screen has taken them. */
  onOutput: (bytes: Uint8Array, written: () => void) => void;
  /**
   * A fresh link token for `session`, for when a resume token is refused (a signed-in page can
   * ask the API for one); null or a throw: none to be had now, try later; `{ended}`: the session
   * cannot be had any more (it is gone), and why.
   */
  relink?: (session: string) => Promise<string | { ended: string } | null>;
  /** How long to wait before the `attempt`-th redial in a row. */
  delay: (attempt: number) => number;
  now?: () => number;
}

export class TerminalConnection {
  private socket: SocketLike | null = null;
  /** Bumped per socket, so a late write callback of an old socket is not acked on a new one. */
  private generation = 0;
  private state: ConnectionState = 'connecting';
  private stopped = false;
  private linkToken: string | null;
  private resume: { token: string; expiresAt: number } | null = null;
  /** The session this viewer attached to (for relink), once attached. */
  private session: string | null = null;
  private everAttached = false;
  private attempt = 0;
  private redial: ReturnType<typeof setTimeout> | undefined;
  private unacked = 0;
  private ackTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly o: ConnectionOptions) {
    this.linkToken = o.token;
  }

  get connection(): ConnectionState {
    return this.state;
  }

  start(): void {
    this.dial(this.linkToken!, 'link');
    this.linkToken = null;
  }

  /** Ends this viewer's connection (the session keeps running on the agent). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.redial);
    clearTimeout(this.ackTimer);
    const s = this.socket;
    this.socket = null;
    if (s) s.close(1000);
  }

  /** Dials at once if waiting to redial (the network came back). */
  nudge(): void {
    if (this.state === 'reconnecting' && !this.socket && !this.stopped) {
      clearTimeout(this.redial);
      void this.again();
    }
  }

  /** Sends keystrokes; false (nothing queued) while not live: a key from before a drop is stale. */
  sendInput(bytes: Uint8Array): boolean {
    const s = this.socket;
    if (this.state !== 'live' || !s || s.readyState !== OPEN) return false;
    s.send(bytes);
    return true;
  }

  /** Sends one control message; false while not live. */
  send(m: TerminalClientMessage): boolean {
    const s = this.socket;
    if (this.state !== 'live' || !s || s.readyState !== OPEN) return false;
    s.send(JSON.stringify(m));
    return true;
  }

  private setState(s: ConnectionState, why?: string) {
    this.state = s;
    this.o.onState(s, why);
  }

  private end(state: 'ended' | 'refused', why: string) {
    this.stopped = true;
    clearTimeout(this.redial);
    clearTimeout(this.ackTimer);
    this.setState(state, why);
    const s = this.socket;
    this.socket = null;
    s?.close(1000);
  }

  private dial(token: string, kind: 'link' | 'again') {
    const gen = ++this.generation;
    this.unacked = 0;
    clearTimeout(this.ackTimer);
    this.setState(this.everAttached || this.attempt > 0 ? 'reconnecting' : 'connecting');
    const s = this.o.open(this.o.size(), [TERMINAL_SUBPROTOCOL, TERMINAL_TOKEN_PROTOCOL_PREFIX + token]);
    s.binaryType = 'arraybuffer';
    this.socket = s;
    let opened = false;
    let attached = false;
    let refusal: { code: string; message: string } | null = null;
    s.onopen = () => {
      opened = true;
      // A socket that opened spent its token, or (a fresh link) made the older resume token
      // stale: the hub sends this attachment's own.
      this.resume = null;
    };
    s.onmessage = (e) => {
      if (this.socket !== s) return;
      if (typeof e.data !== 'string') {
        const bytes = new Uint8Array(e.data as ArrayBuffer);
        this.o.onOutput(bytes, () => this.written(gen, bytes.byteLength));
        return;
      }
      let m: TerminalServerMessage;
      try {
        m = JSON.parse(e.data) as TerminalServerMessage;
      } catch {
        return;
      }
      if (!m || typeof m !== 'object' || typeof m.t !== 'string') return;
      if (m.t === 'resume') {
        this.resume = { token: m.token, expiresAt: m.expires_at };
        return;
      }
      if (m.t === 'attached') {
        attached = true;
        this.everAttached = true;
        this.attempt = 0;
        this.session = m.session.id;
        this.setState('live');
      } else if (m.t === 'error' && !attached) refusal = { code: m.code, message: m.message };
      this.o.onMessage(m);
      if (m.t === 'exit') this.end('ended', '');
    };
    s.onerror = () => {};
    s.onclose = () => {
      if (this.socket !== s) return;
      this.socket = null;
      if (this.stopped) return;
      // Refused by name before attaching (the session is gone, the agent is full): final.
      if (refusal) return this.end('ended', `${refusal.message} (${refusal.code})`);
      if (!opened && kind === 'link' && !this.everAttached)
        return this.end('refused', 'This terminal link has expired or was already used — ask for a new one.');
      this.setState('reconnecting');
      this.redial = setTimeout(() => void this.again(), this.o.delay(this.attempt++));
    };
  }

  /**
   * Dials again: with the resume token while it is valid (a socket that opens gets a new one; one
   * that never opened may only have met a network that was down), and, when the page can get a
   * fresh link for the session, with that once the resume token failed twice or ran out.
   */
  private async again() {
    if (this.stopped) return;
    const r = this.resume;
    const valid = !!r && r.expiresAt > (this.o.now ?? Date.now)();
    const canRelink = !!this.o.relink && !!this.session;
    if (valid && (!canRelink || this.attempt <= 2)) return this.dial(r!.token, 'again');
    if (!canRelink)
      return this.end('ended', this.everAttached ? 'The connection was lost and the session can no longer be re-attached from this page.' : 'The terminal could not be reached.');
    let token: string | { ended: string } | null = null;
    try {
      token = await this.o.relink!(this.session!);
    } catch {
      token = null;
    }
    if (this.stopped) return;
    if (typeof token === 'string') return this.dial(token, 'again');
    if (token) return this.end('ended', token.ended);
    if (valid) return this.dial(r!.token, 'again');
    this.setState('reconnecting');
    this.redial = setTimeout(() => void this.again(), this.o.delay(this.attempt++));
  }

  private written(gen: number, n: number) {
    if (gen !== this.generation || this.stopped) return;
    this.unacked += n;
    if (this.unacked >= ACK_BYTES) this.flushAck();
    else if (this.ackTimer === undefined) this.ackTimer = setTimeout(() => this.flushAck(), ACK_DELAY_MS);
  }

  private flushAck() {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    const s = this.socket;
    if (!this.unacked || !s || s.readyState !== OPEN) return;
    s.send(JSON.stringify({ t: 'ack', n: this.unacked } satisfies TerminalClientMessage));
    this.unacked = 0;
  }
}
