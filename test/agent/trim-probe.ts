// Run in a fresh Bun process by trim.test.ts: trims, and shows the process still works.
import { readFileSync } from 'node:fs';
import { createTrimmer } from '../../agent/trim.ts';

const fileKb = () => Number(/^RssFile:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
const trimmer = await createTrimmer();
const before = fileKb();
const trimmed = trimmer.trim();
const after = fileKb();
const parsed = (JSON.parse('{"a":[1,2,3]}') as { a: number[] }).a.length;
const { z } = await import('zod');
const imported = z.object({ a: z.string() }).parse({ a: 'imported' }).a;
const spawned = Bun.spawnSync(['sh', '-c', 'echo ok']).stdout.toString().trim();
console.log(JSON.stringify({ before, after, trimmed, works: `parsed ${parsed}, ${imported}, spawned ${spawned}` }));
