import { describe, expect, it } from "vitest";
import { Atomic, READ_ONCE, WRITE_ONCE } from "../kernel/atomic.js";
import { bootMachine } from "../kernel/machine.js";
import { Spinlock, spin_lock, spin_unlock } from "../kernel/spinlock.js";
import { WARN_ON } from "../kernel/warn.js";
import { host } from "./host.js";
import { modelFn } from "./model-fn.js";
import type { AccessKind, AccessOp, ChooseOp, Gen, SpawnOp } from "./op.js";
import { decodeChoices, encodeChoices } from "./replay-codec.js";
import { type Program, type RunObserver, Runtime, runProgram } from "./runtime.js";
import {
  RandomScheduler,
  ReplayMismatch,
  ReplayScheduler,
  RoundRobinScheduler,
  type Scheduler,
} from "./scheduler.js";
import type { Task } from "./task.js";
import { TaskAbort } from "./violation.js";

// ---- helpers ---------------------------------------------------------------

function access(kind: AccessKind, obj: number, fn: string, step: string, enabled?: () => boolean): AccessOp {
  return enabled === undefined ? { kind, obj, fn, step } : { kind, obj, fn, step, enabled };
}

function choose(n: number, fn = "t", step = "pick"): ChooseOp {
  return { kind: "choose", n, fn, step };
}

function spawnOp(name: string, body: Gen<void>, lane?: string): SpawnOp {
  return lane === undefined ? { kind: "spawn", name, body } : { kind: "spawn", name, body, lane };
}

/** A task doing `n` writes to its own object (no conflicts, no blocking). */
function* writes(obj: number, n: number, fn = "w"): Gen<void> {
  for (let i = 0; i < n; i++) yield access("write", obj, fn, `w${i}`);
}

/** Tasks of the given lengths, each writing its own object. */
function independent(...lengths: number[]): Program {
  return ({ spawn, host: h }) => {
    lengths.forEach((n, i) => {
      spawn(`t${i}`, writes(h.newObject(`o${i}`), n, `t${i}`));
    });
  };
}

/**
 * A racy program: tasks pick at random (a `choose` op) between an unlocked
 * read-modify-write, a locked one and spawning a helper, so runs differ in
 * scheduling, data choices and the task tree.
 */
const racy: Program = ({ spawn }) => {
  bootMachine({ needResched: "never" });
  const lock = new Spinlock("lock");
  const racyCounter = new Atomic("racy");
  const lockedCounter = new Atomic("locked");
  const helper = function* (name: string): Gen<void> {
    const v = yield* READ_ONCE(racyCounter);
    yield* WRITE_ONCE(racyCounter, v + 10);
    host().report({ invariant: "note", message: `${name} done at ${v}` });
  };
  const worker = function* (name: string, rounds: number): Gen<void> {
    for (let i = 0; i < rounds; i++) {
      const which = (yield choose(3, name, "which")) as number;
      if (which === 0) {
        const v = yield* READ_ONCE(racyCounter);
        yield* WRITE_ONCE(racyCounter, v + 1);
      } else if (which === 1) {
        yield* spin_lock(lock);
        const v = yield* READ_ONCE(lockedCounter);
        yield* WRITE_ONCE(lockedCounter, v + 1);
        yield* spin_unlock(lock);
      } else {
        const id = (yield spawnOp(`${name}.h${i}`, helper(`${name}.h${i}`), "helper")) as number;
        WARN_ON(id < 0, "bad child id");
      }
    }
  };
  spawn("a", worker("a", 4));
  spawn("b", worker("b", 4));
  spawn("c", worker("c", 3));
};

const recordAll = { record: true, stopOnViolation: false } as const;

function runWith(
  program: Program,
  scheduler: Scheduler,
  extra: Partial<Parameters<typeof runProgram>[1]> = {},
) {
  return runProgram(program, { scheduler, ...recordAll, ...extra });
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected an exception");
}

// ---- determinism -------------------------------------------------------------

