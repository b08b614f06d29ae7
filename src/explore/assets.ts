import { existsSync, lstatSync, readdirSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ExploreError } from "./errors.js";

/**
 * The built web app (`vite build` into dist/web, part of `npm run build`), found relative to this
 * module: src/explore and dist/explore both sit two levels below the package root.
 */
export const WEB_DIST = fileURLToPath(new URL("../../dist/web/", import.meta.url));

export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".woff2": "font/woff2",
};

export interface WebAsset {
  readonly body: Buffer;
  readonly type: string;
}

/**
 * The app's files, read once: URL path → content. The server answers from this map only, so no
 * request path is ever turned into a file path. Only index.html and regular files directly under
 * assets/ with a known type are taken (no symlinks, no subdirectories).
 */
export function loadWebAssets(dir: string = WEB_DIST): ReadonlyMap<string, WebAsset> {
  const index = join(dir, "index.html");
  if (!existsSync(index))
    throw new ExploreError(`the explorer's web app is not built (no ${index}): run 'npm run build' first`);
  const out = new Map<string, WebAsset>();
  out.set("/index.html", { body: readFileSync(index), type: CONTENT_TYPES[".html"] });
  const assets = join(dir, "assets");
  if (existsSync(assets)) {
    for (const name of readdirSync(assets)) {
      const file = join(assets, name);
      const type = CONTENT_TYPES[extname(name).toLowerCase()];
      if (type === undefined || !/^[\w.-]+$/.test(name) || !lstatSync(file).isFile()) continue;
      out.set(`/assets/${name}`, { body: readFileSync(file), type });
    }
  }
  return out;
}
