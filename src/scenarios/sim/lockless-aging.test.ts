import { describe, expect, it } from "vitest";
import { DEFAULT_COSTS } from "../../engine/sim/cost-model.js";
import {
  type AgingDesign,
  faultLatencies,
  locklessAging,
  percentile,
  runLocklessAging,
} from "./lockless-aging.js";
import type { SimParams } from "./types.js";

/**
 * Scenario 4 (seed 004): an aging pass while vCPUs populate memory, with aging under the write
 * mmu_lock (to 6.14) and without it (6.15). The claims: the lockless pass neither waits for
 * mmu_lock nor depends on how many vCPUs fault; the locked pass makes every fault that arrives while
 * a clear_young holds the lock wait for it, so faults are slower and fewer.
 */

const defaults: SimParams = Object.fromEntries(locklessAging.params.map((p) => [p.name, p.default]));
const run = (design: AgingDesign, over: Record<string, number | string> = {}) =>
  runLocklessAging(design, { ...defaults, memory: 8 * 2 ** 20, ...over });

describe("lockless-aging (seed 004)", () => {
  const sizes = [1, 8, 32];
  const locked = sizes.map((vcpus) => run("locked", { vcpus }));
  const lockless = sizes.map((vcpus) => run("lockless", { vcpus }));

  it("both designs finish the pass and stop the vCPUs, without violations", () => {
    for (const o of [...locked, ...lockless]) {
      expect(o.results?.[0].status).toBe("ok");
      expect(o.metrics.faults).toBeGreaterThan(0);
      expect(o.metrics.notifications).toBe(4);
    }
  });

  it("lockless: the pass never waits for mmu_lock and takes the same time whatever the vCPU count", () => {
    for (const o of lockless) {
      expect(o.metrics.agingLockWaitMs).toBe(0);
      expect(o.metrics.agingPassMs).toBe(lockless[0].metrics.agingPassMs);
    }
  });

  it("locked: faults wait for the pass (slower and fewer than lockless), more so as vCPUs are added", () => {
    // Every locked fault takes and drops mmu_lock: its word's cache line is shared by all vCPUs and
    // the pass, so the locked design slows down with the vCPU count while the lockless one does not.
    const mean = (o: (typeof locked)[number]) => o.metrics.faultMeanUs as number;
    expect(mean(locked[2]) - mean(locked[0])).toBeGreaterThan(2 * (mean(lockless[2]) - mean(lockless[0])));
    sizes.forEach((n, i) => {
      const l = locked[i].metrics;
      const f = lockless[i].metrics;
      expect(l.faultP50Us as number, `N=${n}`).toBeGreaterThan(f.faultP50Us as number);
      expect(l.faultMeanUs as number, `N=${n}`).toBeGreaterThan(f.faultMeanUs as number);
      expect(l.faults as number, `N=${n}`).toBeLessThan(f.faults as number);
    });
  });

  it("lockless faults cost what E6 says a populate fault costs: 20-24 µs of host fault plus the walk", () => {
    const lat = lockless[1].latencies;
    const lo = DEFAULT_COSTS.hostPageFaultNs;
    const hi = lo + 4 * DEFAULT_COSTS.hostPageFaultSpreadNs;
    expect(percentile(lat, 0)!).toBeGreaterThanOrEqual(lo);
    expect(percentile(lat, 0.99)!).toBeLessThan(hi + 2_000);
  });

  it("one page per notification (page_idle): the locked pass is slower than the lockless one", () => {
    const l = run("locked", { vcpus: 8, memory: 2 * 2 ** 20, chunk: 4096 });
    const f = run("lockless", { vcpus: 8, memory: 2 * 2 ** 20, chunk: 4096 });
    expect(l.metrics.notifications).toBe(512);
    expect(l.metrics.agingPassMs as number).toBeGreaterThan(f.metrics.agingPassMs as number);
  });

  it("fault latencies come from the timeline, one per fault of the task", () => {
    const o = runLocklessAging(
      "lockless",
      { ...defaults, memory: 2 * 2 ** 20, vcpus: 2 },
      {},
      { timeline: true },
    );
    const r = o.results![0];
    expect(r.timeline).toBeDefined();
    const per = [0, 1].map((v) => faultLatencies(r, `vcpu${v}`).length);
    expect(per[0] + per[1]).toBe(o.metrics.faults);
  });
});
