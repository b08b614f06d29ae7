import { describe, expect, it } from "vitest";
import { runProgram } from "../engine/runtime.js";
import { RandomScheduler } from "../engine/scheduler.js";
import { PRESETS } from "../mmu/presets.js";
import { BUILTIN_SCENARIOS } from "./builtin/index.js";
import { runConfigFor } from "./resolve.js";

/**
 * Seeded random schedules of every built-in scenario on every kernel preset, as merged (no
 * variant): none may violate anything. TDPLAB_RANDOM_RUNS sets the runs per scenario and preset
 * (CI default 300; set 10000 for the full budget).
 */
const RUNS = Number(process.env.TDPLAB_RANDOM_RUNS ?? 300);

/**
 * Built-in scenarios that reproduce a bug a preset really has, with the invariant that must catch it
 * there: max-gfn on v5.17 is 86931ff7207b's SPTE past host MAXPHYADDR.
 */
const KNOWN_BUGS: Readonly<Record<string, string>> = { "max-gfn@v5.17": "spte-beyond-max-gfn" };

describe("random schedules of the built-in scenarios, every preset", () => {
  for (const preset of PRESETS) {
    it(`${preset.name}: ${RUNS} seeded runs per scenario, no violation`, { timeout: 600_000 }, () => {
      const failures: string[] = [];
      let steps = 0;
      for (const s of BUILTIN_SCENARIOS) {
        const config = runConfigFor({ scenario: s, ref: s.name, features: [], variant: null }, null, {
          kernel: preset.name,
        });
        for (let seed = 0; seed < RUNS; seed++) {
          const r = runProgram(s.build(config), { scheduler: new RandomScheduler(seed), maxSteps: 100_000 });
          steps += r.stats.steps;
          const known = KNOWN_BUGS[`${s.name}@${preset.name}`];
          if (known !== undefined) {
            if (r.violations[0]?.invariant !== known)
              failures.push(`${s.name} seed ${seed}: expected ${known}, got ${r.violations[0]?.invariant}`);
            continue;
          }
          if (r.violations.length > 0) {
            const v = r.violations[0];
            failures.push(`${s.name} seed ${seed}: ${v.invariant}: ${v.message}`);
            break;
          }
        }
      }
      expect(failures).toEqual([]);
      expect(steps).toBeGreaterThan(0);
    });
  }
});
