/**
 * The viewer's build: Preact (JSX through Vite's own transform, no plugin), the library's browser-safe modules
 * imported from ../src, onnxruntime-web and the DICOM codec WebAssembly emitted as assets. Output: ../dist/web,
 * which `cxr serve` serves. Development: `npx vite web` with a running `cxr serve` on 8080 (API proxied).
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  worker: { format: 'es' },
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 1500,
    rolldownOptions: {
      // dcmjs-codecs' Emscripten glue uses eval to find its environment; known and harmless here.
      onLog(level, log, handler) {
        if (log.code === 'EVAL' && log.id?.includes('dcmjs-codecs')) return;
        handler(level, log);
      },
    },
  },
  server: {
    proxy: { '/api': 'http://127.0.0.1:8080', '/models': 'http://127.0.0.1:8080' },
  },
});
