import { describe, expect, it } from "vitest";
import { Atomic, READ_ONCE, WRITE_ONCE } from "../kernel/atomic.js";
import { bootMachine } from "../kernel/machine.js";
import { Spinlock, spin_lock, spin_unlock } from "../kernel/spinlock.js";
import { WARN_ON } from "../kernel/warn.js";
import { enumerateAll } from "./enumerate.js";
import type { Gen } from "./op.js";
import { type Program, type RunResult, runProgram } from "./runtime.js";
import { ReplayScheduler } from "./scheduler.js";

/** Tasks of the given lengths, each writing only its own object: every interleaving is distinct. */
function independent(...lengths: number[]): Program {
  return ({ spawn, host }) => {
    lengths.forEach((n, i) => {
      const o = host.newObject(`o${i}`);
      spawn(
        `t${i}`,
        (function* (): Gen<void> {
          for (let k = 0; k < n; k++) yield { kind: "write", obj: o, fn: `t${i}`, step: `s${k}` };
        })(),
      );
    });
  };
}

function factorial(n: number): number {
  return n <= 1 ? 1 : n * factorial(n - 1);
}

/** Number of interleavings of sequences of the given lengths: (sum)! / prod(len!). */
function multinomial(...lengths: number[]): number {
  return lengths.reduce((acc, n) => acc / factorial(n), factorial(lengths.reduce((a, b) => a + b, 0)));
}

const schedule = (r: RunResult): string => r.trace!.map((s) => s.task).join("");

/** Two tasks incrementing a shared counter, with or without the lock. */
function counter(locked: boolean): Program {
  return ({ spawn }) => {
    bootMachine({ needResched: "never" });
    const x = new Atomic("x");
    const l = new Spinlock("l");
    let done = 0;
    const inc = function* (): Gen<void> {
      if (locked) yield* spin_lock(l);
      const v = yield* READ_ONCE(x);
      yield* WRITE_ONCE(x, v + 1);
      if (locked) yield* spin_unlock(l);
      if (++done === 2) WARN_ON(x.v !== 2, "lost update");
    };
    spawn("a", inc());
    spawn("b", inc());
  };
}

describe("enumerateAll counts", () => {
  for (const k of [1, 2, 3, 4, 5, 6]) {
    it(`two tasks of ${k} independent steps: C(${2 * k}, ${k}) schedules, all distinct`, () => {
      const r = enumerateAll(independent(k, k), { record: true }, undefined, true);
      expect(r.complete).toBe(true);
      expect(r.executions).toBe(multinomial(k, k));
      expect(new Set(r.results!.map(schedule)).size).toBe(r.executions);
    });
  }

  it("C(2k, k) has its known values", () => {
    expect([1, 2, 3, 4, 5, 6].map((k) => multinomial(k, k))).toEqual([2, 6, 20, 70, 252, 924]);
  });

  it("three tasks of 2, 2 and 1 steps: 5!/(2!2!1!) = 30 schedules", () => {
    const r = enumerateAll(independent(2, 2, 1), { record: true }, undefined, true);
    expect(r).toMatchObject({ executions: 30, complete: true });
    expect(new Set(r.results!.map(schedule)).size).toBe(30);
  });

  it("a single task has exactly one schedule", () => {
    expect(enumerateAll(independent(5))).toMatchObject({ executions: 1, complete: true });
  });

  it("data choices multiply the schedules", () => {
    // a: write, choose(3), write; b: write. 3 interleavings x 3 values.
    const values: number[] = [];
    const p: Program = ({ spawn, host }) => {
      const o = host.newObject("o");
      const q = host.newObject("q");
      spawn(
        "a",
        (function* (): Gen<void> {
          yield { kind: "write", obj: o, fn: "a", step: "first" };
          values.push((yield { kind: "choose", n: 3, fn: "a", step: "pick" }) as number);
          yield { kind: "write", obj: o, fn: "a", step: "second" };
        })(),
      );
      spawn(
        "b",
        (function* (): Gen<void> {
          yield { kind: "write", obj: q, fn: "b", step: "only" };
        })(),
      );
    };
    const r = enumerateAll(p, { record: true }, undefined, true);
    expect(r).toMatchObject({ executions: 9, complete: true });
    const keys = r.results!.map((x) => `${schedule(x)}/${x.choices.join(",")}`);
    expect(new Set(keys).size).toBe(9);
    expect([...values].sort()).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2]);
  });

  it("a lock prunes the schedules that would overlap critical sections", () => {
    // Each task: a private write, spin_lock, spin_unlock. The task that locks
    // second may do its private write anywhere before its lock: 4 places, times
    // 2 for which task locks first = 8 (of the 20 lock-free interleavings).
    const p: Program = ({ spawn }) => {
      bootMachine({ needResched: "never" });
      const l = new Spinlock("l");
      for (const name of ["a", "b"]) {
        const mine = new Atomic(`${name}.x`);
        spawn(
          name,
          (function* (): Gen<void> {
            yield* WRITE_ONCE(mine, 1);
            yield* spin_lock(l);
            yield* spin_unlock(l);
          })(),
        );
      }
    };
    const r = enumerateAll(p, { record: true }, undefined, true);
    expect(r).toMatchObject({ executions: 8, complete: true });
    expect(new Set(r.results!.map(schedule)).size).toBe(8);
    expect(r.firstViolation).toBeNull();
  });

  it("three tasks that only lock and unlock: 3! schedules", () => {
    const p: Program = ({ spawn }) => {
      bootMachine({ needResched: "never" });
      const l = new Spinlock("l");
      for (const name of ["a", "b", "c"]) {
        spawn(
          name,
          (function* (): Gen<void> {
            yield* spin_lock(l);
            yield* spin_unlock(l);
          })(),
        );
      }
    };
    expect(enumerateAll(p)).toMatchObject({ executions: 6, complete: true });
  });

  it("every enumerated run replays to itself", () => {
    const program = counter(false);
    const r = enumerateAll(program, { record: true, stopOnViolation: false }, undefined, true);
    for (const run of r.results!) {
      const again = runProgram(program, {
        scheduler: new ReplayScheduler(run.choices),
        record: true,
        stopOnViolation: false,
      });
      expect(JSON.stringify(again)).toBe(JSON.stringify(run));
    }
  });
});

