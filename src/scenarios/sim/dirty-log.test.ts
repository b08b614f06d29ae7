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

describe("dirty-log with huge-page backing (-s anonymous_hugetlb)", () => {
  const MiB = 2 ** 20;
  const huge = (over: Record<string, number | string | boolean> = {}) =>
    runDirtyLog({ ...defaults, bytes: 4 * MiB, vcpus: 2, backing: "2M", ...over }).metrics as Record<
      string,
      number
    >;

  it("populate maps each 2M host page with one huge SPTE: one fault per huge page, which clears all of it", () => {
    const h = huge();
    expect(h.hugeLeavesAfterPopulate).toBe(4);
    expect(h.populateFaults).toBeLessThan(8);
    // The host's first touch zeroes the whole 2M page: 511 more 4K clears than a 4K fault. The two
    // vCPUs populate in parallel, two huge pages each.
    expect((h.populateMs * 1e6) / 2).toBeGreaterThan(
      DEFAULT_COSTS.hostPageFaultNs + 511 * DEFAULT_COSTS.hostPageClearNs,
    );
    const small = runDirtyLog({ ...defaults, bytes: 4 * MiB, vcpus: 2 }).metrics as Record<string, number>;
    expect(small.hugeLeavesAfterPopulate).toBe(0);
    expect(small.populateFaults).toBeGreaterThanOrEqual(2048);
  });

  it("-g: enabling splits every huge page to 4K first with eager_page_split, and leaves them huge without", () => {
    const eager = huge({ manualProtect: false });
    const lazy = huge({ manualProtect: false, eagerSplit: false });
    expect(eager.hugeLeavesAfterEnable).toBe(0);
    expect(lazy.hugeLeavesAfterEnable).toBe(4);
    expect(eager.enableMs).toBeGreaterThan(10 * lazy.enableMs);
    // Either way every write faults once: on a 4K SPTE it write-protected, or on the huge one, which
    // the fault replaces by a table whose other 511 entries then fault too.
    expect(eager.dirtyIter1Faults).toBe(2048);
    expect(lazy.dirtyIter1Faults).toBe(2048);
  });

  it("manual protect + initially set: enabling leaves huge pages, the first CLEAR splits them", () => {
    const h = huge();
    expect(h.hugeLeavesAfterEnable).toBe(4);
    expect(h.dirtyIter1Faults).toBe(0);
    expect(h.dirtyIter2Faults).toBe(2048);
    expect(h.clearAvgMs).toBeGreaterThan(huge({ eagerSplit: false }).clearAvgMs);
  });

  it("disabling recovers huge pages: in place on 6.15, by zapping on 6.9; with 4K backing only the upper levels are walked", () => {
    const v615 = huge();
    expect(v615.hugeLeavesAfterDisable).toBe(4);
    const v69 = huge({ kernel: "v6.9" });
    expect(v69.hugeLeavesAfterDisable).toBe(0);
    const small = runDirtyLog({ ...defaults, bytes: 4 * MiB, vcpus: 2 }).metrics as Record<string, number>;
    expect(small.hugeLeavesAfterDisable).toBe(0);
    expect(v615.disableMs).toBeGreaterThan(10 * small.disableMs);
  });

  it("refuses memory per vCPU that is not a multiple of the backing page", () => {
    expect(() => huge({ bytes: 3 * MiB })).toThrow(/multiple of the backing page size 2M/);
  });
});
