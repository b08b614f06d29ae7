import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PROTOCOL_CHECK } from "./test-procs.js";

/**
 * Checkpoints survive what Ctrl-C never sees (issue 15): written every --checkpoint-every
 * seconds, so a run killed with SIGKILL resumes from the last one to the uninterrupted counts;
 * and written on SIGTERM, which exits 143. Through the built CLI, as a user's long run would go.
 */
const ARGS = PROTOCOL_CHECK;

interface Doc {
  status: string;
  complete: boolean;
  stats: { executions: number; steps: number };
}

function start(args: readonly string[]): { child: ChildProcess; done: Promise<{ code: number; doc: Doc }> } {
  const child = spawn(process.execPath, ["dist/cli/bin.js", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  child.stdout!.on("data", (b) => {
    stdout += b;
  });
  const done = new Promise<{ code: number; doc: Doc }>((resolve) => {
    child.on("close", (code, signal) => {
      resolve({ code: code ?? (signal === "SIGKILL" ? 137 : -1), doc: stdout ? JSON.parse(stdout) : null });
    });
  });
  return { child, done };
}

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.runIf(existsSync("dist/cli/bin.js"))("periodic checkpoints", () => {
  it("a run killed with SIGKILL resumes from its last periodic checkpoint to the uninterrupted counts", async () => {
    const whole = await start(ARGS).done;
    expect(whole.doc.complete).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), "tdplab-cp-"));
    const file = join(dir, "protocol-v6.4.checkpoint.json");
    const run = start([...ARGS, "--out", dir, "--checkpoint-every", "1"]);
    await until(() => existsSync(file), 30_000);
    run.child.kill("SIGKILL");
    expect((await run.done).code).toBe(137);
    const rest = await start([...ARGS, "--out", dir, "--resume", file]).done;
    expect(rest.code).toBe(0);
    expect(rest.doc.complete).toBe(true);
    expect(rest.doc.stats.executions).toBe(whole.doc.stats.executions);
    expect(rest.doc.stats.steps).toBe(whole.doc.stats.steps);
    // Finished: no checkpoint is left to resume by mistake.
    expect(existsSync(file)).toBe(false);
  }, 120_000);

  it("SIGTERM stops the run with a checkpoint and exit 143", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tdplab-cp-"));
    const file = join(dir, "protocol-v6.4.checkpoint.json");
    const run = start([...ARGS, "--out", dir, "--checkpoint-every", "1"]);
    await until(() => existsSync(file), 30_000);
    run.child.kill("SIGTERM");
    const r = await run.done;
    expect(r.code).toBe(143);
    expect(r.doc.complete).toBe(false);
    expect(existsSync(file)).toBe(true);
    const rest = await start([...ARGS, "--resume", file]).done;
    expect(rest.doc.complete).toBe(true);
  }, 120_000);
});
