import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { EXIT } from "./exit-codes.js";

/**
 * Ctrl-C inside one long simulation point (issue 13): the simulation runs in a worker thread and the
 * simulator polls a stop flag between events, so `simulate` exits 130 within about a second with the
 * points that finished, even while a 64 TiB point that takes tens of seconds is running. Through the
 * built CLI, as a user runs it.
 */
describe.runIf(existsSync("dist/cli/bin.js"))("simulate interrupted inside a long point", () => {
  it("exits 130 within a second or so, with the finished point's runs", async () => {
    const p = spawn(process.execPath, [
      "dist/cli/bin.js",
      "simulate",
      "teardown-wait",
      "--sweep",
      "guestSize=1GiB,64TiB",
      "--json",
    ]);
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => {
      stdout += d;
    });
    let sentAt = 0;
    const hard = setTimeout(() => p.kill("SIGKILL"), 120_000);
    p.stderr.on("data", (d) => {
      stderr += d;
      // Started (the handler is in place): the 1 GiB point takes well under a second, the 64 TiB
      // one tens of seconds, so a few seconds later the second is running.
      if (sentAt === 0 && stderr.includes("Ctrl-C stops")) {
        sentAt = -1;
        setTimeout(() => {
          sentAt = performance.now();
          p.kill("SIGINT");
        }, 6000);
      }
    });
    const code = await new Promise<number | null>((resolve) => p.on("exit", resolve));
    clearTimeout(hard);
    const ms = performance.now() - sentAt;
    expect(code, stderr).toBe(EXIT.interrupted);
    expect(ms).toBeLessThan(2000);
    expect(stderr).toMatch(/interrupted after 1 of 2 points/);
    const doc = JSON.parse(stdout) as { interrupted: boolean; runs: { params: { guestSize: number } }[] };
    expect(doc.interrupted).toBe(true);
    expect(doc.runs.length).toBeGreaterThan(0);
    expect(doc.runs.every((r) => r.params.guestSize === 2 ** 30)).toBe(true);
  }, 150_000);
});
