import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { TraceDoc } from "../trace/schema.js";
import { loadWebAssets, type WebAsset } from "./assets.js";
import type { ExplorerDoc } from "./doc.js";
import { ExploreError } from "./errors.js";

/** The port `tdplab explore` tries first (a fixed one keeps links valid between sessions). */
export const DEFAULT_PORT = 7357;

/** The explorer listens on the loopback interface only. */
export const HOST = "127.0.0.1";

export interface ExploreServerOptions {
  /** The document shown at `/` (what `/trace.json` returns). */
  readonly doc: ExplorerDoc;
  /** undefined: DEFAULT_PORT, or any free port if it is taken; 0: any free port; N: exactly N. */
  readonly port?: number;
  /** The app's files (default: the built app in dist/web). */
  readonly assets?: ReadonlyMap<string, WebAsset>;
  /** The trace of a replay string (`/trace.json?replay=…`); without it such requests are refused. */
  readonly regenerate?: (replay: string) => Promise<TraceDoc>;
}

export interface ExploreServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "X-Content-Type-Options": "nosniff",
  "Cache-Control": "no-store",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
  "Cross-Origin-Resource-Policy": "same-origin",
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

/**
 * A request path that tries to leave the app: a `..` or `.` segment (raw or percent-encoded), an
 * encoded slash or backslash, a backslash, or a NUL. Refused outright (403) before any lookup.
 */
export function isTraversal(rawPath: string): boolean {
  if (/%(2f|5c|00)/i.test(rawPath) || rawPath.includes("\\") || rawPath.includes("\0")) return true;
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return true;
  }
  return [rawPath, decoded].some((p) => p.split("/").some((seg) => seg === ".." || seg === "."));
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, head: boolean): void {
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    "Content-Type": type,
    "Content-Length": Buffer.byteLength(body),
  });
  res.end(head ? undefined : body);
}

function sendJson(res: ServerResponse, status: number, value: unknown, head: boolean): void {
  send(res, status, "application/json; charset=utf-8", JSON.stringify(value), head);
}

/**
 * Serve the explorer: the app's own files (from the asset map, never from a path built out of the
 * request) and the trace as /trace.json. `/trace.json?replay=tdp1.…` answers the trace of that
 * replay string, regenerated (a link to a view carries only the replay string). Loopback only; a
 * request whose Host header is not this server's (DNS rebinding) is refused.
 */
export async function startExploreServer(opts: ExploreServerOptions): Promise<ExploreServer> {
  const assets = opts.assets ?? loadWebAssets();
  const docJson = JSON.stringify(opts.doc.doc);
  const ownReplay = opts.doc.kind === "check" ? opts.doc.doc.replay : null;
  const cache = new Map<string, string>();
  let port = 0;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const head = req.method === "HEAD";
    if (req.method !== "GET" && !head) {
      res.setHeader("Allow", "GET, HEAD");
      return send(res, 405, "text/plain; charset=utf-8", "method not allowed\n", head);
    }
    const host = (req.headers.host ?? "").toLowerCase();
    if (host !== `${HOST}:${port}` && host !== `localhost:${port}`)
      return send(res, 403, "text/plain; charset=utf-8", "forbidden host\n", head);
    const raw = req.url ?? "/";
    const q = raw.indexOf("?");
    const rawPath = q < 0 ? raw : raw.slice(0, q);
    if (!rawPath.startsWith("/") || isTraversal(rawPath))
      return send(res, 403, "text/plain; charset=utf-8", "forbidden\n", head);
    const path = decodeURIComponent(rawPath);
    if (path === "/trace.json") {
      const replay = new URLSearchParams(q < 0 ? "" : raw.slice(q + 1)).get("replay");
      if (replay === null || replay === "" || replay === ownReplay)
        return send(res, 200, "application/json; charset=utf-8", docJson, head);
      const hit = cache.get(replay);
      if (hit !== undefined) return send(res, 200, "application/json; charset=utf-8", hit, head);
      if (!opts.regenerate)
        return sendJson(
          res,
          404,
          { error: "this explorer shows one trace and cannot regenerate others" },
          head,
        );
      try {
        const json = JSON.stringify(await opts.regenerate(replay));
        if (cache.size >= 16) cache.delete(cache.keys().next().value as string);
        cache.set(replay, json);
        return send(res, 200, "application/json; charset=utf-8", json, head);
      } catch (e) {
        if (e instanceof ExploreError) return sendJson(res, 400, { error: e.message }, head);
        throw e;
      }
    }
    const asset = assets.get(path === "/" ? "/index.html" : path);
    if (asset === undefined) return send(res, 404, "text/plain; charset=utf-8", "not found\n", head);
    return send(res, 200, asset.type, asset.body, head);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent)
        sendJson(res, 500, { error: `internal error: ${e instanceof Error ? e.message : String(e)}` }, false);
      else res.destroy();
    });
  });
  port = await listen(server, opts.port);
  return {
    url: `http://${HOST}:${port}/`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function listenOn(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => {
      server.removeListener("listening", onListening);
      reject(e);
    };
    const onListening = () => {
      server.removeListener("error", onError);
      resolve((server.address() as AddressInfo).port);
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen(port, HOST);
  });
}

async function listen(server: Server, port: number | undefined): Promise<number> {
  try {
    return await listenOn(server, port ?? DEFAULT_PORT);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (port === undefined && code === "EADDRINUSE") return listenOn(server, 0);
    if (code === "EADDRINUSE") throw new ExploreError(`--port ${port}: the port is in use`);
    if (code === "EACCES") throw new ExploreError(`--port ${port}: not allowed to listen on it`);
    throw e;
  }
}
