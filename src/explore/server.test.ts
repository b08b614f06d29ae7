import { request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import type { TraceDoc } from "../trace/schema.js";
import type { WebAsset } from "./assets.js";
import { ExploreError } from "./errors.js";
import { type ExploreServer, isTraversal, startExploreServer } from "./server.js";

const doc: TraceDoc = {
  schemaVersion: 1,
  tool: { name: "tdplab", version: "0" },
  run: { scenario: "s", kernel: "v5.18", features: [], variant: null },
  replay: "tdp1.own.AA",
  tasks: [{ id: 0, name: "t", lane: "t" }],
  objects: ["o"],
  steps: [{ i: 0, task: 0, kind: "read", obj: 0, fn: "f", step: "s" }],
  violation: null,
};

const assets = new Map<string, WebAsset>([
  ["/index.html", { body: Buffer.from("<!doctype html><p>app</p>"), type: "text/html; charset=utf-8" }],
  ["/assets/explorer.js", { body: Buffer.from("console.log(1)"), type: "text/javascript; charset=utf-8" }],
]);

/** A raw GET: the path goes on the wire as written (no client-side normalisation of `..`). */
function get(port: number, path: string, host = `127.0.0.1:${port}`, method = "GET") {
  return new Promise<{ status: number; body: string; headers: Record<string, unknown> }>(
    (resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, path, method, headers: { host } }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          body += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      });
      req.on("error", reject);
      req.end();
    },
  );
}

let server: ExploreServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

const start = async (regenerate?: (r: string) => Promise<TraceDoc>) => {
  server = await startExploreServer({ doc: { kind: "check", doc }, port: 0, assets, regenerate });
  return server;
};

describe("the explorer server", () => {
  it("listens on 127.0.0.1 only and prints a loopback URL", async () => {
    const s = await start();
    expect(s.url).toBe(`http://127.0.0.1:${s.port}/`);
    expect(s.port).toBeGreaterThan(0);
  });

  it("serves the app, its assets and the trace, with a strict content policy", async () => {
    const s = await start();
    const index = await get(s.port, "/");
    expect(index.status).toBe(200);
    expect(index.body).toContain("<p>app</p>");
    expect(index.headers["content-security-policy"]).toMatch(/default-src 'none'; script-src 'self'/);
    expect(index.headers["x-content-type-options"]).toBe("nosniff");
    expect((await get(s.port, "/assets/explorer.js")).headers["content-type"]).toMatch(/javascript/);
    const t = await get(s.port, "/trace.json");
    expect(JSON.parse(t.body)).toEqual(doc);
    expect(JSON.parse((await get(s.port, "/trace.json?replay=tdp1.own.AA")).body)).toEqual(doc);
  });

  it.each([
    "/../package.json",
    "/assets/../../package.json",
    "/%2e%2e/package.json",
    "/%2E%2E/%2E%2E/package.json",
    "/assets/..%2f..%2fpackage.json",
    "/assets/%2e%2e%2f%2e%2e%2fpackage.json",
    "/..%5c..%5cpackage.json",
    "/assets\\..\\..\\package.json",
    "/./index.html",
    "/index.html%00.js",
  ])("refuses the path traversal %s", async (path) => {
    const s = await start();
    const r = await get(s.port, path);
    expect(r.status).toBe(403);
    expect(r.body).not.toContain('"name": "tdplab"');
  });

  it("serves nothing but the app and the trace", async () => {
    const s = await start();
    for (const p of [
      "/package.json",
      "/src/explore/server.ts",
      "/assets/",
      "/dist/web/index.html",
      "/.vite/manifest.json",
    ])
      expect((await get(s.port, p)).status).toBe(404);
    expect((await get(s.port, "/", `127.0.0.1:${s.port}`, "POST")).status).toBe(405);
  });

  it("refuses a request for another host name (DNS rebinding)", async () => {
    const s = await start();
    expect((await get(s.port, "/trace.json", `evil.example:${s.port}`)).status).toBe(403);
    expect((await get(s.port, "/trace.json", `localhost:${s.port}`)).status).toBe(200);
  });

  it("regenerates the trace of another replay string, and reports a bad one as a 400", async () => {
    const asked: string[] = [];
    const s = await start(async (r) => {
      asked.push(r);
      if (r === "tdp1.bad.AA") throw new ExploreError("bad replay string: nope");
      return { ...doc, replay: r };
    });
    const other = await get(s.port, "/trace.json?replay=tdp1.other.AA");
    expect(JSON.parse(other.body).replay).toBe("tdp1.other.AA");
    await get(s.port, "/trace.json?replay=tdp1.other.AA");
    expect(asked).toEqual(["tdp1.other.AA"]);
    const bad = await get(s.port, "/trace.json?replay=tdp1.bad.AA");
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toEqual({ error: "bad replay string: nope" });
  });

  it("without a regenerator, refuses other replay strings", async () => {
    const s = await start();
    expect((await get(s.port, "/trace.json?replay=tdp1.other.AA")).status).toBe(404);
  });

  it("falls back to a free port only when none was asked for", async () => {
    const s = await start();
    await expect(startExploreServer({ doc: { kind: "check", doc }, port: s.port, assets })).rejects.toThrow(
      /in use/,
    );
  });
});

describe("isTraversal", () => {
  it("accepts plain app paths", () => {
    for (const p of ["/", "/index.html", "/assets/explorer.js", "/trace.json"])
      expect(isTraversal(p)).toBe(false);
  });
  it("catches dot segments, encoded separators and bad escapes", () => {
    for (const p of ["/..", "/a/../b", "/%2e%2e/x", "/a%2fb", "/a%5cb", "/a\\b", "/%zz", "/."])
      expect(isTraversal(p)).toBe(true);
  });
});
