// Compiled with the agent's worker entrypoint by compiled.test.ts (as `npm run build:agent` builds
// the agent): opens a session, prints a line in it, attaches a second viewer and prints what the
// redraw it got shows, which only the emulator's thread can have drawn, and that live output
// follows. Prints one JSON line.
import { rig } from './helpers.ts';

const r = rig({ command: ['/bin/sh'] });
const a = await r.open();
await a.waitControl('attached');
await a.type("printf 'drawn-by-%s\\n' the-emulator\r");
await a.waitFor('drawn-by-the-emulator');
const b = await r.open({ session: a.session, user: 'watcher-1' });
await b.waitControl('attached');
// Live output follows the redraw: what came before it is the redraw.
await a.type("printf 'live-%s\\n' output\r");
await b.waitFor('live-output');
const redraw = b.text.slice(0, b.text.indexOf('live-output'));
await r.cleanup();
console.log(JSON.stringify({ main: Bun.main, redrawn: redraw.includes('drawn-by-the-emulator'), live: true }));
process.exit(0);
