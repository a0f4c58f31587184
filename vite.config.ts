/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { VitePWA } from 'vite-plugin-pwa';

// Cross-origin isolation lets onnxruntime-web use SharedArrayBuffer for multi-threaded WASM.
const isolationHeaders = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  plugins: [
    react(),
    // Offline: a Workbox service worker precaches the app shell, the ONNX Runtime WASM, the models and
    // the lesson texts (~65 MB, fetched once). The datastores are not in it: the app already copies
    // them into IndexedDB on first launch. A new version waits for the teacher (registerType 'prompt').
    VitePWA({
      registerType: 'prompt',
      injectRegister: false,
      manifest: {
        name: 'RetroLab',
        short_name: 'RetroLab',
        description: 'See what retrieval does to a language model: GPT, RETRO, kNN-LM and In-Context RALM side by side in the browser.',
        theme_color: '#0c8577',
        background_color: '#f6f7f9',
        display: 'standalone',
        icons: [{ src: 'icon.svg', sizes: 'any', type: 'image/svg+xml', purpose: 'any' }],
      },
      workbox: {
        globPatterns: ['**/*.{js,css,html,svg,wasm,mjs}', 'models/**/*.{json,onnx,bin}', 'lessons/*.txt', 'datastores/index.json'],
        globIgnores: ['**/*.rlds', '**/*.tokens'],
        // The ONNX Runtime WASM (27 MB) and the decoders (7 MB) are over Workbox's 2 MB default.
        maximumFileSizeToCacheInBytes: 64 * 1024 * 1024,
        navigateFallback: 'index.html',
        // Links carry the state in the query (?lesson=…&prompt=…): any of them opens the cached shell.
        ignoreURLParametersMatching: [/.*/],
        clientsClaim: true,
        cleanupOutdatedCaches: true,
      },
    }),
  ],
  server: { headers: isolationHeaders, host: '127.0.0.1' },
  preview: { headers: isolationHeaders, host: '127.0.0.1' },
  worker: { format: 'es' },
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  test: {
    include: ['src/**/*.test.ts', 'cli/**/*.test.ts', 'workers/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    // Hooks load the shipped ONNX models; on a loaded 2-core machine that alone took over 10 s.
    hookTimeout: 120_000,
  },
});
