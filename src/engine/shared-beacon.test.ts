import { describe, expect, it } from "vitest";
import { BEACON } from "./beacon.js";
import { modelFn } from "./model-fn.js";
import type { Gen } from "./op.js";
import { runProgram } from "./runtime.js";
import { RoundRobinScheduler } from "./scheduler.js";
import { beaconBuffer, readBeacon, SharedBeacon } from "./shared-beacon.js";
import { setupTask } from "./task.js";

const task = (name: string, frames: string[] = []) => ({ ...setupTask(), id: 0, name, frames });

describe("SharedBeacon", () => {
  it("publishes the task entered, its innermost function, the step and the run's choices", () => {
    const sab = beaconBuffer({ choiceCapacity: 4 });
    const b = new SharedBeacon(sab);
    expect(readBeacon(sab)).toMatchObject({ inTask: false, task: null, fn: null });
    b.run();
    b.choice(1);
    b.choice(0);
    b.enter(task("walker-ä", ["outer"]), 7);
    const a = readBeacon(sab);
    expect(a).toMatchObject({
      inTask: true,
      task: "walker-ä",
      fn: "outer",
      step: 7,
      choices: [1, 0],
      runs: 1,
    });
    b.frame("inner");
    expect(readBeacon(sab).fn).toBe("inner");
    // Naming a function is no progress: only entering or leaving a task's code is.
    expect(readBeacon(sab).counter).toBe(a.counter);
    b.enter(task("child"), 7);
    b.leave();
    const back = readBeacon(sab);
    expect(back).toMatchObject({ inTask: true, task: "walker-ä", fn: "inner" });
    expect(back.counter).toBeGreaterThan(a.counter);
    b.leave();
    expect(readBeacon(sab).inTask).toBe(false);
  });

  it("a run with more choices than fit has no choices to show, and the next run starts afresh", () => {
    const sab = beaconBuffer({ choiceCapacity: 2 });
    const b = new SharedBeacon(sab);
    b.run();
    for (const c of [0, 1, 2]) b.choice(c);
    expect(readBeacon(sab).choices).toBeNull();
    b.run();
    b.choice(5);
    expect(readBeacon(sab).choices).toEqual([5]);
  });

  it("the runtime and model functions feed it: a task left inside a model function is named there", () => {
    const sab = beaconBuffer({ choiceCapacity: 16 });
    const seen: string[] = [];
    const inner = modelFn("beacon_test_fn", function* (): Gen<void> {
      seen.push(`${readBeacon(sab).task}/${readBeacon(sab).fn}`);
      yield { kind: "read", obj: 0, fn: "beacon_test_fn", step: "x" };
    });
    BEACON.current = new SharedBeacon(sab);
    try {
      runProgram(
        ({ spawn, host }) => {
          host.newObject("x");
          spawn(
            "t",
            (function* () {
              seen.push(`${readBeacon(sab).task}/${readBeacon(sab).fn}`);
              yield* inner();
            })(),
          );
        },
        { scheduler: new RoundRobinScheduler() },
      );
    } finally {
      BEACON.current = null;
    }
    expect(seen).toEqual(["t/<task>", "t/beacon_test_fn"]);
    expect(readBeacon(sab)).toMatchObject({ inTask: false, runs: 1 });
  });
});
