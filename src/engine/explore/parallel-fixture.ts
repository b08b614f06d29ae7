import { host } from "../host.js";
import type { Gen } from "../op.js";
import type { Program } from "../runtime.js";
import { buildProgram, type ProgSpec } from "./testkit.js";

/**
 * Program factories for the parallel tests: workers import this module by
 * path and call an export with JSON arguments.
 */

export function fromSpec(spec: ProgSpec): Program {
  return buildProgram(spec);
}

/** `tasks` tasks, each doing `writes` writes spread over `objects` words. */
export function writers(a: { tasks: number; writes: number; objects: number }): Program {
  return ({ spawn }) => {
    const h = host();
    const objs = Array.from({ length: a.objects }, (_, i) => h.newObject(`x${i}`));
    for (let t = 0; t < a.tasks; t++) {
      spawn(
        `t${t}`,
        (function* (): Gen<void> {
          for (let i = 0; i < a.writes; i++) {
            yield {
              kind: i % 3 === 2 ? "read" : "write",
              obj: objs[(i * (t + 1)) % a.objects],
              fn: "w",
              step: `${i}`,
            };
          }
        })(),
      );
    }
  };
}

/** Two tasks write a word; the second, having written it twice, loops forever without yielding. */
export function spinner(): Program {
  return ({ spawn }) => {
    const h = host();
    const x = h.newObject("x");
    const write = (step: string): Gen<void> =>
      (function* () {
        yield { kind: "write", obj: x, fn: "w", step };
      })();
    spawn(
      "writer",
      (function* (): Gen<void> {
        for (let i = 0; i < 3; i++) yield* write(`${i}`);
      })(),
    );
    spawn(
      "looper",
      (function* (): Gen<void> {
        yield* write("a");
        yield* write("b");
        for (;;) {}
      })(),
    );
  };
}
