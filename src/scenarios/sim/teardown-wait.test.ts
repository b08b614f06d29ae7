import { describe, expect, it } from "vitest";
import { DEFAULT_COSTS } from "../../engine/sim/cost-model.js";
import { defunctRootZap } from "./defunct-root-zap.js";
import { teardownWait, teardownWaitScenario } from "./teardown-wait.js";

const GiB = 2 ** 30;

describe("teardown-wait (seed 000, Q1)", () => {
  const runs = teardownWaitScenario.run({ guestSize: 16 * GiB, rootLevel: 5 }, {});
  const by = (label: string) => runs.find((r) => r.label === label)!.metrics;
  // What the worker spends on one 1 GiB region, the unit between two of its yield points.
  const region = defunctRootZap({ kernel: "v5.18", guestSize: GiB }).metrics.workerZapMs!;

  it("PREEMPT_NONE with an idle worker CPU: RCU's forced quiescent state makes the worker yield", () => {
    // The worker's call_rcu()s want a grace period its own CPU holds up. After rcuUrgentQsNs the
    // tick sets need_resched(), and the worker drops mmu_lock at its next yield point.
    const m = by("none/idle");
    expect(m.rcuForcedResched!).toBeGreaterThan(0);
    const bound = (DEFAULT_COSTS.rcuUrgentQsNs + 2 * DEFAULT_COSTS.tickNs) / 1e6 + region;
    expect(m.teardownWaitMs!).toBeLessThan(bound);
    expect(m.rcuStalls).toBe(0);
  });

  it("without the forced quiescent state, teardown waits for (nearly) the whole zap and RCU stalls", () => {
    const off = teardownWait(
      { guestSize: 16 * GiB, preemption: "none" },
      { rcuUrgentQsNs: 0, rcuStallNs: 50e6 },
    );
    expect(off.teardownWaitNs).toBeGreaterThan(0.5 * off.workerZapNs);
    expect(off.result.stats.rcuForcedResched).toBe(0);
    expect(off.result.rcuStalls.length).toBeGreaterThan(0);
    expect(off.result.rcuStalls[0].cpus).toEqual([1]); // the worker's CPU
  });

  it("the wait ends when teardown holds mmu_lock, after every step of the write_lock() slow path", () => {
    // The slow path is an acquire, the atomic_or() of _QW_WAITING and the wait for readers; counting
    // the lock as held after the first of them reported a wait of 80 ns.
    const o = teardownWait({ guestSize: 16 * GiB, preemption: "none" });
    const t = o.result.perTask.find((x) => x.name === "teardown")!;
    const toLock = (t.firstStepNs ?? 0) + o.rcuWaitNs + o.teardownWaitNs;
    expect(t.doneNs! - toLock).toBeGreaterThan(0);
    expect(t.doneNs! - toLock).toBeLessThan(1_000);
    expect(o.workerYieldsBeforeTeardown).toBeGreaterThanOrEqual(1);
  });

  it("runs=LABEL makes that run alone (a 64TiB point in a quarter of the time)", () => {
    const one = teardownWaitScenario.run({ guestSize: GiB, rootLevel: 5, runs: "full/busy" }, {});
    expect(one.map((r) => r.label)).toEqual(["full/busy"]);
  });

  it("the forced quiescent state is not needed when the kernel is preemptible", () => {
    expect(by("full/idle").rcuForcedResched).toBe(0);
  });

  it("full preemption: rwlock_needbreak() makes the worker yield after the 1 GiB region it is in", () => {
    const m = by("full/idle");
    expect(m.teardownWaitMs!).toBeGreaterThan(0);
    expect(m.teardownWaitMs!).toBeLessThan(region * 1.1);
  });

  it("a busy worker CPU: need_resched() makes it yield within a slice, whatever the preemption model", () => {
    const limit = (DEFAULT_COSTS.sliceNs + 2 * DEFAULT_COSTS.tickNs) / 1e6 + region;
    expect(by("none/busy").teardownWaitMs!).toBeLessThan(limit);
    expect(by("full/busy").teardownWaitMs!).toBeLessThan(limit);
  });

  it("the PREEMPT_NONE idle wait grows with the root only when nothing forces a quiescent state", () => {
    const off = { rcuUrgentQsNs: 0 };
    const small = teardownWait({ guestSize: 4 * GiB, preemption: "none" }, off);
    const big = teardownWait({ guestSize: 16 * GiB, preemption: "none" }, off);
    expect(big.teardownWaitNs).toBeGreaterThan(3 * small.teardownWaitNs);
    const on = teardownWait({ guestSize: 64 * GiB, preemption: "none" });
    expect(on.teardownWaitNs).toBeLessThan(2 * big.teardownWaitNs);
    const fs = teardownWait({ guestSize: 4 * GiB, preemption: "full" });
    const fb = teardownWait({ guestSize: 16 * GiB, preemption: "full" });
    expect(fb.teardownWaitNs).toBeLessThan(2 * fs.teardownWaitNs + 1e6);
  });
});
