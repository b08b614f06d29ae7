import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { host } from "../host.js";
import type { Gen } from "../op.js";
import type { Program } from "../runtime.js";
import { explore } from "./explore.js";
import {
  bruteForce,
  buildProgram,
  type GenOptions,
  type Probe,
  type ProgSpec,
  progSpec,
  violationKey,
} from "./testkit.js";

interface Compared {
  readonly traces: number;
  readonly executions: number;
  readonly blocked: number;
  readonly finalsBrute: Set<string>;
  readonly finalsDpor: Set<string>;
  readonly invBrute: Set<string>;
  readonly invDpor: Set<string>;
}

/** DPOR and brute force, both with runs continuing past violations (every run maximal). */
function compare(spec: ProgSpec): Compared {
  const b = bruteForce(spec, false);
  const probe: Probe = { last: "" };
  const finals = new Set<string>();
  const inv = new Set<string>();
  const r = explore(buildProgram(spec, probe), {
    stopOnFirstViolation: false,
    onExecution: (x) => {
      if (x.blocked) return;
      finals.add(probe.last);
      for (const v of x.violations) inv.add(violationKey(v));
    },
  });
  expect(r.complete).toBe(true);
  return {
    traces: b.traces.size,
    executions: r.executions,
    blocked: r.blockedExecutions ?? 0,
    finalsBrute: b.finals,
    finalsDpor: finals,
    invBrute: b.invariants,
    invDpor: inv,
  };
}

/** Totals over a property run, printed so the report can quote them. */
function tally(label: string, g: GenOptions, numRuns: number, seed: number): void {
  let programs = 0;
  let traces = 0;
  let executions = 0;
  let blocked = 0;
  fc.assert(
    fc.property(progSpec(g), (spec) => {
      const c = compare(spec);
      programs++;
      traces += c.traces;
      executions += c.executions;
      blocked += c.blocked;
      // Sound: the same final states and the same violations as brute force.
      expect([...c.finalsDpor].sort()).toEqual([...c.finalsBrute].sort());
      expect([...c.invDpor].sort()).toEqual([...c.invBrute].sort());
      // Optimal: exactly one execution per Mazurkiewicz trace.
      expect(c.executions).toBe(c.traces);
    }),
    { numRuns, seed },
  );
  console.log(
    `[dpor vs brute force] ${label}: ${programs} programs, ${traces} traces, ${executions} executions, ${blocked} sleep-set-blocked runs`,
  );
}

describe("dpor against brute force", () => {
  it("is optimal and sound on lock-free programs (reads, writes, rmw)", () => {
    tally("lock-free", {}, 250, 1);
  });

  it("is optimal and sound with data choices and spawned tasks", () => {
    tally("choices+spawn", { choices: true, spawns: true, violations: true }, 250, 2);
  });

  it("is sound with locks (blocking acquire); complete executions still match the traces", () => {
    tally("locks", { locks: 2, choices: true, spawns: true, violations: true }, 300, 3);
  });

  it("is optimal and sound with commuting accesses (blind adds)", () => {
    tally("commuting", { adds: true, violations: true, maxObjects: 2 }, 300, 5);
  });

  it("is sound with commuting reader sections beside blocking writers, choices and spawns", () => {
    tally(
      "reader-locks",
      { adds: true, locks: 2, readLocks: true, choices: true, spawns: true, violations: true },
      300,
      6,
    );
  });

  it("is optimal and sound with one-shot completions that waits await (AccessOp.awaits)", () => {
    tally(
      "completions",
      { completions: 2, choices: true, spawns: true, violations: true, maxTotalOps: 10 },
      300,
      8,
    );
  });

  it("gives the brute-force verdict when runs and the search stop at the first violation", () => {
    fc.assert(
      fc.property(progSpec({ locks: 1, choices: true, spawns: true, violations: true }), (spec) => {
        const b = bruteForce(spec, true);
        const r = explore(buildProgram(spec));
        expect(r.violation !== null).toBe(b.invariants.size > 0);
        if (r.violation) expect(b.invariants).toContain(violationKey(r.violation.result.violations[0]));
      }),
      { numRuns: 150, seed: 4 },
    );
  });
});

function lockers(n: number): Program {
  return ({ spawn }) => {
    const h = host();
    const l = h.newObject("l");
    const x = h.newObject("x");
    let holder = -1;
    for (let t = 0; t < n; t++) {
      spawn(
        `t${t}`,
        (function* (): Gen<void> {
          yield { kind: "acquire", obj: l, fn: "f", step: "lock", enabled: () => holder === -1 };
          holder = t;
          yield { kind: "write", obj: x, fn: "f", step: "x" };
          yield { kind: "release", obj: l, fn: "f", step: "unlock" };
          holder = -1;
        })(),
      );
    }
  };
}

