// A `hid` stream: one viewer's live input (the dashboard's KVM tab, through the hub's WebSocket).
// Newline-delimited JSON both ways: HidInput lines in (the hub checked them; they are checked
// again here, and a bad line is answered with an error line, never a crash), HidOutput lines out.
// The stream is a holder: every key and button it pressed is released when it ends, however it
// ends (closed, reset, or the socket gone), and the text it started typing is cancelled. Mouse
// moves are not awaited (the service coalesces them, the latest position wins); keys are, in order.
import { modifierBits } from '../../shared/hid/keycodes.ts';
import { HidInputSchema, type HidInput, type HidOutput } from '../../shared/api/kvm.ts';
import type { MuxStream } from '../../shared/protocol/mux.ts';
import type { TypeJob } from '../../shared/protocol/kvm.ts';
import type { Logger } from '../log.ts';
import { RpcFailure } from '../rpc.ts';
import { Holder, type KvmService } from './service.ts';

/** The longest input line (a type message of MAX_TYPE_TEXT characters, JSON-escaped, fits). */
export const MAX_HID_LINE = 1 << 20;
/** How often a type job's progress goes out while it types (and once more when it ends). */
export const TYPE_PROGRESS_MS = 100;
/** Error lines waiting to be sent; more are dropped (a reader that does not read learns nothing more). */
const MAX_PENDING_ERRORS = 32;

const encoder = new TextEncoder();

function errorLine(e: unknown): HidOutput {
  if (e instanceof RpcFailure) return { t: 'error', code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) };
  return { t: 'error', code: 'AGENT_ERROR', message: e instanceof Error ? e.message : String(e) };
}

/**
 * The lines going out, in order, with the latest state and the latest progress of each job
 * replacing one still waiting, so a slow reader gets fresh news rather than a backlog.
 */
class Output {
  private readonly queue: { key: string | null; line: HidOutput }[] = [];
  private errors = 0;
  private pumping: Promise<void> | null = null;
  private ended = false;
  private readonly writer: WritableStreamDefaultWriter<Uint8Array>;

  constructor(stream: MuxStream) {
    this.writer = stream.writable.getWriter();
    this.writer.closed.catch(() => (this.ended = true));
  }

  send(line: HidOutput): void {
    if (this.ended) return;
    const key = line.t === 'state' ? 'state' : line.t === 'type' ? `type:${line.job.id}` : null;
    const waiting = key && this.queue.find((q) => q.key === key);
    if (waiting) waiting.line = line;
    else if (line.t === 'error' && this.errors >= MAX_PENDING_ERRORS) return;
    else {
      if (line.t === 'error') this.errors++;
      this.queue.push({ key, line });
    }
    this.pumping ??= this.pump();
  }

  private async pump(): Promise<void> {
    try {
      for (let item = this.queue.shift(); item && !this.ended; item = this.queue.shift()) {
        if (item.line.t === 'error') this.errors--;
        await this.writer.write(encoder.encode(JSON.stringify(item.line) + '\n'));
      }
    } catch {
      this.ended = true;
    } finally {
      this.pumping = null;
    }
  }

  /** Sends what is waiting, then ends this direction. */
  async end(): Promise<void> {
    while (this.pumping) await this.pumping;
    this.ended = true;
    await this.writer.close().catch(() => {});
  }
}

export function serveHid(stream: MuxStream, service: KvmService, log: Logger): void {
  const holder = new Holder('hid stream');
  const out = new Output(stream);
  const state = () => out.send({ t: 'state', ...service.hidState() });
  const unsubscribe = service.onChange(state);
  const tickers = new Set<ReturnType<typeof setInterval>>();
  let ended = false;
  state();

  const follow = (job: TypeJob) => {
    out.send({ t: 'type', job });
    let last = job.typed;
    const ticker = setInterval(() => {
      const now = service.typingBy(holder);
      if (now && now.id === job.id && now.typed !== last) {
        last = now.typed;
        out.send({ t: 'type', job: now });
      }
    }, TYPE_PROGRESS_MS);
    tickers.add(ticker);
    void service.typeFinished(job.id).then(() => {
      clearInterval(ticker);
      tickers.delete(ticker);
      try {
        out.send({ t: 'type', job: service.typeStatus(job.id) });
      } catch {
        // forgotten already: nothing to say
      }
    });
  };

  const handle = async (message: HidInput): Promise<void> => {
    switch (message.t) {
      case 'down':
        await service.keyDown(holder, message.code);
        return;
      case 'up':
        await service.keyUp(holder, message.code);
        return;
      case 'keystroke':
        await service.keystroke(message.code, modifierBits(message.modifiers));
        return;
      case 'mouse':
        // Not awaited: the next move may replace this one while the gadget is busy.
        service.mouse(holder, message).catch((e) => out.send(errorLine(e)));
        return;
      case 'release':
        await service.releaseHolder(holder);
        return;
      case 'type': {
        const job = await service.startType(holder, message);
        // The viewer went while the text was being checked: nobody is there to watch it typed.
        if (ended) await service.cancelType(job.id);
        else follow(job);
        return;
      }
      case 'cancel': {
        const job = service.typingBy(holder);
        if (!job) throw new RpcFailure('NO_TYPE_JOB', 'this viewer is not typing a text');
        await service.cancelType(job.id);
        return;
      }
    }
  };

  const line = async (text: string, n: number): Promise<void> => {
    if (!text.trim()) return;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return out.send({ t: 'error', code: 'BAD_MESSAGE', message: 'a line is not JSON', details: { line: n } });
    }
    const parsed = HidInputSchema.safeParse(json);
    if (!parsed.success) {
      const issues = parsed.error.issues.slice(0, 8).map((i) => ({ path: i.path.join('.'), message: i.message }));
      return out.send({ t: 'error', code: 'BAD_MESSAGE', message: 'not a live input message', details: { line: n, issues } });
    }
    try {
      await handle(parsed.data);
    } catch (e) {
      out.send(errorLine(e));
    }
  };

  const tooLong = (n: number) => out.send({ t: 'error', code: 'LINE_TOO_LONG', message: `a line is longer than ${MAX_HID_LINE} characters; it is skipped`, details: { line: n } });

  const read = async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    let skipping = false;
    let n = 0;
    for await (const chunk of stream.readable) {
      buffer += decoder.decode(chunk, { stream: true });
      let start = 0;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n', start)) {
        // Lines read after the stream ended would hold keys nobody can release: stop at once.
        if (ended) return;
        const text = buffer.slice(start, nl);
        start = nl + 1;
        n++;
        if (skipping) skipping = false;
        else if (text.length > MAX_HID_LINE) tooLong(n);
        else await line(text, n);
      }
      buffer = buffer.slice(start);
      if (buffer.length > MAX_HID_LINE) {
        if (!skipping) tooLong(n + 1);
        skipping = true;
        buffer = '';
      }
    }
    if (buffer.trim() && !skipping && !ended) await line(buffer, n + 1);
  };

  const end = async (why: string) => {
    if (ended) return;
    ended = true;
    unsubscribe();
    for (const t of tickers) clearInterval(t);
    const job = service.typingBy(holder);
    if (job) await service.cancelType(job.id).catch(() => {});
    await service.releaseHolder(holder).catch((e) => log.warn('could not release what a live input stream held', { error: String(e) }));
    log.debug('live input stream ended', { why });
    await out.end();
  };

  stream.onReset((e) => void end(`reset: ${e.code}`));
  read().then(
    () => end('closed'),
    (e) => end(`read failed: ${String(e)}`),
  );
}
