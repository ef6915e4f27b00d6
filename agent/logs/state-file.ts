// Small JSON state files (the journal cursor, the files' offsets, the spool's pointers) written so a
// crash leaves either the old content or the new, never half: write a temporary file, then rename
// it over the old one (rename is atomic within a directory).
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

export function writeStateFile(path: string, value: unknown): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(value));
  renameSync(tmp, path);
}

/** The file's JSON, or undefined when it is missing or unreadable (then the caller starts afresh). */
export function readStateFile(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}
