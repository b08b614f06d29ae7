import { describe, expect, it } from "vitest";
import { Atomic, READ_ONCE, WRITE_ONCE } from "../kernel/atomic.js";
import { bootMachine } from "../kernel/machine.js";
import { host } from "./host.js";
import { currentFn, modelFn, type Override } from "./model-fn.js";
import type { Gen } from "./op.js";
import { type Program, type RunResult, runProgram } from "./runtime.js";
import { RoundRobinScheduler } from "./scheduler.js";

// A small call tree of named model functions, touching shared words through
// the kernel primitives (whose ops take their label from the frame stack).
let x: Atomic;

const kvm_leaf = modelFn("kvm_leaf", function* (add: number): Gen<number> {
  const v = yield* READ_ONCE(x);
  yield* WRITE_ONCE(x, v + add);
  return v + add;
});

const kvm_middle = modelFn("kvm_middle", function* (): Gen<number> {
  yield* READ_ONCE(x);
  const a = yield* kvm_leaf(1);
  yield* READ_ONCE(x);
  return a;
});

const kvm_top = modelFn("kvm_top", function* (): Gen<number> {
  const r = yield* kvm_middle();
  yield* WRITE_ONCE(x, r * 10);
  return r;
});

function program(body: () => Gen<void>, tasks = 1): Program {
  return ({ spawn }) => {
    bootMachine({ needResched: "never" });
    x = new Atomic("x");
    for (let i = 0; i < tasks; i++) spawn(`t${i}`, body());
  };
}

function run(p: Program, overrides?: ReadonlyMap<string, Function>): RunResult {
  return runProgram(p, { scheduler: new RoundRobinScheduler(), record: true, overrides });
}

const labels = (r: RunResult): string[] => r.trace!.map((s) => `${s.task}:${s.fn}:${s.step}`);

describe("modelFn frames", () => {
  it("label every op with the innermost model function, restoring outer labels on return", () => {
    const r = run(
      program(function* () {
        yield* READ_ONCE(x);
        yield* kvm_top();
        yield* READ_ONCE(x);
      }),
    );
    expect(labels(r)).toEqual([
      "0:<task>:READ_ONCE",
      "0:kvm_middle:READ_ONCE",
      "0:kvm_leaf:READ_ONCE",
      "0:kvm_leaf:WRITE_ONCE",
      "0:kvm_middle:READ_ONCE",
      "0:kvm_top:WRITE_ONCE",
      "0:<task>:READ_ONCE",
    ]);
  });

  it("keep one stack per task, however the tasks interleave", () => {
    const r = run(
      program(function* () {
        if (host().current.id === 0) yield* kvm_top();
        else yield* kvm_leaf(5);
      }, 2),
    );
    expect(labels(r)).toEqual([
      "0:kvm_middle:READ_ONCE",
      "1:kvm_leaf:READ_ONCE",
      "0:kvm_leaf:READ_ONCE",
      "1:kvm_leaf:WRITE_ONCE",
      "0:kvm_leaf:WRITE_ONCE",
      "0:kvm_middle:READ_ONCE",
      "0:kvm_top:WRITE_ONCE",
    ]);
  });

  it("are visible through currentFn() and the task's frames while running", () => {
    const seen: string[] = [];
    const kvm_probe = modelFn("kvm_probe", function* (): Gen<void> {
      seen.push(`${currentFn()} [${host().current.frames.join(">")}]`);
      yield* READ_ONCE(x);
      seen.push(`${currentFn()} [${host().current.frames.join(">")}]`);
    });
    const kvm_caller = modelFn("kvm_caller", function* (): Gen<void> {
      yield* kvm_probe();
      seen.push(`${currentFn()} [${host().current.frames.join(">")}]`);
    });
    run(
      program(function* () {
        seen.push(currentFn());
        yield* kvm_caller();
        seen.push(`${currentFn()} [${host().current.frames.join(">")}]`);
      }),
    );
    expect(seen).toEqual([
      "<task>",
      "kvm_probe [kvm_caller>kvm_probe]",
      "kvm_probe [kvm_caller>kvm_probe]",
      "kvm_caller [kvm_caller]",
      "<task> []",
    ]);
  });

  it("are popped when a model function throws", () => {
    const kvm_fails = modelFn("kvm_fails", function* (): Gen<void> {
      yield* READ_ONCE(x);
      throw new Error("caught by the caller");
    });
    const kvm_catches = modelFn("kvm_catches", function* (): Gen<void> {
      try {
        yield* kvm_fails();
      } catch {
        // The model recovers; the failed function's frame must be gone.
      }
      yield* WRITE_ONCE(x, 1);
    });
    const r = run(
      program(function* () {
        yield* kvm_catches();
      }),
    );
    expect(labels(r)).toEqual(["0:kvm_fails:READ_ONCE", "0:kvm_catches:WRITE_ONCE"]);
    expect(r.status).toBe("ok");
  });

  it("carry the kernel name and the implementation", () => {
    expect(kvm_leaf.kernelName).toBe("kvm_leaf");
    expect(typeof kvm_leaf.impl).toBe("function");
    expect(kvm_leaf.impl).not.toBe(kvm_leaf);
  });

  it("need a running engine", () => {
    expect(() => kvm_leaf(1).next()).toThrow("model code ran outside an engine run");
    expect(() => currentFn()).toThrow("model code ran outside an engine run");
  });

  it("return the implementation's value", () => {
    const got: number[] = [];
    run(
      program(function* () {
        got.push(yield* kvm_top());
        got.push(yield* kvm_leaf(4));
      }),
    );
    expect(got).toEqual([1, 14]);
  });
});

