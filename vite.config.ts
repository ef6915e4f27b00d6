// The dashboard (dashboard/) built by Vite with Preact into dist/dashboard, which the Worker serves
// as static assets (wrangler.toml [assets]). `npm run dev:dashboard` serves it with hot reload and
// proxies the API, the stream and the agents' socket to a relay on PIRELAY_URL (default :8787).
import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

const relay = process.env.PIRELAY_URL ?? 'http://127.0.0.1:8787';

export default defineConfig({
  root: 'dashboard',
  plugins: [preact()],
  build: {
    outDir: '../dist/dashboard',
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0,
    reportCompressedSize: false,
    // The API reference's renderer (openapi-explorer, loaded on /docs only) is ~550 KB minified;
    // the first load has its own budget (scripts/dashboard.ts firstLoad, 100 KB gzipped).
    chunkSizeWarningLimit: 700,
  },
  server: {
    port: 5173,
    proxy: {
      '/api': { target: relay, ws: true, changeOrigin: false },
    },
  },
});
