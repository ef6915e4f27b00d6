// `npm run dev` (wrangler dev, hot reload) reads secrets from .dev.vars: write it from the same
// .pirelay/secrets.json that `npm start` uses, creating both on first use.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, newSecrets } from './dev-env.ts';
import { localClientVars } from './relay.ts';

const secretsPath = join(ROOT, '.pirelay', 'secrets.json');
mkdirSync(join(ROOT, '.pirelay'), { recursive: true });
const found = existsSync(secretsPath) ? (JSON.parse(readFileSync(secretsPath, 'utf8')) as Record<string, string>) : null;
const secrets: Record<string, string> = { ...newSecrets(), ...found };
if (!found || Object.keys(secrets).some((k) => !(k in found))) writeFileSync(secretsPath, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600 });
// wrangler dev listens on localhost unless given --ip.
const vars = { ...secrets, ...localClientVars('localhost') };
writeFileSync(join(ROOT, '.dev.vars'), Object.entries(vars).map(([k, v]) => `${k}=${v}`).join('\n') + '\n', { mode: 0o600 });
console.log('wrote .dev.vars from .pirelay/secrets.json');