describe("enumerateAll bounds and violations", () => {
  it("maxExecutions cuts the search and says it is incomplete", () => {
    const r = enumerateAll(independent(3, 3), { maxExecutions: 5 });
    expect(r).toMatchObject({ executions: 5, complete: false, results: null, firstViolation: null });
    // A bound at or above the space size is not a cut.
    expect(enumerateAll(independent(3, 3), { maxExecutions: 20 })).toMatchObject({
      executions: 20,
      complete: true,
    });
  });

  it("finds every lost update without the lock and none with it", () => {
    const bad: RunResult[] = [];
    const r = enumerateAll(counter(false), {}, (run) => {
      if (run.status === "violation") bad.push(run);
    });
    expect(r).toMatchObject({ executions: 6, complete: true });
    // Both reads before both writes: 2 read orders x 2 write orders.
    expect(bad).toHaveLength(4);
    expect(r.firstViolation).toBe(bad[0]);
    expect(r.firstViolation!.violations[0].message).toBe("WARN_ON(lost update) in <task>");
    expect(enumerateAll(counter(true))).toMatchObject({ complete: true, firstViolation: null });
  });

  it("stopOnFirst stops at the first violating execution", () => {
    const seen: RunResult[] = [];
    const r = enumerateAll(
      counter(false),
      { stopOnFirst: true, record: true },
      (run) => seen.push(run),
      true,
    );
    // Depth-first from all-zero choices: a runs to completion first (fine), then
    // a reads, b reads, a writes, b writes: the lost update.
    expect(r.executions).toBe(2);
    expect(r.complete).toBe(false);
    expect(seen.map((x) => x.status)).toEqual(["ok", "violation"]);
    expect(r.firstViolation).toBe(seen[1]);
    expect(r.results).toEqual(seen);
    expect(schedule(r.firstViolation!)).toBe("0101");
  });

  it("visit sees every execution; results are collected only when asked", () => {
    let visits = 0;
    const r = enumerateAll(independent(2, 2), {}, () => visits++);
    expect(visits).toBe(6);
    expect(r.results).toBeNull();
  });

  it("explores schedules in depth-first order of choice indices", () => {
    const r = enumerateAll(independent(2, 1), { record: true }, undefined, true);
    expect(r.results!.map(schedule)).toEqual(["001", "010", "100"]);
  });
});
