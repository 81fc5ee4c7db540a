/**
 * Build of the web dashboard served by the API at `/ui` (see src/platform/ui.routes.ts).
 *
 * - `npm run build:ui` writes `ui/dist`: hashed files under `assets/`, each text file also
 *   gzipped beside itself (`x.js.gz`) so the server sends it compressed without compressing per
 *   request; it prints the size of the first load (the shell).
 * - `npm run dev:ui` serves the dashboard with hot reload on http://127.0.0.1:5173/ui/ and
 *   forwards every other path to the API (`MODELPLANE_API`, default http://127.0.0.1:8000).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';

const COMPRESSIBLE = /\.(?:js|mjs|css|html|svg|json|txt)$/;

/** Gzips text files next to themselves and reports the shell's gzipped size. */
function precompress(): Plugin {
  return {
    name: 'modelplane-precompress',
    apply: 'build',
    writeBundle(options, bundle) {
      const outDir = options.dir ?? 'dist';
      const gzipped = new Map<string, number>();
      for (const [fileName, item] of Object.entries(bundle)) {
        const source = item.type === 'chunk' ? item.code : item.source;
        const bytes = typeof source === 'string' ? Buffer.from(source) : Buffer.from(source);
        const gz = gzipSync(bytes, { level: 9 });
        gzipped.set(fileName, gz.length);
        if (COMPRESSIBLE.test(fileName) && bytes.length > 1024) writeFileSync(path.join(outDir, `${fileName}.gz`), gz);
      }
      // The shell: index.html, the entry chunk, the chunks it imports statically, and their CSS.
      const shell = new Set<string>(['index.html']);
      const visit = (fileName: string): void => {
        const item = bundle[fileName];
        if (item === undefined || shell.has(fileName)) return;
        shell.add(fileName);
        if (item.type !== 'chunk') return;
        for (const css of item.viteMetadata?.importedCss ?? []) shell.add(css);
        for (const imported of item.imports) visit(imported);
      };
      for (const item of Object.values(bundle)) if (item.type === 'chunk' && item.isEntry) visit(item.fileName);
      const total = [...shell].reduce((sum, f) => sum + (gzipped.get(f) ?? 0), 0);
      const lines = [...shell].map((f) => `  ${f}: ${((gzipped.get(f) ?? 0) / 1024).toFixed(1)} KiB`);
      this.info(`first load (shell), gzipped: ${(total / 1024).toFixed(1)} KiB\n${lines.join('\n')}`);
    },
  };
}

export default defineConfig({
  root: import.meta.dirname,
  base: '/ui/',
  plugins: [react(), precompress()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
  server: {
    host: '127.0.0.1',
    port: 5173,
    strictPort: true,
    proxy: {
      // Everything outside the dashboard's own base path is the API.
      '^/(?!ui(?:/|$)).*': { target: process.env['MODELPLANE_API'] ?? 'http://127.0.0.1:8000', changeOrigin: false },
    },
  },
});
