import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { host } from "../host.js";
import type { Gen } from "../op.js";
import type { Program } from "../runtime.js";
import { explore } from "./explore.js";
import { FRONT_SAMPLES } from "./portfolio.js";
import { buildProgram, progSpec } from "./testkit.js";

/**
 * `writers` tasks each write y twice (a space of many traces), and a checker task that fails if it
 * reads the flag before writer 0 set it with its first step. DPOR explores depth-first: the
 * reversal that puts the checker first sits at the root and comes after every trace below it.
 */
function lateRootRace(writers: number): Program {
  return ({ spawn }) => {
    const h = host();
    const y = h.newObject("y");
    const flag = h.newObject("flag");
    let set = false;
    for (let t = 0; t < writers; t++) {
      spawn(
        `w${t}`,
        (function* (): Gen<void> {
          if (t === 0) {
            yield { kind: "write", obj: flag, fn: "w", step: "set flag" };
            set = true;
          }
          yield { kind: "write", obj: y, fn: "w", step: "y 1" };
          yield { kind: "write", obj: y, fn: "w", step: "y 2" };
        })(),
      );
    }
    spawn(
      "checker",
      (function* (): Gen<void> {
        yield { kind: "read", obj: flag, fn: "checker", step: "load flag" };
        if (!set) h.report({ invariant: "too-early", message: "flag not set yet" });
      })(),
    );
  };
}

describe("portfolio: DPOR with random and PCT runs beside it", () => {
  it("finds a bug at the root of the search within a few runs; plain DPOR is still deep in its first subtree", () => {
    const p = lateRootRace(5);
    const dpor = explore(p, { strategy: "dpor", maxExecutions: 2000 });
    expect(dpor.violation).toBeNull();
    const port = explore(p, { strategy: "portfolio", seed: 1n, maxExecutions: 2000 });
    expect(port.violation?.result.violations[0].invariant).toBe("too-early");
    expect(port.executions + port.stats.sampledRuns).toBeLessThan(100);
  });

  it("counts only DPOR executions, and its verdict and count equal DPOR's on random programs", () => {
    fc.assert(
      fc.property(
        progSpec({ locks: 2, choices: true, spawns: true, violations: true, completions: 1 }),
        (spec) => {
          const p = buildProgram(spec);
          const a = explore(p, { strategy: "dpor", stopOnFirstViolation: false });
          const b = explore(p, { strategy: "portfolio", seed: 3n, stopOnFirstViolation: false });
          expect(b.complete).toBe(a.complete);
          expect(b.executions).toBe(a.executions);
          expect(b.stats.violationsByInvariant).toEqual(a.stats.violationsByInvariant);
          // One sample after every DPOR run (blocked ones included) but the last, up to FRONT_SAMPLES.
          expect(b.stats.sampledRuns).toBe(
            Math.min(a.executions + (a.blockedExecutions ?? 0) - 1, FRONT_SAMPLES),
          );
        },
      ),
      { numRuns: 80, seed: 11 },
    );
  });

  it("is a function of the seed, and a resumed run ends where an uninterrupted one does", () => {
    const p = lateRootRace(3);
    const opts = { strategy: "portfolio" as const, seed: 5n, stopOnFirstViolation: false };
    const whole = explore(p, opts);
    expect(whole.complete).toBe(true);
    const again = explore(p, opts);
    expect([again.executions, again.stats.sampledRuns, again.stats.violatingExecutions]).toEqual([
      whole.executions,
      whole.stats.sampledRuns,
      whole.stats.violatingExecutions,
    ]);
    let r = explore(p, { ...opts, maxExecutions: 40 });
    let legs = 1;
    while (!r.complete) {
      expect(r.checkpoint).toBeDefined();
      r = explore(p, { ...opts, maxExecutions: r.executions + 40, resumeFrom: r.checkpoint });
      legs++;
    }
    expect(legs).toBeGreaterThan(2);
    expect(r.executions).toBe(whole.executions);
    expect(r.stats.sampledRuns).toBe(whole.stats.sampledRuns);
    expect(r.stats.violatingExecutions).toBe(whole.stats.violatingExecutions);
  });
});
