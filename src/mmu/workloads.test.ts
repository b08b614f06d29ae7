import { describe, expect, it } from "vitest";
import { runProgram } from "../engine/runtime.js";
import { RandomScheduler } from "../engine/scheduler.js";
import { PRESETS } from "./presets.js";
import { churnProgram } from "./workloads.js";

const RUNS = Number(process.env.TDPLAB_CHURN_RUNS ?? 1000);

describe("churn: vCPUs, memslot deletion, notifier, aging and dirty logging under random schedules", () => {
  it.each(PRESETS.map((p) => p.name))(`%s: ${RUNS} seeded runs, no violation`, (kernel) => {
    const features = PRESETS.find((p) => p.name === kernel)!.features;
    const program = churnProgram(features);
    let steps = 0;
    for (let seed = 1; seed <= RUNS; seed++) {
      const r = runProgram(program, { scheduler: new RandomScheduler(seed), maxSteps: 50_000 });
      steps += r.stats.steps;
      if (r.status !== "ok") {
        const v = r.violations[0];
        expect.fail(`seed ${seed}: ${v.invariant}: ${v.message} (${v.taskName} in ${v.fn})`);
      }
    }
    expect(steps).toBeGreaterThan(RUNS * 100);
  });
});
