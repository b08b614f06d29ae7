import { describe, expect, it } from "vitest";
import { CORRECT_SCENARIOS } from "./rmap_scenarios.js";
import { exploreAll, rmapProgram } from "./rmap_testkit.js";

/** Invariant 19 and every kernel-level check, over every schedule of each two-task program. */
describe("6.15 rmap lock protocol: no violation over all schedules", () => {
  for (const [name, scenario] of Object.entries(CORRECT_SCENARIOS)) {
    it(`${name} (v6.15, lockless aging)`, () => {
      const x = exploreAll(rmapProgram(scenario));
      expect(x.complete).toBe(true);
      expect(x.executions).toBeGreaterThan(1);
      expect([...x.counts.keys()]).toEqual([]);
    });
  }
});

describe("before 6.15 (v6.9): aging under the write mmu_lock, writers without the bit", () => {
  for (const [name, scenario] of Object.entries(CORRECT_SCENARIOS)) {
    it(`${name} (v6.9, locked aging)`, () => {
      const x = exploreAll(rmapProgram({ ...scenario, kernel: "v6.9" }));
      expect(x.complete).toBe(true);
      expect([...x.counts.keys()]).toEqual([]);
    });
  }
});
