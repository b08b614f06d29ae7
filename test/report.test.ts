import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { commandLine, Missing, ms, runStudy, type Study, studyMarkdown } from "../scripts/report-lib.js";
import { QUESTIONS } from "../scripts/report-questions.js";
import { linearFit, logSlope, scaling } from "../scripts/report-read.js";
import { FIXTURE_SCENARIOS } from "../src/cli/simulate-fixtures.js";
import { DEFAULT_COSTS } from "../src/engine/sim/cost-model.js";

const study: Study = {
  id: "fixture-size",
  scenario: "fixture-formula",
  set: ["vcpus=2"],
  sweep: "guestSize=1GiB..4GiB",
  why: "a closed-form fixture.",
  read: (r) => `sync at 4GiB: ${ms(r.get("sync", "4GiB", "vcpuBlockedMs"))}`,
};

describe("report studies", () => {
  it("run through a registry: table, plot and a reading from the numbers", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tdplab-report-"));
    const o = await runStudy(study, dir, FIXTURE_SCENARIOS);
    expect(o.kind).toBe("ran");
    if (o.kind !== "ran") return;
    expect(existsSync(join(dir, "fixture-size.svg"))).toBe(true);
    // Observable Plot draws one <g aria-label="line"> per series.
    expect(readFileSync(join(dir, "fixture-size.svg"), "utf8").match(/aria-label="line"/g)).toHaveLength(2);
    expect(o.result.points).toEqual(["1GiB", "2GiB", "4GiB"]);
    expect(o.result.labels).toEqual(["sync", "async"]);
    const md = studyMarkdown(study, o, "plots/fixture-size.svg");
    expect(md).toContain(
      "**`tdplab simulate fixture-formula --set vcpus=2 --sweep guestSize=1GiB..4GiB`** — a closed-form fixture.",
    );
    expect(md).toContain("| sync  | v5.17  | 4GiB      |");
    expect(md).toContain("![fixture-size](plots/fixture-size.svg)");
    const expected = ((4 * 2 ** 30) / 4096) * DEFAULT_COSTS.spteWriteNs;
    expect(md).toContain(`**Reading.** sync at 4GiB: ${ms(expected / 1e6)}`);
  });

  it("a missing scenario, parameter or metric is reported, not thrown", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tdplab-report-"));
    const cases: [Partial<Study>, RegExp][] = [
      [{ scenario: "nope" }, /scenario `nope` is not in this build's registry/],
      [{ sweep: "zzz=1,2" }, /is refused: --sweep: unknown key 'zzz'/],
      [{ metric: "nope" }, /`fixture-formula` has no metric `nope`/],
    ];
    for (const [change, msg] of cases) {
      const s = { ...study, ...change };
      const o = await runStudy(s, dir, FIXTURE_SCENARIOS);
      expect(o.kind).toBe("unavailable");
      expect(studyMarkdown(s, o, "")).toMatch(msg);
    }
  });

  it("a reading that lacks a number says so instead of failing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tdplab-report-"));
    const s: Study = {
      ...study,
      read: (r) => `${r.get("async", "4GiB", "workerMs")} ${r.get("sync", "4GiB", "workerMs")}`,
    };
    const o = await runStudy(s, dir, FIXTURE_SCENARIOS);
    expect(studyMarkdown(s, o, "x.svg")).toContain(
      "**Reading.** No reading: no workerMs for run sync at 4GiB.",
    );
    expect(() => {
      throw new Missing("x");
    }).toThrow(Missing);
  });

  it("command lines reproduce the study", () => {
    expect(commandLine({ ...study, kernel: "v5.18" })).toBe(
      "tdplab simulate fixture-formula --kernel v5.18 --set vcpus=2 --sweep guestSize=1GiB..4GiB",
    );
  });
});

describe("report questions", () => {
  it("cover Q1..Q11 in order, with unique plot ids", () => {
    expect(QUESTIONS.map((q) => q.id)).toEqual(Array.from({ length: 11 }, (_, i) => `Q${i + 1}`));
    const ids = QUESTIONS.flatMap((q) => q.studies.map((s) => s.id));
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe("reading helpers", () => {
  it("ms picks a unit", () => {
    expect(ms(929730.1)).toBe("930 s (15.5 min)");
    expect(ms(14.192)).toBe("14.19 ms");
    expect(ms(0.000066)).toBe("66 ns");
    expect(ms(0.2818)).toBe("281.8 µs");
  });
  it("scaling and fits", () => {
    expect(logSlope([1, 2, 4], [3, 6, 12])).toBeCloseTo(1, 12);
    expect(scaling([1, 2, 4], [3, 6, 12])).toBe("proportional to the swept value");
    expect(scaling([1, 2, 4], [5, 5, 5])).toBe("flat");
    expect(linearFit([1, 2, 3], [3, 5, 7])).toEqual({ a: 1, b: 2 });
  });
});
