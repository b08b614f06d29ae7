import fc from "fast-check";
import { expect } from "vitest";
import { bothWays } from "../engine/explore/testkit.js";
import type { Program } from "../engine/runtime.js";

/**
 * Random programs of 2-3 tasks over `steps`, each run under every schedule (brute force) and under
 * DPOR: the final states (`probe.last`) and violations must be the same sets. Programs with more
 * than `maxSchedules` schedules are skipped; returns the counts (programs checked, schedules,
 * DPOR executions) so a test can require that enough programs were small enough to check.
 */
export function dporMatchesBruteForce<S>(
  steps: readonly S[],
  maxSteps: number,
  program: (tasks: readonly (readonly S[])[], probe: { last: string }) => Program,
  opts: { readonly numRuns: number; readonly seed: number; readonly maxSchedules: number },
): { programs: number; schedules: number; executions: number } {
  const counts = { programs: 0, schedules: 0, executions: 0 };
  const taskArb = fc.array(fc.constantFrom(...steps), { minLength: 1, maxLength: maxSteps });
  fc.assert(
    fc.property(fc.array(taskArb, { minLength: 2, maxLength: 3 }), (tasks) => {
      const probe = { last: "" };
      const both = bothWays(
        program(tasks, probe),
        probe,
        opts.maxSchedules,
        (v) => `${v.invariant}|${v.message}`,
      );
      if (both === null) return; // too many schedules for an oracle: skip this program
      expect(both.dpor.complete).toBe(true);
      expect(both.dpor.finals).toEqual(both.brute.finals);
      expect(both.dpor.violations).toEqual(both.brute.violations);
      counts.programs++;
      counts.schedules += both.brute.executions;
      counts.executions += both.dpor.executions;
    }),
    { numRuns: opts.numRuns, seed: opts.seed },
  );
  return counts;
}
