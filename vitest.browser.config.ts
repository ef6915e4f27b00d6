// Browser tests: the dashboard in Debian's Chromium (playwright-core) against the real relay and
// agents, as a user meets it after `npm start`. Files run one at a time: each starts a relay.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/browser/**/*.test.ts'],
    environment: 'node',
    fileParallelism: false,
    testTimeout: 90_000,
    hookTimeout: 90_000,
  },
});
