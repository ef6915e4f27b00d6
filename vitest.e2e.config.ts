// End-to-end tests: the real relay in workerd (through Miniflare's API, as `npm start` runs it)
// and real agent processes under Bun. Files run one at a time: they start servers and agents.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    environment: 'node',
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
