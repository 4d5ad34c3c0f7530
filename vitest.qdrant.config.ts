import { defineConfig } from 'vitest/config';

/**
 * `npm run test:qdrant`: the Qdrant contract suite alone, against QDRANT_URL (and QDRANT_API_KEY)
 * or, without it, the local Qdrant-compatible server. Needs neither DynamoDB Local nor a model.
 */
export default defineConfig({
  test: {
    include: ['test/qdrantContract.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    env: { POWERTOOLS_LOG_LEVEL: 'SILENT' },
  },
});
