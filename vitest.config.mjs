import { defineConfig } from 'vitest/config';
import { playwright } from '@vitest/browser-playwright';

// Three projects: `node` (what `npm test` runs) and two in Chromium (`npm run test:browser`,
// Debian's /usr/bin/chromium or CHROMIUM_PATH; never a downloaded browser): `chromium` serves
// the page cross-origin isolated so SharedArrayBuffer and shared Wasm memory exist,
// `chromium-plain` serves it without those headers, as most pages are.
const browser = (name) => ({
  enabled: true,
  headless: true,
  provider: playwright({
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run', '--disable-quic'],
    },
  }),
  instances: [{ browser: 'chromium', name }],
});

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      {
        test: {
          name: 'node',
          include: ['test/**/*.test.ts'],
          exclude: ['test/browser/**', 'test/browser-plain/**'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        server: {
          headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' },
        },
        test: {
          name: 'chromium',
          include: ['test/browser/**/*.test.ts'],
          testTimeout: 60_000,
          browser: browser('chromium-isolated'),
        },
      },
      {
        test: {
          name: 'chromium-plain',
          include: ['test/browser-plain/**/*.test.ts'],
          testTimeout: 60_000,
          browser: browser('chromium-not-isolated'),
        },
      },
    ],
  },
});
