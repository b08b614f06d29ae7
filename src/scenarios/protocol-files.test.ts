import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkResolved } from "./check-testkit.js";
import { loadScenarioText } from "./load.js";
import { resolveScenario, resolveVariant } from "./resolve.js";

/** The first `n` DPOR executions of a scenario, as (executions, steps, races). */
async function firstRuns(ref: string, n: number): Promise<number[]> {
  const scenario = await resolveScenario(ref);
  const variant = await resolveVariant(null);
  const out = checkResolved(scenario, variant, { strategy: "dpor", maxExecutions: n });
  return [out.explore.executions, out.explore.steps, out.explore.stats.races];
}

describe("the whole-protocol scenarios as files (scenarios/protocol/)", () => {
  for (const k of ["v5.18", "v6.4", "v6.6"]) {
    it(`protocol-${k}.yaml explores exactly what the built-in protocol-${k} does`, async () => {
      const file = await firstRuns(`scenarios/protocol/protocol-${k}.yaml`, 60);
      expect(file).toEqual(await firstRuns(`protocol-${k}`, 60));
    });
  }

  const base = readFileSync("scenarios/protocol/protocol-v5.18.yaml", "utf8");
  const error = (text: string): string => {
    try {
      loadScenarioText(text, "p.yaml");
    } catch (e) {
      return String((e as Error).message);
    }
    return "";
  };

  it("rejects memslots that overlap or run past the guest, and faults in no memslot", () => {
    expect(
      error(base.replace("memslots: [{ base: 8, pages: 8 }]", "memslots: [{ base: 4, pages: 8 }]")),
    ).toMatch(/memslot 1 \[4, 12\) overlaps memslot 0/);
    expect(
      error(base.replace("memslots: [{ base: 8, pages: 8 }]", "memslots: [{ base: 8, pages: 9 }]")),
    ).toMatch(/memslot 1 \[8, 17\) runs past/);
    expect(
      error(base.replace("memslots: [{ base: 8, pages: 8 }]", "memslots: [{ base: 12, pages: 4 }]")),
    ).toMatch(/gfn 8 is in no memslot/);
    expect(error(base.replace("slot: 0 }", "slot: 2 }"))).toMatch(
      /memslot 2 does not exist; the VM has memslots 0..1/,
    );
  });

  it("a vcpu-rounds task owns its vCPU like a vcpu task", () => {
    expect(error(base.replace("vcpu: 1, gfns: [8]", "vcpu: 0, gfns: [8]"))).toMatch(
      /vCPU 0 already runs tasks\[0\]/,
    );
  });
});
