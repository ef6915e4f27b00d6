// `npm run dev` (wrangler dev, hot reload) reads secrets from .dev.vars: write it from the same
// .pirelay/secrets.json that `npm start` uses, creating both on first use.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './dev-env.ts';
import { localClientVars } from './relay.ts';

const secretsPath = join(ROOT, '.pirelay', 'secrets.json');
mkdirSync(join(ROOT, '.pirelay'), { recursive: true });
if (!existsSync(secretsPath)) {
  const secrets = { SESSION_SECRET: randomBytes(32).toString('base64url'), BOOTSTRAP_TOKEN: randomBytes(24).toString('base64url') };
  writeFileSync(secretsPath, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600 });
}
const secrets = JSON.parse(readFileSync(secretsPath, 'utf8')) as Record<string, string>;
// wrangler dev listens on localhost unless given --ip.
const vars = { ...secrets, ...localClientVars('localhost') };
writeFileSync(join(ROOT, '.dev.vars'), Object.entries(vars).map(([k, v]) => `${k}=${v}`).join('\n') + '\n', { mode: 0o600 });
console.log('wrote .dev.vars from .pirelay/secrets.json');
