// Joins the small chunks a request body arrives in (often a few KiB each) into frames of up to
// MAX_DATA_CHUNK, without waiting for more than what is already there: every frame is a
// WebSocket message with a fixed cost in the hub, so an upload in 16 KiB pieces would be
// bound by the message rate rather than by bytes.
import { MAX_DATA_CHUNK } from '../../../shared/protocol/flow.ts';
import { joinBytes } from '../../../shared/bytes.ts';

const TICK = Symbol('tick');

/** Whichever comes first: the pending read, or the next turn of the event loop (timer cleared). */
async function readOrTick<T>(pending: Promise<T>): Promise<T | typeof TICK> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([pending, new Promise<typeof TICK>((resolve) => (timer = setTimeout(() => resolve(TICK), 0)))]);
  } finally {
    clearTimeout(timer);
  }
}

export async function* coalesce(source: ReadableStream<Uint8Array>, max = MAX_DATA_CHUNK): AsyncGenerator<Uint8Array> {
  const reader = source.getReader();
  let pending: Promise<ReadableStreamReadResult<Uint8Array>> | null = null;
  let parts: Uint8Array[] = [];
  let size = 0;
  const flush = () => {
    const out = joinBytes(parts, size);
    parts = [];
    size = 0;
    return out;
  };
  let finished = false;
  try {
    for (;;) {
      pending ??= reader.read();
      // With bytes in hand, wait only for what is already on its way; otherwise wait for input.
      const next = size === 0 ? await pending : await readOrTick(pending);
      if (next === TICK) {
        yield flush();
        continue;
      }
      pending = null;
      if (next.done) {
        finished = true;
        if (size) yield flush();
        return;
      }
      parts.push(next.value);
      size += next.value.byteLength;
      if (size >= max) yield flush();
    }
  } finally {
    if (!finished) await reader.cancel().catch(() => {});
  }
}
