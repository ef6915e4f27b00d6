// Runs before each workers test file: migrate the (per-file isolated) D1 database.
import { applyD1Migrations, env } from 'cloudflare:test';
import { TEST_TEAM } from './helpers.ts';

declare global {
  namespace Cloudflare {
    interface Env {
      TEST_MIGRATIONS: import('cloudflare:test').D1Migration[];
    }
  }
}

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
// The team every test user and device is in unless a test says otherwise (test/worker/helpers.ts).
await env.DB.prepare("INSERT OR IGNORE INTO teams (id, name, require_2fa, created_at, updated_at) VALUES (?1, 'Test team', 0, 0, 0)").bind(TEST_TEAM).run();
