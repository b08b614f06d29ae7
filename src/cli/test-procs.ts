import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Helpers for tests that run the CLI as separate processes (kills, signals, queues). */

export interface Proc {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Exit code; 137 for SIGKILL, 128 + n for other signals the process did not handle. */
  readonly exited: Promise<number>;
}

export function run(cmd: string, args: readonly string[]): Proc {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  const p: Proc = {
    child,
    stdout: "",
    stderr: "",
    exited: new Promise((resolve) => {
      child.on("close", (code, signal) => resolve(code ?? (signal === "SIGKILL" ? 137 : -1)));
    }),
  };
  child.stdout!.on("data", (b) => {
    p.stdout += b;
  });
  child.stderr!.on("data", (b) => {
    p.stderr += b;
  });
  return p;
}

/** The CLI from source, in one process (so a signal reaches tdplab itself, not a wrapper). */
export const tdplab = (args: readonly string[]): Proc =>
  run(process.execPath, ["--import", "tsx", "src/cli/bin.ts", ...args]);

export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A small protocol run (about 2,500 executions) that every process test shares. */
export const PROTOCOL_CHECK = [
  "check",
  "protocol-v6.4",
  "--set",
  "vcpus=1",
  "--set",
  "walkers=0",
  "--set",
  "fastZaps=1",
  "--strategy",
  "dpor",
  "--json",
];

/** A free TCP port on loopback (free when asked: the caller binds it soon after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a !== null ? a.port : 0));
    });
  });
}

/** A throw-away redis-server on a free loopback port, without persistence. */
export async function startRedis(): Promise<{ url: string; proc: Proc }> {
  const port = await freePort();
  const proc = run("redis-server", [
    "--port",
    `${port}`,
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
  ]);
  await until(() => proc.stdout.includes("Ready to accept connections"), 10_000, "redis-server");
  return { url: `redis://127.0.0.1:${port}`, proc };
}

/** A temp directory outside the checkout for a test's own modules: `write(name, body)` gives the path. */
export function moduleDir(prefix: string): (name: string, body: string) => string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return (name, body) => {
    const f = join(dir, name);
    writeFileSync(f, body);
    return f;
  };
}

/** The built CLI (dist/), run to its end; a hang fails the test (after `timeoutMs`) instead of stalling the suite. */
export function runBuilt(
  args: readonly string[],
  timeoutMs = 60_000,
): { code: number; text: string; ms: number } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ["dist/cli/bin.js", ...args], {
    encoding: "utf8",
    timeout: timeoutMs,
  });
  return { code: r.status ?? -1, text: `${r.stdout}${r.stderr}`, ms: performance.now() - t0 };
}

/**
 * A scenario module of the user's, written by `write`: words `a` and `b` (Atomic, 0) and the
 * build's own lines, which start at line 8 (tests check file:line:col of errors there).
 */
export function scenarioModule(
  write: (name: string, body: string) => string,
  name: string,
  build: string,
): string {
  return write(
    `${name}.mjs`,
    `import { Atomic, bootMachine, defineScenario, READ_ONCE, WRITE_ONCE, WARN_ON } from "tdplab";
export default defineScenario({
  name: "${name}",
  description: "test",
  build: () => ({ spawn }) => {
    bootMachine();
    const a = new Atomic("a", 0), b = new Atomic("b", 0);
${build}
  },
});
`,
  );
}
