import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

/**
 * The browser explorer: Preact, compiled by Vite's own JSX transform (no Babel plugin), built into
 * dist/web as one script and one stylesheet with fixed names. One chunk, because `tdplab explore
 * --html` inlines the bundle into a self-contained file; fixed names, because the server serves only
 * the files it finds there.
 */
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "./",
  logLevel: "warn",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: fileURLToPath(new URL("../dist/web", import.meta.url)),
    emptyOutDir: true,
    modulePreload: false,
    assetsInlineLimit: 0,
    reportCompressedSize: false,
    rolldownOptions: {
      output: {
        codeSplitting: false,
        entryFileNames: "assets/explorer.js",
        assetFileNames: "assets/explorer[extname]",
      },
    },
  },
});
