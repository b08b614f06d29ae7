import { describe, expect, it } from "vitest";
import {
  DOCUMENT,
  describeValue,
  editDistance,
  formatIssue,
  formatPath,
  MAX_ISSUES,
  ScenarioError,
  suggest,
} from "./errors.js";

describe("formatPath", () => {
  it("writes dotted keys and indexed list entries", () => {
    expect(formatPath(["tasks", 2, "faults", 0, "gfn"])).toBe("tasks[2].faults[0].gfn");
    expect(formatPath(["vm", "rootLevel"])).toBe("vm.rootLevel");
    expect(formatPath([])).toBe(DOCUMENT);
  });
  it("quotes keys that are not plain identifiers", () => {
    expect(formatPath(["features", "a b"])).toBe('features["a b"]');
    expect(formatPath(["", "x"])).toBe('[""].x');
  });
});

describe("ScenarioError", () => {
  const issues = [
    { line: 9, col: 3, field: "tasks[1].slot", message: "later" },
    { line: 4, col: 5, field: "vm.rootLevel", message: "first" },
  ];
  it("reports the first issue in file order as file:line:col: field: message", () => {
    const e = new ScenarioError("a.yaml", issues);
    expect(e.toString()).toBe("a.yaml:4:5: vm.rootLevel: first");
    expect([e.file, e.line, e.col, e.field, e.message]).toEqual(["a.yaml", 4, 5, "vm.rootLevel", "first"]);
    expect(e.exitCode).toBe(2);
    expect(e).toBeInstanceOf(Error);
    expect(e.report()).toBe("a.yaml:4:5: vm.rootLevel: first\na.yaml:9:3: tasks[1].slot: later");
  });
  it("omits the position when there is none", () => {
    expect(formatIssue("x.yaml", { line: 0, col: 0, field: DOCUMENT, message: "m" })).toBe(
      "x.yaml: (document): m",
    );
  });
  it("drops repeated issues and keeps at most MAX_ISSUES", () => {
    const same = { line: 1, col: 1, field: "a", message: "m" };
    expect(new ScenarioError("f", [same, same]).issues).toEqual([same]);
    const many = Array.from({ length: MAX_ISSUES + 7 }, (_, i) => ({ ...same, line: i + 1 }));
    const e = new ScenarioError("f", many);
    expect(e.issues).toHaveLength(MAX_ISSUES);
    expect(e.omitted).toBe(7);
    expect(e.report().split("\n").at(-1)).toBe("f: 7 more issues not shown");
  });

  it("elides very long field paths", () => {
    expect(formatPath(["a", ...Array(20).fill(0), "b", "c"])).toBe(
      "a[0][0][0][0][0][0][0]...(11 more)...[0][0].b.c",
    );
    expect(formatPath(["x".repeat(50)])).toBe(`["${"x".repeat(37)}..."]`);
  });

  it("needs an issue", () => {
    expect(() => new ScenarioError("a", [])).toThrow(TypeError);
  });
});

describe("messages helpers", () => {
  it("describes values briefly", () => {
    expect(describeValue("x".repeat(100))).toMatch(/^a string \("x{37}\.\.\."\)$/);
    expect(describeValue(Number.POSITIVE_INFINITY)).toBe("Infinity");
    expect(describeValue(Number.NaN)).toBe("NaN");
    expect(describeValue(1.5)).toBe("the number 1.5");
    expect(describeValue([])).toBe("a list");
    expect(describeValue({})).toBe("a mapping");
    expect(describeValue(undefined)).toBe("nothing");
  });
  it("suggests close names only", () => {
    expect(editDistance("fualts", "faults")).toBe(1);
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(editDistance("", "abc")).toBe(3);
    expect(suggest("fualts", ["kind", "faults", "range"])).toBe("faults");
    expect(suggest("asyncZapWroker", ["asyncZapWorker", "defunctRoots"])).toBe("asyncZapWorker");
    expect(suggest("zzz", ["kind", "faults"])).toBeUndefined();
  });
});
