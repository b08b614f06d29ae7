import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type Browser, chromium } from "playwright-core";

/** The repository root (test/e2e/..). */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Debian's Chromium: .ci/run installs it; a machine without it skips the browser tests. */
export const CHROMIUM = "/usr/bin/chromium";
export const HAS_CHROMIUM = existsSync(CHROMIUM);

/** Screenshots and other artefacts of the browser tests (gitignored). */
export const ARTIFACTS = `${ROOT}test-artifacts/`;

/** The built web app the server and --html need (`npm run build`; `npm ci` runs it). */
export function requireBuiltApp(): void {
  if (!existsSync(`${ROOT}dist/web/index.html`) || !existsSync(`${ROOT}dist/web/assets/explorer.js`))
    throw new Error("the explorer's web app is not built (dist/web): run 'npm run build' first");
}

/**
 * Chromium as root in a container: no sandbox, no GPU, and none of the background connections a
 * closed network refuses. Playwright gives every launch a fresh, empty profile directory.
 */
export function launchChromium(): Promise<Browser> {
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export interface CliRun {
  readonly proc: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
}

/** The CLI from source (tsx), as a child process, so that it can be stopped with Ctrl-C (SIGINT). */
export function cli(...args: string[]): CliRun {
  const proc = spawn(process.execPath, ["--import", "tsx", "src/cli/bin.ts", ...args], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1", CI: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  return { proc, stdout: () => out, stderr: () => err, exited };
}

const URL_RE = /http:\/\/127\.0\.0\.1:\d+\/\S*/;

/** Wait until the CLI prints the explorer's URL (on stdout or stderr). */
export async function urlOf(run: CliRun, timeoutMs = 45_000): Promise<string> {
  const t0 = Date.now();
  for (;;) {
    const m = URL_RE.exec(run.stdout()) ?? URL_RE.exec(run.stderr());
    if (m) return m[0];
    if (run.proc.exitCode !== null)
      throw new Error(
        `the CLI exited (${run.proc.exitCode}) without a URL:\n${run.stdout()}\n${run.stderr()}`,
      );
    if (Date.now() - t0 > timeoutMs) throw new Error(`no URL after ${timeoutMs} ms:\n${run.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Ctrl-C, then the exit code. */
export async function interrupt(run: CliRun): Promise<number | null> {
  if (run.proc.exitCode === null) run.proc.kill("SIGINT");
  return run.exited;
}
