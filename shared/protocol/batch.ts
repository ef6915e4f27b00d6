// Sends the small frames of one event-loop turn as one WebSocket message (a BATCH frame). Each
// message costs the Workers runtime a send, and the receiving Durable Object an event, whatever
// its size: under load, the OPENs of many visitors (and the ACCEPTs that answer them) then share
// one message each way instead of one each. Large frames (bulk DATA) go out at once, after
// whatever is queued, so order is kept and no big payload is copied twice.
import { BATCH_ENTRY_HEADER_BYTES, encodeBatch, FRAME_HEADER_BYTES, MAX_FRAME_PAYLOAD } from './frames.ts';
import type { MuxTransport } from './mux.ts';

/** Hello capability (agent) and hello_ack feature (hub): this side reads BATCH frames. */
export const FRAME_BATCH_FEATURE = 'frame-batch';
/** Frames larger than this are sent on their own. */
export const BATCH_FRAME_MAX = 16 * 1024;
/** A batch is sent once it holds this many bytes, without waiting for the turn to end. */
export const BATCH_MAX_BYTES = 64 * 1024;
/** What one batch may hold: BATCH_MAX_BYTES, and never more than a frame's payload. */
const BATCH_LIMIT = Math.min(BATCH_MAX_BYTES, MAX_FRAME_PAYLOAD - FRAME_HEADER_BYTES);

export interface FrameBatcherOptions {
  /** Sends one binary WebSocket message. */
  send(message: Uint8Array): void;
  /** Runs `flush` once the current turn's work is done (setTimeout 0 in workerd, setImmediate in Bun). */
  schedule(flush: () => void): void;
  /** The underlying send copies the bytes (Bun's WebSocket does); see MuxTransport.copiesOnSend. */
  copiesOnSend?: boolean;
  /** Batch from the start; otherwise frames go out one per message until `enabled` is set. */
  enabled?: boolean;
  /** A send that threw, for logging (the frames of that message are lost with the socket). */
  onError?(message: string): void;
}

export class FrameBatcher implements MuxTransport {
  /** Off until the peer says it reads batches. */
  enabled: boolean;
  readonly copiesOnSend: boolean;
  private queue: Uint8Array[] = [];
  private queued = 0;
  private scheduled = false;

  constructor(private readonly options: FrameBatcherOptions) {
    this.enabled = options.enabled ?? false;
    this.copiesOnSend = options.copiesOnSend ?? false;
  }

  send(frame: Uint8Array): void {
    if (!this.enabled || frame.byteLength > BATCH_FRAME_MAX) {
      if (this.queue.length) this.flush();
      this.options.send(frame);
      return;
    }
    const entry = BATCH_ENTRY_HEADER_BYTES + frame.byteLength;
    if (this.queued + entry > BATCH_LIMIT) this.flush();
    // A caller that reuses its buffer (copiesOnSend) may overwrite it before the flush.
    this.queue.push(this.copiesOnSend ? frame.slice() : frame);
    this.queued += entry;
    if (!this.scheduled) {
      this.scheduled = true;
      this.options.schedule(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  /** Sends what is queued now (one frame as itself, more as a BATCH). */
  flush(): void {
    const queue = this.queue;
    if (!queue.length) return;
    this.queue = [];
    this.queued = 0;
    try {
      this.options.send(queue.length === 1 ? queue[0]! : encodeBatch(queue));
    } catch (e) {
      this.options.onError?.(`transport send failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}
