// What a client needs to write the commands that set up a device (the dashboard's "Add a device"
// page): this relay's URL for `enroll --relay`, and where the agent binaries are downloaded from.
// The binaries (`bun build --compile`, ~100 MB) are far larger than a Worker's static assets may
// be (25 MiB a file), so they live elsewhere: AGENT_DOWNLOAD_URL ([vars]) is the folder they are
// published in, by default the project's latest release, one file per architecture.
import { z } from 'zod';

/** The project's release downloads; a relay's AGENT_DOWNLOAD_URL may point at its own copies instead. */
export const DEFAULT_AGENT_DOWNLOAD_URL = 'https://github.com/pirelay/pirelay/releases/latest/download';

/** Bun compiles for 64-bit Linux only: arm64 (64-bit Raspberry Pi OS, Pi 3, 4, 5, Zero 2) and x64 (a PC). */
export const AGENT_ARCHITECTURES = ['arm64', 'x64'] as const;
export type AgentArchitecture = (typeof AGENT_ARCHITECTURES)[number];

/** The published file name of the agent for one architecture (what `npm run build:agent` writes to dist/). */
export const agentFileName = (arch: AgentArchitecture) => `pirelay-agent-linux-${arch}`;

export const AgentInstallSchema = z.object({
  /** This relay's origin, as the request reached it: what `pirelay-agent enroll --relay` is given. */
  relay_url: z.string(),
  /** The agent version this relay is built with. */
  version: z.string(),
  /** AGENT_DOWNLOAD_URL without a trailing slash: the folder of the agent binaries. */
  download_url: z.string(),
  architectures: z.array(
    z.object({
      arch: z.enum(AGENT_ARCHITECTURES),
      file: z.string(),
      /** download_url/file */
      url: z.string(),
    }),
  ),
});
export type AgentInstall = z.infer<typeof AgentInstallSchema>;