describe("determinism", () => {
  it("replaying a random run's choices gives a byte-identical result", () => {
    for (let seed = 0n; seed < 25n; seed++) {
      const random = runWith(racy, new RandomScheduler(seed));
      expect(random.stats.steps).toBeGreaterThan(10);
      const replayed = runWith(racy, new ReplayScheduler(random.choices));
      expect(JSON.stringify(replayed)).toBe(JSON.stringify(random));
    }
  });

  it("the same replay string gives the same run, through the codec", () => {
    const random = runWith(racy, new RandomScheduler(0xc0ffeen));
    const text = encodeChoices(random.choices);
    expect(text.startsWith("v1.")).toBe(true);
    const a = runWith(racy, new ReplayScheduler(decodeChoices(text)));
    const b = runWith(racy, new ReplayScheduler(decodeChoices(text)));
    expect(JSON.stringify(a)).toBe(JSON.stringify(random));
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    expect(encodeChoices(a.choices)).toBe(text);
  });

  it("the same seed twice gives identical runs", () => {
    for (const seed of [1n, 42n, 0xffffffffffffffffn]) {
      const a = runWith(racy, new RandomScheduler(seed));
      const b = runWith(racy, new RandomScheduler(seed));
      expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    }
  });

  it("different seeds give different traces", () => {
    const traces = new Set<string>();
    for (let seed = 0n; seed < 30n; seed++) {
      traces.add(JSON.stringify(runWith(racy, new RandomScheduler(seed)).trace));
    }
    expect(traces.size).toBeGreaterThanOrEqual(25);
  });

  it("a replayed run ends with the recording used up exactly", () => {
    const random = runWith(racy, new RandomScheduler(7n));
    const replay = new ReplayScheduler(random.choices);
    runWith(racy, replay);
    expect(replay.consumed).toBe(random.choices.length);
    expect(replay.exhausted).toBe(true);
  });

  it("a replay prefix with a fallback reproduces the prefix and then follows the fallback", () => {
    const full = runWith(racy, new RandomScheduler(3n));
    const prefix = full.choices.slice(0, 5);
    const r = runWith(racy, new ReplayScheduler(prefix, new RoundRobinScheduler()));
    expect(r.choices.slice(0, 5)).toEqual(prefix);
  });
});

// ---- replay mismatches -------------------------------------------------------

describe("replay mismatch", () => {
  // t0 and t2 take 10 steps, t1 and t3 one step each.
  const program = independent(10, 1, 10, 1);

  it("names the recorded choice, the task and the enabled set", () => {
    // Steps 0 and 1 finish t1 and t3; steps 2..6 run t0; choice 7 then names the finished t3.
    const e = thrown(() => runProgram(program, { scheduler: new ReplayScheduler([1, 3, 0, 0, 0, 0, 0, 3]) }));
    expect(e).toBeInstanceOf(ReplayMismatch);
    expect(e.message).toBe("recorded choice 7 names task 3, but only tasks {0,2} are enabled at step 7");
  });

  it("reports a recording that ends too early", () => {
    const e = thrown(() => runProgram(program, { scheduler: new ReplayScheduler([1, 3]) }));
    expect(e).toBeInstanceOf(ReplayMismatch);
    expect(e.message).toBe("replay ended after 2 choices, but step 2 still has tasks {0,2} enabled");
  });

  it("a bad data choice is a mismatch, not a model error", () => {
    const p: Program = ({ spawn, host: h }) => {
      const o = h.newObject("o");
      spawn("t", writes(o, 1));
      spawn(
        "u",
        (function* (): Gen<void> {
          yield access("write", o, "u", "first");
          yield choose(3, "kvm_pick", "which");
        })(),
      );
    };
    const e = thrown(() => runProgram(p, { scheduler: new ReplayScheduler([1, 5]) }));
    expect(e).toBeInstanceOf(ReplayMismatch);
    expect(e.message).toBe("recorded choice 1 is value 5, but kvm_pick:which offers only 3 values");
  });
});

// ---- spawn and choose ----------------------------------------------------------

