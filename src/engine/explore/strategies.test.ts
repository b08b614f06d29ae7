import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { enumerateAll } from "../enumerate.js";
import { host } from "../host.js";
import type { Gen } from "../op.js";
import { decodeChoices } from "../replay-codec.js";
import { type Program, runProgram } from "../runtime.js";
import { ReplayScheduler } from "../scheduler.js";
import { explore } from "./explore.js";
import { buildProgram, progSpec } from "./testkit.js";

/** Two tasks increment a counter with a read and a write; `pad` private steps first. */
function lostUpdate(pad: number, tasks = 2): Program {
  return ({ spawn }) => {
    const h = host();
    const x = h.newObject("x");
    let v = 0;
    let done = 0;
    for (let t = 0; t < tasks; t++) {
      const mine = h.newObject(`private${t}`);
      spawn(
        `t${t}`,
        (function* (): Gen<void> {
          for (let i = 0; i < pad; i++) yield { kind: "write", obj: mine, fn: "work", step: `step ${i}` };
          yield { kind: "read", obj: x, fn: "inc", step: "load" };
          const r = v;
          yield { kind: "write", obj: x, fn: "inc", step: "store" };
          v = r + 1;
          if (++done === tasks && v !== tasks)
            h.report({ invariant: "lost-update", message: `counter ${v}` });
        })(),
      );
    }
  };
}

/** t1 publishes a pointer after `pad` steps of initialisation; t0 uses it if set (a depth-1 ordering bug). */
function useBeforeInit(pad: number): Program {
  return ({ spawn }) => {
    const h = host();
    const ptr = h.newObject("ptr");
    const init = h.newObject("init");
    let p = 0;
    let ready = false;
    spawn(
      "user",
      (function* (): Gen<void> {
        for (let i = 0; i < pad; i++)
          yield { kind: "read", obj: h.newObject(`u${i}`), fn: "user", step: "work" };
        yield { kind: "read", obj: ptr, fn: "user", step: "load ptr" };
        if (p !== 0) {
          yield { kind: "read", obj: init, fn: "user", step: "use" };
          if (!ready) h.report({ invariant: "uninit", message: "used before init" });
        }
      })(),
    );
    spawn(
      "publisher",
      (function* (): Gen<void> {
        yield { kind: "write", obj: ptr, fn: "publish", step: "store ptr (too early)" };
        p = 1;
        for (let i = 0; i < pad; i++)
          yield { kind: "write", obj: h.newObject(`w${i}`), fn: "init", step: "work" };
        yield { kind: "write", obj: init, fn: "init", step: "init" };
        ready = true;
      })(),
    );
  };
}

describe("bounded and exhaustive", () => {
  it("exhaustive enumerates exactly the schedules of the naive enumerator", () => {
    fc.assert(
      fc.property(progSpec({ locks: 1, choices: true, spawns: true }), (spec) => {
        const p = buildProgram(spec);
        const naive = enumerateAll(p);
        const r = explore(p, { strategy: "exhaustive", stopOnFirstViolation: false });
        expect(r.complete).toBe(true);
        expect(r.executions).toBe(naive.executions);
      }),
      { numRuns: 60, seed: 5 },
    );
  });

  it("bounded with a large bound equals exhaustive", () => {
    fc.assert(
      fc.property(progSpec({ locks: 1, choices: true }), (spec) => {
        const p = buildProgram(spec);
        const ex = explore(p, { strategy: "exhaustive", stopOnFirstViolation: false });
        const b = explore(p, { strategy: "bounded", preemptionBound: 100, stopOnFirstViolation: false });
        expect(b.complete).toBe(true);
        expect(b.cutBy).toEqual([]);
        expect(b.executions).toBe(ex.executions);
      }),
      { numRuns: 60, seed: 6 },
    );
  });

  it("a small bound prunes, and says so", () => {
    const full = explore(lostUpdate(2), { strategy: "exhaustive", stopOnFirstViolation: false });
    const b0 = explore(lostUpdate(2), {
      strategy: "bounded",
      preemptionBound: 0,
      stopOnFirstViolation: false,
    });
    const b1 = explore(lostUpdate(2), {
      strategy: "bounded",
      preemptionBound: 1,
      stopOnFirstViolation: false,
    });
    expect(b0.complete).toBe(false);
    expect(b0.cutBy).toEqual(["preemptions"]);
    expect(b0.executions).toBe(2);
    expect(b0.stats.violatingExecutions).toBe(0);
    // The lost update needs one preemption.
    expect(b1.stats.violatingExecutions).toBeGreaterThan(0);
    expect(b1.executions).toBeLessThan(full.executions);
  });
});

describe("sampling strategies", () => {
  for (const strategy of ["random", "pct"] as const) {
    it(`${strategy} finds a depth-1 and a depth-2 bug with a fixed seed`, () => {
      const d1 = explore(useBeforeInit(6), { strategy, seed: 7n, maxExecutions: 500, pctDepth: 2 });
      expect(d1.violation?.result.violations[0].invariant).toBe("uninit");
      const d2 = explore(lostUpdate(6), { strategy, seed: 7n, maxExecutions: 500, pctDepth: 2 });
      expect(d2.violation?.result.violations[0].invariant).toBe("lost-update");
      // The replay string reproduces it.
      const again = runProgram(lostUpdate(6), {
        scheduler: new ReplayScheduler(decodeChoices(d2.violation!.replay)),
      });
      expect(again.violations[0]?.invariant).toBe("lost-update");
    });

    it(`${strategy}: the same seed gives the same executions; sampling is never complete`, () => {
      const runs = (seed: bigint) => {
        const seen: string[] = [];
        const r = explore(lostUpdate(3, 3), {
          strategy,
          seed,
          maxExecutions: 50,
          stopOnFirstViolation: false,
          onExecution: (x) => seen.push(x.choices.join(",")),
        });
        expect(r.complete).toBe(false);
        expect(r.cutBy).toEqual(["max-executions"]);
        return seen;
      };
      const a = runs(11n);
      expect(runs(11n)).toEqual(a);
      expect(runs(12n)).not.toEqual(a);
      expect(new Set(a).size).toBeGreaterThan(5);
    });
  }

  it("pct meets its probabilistic guarantee on a depth-2 bug", () => {
    // n = 2 tasks, k = 28 steps, d = 2: each run finds it with probability >= 1/(n k^(d-1)) = 1/56.
    const r = explore(lostUpdate(12), {
      strategy: "pct",
      seed: 3n,
      maxExecutions: 560,
      stopOnFirstViolation: false,
      pctDepth: 2,
    });
    expect(r.stats.violatingExecutions).toBeGreaterThanOrEqual(5);
  });
});