describe("dpor on blocking programs", () => {
  it("explores every lock order exactly once", () => {
    for (const [n, fact] of [
      [2, 2],
      [3, 6],
      [4, 24],
    ]) {
      const r = explore(lockers(n));
      expect(r.complete).toBe(true);
      expect(r.executions).toBe(fact);
    }
  });

  it("finds an ABBA deadlock", () => {
    const prog: Program = ({ spawn }) => {
      const h = host();
      const a = h.newObject("a");
      const b = h.newObject("b");
      const held = [-1, -1];
      const ids = [a, b];
      const body = (first: number, second: number) =>
        function* (): Gen<void> {
          yield {
            kind: "acquire",
            obj: ids[first],
            fn: "f",
            step: "lock1",
            enabled: () => held[first] === -1,
          };
          held[first] = first;
          yield {
            kind: "acquire",
            obj: ids[second],
            fn: "f",
            step: "lock2",
            enabled: () => held[second] === -1,
          };
          held[second] = second;
          yield { kind: "release", obj: ids[second], fn: "f", step: "unlock2" };
          held[second] = -1;
          yield { kind: "release", obj: ids[first], fn: "f", step: "unlock1" };
          held[first] = -1;
        };
      spawn("p", body(0, 1)());
      spawn("q", body(1, 0)());
    };
    const r = explore(prog);
    expect(r.violation?.result.violations[0].invariant).toBe("deadlock");
    expect(r.violation?.replay).toMatch(/^v1\./);
  });

  it("a wait on a flag is explored both before and after the flag is set", () => {
    // q waits until p has set the flag; p sets it after writing x; q then reads x.
    const prog: Program = ({ spawn }) => {
      const h = host();
      const flag = h.newObject("flag");
      const x = h.newObject("x");
      let f = 0;
      let v = 0;
      spawn(
        "p",
        (function* (): Gen<void> {
          yield { kind: "write", obj: x, fn: "p", step: "x=1" };
          v = 1;
          yield { kind: "write", obj: flag, fn: "p", step: "flag=1" };
          f = 1;
        })(),
      );
      spawn(
        "q",
        (function* (): Gen<void> {
          yield { kind: "wait", obj: flag, fn: "q", step: "wait flag", enabled: () => f === 1 };
          yield { kind: "read", obj: x, fn: "q", step: "read x" };
          if (v !== 1) h.report({ invariant: "stale", message: "saw x=0 after the flag" });
        })(),
      );
    };
    const r = explore(prog);
    expect(r.complete).toBe(true);
    expect(r.violation).toBeNull();
    expect(r.executions).toBe(1);
  });
});

describe("bounds are reported, never silent", () => {
  const spinner: Program = ({ spawn }) => {
    const h = host();
    const x = h.newObject("x");
    let v = 0;
    spawn(
      "waiter",
      (function* (): Gen<void> {
        for (;;) {
          yield { kind: "read", obj: x, fn: "spin", step: "READ_ONCE(x)" };
          if (v === 1) return;
        }
      })(),
    );
    spawn(
      "setter",
      (function* (): Gen<void> {
        yield { kind: "write", obj: x, fn: "set", step: "WRITE_ONCE(x, 1)" };
        v = 1;
      })(),
    );
  };

  it("a spin loop is cut by the depth bound and says so", () => {
    const r = explore(spinner, { maxSteps: 20 });
    expect(r.complete).toBe(false);
    expect(r.cutBy).toContain("depth");
    expect(r.stats.depthCuts).toBeGreaterThan(0);
    // The write placed before each of the 20 reads the bound allows, plus the run where it never
    // got to run: the pending write at the cut still races with the reads before it.
    expect(r.executions).toBe(21);
  });

  it("maxExecutions and the time limit stop cleanly", () => {
    const r = explore(lockers(4), { maxExecutions: 5 });
    expect(r.complete).toBe(false);
    expect(r.cutBy).toEqual(["max-executions"]);
    expect(r.executions).toBe(5);
    expect(r.checkpoint).toBeDefined();
    const t = explore(spinner, { maxSteps: 1e9, timeLimitMs: 30, stopOnFirstViolation: false });
    expect(t.complete).toBe(false);
    expect(t.cutBy).toContain("time-limit");
  });

  it("stops at the first violation and re-runs it with a trace", () => {
    const spec: ProgSpec = {
      objects: 1,
      locks: 0,
      tasks: [[{ k: "write", o: 0 }], [{ k: "rmw", o: 0 }]],
      badModulo: 1,
    };
    const r = explore(buildProgram(spec));
    expect(r.cutBy).toEqual(["first-violation"]);
    expect(r.violation?.result.status).toBe("violation");
    expect(r.violation?.result.trace?.length).toBe(2);
  });
});
