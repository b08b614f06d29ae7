import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { host } from "../host.js";
import type { Gen } from "../op.js";
import type { Program } from "../runtime.js";
import { explore } from "./explore.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** `tasks` tasks each writing the same word `writes` times: multinomial(tasks*writes; writes...) traces. */
function writers(tasks: number, writes: number): Program {
  return ({ spawn }) => {
    const x = host().newObject("x");
    for (let t = 0; t < tasks; t++) {
      spawn(
        `t${t}`,
        (function* (): Gen<void> {
          for (let i = 0; i < writes; i++) yield { kind: "write", obj: x, fn: "w", step: `w${i}` };
        })(),
      );
    }
  };
}

describe("memory", () => {
  it("is bounded by the depth of an execution, not by the number of executions", () => {
    // 4 x 12 conflicting writes: 48!/(12!)^4 ~ 2.4e26 traces. Heap after GC every 250 executions.
    const samples: number[] = [];
    let count = 0;
    const r = explore(writers(4, 12), {
      maxExecutions: 2000,
      onExecution: () => {
        if (++count % 250 === 0) {
          gc();
          samples.push(process.memoryUsage().heapUsed);
        }
      },
    });
    expect(r.complete).toBe(false);
    expect(r.cutBy).toEqual(["max-executions"]);
    expect(r.executions).toBe(2000);
    expect(r.checkpoint).toBeDefined();
    // The DFS stack is one execution deep; the wakeup trees on it stay small.
    expect(r.stats.maxStack).toBeLessThanOrEqual(48);
    expect(r.stats.maxWakeupNodes).toBeLessThan(200);
    console.log(
      `[memory] heap after GC every 250 executions (MB): ${samples.map((b) => (b / 2 ** 20).toFixed(2)).join(" ")}; wakeup nodes <= ${r.stats.maxWakeupNodes}`,
    );
    // No growth trend: the later half is no higher than the earlier half (within 1 MB).
    const half = samples.length / 2;
    const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(avg(samples.slice(half)) - avg(samples.slice(1, half))).toBeLessThan(2 ** 20);
  });
});
