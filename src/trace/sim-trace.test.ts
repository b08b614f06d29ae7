import { describe, expect, it } from "vitest";
import { spinlockScenario } from "../cli/simulate-fixtures.js";
import type { SimResult } from "../engine/sim/simulator.js";
import { buildSimTraceDoc } from "./sim-trace.js";
import { SimTraceDoc } from "./sim-trace-schema.js";

describe("the explorer's simulator trace", () => {
  it("carries a real run's tasks, steps and waits on virtual time, and validates", () => {
    const runs = spinlockScenario.run({ work: 4 }, {}, { timeline: true, seed: 0 });
    const doc = buildSimTraceDoc(
      runs.flatMap((r) => (r.results ?? []).map((result) => ({ label: r.label, kernel: r.kernel, result }))),
      spinlockScenario.name,
    );
    expect(() => SimTraceDoc.parse(JSON.parse(JSON.stringify(doc)))).not.toThrow();
    expect(doc).toMatchObject({ schemaVersion: 1, kind: "sim", scenario: "fixture-spinlock" });
    const run = doc.runs[0];
    expect(run).toMatchObject({ label: "waiter", kernel: "v6.9", status: "ok" });
    const holder = run.tasks.find((t) => t.name === "holder")!;
    const waiter = run.tasks.find((t) => t.name === "waiter")!;
    expect([holder.cpu, waiter.cpu]).toEqual([0, 1]);
    const take = run.steps.find((s) => s.task === holder.id && s.step === "spin_lock")!;
    const drop = run.steps.find((s) => s.task === holder.id && s.step === "spin_unlock")!;
    expect(take.kind).toBe("acquire");
    expect(drop.kind).toBe("release");
    // The waiter spins on its CPU from when it asks for the lock until the holder lets go.
    const spin = run.waits.filter((w) => w.task === waiter.id && w.kind === "spin");
    expect(spin.length).toBeGreaterThan(0);
    expect(spin[0].objName).toBe(take.objName);
    expect(Math.max(...spin.map((w) => w.endNs))).toBeCloseTo(drop.startNs, 6);
    for (const l of [run.steps, run.waits])
      for (let i = 1; i < l.length; i++) expect(l[i].startNs).toBeGreaterThanOrEqual(l[i - 1].startNs);
    expect(run.virtualNs).toBeGreaterThanOrEqual(run.steps.at(-1)!.endNs);
  });

  it("refuses a run simulated without a timeline", () => {
    const [r] = spinlockScenario.run({ work: 1 }, {}, { timeline: false }).flatMap((x) => x.results ?? []);
    expect(() => buildSimTraceDoc([{ label: "bare", result: r as SimResult }], "s")).toThrow(/no timeline/);
  });

  it("rejects a document with a bad span, naming the field", () => {
    const bad = {
      schemaVersion: 1,
      kind: "sim",
      tool: { name: "tdplab", version: "0" },
      scenario: "s",
      runs: [
        {
          label: "r",
          kernel: null,
          virtualNs: 10,
          status: "ok",
          tasks: [],
          steps: [],
          waits: [{ task: 0, cpu: -1, startNs: 0, endNs: 1, kind: "nap", fn: "", step: "", objName: "" }],
        },
      ],
    };
    const r = SimTraceDoc.safeParse(bad);
    expect(r.success).toBe(false);
    expect(r.error?.issues[0].path).toEqual(["runs", 0, "waits", 0, "kind"]);
  });
});
