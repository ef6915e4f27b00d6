// The logs capability's working parts, loaded only when there is something to follow (or a spool
// left to ship): the spool, the shipper, the journal follower and one follower a file. Every
// follower hands its lines to the spool first, with a mark saying where it is, then saves that
// position (the journal's cursor, a file's offset) — so the position never runs ahead of the spool,
// and a crash between the two is repaired at the next start from the spool's last mark.
import { join } from 'node:path';
import type { LogAck } from '../../shared/protocol/logs.ts';
import type { SendToHub } from '../capability.ts';
import type { Logger } from '../log.ts';
import { FileFollower, type FileState } from './file-tail.ts';
import { JournalFollower, type JournalEntry } from './journal.ts';
import type { LogOptions } from './options.ts';
import { Shipper } from './shipper.ts';
import { Spool } from './spool.ts';
import { readStateFile, writeStateFile } from './state-file.ts';

export interface LogsStats {
  /** journalctl output lines that were not journal entries. */
  malformed: number;
  journalRestarts: number;
  pending: number;
  unacked: number;
  spoolBytes: number;
  /** Dropped lines not yet reported to the hub. */
  dropped: number;
}

type Mark = { journal: string } | { file: { path: string; state: FileState } };

export class LogsService {
  private readonly spool: Spool;
  private readonly shipper: Shipper;
  private readonly journal: JournalFollower | null = null;
  private readonly followers: FileFollower[] = [];
  private cursor: string | null;
  private readonly files: Record<string, FileState>;
  private readonly cursorPath: string;
  private readonly filesPath: string;

  constructor(deps: { log: Logger; options: LogOptions; journalctl: string | null; shipIntervalMs?: number; pollMs?: number }) {
    const { log, options } = deps;
    this.spool = new Spool({ dir: join(options.stateDir, 'spool'), bytes: options.spoolBytes });
    this.shipper = new Shipper(this.spool, deps.shipIntervalMs);
    this.cursorPath = join(options.stateDir, 'journal-cursor.json');
    this.filesPath = join(options.stateDir, 'files.json');
    const savedCursor = readStateFile(this.cursorPath) as { cursor?: unknown } | undefined;
    this.cursor = typeof savedCursor?.cursor === 'string' ? savedCursor.cursor : null;
    const savedFiles = readStateFile(this.filesPath);
    this.files = savedFiles && typeof savedFiles === 'object' ? (savedFiles as Record<string, FileState>) : {};

    // The spool's last record, when a mark, may be a position its follower did not get to save.
    const mark = this.spool.lastMark as Partial<Record<string, unknown>> | undefined;
    if (mark && typeof mark.journal === 'string') this.saveCursor(mark.journal);
    const fileMark = mark?.file as { path?: unknown; state?: FileState } | undefined;
    if (fileMark && typeof fileMark.path === 'string' && fileMark.state) this.saveFile(fileMark.path, fileMark.state);

    if (deps.journalctl) {
      this.journal = new JournalFollower({ log, command: deps.journalctl, cursor: () => this.cursor, onEntries: (entries) => this.journalEntries(entries), onCursorRefused: () => this.saveCursor(null) });
      this.journal.start();
    }
    for (const file of options.files) {
      const follower = new FileFollower({
        log,
        file,
        saved: this.files[file.path],
        pollMs: deps.pollMs,
        onLines: (lines, state, ends) => {
          if (lines.length) this.spooled(lines, (i) => ({ file: { path: file.path, state: { ...state, offset: ends[i]! } } }));
          this.saveFile(file.path, state);
        },
      });
      this.followers.push(follower);
      follower.start();
    }
  }

  online(send: SendToHub): void {
    this.shipper.online(send);
  }

  offline(): void {
    this.shipper.offline();
  }

  ack(ack: LogAck): void {
    this.shipper.ack(ack);
  }

  stats(): LogsStats {
    return {
      malformed: this.journal?.malformed ?? 0,
      journalRestarts: this.journal?.restarts ?? 0,
      pending: this.spool.pendingLines,
      unacked: this.spool.unacked().length,
      spoolBytes: this.spool.bytes,
      dropped: this.spool.dropped,
    };
  }

  stop(): void {
    this.journal?.stop();
    for (const f of this.followers) f.stop();
    this.shipper.close();
    this.spool.close();
  }

  private journalEntries(entries: JournalEntry[]): void {
    this.spooled(
      entries.map((e) => e.line),
      (i) => ({ journal: entries[i]!.cursor }),
    );
    this.saveCursor(entries.at(-1)!.cursor);
  }

  private spooled(lines: Parameters<Spool['append']>[0], markAfter: (index: number) => Mark): void {
    this.spool.append(lines, markAfter);
    this.shipper.spooled();
  }

  private saveCursor(cursor: string | null): void {
    this.cursor = cursor;
    writeStateFile(this.cursorPath, { cursor });
  }

  private saveFile(path: string, state: FileState): void {
    this.files[path] = state;
    writeStateFile(this.filesPath, this.files);
  }
}
