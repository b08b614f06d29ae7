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

  it("PREEMPT_NONE with an idle worker CPU: teardown waits for (nearly) the whole zap", () => {
    const m = by("none/idle");
    expect(m.teardownWaitMs!).toBeGreaterThan(0.5 * m.workerZapMs!);
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

  it("the PREEMPT_NONE idle wait grows with the root; the preemptible one does not", () => {
    const small = teardownWait({ guestSize: 4 * GiB, preemption: "none" });
    const big = teardownWait({ guestSize: 16 * GiB, preemption: "none" });
    expect(big.teardownWaitNs).toBeGreaterThan(3 * small.teardownWaitNs);
    const fs = teardownWait({ guestSize: 4 * GiB, preemption: "full" });
    const fb = teardownWait({ guestSize: 16 * GiB, preemption: "full" });
    expect(fb.teardownWaitNs).toBeLessThan(2 * fs.teardownWaitNs + 1e6);
  });
});
