// The terminal's tokens, kept in the hub's own SQLite: a token is 32 random bytes (base64url),
// stored only as its SHA-256, with the record of who may redeem it for what until when. Each hub
// keeps its own device's tokens, so a token made for another device is simply not here. Redeeming
// is one DELETE … RETURNING, so two requests with one token cannot both get its record (the
// statement is synchronous: nothing runs between its read and its delete).
import { TerminalTokenRecordSchema, type TerminalTokenRecord } from '../hub/contract.ts';

/**
 * Link tokens one hub keeps at once: a link is used within seconds, so more than this many made
 * within a token's TTL is someone minting them in a loop; the oldest go first. Resume tokens are
 * not counted: there is one per attachment (sessions × viewers), each ending with it.
 */
export const MAX_LINK_TOKENS = 256;

const encoder = new TextEncoder();

function base64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function hashOf(token: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(token)));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export class TerminalTokens {
  private ready = false;

  constructor(private readonly storage: DurableObjectStorage) {}

  private get sql(): SqlStorage {
    const sql = this.storage.sql;
    if (!this.ready) {
      sql.exec('CREATE TABLE IF NOT EXISTS terminal_tokens (hash TEXT PRIMARY KEY, purpose TEXT NOT NULL, record TEXT NOT NULL, expires_at INTEGER NOT NULL, made_at INTEGER NOT NULL)');
      this.ready = true;
    }
    return sql;
  }

  /** Keeps the record under a new token's hash and answers the token (the only time it exists). */
  async issue(record: TerminalTokenRecord, now = Date.now()): Promise<string> {
    const checked = TerminalTokenRecordSchema.parse(record);
    const token = base64url(crypto.getRandomValues(new Uint8Array(32)));
    const hash = await hashOf(token);
    this.keep(hash, checked, now);
    return token;
  }

  /** The token's record, deleted as it is read; null when unknown, used or expired. */
  async redeem(token: string, now = Date.now()): Promise<TerminalTokenRecord | null> {
    if (token.length < 20 || token.length > 128) return null;
    const hash = await hashOf(token);
    const row = this.sql.exec<{ record: string; expires_at: number }>('DELETE FROM terminal_tokens WHERE hash = ? RETURNING record, expires_at', hash).toArray()[0];
    if (!row || row.expires_at <= now) return null;
    const parsed = TerminalTokenRecordSchema.safeParse(JSON.parse(row.record));
    return parsed.success ? parsed.data : null;
  }

  /**
   * Puts a redeemed token back, as it was (same expiry): the Worker does so when the terminal
   * could not open for the device's sake (offline, busy), so a page retrying its resume token
   * while the device reboots does not lose it. It is still used at most once.
   */
  async restore(token: string, record: TerminalTokenRecord, now = Date.now()): Promise<void> {
    const checked = TerminalTokenRecordSchema.parse(record);
    if (checked.expires_at <= now) return;
    this.keep(await hashOf(token), checked, now);
  }

  /** Moves a token's expiry (a resume token while its viewer is attached, or as it leaves). */
  async extend(token: string, expiresAt: number): Promise<void> {
    const hash = await hashOf(token);
    const row = this.sql.exec<{ record: string }>('SELECT record FROM terminal_tokens WHERE hash = ?', hash).toArray()[0];
    if (!row) return; // used already
    const record = { ...(JSON.parse(row.record) as TerminalTokenRecord), expires_at: expiresAt };
    this.sql.exec('UPDATE terminal_tokens SET record = ?, expires_at = ? WHERE hash = ?', JSON.stringify(record), expiresAt, hash);
  }

  /** Forgets a token (a resume token whose session ended). */
  async revoke(token: string): Promise<void> {
    this.sql.exec('DELETE FROM terminal_tokens WHERE hash = ?', await hashOf(token));
  }

  /** Stores a record, pruning the expired tokens and the oldest links past MAX_LINK_TOKENS as it goes. */
  private keep(hash: string, record: TerminalTokenRecord, now: number): void {
    const sql = this.sql;
    sql.exec('DELETE FROM terminal_tokens WHERE expires_at <= ?', now);
    if (record.purpose === 'link') {
      sql.exec("DELETE FROM terminal_tokens WHERE hash IN (SELECT hash FROM terminal_tokens WHERE purpose = 'link' ORDER BY made_at DESC, rowid DESC LIMIT -1 OFFSET ?)", MAX_LINK_TOKENS - 1);
    }
    sql.exec('INSERT OR REPLACE INTO terminal_tokens (hash, purpose, record, expires_at, made_at) VALUES (?, ?, ?, ?, ?)', hash, record.purpose, JSON.stringify(record), record.expires_at, now);
  }
}
