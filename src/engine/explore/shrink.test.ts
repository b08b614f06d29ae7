import { describe, expect, it } from "vitest";
import { host } from "../host.js";
import type { Gen } from "../op.js";
import { decodeChoices } from "../replay-codec.js";
import { type Program, runProgram } from "../runtime.js";
import { ReplayScheduler } from "../scheduler.js";
import { explore } from "./explore.js";
import { shrink } from "./shrink.js";

/**
 * Two incrementers (read, then write) after `pad` private steps, and a
 * bystander doing unrelated work. The lost update needs exactly one
 * preemption: an incrementer stopped between its read and its write.
 */
function counterWithBystander(pad: number): Program {
  return ({ spawn }) => {
    const h = host();
    const x = h.newObject("x");
    const other = h.newObject("other");
    let v = 0;
    let done = 0;
    for (let t = 0; t < 2; t++) {
      const mine = h.newObject(`private${t}`);
      spawn(
        `inc${t}`,
        (function* (): Gen<void> {
          for (let i = 0; i < pad; i++) yield { kind: "write", obj: mine, fn: "work", step: `step ${i}` };
          yield { kind: "read", obj: x, fn: "inc", step: "load" };
          const r = v;
          yield { kind: "write", obj: x, fn: "inc", step: "store" };
          v = r + 1;
          if (++done === 2 && v !== 2) h.report({ invariant: "lost-update", message: `counter ${v}` });
        })(),
      );
    }
    spawn(
      "bystander",
      (function* (): Gen<void> {
        for (let i = 0; i < 10; i++) yield { kind: "rmw", obj: other, fn: "bystander", step: `b${i}` };
      })(),
    );
  };
}

describe("shrink", () => {
  it("shrinks a long random counterexample to one preemption and no irrelevant steps", () => {
    const prog = counterWithBystander(5);
    const found = explore(prog, { strategy: "random", seed: 1n, maxExecutions: 1000 });
    const v = found.violation!;
    expect(v).not.toBeNull();
    const s = shrink(prog, v.choices);
    expect(s.invariant).toBe("lost-update");
    expect(s.original.preemptions).toBeGreaterThan(1);
    expect(s.preemptions).toBe(1);
    expect(s.provenMinimal).toBe(true);
    // Both incrementers' 7 steps each; the bystander does not run before the violation.
    expect(s.steps).toBe(14);
    expect(s.steps).toBeLessThan(s.original.steps);
    expect(s.result.violations[0].invariant).toBe("lost-update");
    // The replay string reproduces it.
    const again = runProgram(prog, { scheduler: new ReplayScheduler(decodeChoices(s.replay)) });
    expect(again.violations[0]?.invariant).toBe("lost-update");
    expect(again.stats.steps).toBe(14);
  });

  it("keeps the invariant: a schedule without that violation is refused", () => {
    const prog = counterWithBystander(1);
    const ok = runProgram(prog, {
      scheduler: new ReplayScheduler([], { pickTask: (e) => e[0], pickValue: () => 0 }),
    });
    expect(ok.status).toBe("ok");
    expect(() => shrink(prog, ok.choices)).toThrow(/does not produce a violation/);
  });
});