describe("spawn", () => {
  it("names a task spawned without a name after its id, in the setup and from a task", () => {
    const rt = new Runtime({ scheduler: new RoundRobinScheduler() });
    rt.start(({ spawn, host: h }) => {
      const o = h.newObject("o");
      const body = function* (): Gen<void> {
        yield access("write", o, "fn", "step");
      };
      spawn("", body());
      spawn(
        "named",
        (function* (): Gen<void> {
          yield spawnOp("  ", body());
          yield access("read", o, "fn", "after");
        })(),
      );
    });
    rt.runToEnd();
    expect(rt.tasks.map((t) => [t.name, t.lane])).toEqual([
      ["task0", "task0"],
      ["named", "named"],
      ["task2", "task2"],
    ]);
  });

  it("returns the child's id inline and primes the child to its first access", () => {
    const log: string[] = [];
    const rt = new Runtime({ scheduler: new RoundRobinScheduler() });
    rt.start(({ spawn, host: h }) => {
      const o = h.newObject("o");
      spawn(
        "parent",
        (function* (): Gen<void> {
          log.push(`parent runs as ${host().current.name}`);
          const child = function* (): Gen<void> {
            log.push(`child primed as ${host().current.name}`);
            yield access("write", o, "child_fn", "first");
            log.push("child resumed");
          };
          const id = yield spawnOp("child", child(), "kworker");
          log.push(`parent got ${id} as ${host().current.name}`);
          yield access("read", o, "parent_fn", "after spawn");
        })(),
      );
    });
    expect(log).toEqual(["parent runs as parent", "child primed as child", "parent got 1 as parent"]);
    const [parent, child] = rt.tasks;
    expect(child).toMatchObject({ id: 1, name: "child", parent: 0, lane: "kworker", done: false, steps: 0 });
    expect(child.pending).toMatchObject({ kind: "write", fn: "child_fn", step: "first" });
    expect(parent.pending).toMatchObject({ kind: "read", fn: "parent_fn", step: "after spawn" });
    expect(rt.stats.tasks).toBe(2);
    expect(rt.stats.steps).toBe(0);

    rt.runToEnd();
    expect(log.at(-1)).toBe("child resumed");
    const r = rt.result();
    expect(r.taskNames).toEqual(["parent", "child"]);
    expect(r.taskLanes).toEqual(["parent", "kworker"]);
    expect(r.stats.steps).toBe(2);
  });

  it("gives sequential ids, defaults the lane to the name, and lets children spawn", () => {
    const ids: number[] = [];
    const r = runProgram(
      ({ spawn, host: h }) => {
        const o = h.newObject("o");
        const leaf = (): Gen<void> => writes(o, 1);
        spawn(
          "root",
          (function* (): Gen<void> {
            ids.push(
              (yield spawnOp(
                "mid",
                (function* (): Gen<void> {
                  ids.push((yield spawnOp("leaf", leaf())) as number);
                  yield access("write", o, "mid", "w");
                })(),
              )) as number,
            );
            ids.push((yield spawnOp("leaf2", leaf())) as number);
          })(),
        );
      },
      { scheduler: new RoundRobinScheduler() },
    );
    // mid is primed inside root's spawn, so mid learns its child's id before root learns mid's.
    expect(ids).toEqual([2, 1, 3]);
    expect(r.taskNames).toEqual(["root", "mid", "leaf", "leaf2"]);
    expect(r.taskLanes).toEqual(["root", "mid", "leaf", "leaf2"]);
    expect(r.stats.tasks).toBe(4);
    expect(r.status).toBe("ok");
  });

  it("a task with no access at all finishes while being primed", () => {
    const r = runProgram(
      ({ spawn }) => {
        spawn("empty", (function* (): Gen<void> {})());
      },
      { scheduler: new RoundRobinScheduler() },
    );
    expect(r).toMatchObject({ status: "ok", stats: { steps: 0, tasks: 1, choicePoints: 0 } });
  });
});

