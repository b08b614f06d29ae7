import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PROTOCOL_CHECK, tdplab, until } from "./test-procs.js";

/**
 * Checkpoints of --jobs runs (issue 15): written periodically and on SIGTERM, they hold the
 * subtrees that finished; a run killed with SIGKILL resumes from the last one, under --jobs, to
 * the counts of an uninterrupted run.
 */
// A fixed split deep enough (260 subtrees) that subtrees finish all through the run: with few,
// large ones the run could end between two periodic checkpoints before two had finished.
const ARGS = [...PROTOCOL_CHECK, "--jobs", "2", "--split-depth", "40"];

/** Finished subtrees in a checkpoint file (0 while it is absent or being renamed into place). */
function finishedIn(file: string): number {
  try {
    return JSON.parse(readFileSync(file, "utf8")).checkpoint.state.done.length;
  } catch {
    return 0;
  }
}

describe("checkpoints of --jobs runs", () => {
  it("SIGKILL after a periodic checkpoint, then --resume under --jobs: the uninterrupted counts", async () => {
    const whole = tdplab(ARGS);
    expect(await whole.exited).toBe(0);
    const w = JSON.parse(whole.stdout);
    expect(w.complete).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), "tdplab-pcp-"));
    const file = join(dir, "protocol-v6.4.checkpoint.json");
    const first = tdplab([...ARGS, "--out", dir, "--checkpoint-every", "1"]);
    await until(() => finishedIn(file) >= 2, 120_000, "a checkpoint with finished subtrees");
    first.child.kill("SIGKILL");
    expect(await first.exited).toBe(137);
    const rest = tdplab([...ARGS, "--out", dir, "--resume", file]);
    expect(await rest.exited).toBe(0);
    const r = JSON.parse(rest.stdout);
    expect(r.complete).toBe(true);
    expect(r.stats.executions).toBe(w.stats.executions);
    expect(r.stats.steps).toBe(w.stats.steps);
    expect(existsSync(file)).toBe(false);
  }, 240_000);

  it("SIGTERM writes a checkpoint and exits 143; a one-job resume of it is refused", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tdplab-pcp-"));
    const file = join(dir, "protocol-v6.4.checkpoint.json");
    const run = tdplab([...ARGS, "--out", dir, "--checkpoint-every", "1"]);
    await until(() => existsSync(file), 120_000, "the first checkpoint");
    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(143);
    expect(JSON.parse(run.stdout).complete).toBe(false);
    const cp = JSON.parse(readFileSync(file, "utf8"));
    expect(cp.identity.scenario).toBe("protocol-v6.4");
    expect(cp.identity.strategy).toBe("dpor");
    const one = tdplab([...PROTOCOL_CHECK, "--resume", file]);
    expect(await one.exited).toBe(2);
    expect(one.stderr).toContain("checkpoint of a parallel run");
  }, 240_000);
});
