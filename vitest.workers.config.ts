// Workers tests: run inside workerd with the real bindings of wrangler.toml, D1 migrated fresh.
import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';

export default defineConfig(async () => {
  const migrations = await readD1Migrations('migrations');
  return {
    plugins: [
      cloudflareTest({
        main: './worker/index.ts',
        wrangler: { configPath: './wrangler.toml' },
        miniflare: {
          bindings: {
            TEST_MIGRATIONS: migrations,
            SESSION_SECRET: 'test-session-secret-0123456789abcdef0123456789',
            BOOTSTRAP_TOKEN: 'test-bootstrap-token',
            HEARTBEAT_INTERVAL_MS: '1000',
            RPC_TIMEOUT_MS: '1500',
            TUNNEL_ACCEPT_TIMEOUT_MS: '1000',
          },
        },
      }),
    ],
    test: {
      include: ['test/worker/**/*.test.ts', 'test/durable-objects/**/*.test.ts'],
      setupFiles: ['./test/worker/setup.ts'],
    },
  };
});
