import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { exploreParallel, Totals } from "./parallel.js";
import { JobStalled } from "./pool-watch.js";
import { emptyStats } from "./types.js";

const fixture = fileURLToPath(new URL("./parallel-fixture.ts", import.meta.url));

describe("jobs on worker threads, watched", () => {
  it("a task that loops without yielding in a job stops the run with where it loops", async () => {
    const t0 = performance.now();
    const run = exploreParallel(
      { module: fixture, export: "spinner" },
      { jobs: 2, watch: { stepTimeoutMs: 300, choiceCapacity: 1000 } },
    );
    const e = await run.then(
      () => null,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(JobStalled);
    const s = (e as JobStalled).stalled;
    expect(s.beacon.task).toBe("looper");
    expect(s.beacon.fn).toBe("<task>");
    expect(s.stalledMs).toBeGreaterThanOrEqual(300);
    // The choices of the stalled run so far replay to the loop.
    expect(s.beacon.choices?.length).toBeGreaterThan(0);
    // Thread start-up (tsx) included: seconds, not the forever of an unwatched job.
    expect(performance.now() - t0).toBeLessThan(20_000);
  });

  it("a stop keeps what the running jobs did: they answer with their executions", async () => {
    const ac = new AbortController();
    const spec = { module: fixture, export: "writers", args: { tasks: 4, writes: 12, objects: 2 } };
    // Split at depth 1: a few long jobs, all still running when the stop comes.
    const run = exploreParallel(spec, {
      jobs: 2,
      splitDepth: 1,
      signal: ac.signal,
      stopOnFirstViolation: false,
    });
    // Late enough that the threads have loaded the program (seconds through tsx on a busy machine).
    setTimeout(() => ac.abort(), 6000);
    const t0 = performance.now();
    const r = await run;
    expect(r.complete).toBe(false);
    expect(r.cutBy).toContain("interrupted");
    expect(r.executions).toBeGreaterThan(0);
    // The jobs answered within the grace, not at their end.
    expect(performance.now() - t0).toBeLessThan(6000 + 3000);
  });

  it("a time limit: the running jobs' executions count, and the run says time-limit, not interrupted", async () => {
    const spec = { module: fixture, export: "writers", args: { tasks: 4, writes: 12, objects: 2 } };
    const r = await exploreParallel(spec, {
      jobs: 2,
      splitDepth: 1,
      timeLimitMs: 6000,
      stopOnFirstViolation: false,
    });
    expect(r.cutBy).toEqual(["time-limit"]);
    expect(r.executions).toBeGreaterThan(0);
  });

  it("once the run stops, a job's own 'interrupted' (it was asked to end) is not the run's reason", () => {
    const t = new Totals();
    const out = {
      executions: 3,
      blocked: 0,
      steps: 9,
      exhausted: false,
      cutBy: ["interrupted", "depth"] as const,
      stats: emptyStats(),
      violationChoices: null,
      violationIndex: -1,
    };
    t.stopping = true;
    t.add({ ...out, cutBy: [...out.cutBy] });
    expect([...t.cut]).toEqual(["depth"]);
    expect(t.executions).toBe(3);
  });
});
