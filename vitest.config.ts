import { defineConfig } from 'vitest/config';

// Two projects: `unit` (pure, fast, no cluster) and `e2e` (a real local control
// plane, brought up once by the global setup and shared by every e2e file; the
// files run one at a time, each in namespaces of its own).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/e2e/global-setup.ts'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 900_000,
        },
      },
    ],
  },
});
