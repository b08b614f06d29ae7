import { describe, expect, it } from "vitest";
import { host } from "../host.js";
import type { Gen } from "../op.js";
import type { Program } from "../runtime.js";
import { measure } from "./measure.js";

const prog: Program = ({ spawn }) => {
  const h = host();
  const objs = [h.newObject("x"), h.newObject("y")];
  for (let t = 0; t < 3; t++) {
    spawn(
      `t${t}`,
      (function* (): Gen<void> {
        for (let i = 0; i < 4; i++) yield { kind: "write", obj: objs[(i + t) % 2], fn: "w", step: "w" };
      })(),
    );
  }
};

describe("measure", () => {
  it("reports executions/s and steps/s per strategy", () => {
    const rows = (["dpor", "exhaustive"] as const).map((strategy) =>
      measure(prog, { strategy, warmupMs: 50, repeat: 3, maxExecutions: 3000 }),
    );
    for (const m of rows) {
      expect(m.executions).toBeGreaterThan(0);
      expect(m.executionsPerSec).toBeGreaterThan(0);
      expect(m.stepsPerSec).toBeGreaterThan(m.executionsPerSec);
      expect(m.samples).toHaveLength(3);
      console.log(
        `[measure] ${m.strategy}: ${m.executions} executions, ${Math.round(m.executionsPerSec)} exec/s, ${Math.round(m.stepsPerSec)} steps/s, complete ${m.complete}`,
      );
    }
    expect(rows[0].complete).toBe(true);
    expect(rows[0].executions).toBeLessThan(rows[1].executions);
  });
});
