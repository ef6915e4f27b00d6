// Reads text from a filesystem root: '/' on a device, or a recorded /proc and /sys snapshot in
// tests, so every reader in agent/system runs unchanged against both. Nothing here throws: on a
// live system files vanish between listing and reading (processes exit all the time), and a
// device report with one missing field beats no report at all, so every failure becomes null/[].
import { readdir, readFile, stat } from 'node:fs/promises';

/** Joins a root and an absolute path: ('/', '/proc/stat') → '/proc/stat'. */
export function resolvePath(root: string, path: string): string {
  if (root === '/' || root === '') return path;
  return root.replace(/\/+$/, '') + '/' + path.replace(/^\/+/, '');
}

export async function readText(root: string, path: string): Promise<string | null> {
  try {
    return await readFile(resolvePath(root, path), 'utf8');
  } catch {
    return null;
  }
}

/** The first line of a file, trimmed, with the NUL terminator device-tree strings carry removed. */
export async function readLine(root: string, path: string): Promise<string | null> {
  const text = await readText(root, path);
  if (text === null) return null;
  const line = text.replace(/\0/g, '\n').split('\n', 1)[0]?.trim() ?? '';
  return line === '' ? null : line;
}

export async function listDir(root: string, path: string): Promise<string[]> {
  try {
    return await readdir(resolvePath(root, path));
  } catch {
    return [];
  }
}

export async function isFile(root: string, path: string): Promise<boolean> {
  try {
    return (await stat(resolvePath(root, path))).isFile();
  } catch {
    return false;
  }
}

/**
 * Parses `Key: value` lines (meminfo, cpuinfo, /proc/PID/status). Keys are trimmed because
 * cpuinfo pads them with tabs; the first occurrence wins because cpuinfo repeats per-core keys.
 */
export function parseColonFields(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim();
    if (key !== '' && !fields.has(key)) fields.set(key, line.slice(colon + 1).trim());
  }
  return fields;
}

/** A finite, non-negative number from a string, or the fallback. */
export function toNumber(text: string | undefined, fallback = 0): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  return Number.isFinite(n) && n >= 0 ? n : fallback;
}

export function round(value: number, decimals: number): number {
  const factor = 10 ** decimals;
  return Math.round(value * factor) / factor;
}