describe("choose", () => {
  it("n = 1 answers 0 and records nothing", () => {
    const seen: number[] = [];
    let onChoice = 0;
    const r = runProgram(
      ({ spawn, host: h }) => {
        const o = h.newObject("o");
        spawn(
          "t",
          (function* (): Gen<void> {
            seen.push((yield choose(1)) as number);
            yield access("write", o, "t", "w");
            seen.push((yield choose(1)) as number);
          })(),
        );
      },
      { scheduler: new RandomScheduler(1n), observer: { onChoice: () => onChoice++ } },
    );
    expect(seen).toEqual([0, 0]);
    expect(r.choices).toEqual([]);
    expect(r.stats.choicePoints).toBe(0);
    expect(onChoice).toBe(0);
  });

  it("n >= 2 asks the scheduler and records the value", () => {
    const seen: number[] = [];
    const p: Program = ({ spawn }) => {
      spawn(
        "t",
        (function* (): Gen<void> {
          for (let i = 0; i < 6; i++) seen.push((yield choose(4)) as number);
        })(),
      );
    };
    const r = runProgram(p, { scheduler: new ReplayScheduler([3, 0, 2, 2, 1, 3]) });
    expect(seen).toEqual([3, 0, 2, 2, 1, 3]);
    expect(r.choices).toEqual([3, 0, 2, 2, 1, 3]);
    expect(r.stats.choicePoints).toBe(6);
    seen.length = 0;
    runProgram(p, { scheduler: new RoundRobinScheduler() });
    expect(seen).toEqual([0, 0, 0, 0, 0, 0]);
  });
});

// ---- violations ----------------------------------------------------------------

