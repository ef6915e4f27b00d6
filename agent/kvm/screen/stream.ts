// A `screen` stream: one screenshot, or the live MJPEG view.
//
// FOUNDATION STUB: answers 503. The screen work writes the snapshot and the live view (a frame-rate
// bound, frames dropped when the reader is not ready), keeping serveScreen.
import type { MuxStream } from '../../../shared/protocol/mux.ts';
import type { ScreenOpen } from '../../../shared/protocol/kvm.ts';
import type { ScreenSource } from './types.ts';

export function serveScreen(stream: MuxStream, _open: ScreenOpen, _screen: ScreenSource): void {
  const body = new TextEncoder().encode(JSON.stringify({ error: 'there is no screen', code: 'NO_SCREEN', details: {} }));
  stream.accept({ status: 503, headers: [['content-type', 'application/json']] }, { body, fin: true });
}