describe("modelFn overrides", () => {
  const body = function* (): Gen<void> {
    yield* kvm_top();
  };

  it("replace the implementation for one run only", () => {
    const replaced: Override<[number], number> = function* (_original, add) {
      yield* WRITE_ONCE(x, 100 + add);
      return 100 + add;
    };
    const mutated = run(program(body), new Map([["kvm_leaf", replaced]]));
    expect(labels(mutated)).toEqual([
      "0:kvm_middle:READ_ONCE",
      // The override runs inside kvm_leaf's frame, so its ops keep the kernel label.
      "0:kvm_leaf:WRITE_ONCE",
      "0:kvm_middle:READ_ONCE",
      "0:kvm_top:WRITE_ONCE",
    ]);
    let final = -1;
    runProgram(
      (ctx) => {
        program(body)(ctx);
        ctx.host.addCheck("final", () => {
          final = x.v;
        });
      },
      { scheduler: new RoundRobinScheduler(), overrides: new Map([["kvm_leaf", replaced]]) },
    );
    expect(final).toBe(1010);

    // The next run without overrides is the original protocol again.
    const plain = run(program(body));
    expect(labels(plain)).toEqual([
      "0:kvm_middle:READ_ONCE",
      "0:kvm_leaf:READ_ONCE",
      "0:kvm_leaf:WRITE_ONCE",
      "0:kvm_middle:READ_ONCE",
      "0:kvm_top:WRITE_ONCE",
    ]);
  });

  it("may wrap the original, calling it with its own arguments", () => {
    const calls: string[] = [];
    const wrapped: Override<[number], number> = function* (original, add) {
      calls.push(`before ${add}`);
      yield* READ_ONCE(x);
      const r = yield* original(add * 2);
      calls.push(`after ${r}`);
      return r;
    };
    const r = run(program(body), new Map([["kvm_leaf", wrapped]]));
    expect(calls).toEqual(["before 1", "after 2"]);
    expect(labels(r)).toEqual([
      "0:kvm_middle:READ_ONCE",
      "0:kvm_leaf:READ_ONCE",
      "0:kvm_leaf:READ_ONCE",
      "0:kvm_leaf:WRITE_ONCE",
      "0:kvm_middle:READ_ONCE",
      "0:kvm_top:WRITE_ONCE",
    ]);
  });

  it("apply to every call of that function and leave others alone", () => {
    let count = 0;
    const counting: Override<[number], number> = function* (original, add) {
      count++;
      return yield* original(add);
    };
    run(
      program(function* () {
        yield* kvm_leaf(1);
        yield* kvm_top();
        yield* kvm_leaf(2);
      }),
      new Map([["kvm_leaf", counting]]),
    );
    expect(count).toBe(3);
  });

  it("are what host().overrides holds during the run", () => {
    const ov = new Map<string, Function>([["kvm_other", () => {}]]);
    let seen: ReadonlyMap<string, Function> | null = null;
    run(
      program(function* () {
        seen = host().overrides;
        yield* READ_ONCE(x);
      }),
      ov,
    );
    expect(seen).toBe(ov);
    run(
      program(function* () {
        seen = host().overrides;
        yield* READ_ONCE(x);
      }),
    );
    expect(seen!.size).toBe(0);
  });
});

describe("coverage", () => {
  it("counts, per model function, the executions that entered it", async () => {
    const { explore } = await import("./explore/explore.js");
    const { host: h } = await import("./host.js");
    const always = modelFn("cov_always", function* (o: number): Gen<void> {
      yield { kind: "write", obj: o, fn: "cov_always", step: "w" };
    });
    const sometimes = modelFn("cov_sometimes", function* (): Gen<void> {});
    let flag = false;
    const r = explore(
      ({ spawn }) => {
        const o = h().newObject("o");
        flag = false;
        spawn(
          "a",
          (function* () {
            yield* always(o);
            flag = true;
          })(),
        );
        spawn(
          "b",
          (function* () {
            yield { kind: "read", obj: o, fn: "b", step: "r" };
            if (flag) yield* sometimes();
          })(),
        );
      },
      { coverage: true, stopOnFirstViolation: false },
    );
    expect(r.executions).toBe(2);
    expect(r.stats.coverage).toEqual({ cov_always: 2, cov_sometimes: 1 });
    expect(explore(() => {}, {}).stats.coverage).toBeUndefined();
  });
});
