// The agent's KVM seams: the two HID gadgets it writes reports to (the real /dev/hidg0 and
// /dev/hidg1, or files under --hid-dir) and what it tells about them. The capability (index.ts)
// holds the key and button state and knows nothing of files; gadget.ts knows nothing of keys.

/** Why a report did not reach the host: the gadget is not there, the cable is out, or the host stopped reading. */
export type HidErrorCode = 'HID_MISSING' | 'HID_UNPLUGGED' | 'HID_TIMEOUT' | 'HID_ERROR';

export class HidError extends Error {
  constructor(
    readonly code: HidErrorCode,
    message: string,
    readonly path: string,
  ) {
    super(message);
    this.name = 'HidError';
  }
}

/** One gadget (a character device, or a file that records what a host would receive). */
export interface HidSink {
  readonly path: string;
  /** Writes one whole report within the deadline, or rejects with HidError; never reports success falsely. */
  write(report: Uint8Array): Promise<void>;
  /** What the last write (or the last look at the path) found. */
  state(): { state: 'ok' | 'missing' | 'unplugged' | 'busy' | 'error' | 'unknown'; message?: string };
  close(): void;
}

export interface HidGadgets {
  keyboard: HidSink;
  mouse: HidSink;
  /** The keyboard's LED output reports as the host sends them (one byte each); returns an unsubscribe. */
  onLeds(listener: (byte: number) => void): () => void;
  close(): void;
}
