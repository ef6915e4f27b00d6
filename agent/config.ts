// The agent's on-disk identity: which relay it talks to, its device id and its Ed25519 key pair.
// Written once by `enroll`, read by `run`. The private key never leaves this file (mode 0600).
import { z } from 'zod';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { homedir } from 'node:os';

const JwkSchema = z.object({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: z.string(), d: z.string().optional() }).passthrough();

export const AgentConfigSchema = z.object({
  relay: z.string().url(),
  device_id: z.string().min(1),
  name: z.string(),
  private_key: JwkSchema.extend({ d: z.string() }),
  public_key: JwkSchema,
  enrolled_at: z.string(),
});
export type AgentConfig = z.infer<typeof AgentConfigSchema>;

/** Where root's agent keeps its config (and so where the systemd unit's `run` reads it). */
export const ROOT_CONFIG_PATH = '/etc/pirelay/agent.json';

/** --config, else $PIRELAY_AGENT_CONFIG, else ROOT_CONFIG_PATH for root, else ~/.config. */
export function defaultConfigPath(): string {
  if (process.env.PIRELAY_AGENT_CONFIG) return process.env.PIRELAY_AGENT_CONFIG;
  if (process.getuid?.() === 0) return ROOT_CONFIG_PATH;
  return join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'pirelay', 'agent.json');
}

export async function loadConfig(path: string): Promise<AgentConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new Error(`no agent config at ${path}: run \`agent enroll --relay URL --token TOKEN\` first`);
  }
  const parsed = AgentConfigSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`agent config at ${path} is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

export async function saveConfig(path: string, config: AgentConfig): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}