describe("violations", () => {
  it("a wait that runs before a completion it declares it awaits is a model-error", () => {
    const p: Program = ({ spawn, host: h }) => {
      const c = h.newObject("c");
      const o = h.newObject("o");
      // The predicate lies: it lets the wait run although nobody completed c.
      spawn(
        "w",
        (function* (): Gen<void> {
          yield {
            kind: "wait",
            obj: o,
            objs: [c],
            fn: "w",
            step: "await c",
            enabled: () => true,
            awaits: [c],
          };
        })(),
      );
    };
    const r = runProgram(p, { scheduler: new RoundRobinScheduler() });
    expect(r.violations.map((v) => v.invariant)).toEqual(["model-error"]);
    expect(r.violations[0].message).toContain("ran before c was completed");
  });

  it("completing an object twice is a model-error; once, then awaiting it, is fine", () => {
    const run = (twice: boolean) =>
      runProgram(
        ({ spawn, host: h }) => {
          const c = h.newObject("c");
          let done = false;
          spawn(
            "a",
            (function* (): Gen<void> {
              yield { kind: "write", obj: c, fn: "a", step: "complete", completes: true };
              done = true;
              if (twice) yield { kind: "write", obj: c, fn: "a", step: "complete again", completes: true };
            })(),
          );
          spawn(
            "b",
            (function* (): Gen<void> {
              yield { kind: "wait", obj: c, fn: "b", step: "await c", enabled: () => done, awaits: [c] };
            })(),
          );
        },
        { scheduler: new RoundRobinScheduler() },
      );
    expect(run(false).status).toBe("ok");
    const r = run(true);
    expect(r.violations.map((v) => v.invariant)).toEqual(["model-error"]);
    expect(r.violations[0].message).toContain("already completed");
  });

  it("an exception in model code becomes a model-error and stops the run", () => {
    const p: Program = ({ spawn, host: h }) => {
      const o = h.newObject("o");
      spawn(
        "bad",
        (function* (): Gen<void> {
          yield access("write", o, "bad", "w");
          throw new TypeError("boom");
        })(),
      );
      spawn("good", writes(h.newObject("p"), 5));
    };
    // Even with stopOnViolation off, a broken model cannot be trusted to continue.
    const r = runProgram(p, { scheduler: new ReplayScheduler([0]), stopOnViolation: false });
    expect(r.status).toBe("violation");
    expect(r.violations).toHaveLength(1);
    const v = r.violations[0];
    expect(v).toMatchObject({
      invariant: "model-error",
      message: "TypeError: boom",
      task: 0,
      taskName: "bad",
    });
    expect(v.step).toBe(0);
    expect(typeof v.details.stack).toBe("string");
    expect(v.details.stack).toContain("runtime.test.ts");
    expect(r.stats.steps).toBe(1);
  });

  it("a thrown non-Error is reported as an Error", () => {
    const r = runProgram(
      ({ spawn }) => {
        spawn(
          "bad",
          (function* (): Gen<void> {
            if (host().current.id === 0) throw "just a string";
            yield choose(1);
          })(),
        );
      },
      { scheduler: new RoundRobinScheduler() },
    );
    expect(r.violations[0]).toMatchObject({
      invariant: "model-error",
      message: "Error: just a string",
      step: -1,
    });
  });

  it("TaskAbort (BUG) ends only its task; others go on when stopOnViolation is off", () => {
    const p: Program = ({ spawn, host: h }) => {
      const o = h.newObject("o");
      spawn(
        "dies",
        (function* (): Gen<void> {
          yield access("write", o, "dies", "w");
          throw new TaskAbort("BUG: kaput in kvm_thing");
        })(),
      );
      spawn("lives", writes(h.newObject("p"), 4));
    };
    const keepGoing = runProgram(p, { scheduler: new ReplayScheduler([0]), stopOnViolation: false });
    expect(keepGoing.violations).toEqual([
      {
        invariant: "BUG",
        message: "BUG: kaput in kvm_thing",
        task: 0,
        taskName: "dies",
        step: 0,
        fn: "<task>",
        details: {},
      },
    ]);
    expect(keepGoing.stats.steps).toBe(5);

    const stop = runProgram(p, { scheduler: new ReplayScheduler([0]) });
    expect(stop.violations.map((v) => v.invariant)).toEqual(["BUG"]);
    expect(stop.stats.steps).toBe(1);
  });

  it("a report names the task, the step and the innermost model function", () => {
    const kvm_inner = modelFn("kvm_inner", function* (o: number): Gen<void> {
      yield access("write", o, "kvm_inner", "w");
      WARN_ON(true, "inner is unhappy", { o });
    });
    const kvm_outer = modelFn("kvm_outer", function* (o: number): Gen<void> {
      yield access("read", o, "kvm_outer", "r");
      yield* kvm_inner(o);
    });
    const r = runProgram(
      ({ spawn, host: h }) => {
        spawn("vcpu0", kvm_outer(h.newObject("o")));
      },
      { scheduler: new RoundRobinScheduler() },
    );
    expect(r.violations).toEqual([
      {
        invariant: "WARN",
        message: "WARN_ON(inner is unhappy) in kvm_inner",
        task: 0,
        taskName: "vcpu0",
        step: 1,
        fn: "kvm_inner",
        details: { o: 0 },
      },
    ]);
  });

  it("stopOnViolation (the default) stops at the first report; off collects them all", () => {
    const p: Program = ({ spawn, host: h }) => {
      for (const name of ["a", "b"]) {
        const o = h.newObject(name);
        spawn(
          name,
          (function* (): Gen<void> {
            for (let i = 0; i < 3; i++) {
              yield access("write", o, name, "w");
              host().report({ invariant: "tick", message: `${name}${i}` });
            }
          })(),
        );
      }
    };
    const stop = runProgram(p, { scheduler: new RoundRobinScheduler() });
    expect(stop.violations.map((v) => v.message)).toEqual(["a0"]);
    expect(stop.stats.steps).toBe(1);
    const all = runProgram(p, { scheduler: new RoundRobinScheduler(), stopOnViolation: false });
    expect(all.violations.map((v) => v.message)).toEqual(["a0", "b0", "a1", "b1", "a2", "b2"]);
    expect(all.violations.map((v) => v.step)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(all.stats.steps).toBe(6);
    expect(all.status).toBe("violation");
  });

  it("a violation during setup stops the run before any step", () => {
    const r = runProgram(
      ({ spawn, host: h }) => {
        h.report({ invariant: "setup", message: "bad config" });
        spawn("t", writes(h.newObject("o"), 3));
      },
      { scheduler: new RoundRobinScheduler() },
    );
    expect(r.violations[0]).toMatchObject({ invariant: "setup", task: -1, taskName: "setup", step: -1 });
    expect(r.stats.steps).toBe(0);
  });
});

// ---- checks --------------------------------------------------------------------

describe("checks", () => {
  /** Two tasks each bump a counter 3 times; a check watches it. */
  function counting(limit: number, calls: number[], extra?: () => void): Program {
    return ({ spawn, host: h }) => {
      const c = { v: 0 };
      const o = h.newObject("c");
      h.addCheck("counter-below-limit", () => {
        // Checks run with the runtime as host, between steps (no task).
        calls.push(host().stepIndex);
        expect(host().current.id).toBe(-1);
        if (c.v >= limit) host().report({ invariant: "limit", message: `counter reached ${c.v}` });
      });
      if (extra) h.addCheck("second", extra);
      for (const name of ["a", "b"]) {
        spawn(
          name,
          (function* (): Gen<void> {
            for (let i = 0; i < 3; i++) {
              yield access("rmw", o, name, "inc");
              c.v++;
            }
          })(),
        );
      }
    };
  }

  it("run after every step", () => {
    const calls: number[] = [];
    const r = runProgram(counting(100, calls), { scheduler: new RoundRobinScheduler() });
    expect(r.status).toBe("ok");
    expect(calls).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("can stop the run; later checks of that step are skipped", () => {
    const calls: number[] = [];
    let second = 0;
    const r = runProgram(
      counting(3, calls, () => second++),
      { scheduler: new RoundRobinScheduler() },
    );
    expect(r.violations).toEqual([
      {
        invariant: "limit",
        message: "counter reached 3",
        task: -1,
        taskName: "setup",
        step: 2,
        fn: "<task>",
        details: {},
      },
    ]);
    expect(r.stats.steps).toBe(3);
    expect(calls).toEqual([0, 1, 2]);
    expect(second).toBe(2);
  });

  it("keep reporting after each step when stopOnViolation is off", () => {
    const calls: number[] = [];
    const r = runProgram(counting(3, calls), {
      scheduler: new RoundRobinScheduler(),
      stopOnViolation: false,
    });
    expect(r.violations.map((v) => `${v.step}:${v.message}`)).toEqual([
      "2:counter reached 3",
      "3:counter reached 4",
      "4:counter reached 5",
      "5:counter reached 6",
    ]);
  });

  it("run with the runtime as host when an explorer drives execute() itself", () => {
    const calls: number[] = [];
    const rt = new Runtime({ scheduler: new RoundRobinScheduler() });
    rt.start(counting(100, calls));
    for (let en = rt.enabled(); en.length > 0; en = rt.enabled()) rt.execute(en[en.length - 1], en);
    expect(calls).toEqual([0, 1, 2, 3, 4, 5]);
    expect(rt.result().trace).toBeNull();
    expect(() => host()).toThrow("model code ran outside an engine run");
  });
});

// ---- observer ------------------------------------------------------------------

describe("RunObserver", () => {
  it("sees spawns, choices and steps in order, each step before it executes", () => {
    const events: string[] = [];
    const effects: string[] = [];
    const ids = (ts: readonly Task[]): string => ts.map((t) => t.id).join(",");
    const observer: RunObserver = {
      onSpawn: (child, parent) => events.push(`spawn ${child.name}#${child.id} by ${parent}`),
      onChoice: (i, t, op, n, v) => events.push(`choice@${i} ${t.name} ${op.step} ${v}/${n}`),
      onStep: (i, t, op, en) => events.push(`step ${i} ${t.name} ${op.step} [${ids(en)}] after {${effects}}`),
    };
    const p: Program = ({ spawn, host: h }) => {
      const o = h.newObject("o");
      spawn(
        "a",
        (function* (): Gen<void> {
          const v = (yield choose(2, "a", "coin")) as number;
          yield access("write", o, "a", `a-write-${v}`);
          effects.push("a");
        })(),
      );
      spawn(
        "b",
        (function* (): Gen<void> {
          yield spawnOp(
            "c",
            (function* (): Gen<void> {
              yield access("write", o, "c", "c-write");
              effects.push("c");
            })(),
          );
          yield access("write", o, "b", "b-write");
          effects.push("b");
        })(),
      );
    };
    const r = runProgram(p, { scheduler: new RoundRobinScheduler(), observer });
    expect(events).toEqual([
      "spawn a#0 by -1",
      "choice@-1 a coin 0/2",
      "spawn b#1 by -1",
      "spawn c#2 by 1",
      "step 0 a a-write-0 [0,1,2] after {}",
      "step 1 b b-write [1,2] after {a}",
      "step 2 c c-write [2] after {a,b}",
    ]);
    expect(r.choices).toEqual([0, 0, 1]);
    expect(r.stats).toEqual({ steps: 3, tasks: 3, choicePoints: 3, maxEnabled: 3 });
  });
});

// ---- scheduling ----------------------------------------------------------------

describe("scheduling", () => {
  it("round-robin interleaves tasks in id order", () => {
    const r = runProgram(independent(3, 3, 3), { scheduler: new RoundRobinScheduler(), record: true });
    expect(r.trace!.map((s) => s.task)).toEqual([0, 1, 2, 0, 1, 2, 0, 1, 2]);
    // The last step had only t2 left: no choice recorded there.
    expect(r.choices).toEqual([0, 1, 2, 0, 1, 2, 0, 1]);
  });

  it("round-robin skips finished tasks", () => {
    const r = runProgram(independent(1, 3, 2), { scheduler: new RoundRobinScheduler(), record: true });
    expect(r.trace!.map((s) => s.task)).toEqual([0, 1, 2, 1, 2, 1]);
  });

  it("a blocked task is not offered until its access is enabled", () => {
    const offered: string[] = [];
    const p: Program = ({ spawn, host: h }) => {
      const flag = { set: false };
      const f = h.newObject("flag");
      spawn(
        "waiter",
        (function* (): Gen<void> {
          yield access("wait", f, "waiter", "wait for flag", () => flag.set);
          yield access("read", f, "waiter", "after");
        })(),
      );
      spawn(
        "setter",
        (function* (): Gen<void> {
          yield access("write", h.newObject("x"), "setter", "x");
          yield access("write", f, "setter", "set flag");
          flag.set = true;
          yield access("write", h.newObject("y"), "setter", "y");
        })(),
      );
    };
    const r = runProgram(p, {
      scheduler: new RoundRobinScheduler(),
      record: true,
      observer: { onStep: (_i, t, _op, en) => offered.push(`${t.id}/${en.map((e) => e.id).join("")}`) },
    });
    expect(r.trace!.map((s) => `${s.task}:${s.step}`)).toEqual([
      "1:x",
      "1:set flag",
      "0:wait for flag",
      "1:y",
      "0:after",
    ]);
    expect(offered).toEqual(["1/1", "1/1", "0/01", "1/01", "0/0"]);
    expect(r.stats).toMatchObject({ steps: 5, choicePoints: 2, maxEnabled: 2 });
  });

  it("the trace records each step's task, kind, object and labels", () => {
    const r = runProgram(
      ({ spawn }) => {
        bootMachine({ needResched: "never" });
        const l = new Spinlock("l");
        const x = new Atomic("x");
        spawn(
          "t",
          (function* (): Gen<void> {
            yield* spin_lock(l);
            yield* WRITE_ONCE(x, 1);
            yield* spin_unlock(l);
          })(),
        );
      },
      { scheduler: new RoundRobinScheduler(), record: true },
    );
    expect(r.objectNames.slice(0, 3)).toEqual(["rcu", "l", "x"]);
    expect(r.trace).toEqual([
      { task: 0, kind: "acquire", obj: 1, fn: "<task>", step: "spin_lock" },
      { task: 0, kind: "write", obj: 2, fn: "<task>", step: "WRITE_ONCE" },
      { task: 0, kind: "release", obj: 1, fn: "<task>", step: "spin_unlock" },
    ]);
  });

  it("without record the trace is null; counters still count", () => {
    const r = runProgram(independent(2, 3), { scheduler: new RandomScheduler(9n) });
    expect(r.trace).toBeNull();
    expect(r.stats).toMatchObject({ steps: 5, tasks: 2, maxEnabled: 2 });
    expect(r.stats.choicePoints).toBe(r.choices.length);
    expect(r.objectNames).toEqual(["o0", "o1"]);
  });

  it("the result is a snapshot: stats do not move with the runtime", () => {
    const rt = new Runtime({ scheduler: new RoundRobinScheduler() });
    rt.start(independent(2, 2));
    const before = rt.result();
    rt.runToEnd();
    expect(before.stats.steps).toBe(0);
    expect(rt.result().stats.steps).toBe(4);
  });
});
