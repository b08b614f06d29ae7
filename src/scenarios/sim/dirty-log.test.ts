import { describe, expect, it } from "vitest";
import { DEFAULT_COSTS } from "../../engine/sim/cost-model.js";
import { dirtyLog, runDirtyLog } from "./dirty-log.js";
import type { SimParams } from "./types.js";

/**
 * Scenario 5a: dirty_log_perf_test. Each phase must cost what its kernel work costs: populating is
 * one host page fault per page; with MANUAL_PROTECT + INITIALLY_SET the first dirty pass faults on
 * nothing and the first CLEAR write-protects every page, so the second pass takes one
 * write-protection fault per page; without manual protect (-g), enabling and every GET do the
 * write-protecting instead.
 */

const defaults: SimParams = Object.fromEntries(dirtyLog.params.map((p) => [p.name, p.default]));
const PAGES = 1024;
const run = (over: Record<string, number | string | boolean> = {}) =>
  runDirtyLog({ ...defaults, bytes: PAGES * 4096, ...over });

describe("dirty-log (dirty_log_perf_test)", () => {
  const manual = run();
  const m = manual.metrics as Record<string, number>;

  it("runs every phase to the end", () => {
    expect(manual.results?.[0].status).toBe("ok");
    for (const k of [
      "populateMs",
      "enableMs",
      "dirtyIter1Ms",
      "dirtyIter2Ms",
      "getAvgMs",
      "clearAvgMs",
      "disableMs",
    ]) {
      expect(m[k], k).not.toBeNull();
    }
  });

  it("populate: one fault per page, each paying E6's 20-24 µs host page fault", () => {
    expect(m.populateFaults).toBe(PAGES);
    const per = (m.populateMs * 1e6) / PAGES;
    const c = DEFAULT_COSTS;
    expect(per).toBeGreaterThan(c.hostPageFaultNs);
    expect(per).toBeLessThan(c.hostPageFaultNs + 4 * c.hostPageFaultSpreadNs + 3_000);
  });

  it("manual protect + initially set: iteration 1 takes no fault, iteration 2 one write-protection fault per page", () => {
    expect(m.dirtyIter1Faults).toBe(0);
    expect(m.dirtyIter2Faults).toBe(PAGES);
    expect(m.dirtyIter2Ms).toBeGreaterThan(5 * m.dirtyIter1Ms);
    // A write-protection fault through the slow path: exit + GUP + lock + walk, about E6's 1.2 µs.
    const perFault = ((m.dirtyIter2Ms - m.dirtyIter1Ms) * 1e6) / PAGES;
    expect(perFault).toBeGreaterThan(DEFAULT_COSTS.vmExitNs);
    expect(perFault).toBeLessThan(3_000);
  });

  it("CLEAR re-protects every dirty page at the per-SPTE cost of section 1 (43-75 ns), GET only copies", () => {
    const perPage = (m.clearAvgMs * 1e6) / PAGES;
    expect(perPage).toBeGreaterThan(40);
    expect(perPage).toBeLessThan(120);
    expect(m.getAvgMs).toBeLessThan(m.clearAvgMs / 10);
    expect(m.enableMs).toBeLessThan(m.clearAvgMs / 10);
  });

  it("-g (no manual protect): enabling write-protects, both iterations fault on every page, GET re-protects", () => {
    const g = run({ manualProtect: false }).metrics as Record<string, number | null>;
    expect(g.clearAvgMs).toBeNull();
    expect(g.dirtyIter1Faults).toBe(PAGES);
    expect(g.dirtyIter2Faults).toBe(PAGES);
    expect(g.enableMs as number).toBeGreaterThan(10 * m.enableMs);
    expect(g.getAvgMs as number).toBeGreaterThan(10 * m.getAvgMs);
  });

  it("-f 2: only the written half of the pages faults again", () => {
    const f = run({ writeFraction: 2 }).metrics as Record<string, number>;
    expect(f.dirtyIter2Faults).toBe(PAGES / 2);
  });

  it("more vCPUs populate in parallel: the same per-vCPU size takes about the same time", () => {
    const four = run({ vcpus: 4 }).metrics as Record<string, number>;
    expect(four.populateFaults).toBeGreaterThanOrEqual(4 * PAGES);
    expect(four.populateMs).toBeLessThan(1.5 * m.populateMs);
  });

  it("takes the published bounds (512 vCPUs, 16GiB each) and refuses, naming the budget, what it cannot simulate", async () => {
    const { planSimulation } = await import("./params.js");
    const plan = planSimulation(dirtyLog, { set: ["vcpus=512", "bytes=16GiB"] });
    expect(plan.points[0].params.vcpus).toBe(512);
    expect(() => dirtyLog.run(plan.points[0].params, {})).toThrow(
      /6442450944 page passes; at most 1048576 fit/,
    );
    expect(() => planSimulation(dirtyLog, { set: ["vcpus=513"] })).toThrow(
      /vcpus must be an integer in 1..512/,
    );
  });
});
