import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ScenarioError } from "./errors.js";
import { LineIndex, loadScenarioFile, loadScenarioText } from "./load.js";

const EXAMPLES_DIR = fileURLToPath(new URL("../../scenarios/examples/", import.meta.url));

const BASE = `schemaVersion: 1
name: base
kernel: v5.18
vm:
  rootLevel: 4
  ptesPerTable: 2
vcpus:
  - smm: 0
tasks:
  - kind: vcpu
    vcpu: 0
    faults: [{ gfn: 0, write: true }, { gfn: 3 }]
`;

/** The error loading `text` gives, as printed (all issues). */
function errorOf(text: string, file = "s.yaml"): string {
  try {
    loadScenarioText(text, file);
  } catch (e) {
    if (e instanceof ScenarioError) return e.report();
    throw e;
  }
  throw new Error("loaded without error");
}

describe("loading valid scenarios", () => {
  it.each(readdirSync(EXAMPLES_DIR))("loads example %s", (f) => {
    const doc = loadScenarioFile(join(EXAMPLES_DIR, f));
    expect(doc.schemaVersion).toBe(1);
    expect(doc.tasks.length).toBeGreaterThan(0);
  });

  it("returns the document as written", () => {
    const doc = loadScenarioText(BASE, "s.yaml");
    expect(doc).toEqual({
      schemaVersion: 1,
      name: "base",
      kernel: "v5.18",
      vm: { rootLevel: 4, ptesPerTable: 2 },
      vcpus: [{ smm: 0 }],
      tasks: [{ kind: "vcpu", vcpu: 0, faults: [{ gfn: 0, write: true }, { gfn: 3 }] }],
    });
  });

  it("loads JSON through the same path, from .json files too", () => {
    const doc = loadScenarioText(BASE, "s.yaml");
    const dir = mkdtempSync(join(tmpdir(), "tdplab-scen-"));
    const file = join(dir, "s.json");
    writeFileSync(file, JSON.stringify(doc, null, 2));
    expect(loadScenarioFile(file)).toEqual(doc);
    expect(loadScenarioText(JSON.stringify(doc), "s.json")).toEqual(doc);
  });

  it("accepts YAML 1.1 documents, where on/off are booleans", () => {
    const doc = loadScenarioText(`%YAML 1.1\n---\n${BASE}features:\n  asyncZapWorker: off\n`, "s.yaml");
    expect(doc.features).toEqual({ asyncZapWorker: false });
  });

  it("accepts anchors and aliases", () => {
    const text = `${BASE.replace("name: base", "name: &n base")}description: *n\n`;
    expect(loadScenarioText(text, "s.yaml").description).toBe("base");
  });
});

describe("errors: file:line:col: field: message", () => {
  it("unknown key, at the key, with a suggestion and the allowed keys", () => {
    expect(errorOf(BASE.replace("    vcpu: 0\n", "    vcpu: 0\n    fualts: []\n"))).toBe(
      "s.yaml:12:5: tasks[0].fualts: unknown key 'fualts' (did you mean 'faults'?); " +
        "allowed keys: kind, name, vcpu, faults, range, iterations, hardware",
    );
    expect(errorOf(`${BASE}vm2: {}\n`)).toMatch(
      /^s\.yaml:13:1: vm2: unknown key 'vm2' \(did you mean 'vm'\?\)/,
    );
  });

  it("unknown task kind lists the known kinds", () => {
    expect(errorOf(BASE.replace("kind: vcpu", "kind: vpcu"))).toBe(
      "s.yaml:10:11: tasks[0].kind: unknown kind 'vpcu' (did you mean 'vcpu'?); known kinds: vcpu, vcpu-rounds, root-walker, memslot-delete, " +
        "notifier-invalidate, age, dirty-log-enable, dirty-log-disable, dirty-log-clear, write-track, nx-recovery, destroy-vm",
    );
    expect(errorOf(BASE.replace("  - kind: vcpu\n    vcpu", "  - vcpu"))).toMatch(
      /^s\.yaml:10:5: tasks\[0\]\.kind: missing 'kind'; known kinds: vcpu, /,
    );
  });

  it("a task kind that is not a string", () => {
    expect(errorOf(BASE.replace("kind: vcpu", "kind: {a: 1}"))).toMatch(
      /^s\.yaml:10:11: tasks\[0\]\.kind: 'kind' must be a string, got a mapping; known kinds: vcpu, /,
    );
    expect(errorOf(BASE.replace("  - kind: vcpu\n    vcpu: 0\n    faults", "  - 5\n  - faults"))).toMatch(
      /^s\.yaml:10:5: tasks\[0\]: expected a mapping, got the integer 5$/m,
    );
  });

  it("wrong types and out-of-range values", () => {
    expect(errorOf(BASE.replace("{ gfn: 3 }", "{ gfn: three }"))).toBe(
      's.yaml:12:46: tasks[0].faults[1].gfn: expected a number, got a string ("three")',
    );
    expect(errorOf(BASE.replace("ptesPerTable: 2", "ptesPerTable: 1024"))).toBe(
      "s.yaml:6:17: vm.ptesPerTable: must be at most 512, got the integer 1024",
    );
    expect(errorOf(BASE.replace("ptesPerTable: 2", "ptesPerTable: 1.5"))).toBe(
      "s.yaml:6:17: vm.ptesPerTable: expected an integer, got the number 1.5",
    );
    expect(errorOf(BASE.replace("rootLevel: 4", "rootLevel: 3"))).toBe(
      "s.yaml:5:14: vm.rootLevel: must be one of 4, 5; got the integer 3",
    );
    expect(errorOf(BASE.replace("kernel: v5.18", "kernel: 5.18"))).toBe(
      "s.yaml:3:9: kernel: must be one of v5.17, v5.18, v6.4, v6.6, v6.9, v6.15; got the number 5.18",
    );
    expect(errorOf(BASE.replace("vcpus:\n  - smm: 0", "vcpus: {smm: 0}"))).toBe(
      "s.yaml:7:8: vcpus: expected a list, got a mapping",
    );
    expect(errorOf(`${BASE}features: {asyncZapWorker: yes}\n`)).toBe(
      's.yaml:13:28: features.asyncZapWorker: must be on, off, true or false; got a string ("yes")',
    );
  });

  it("huge numbers", () => {
    expect(errorOf(BASE.replace("ptesPerTable: 2", "ptesPerTable: 1e400"))).toBe(
      "s.yaml:6:17: vm.ptesPerTable: expected a number, got Infinity",
    );
    expect(errorOf(BASE.replace("{ gfn: 3 }", "{ gfn: 123456789012345678901234567890 }"))).toBe(
      "s.yaml:12:46: tasks[0].faults[1].gfn: must be at most 35184372088832, got the integer 1.2345678901234568e+29",
    );
    expect(errorOf(BASE.replace("{ gfn: 3 }", "{ gfn: .nan }"))).toMatch(/gfn: expected a number, got NaN$/);
  });

  it("missing keys point at the enclosing mapping", () => {
    expect(errorOf(BASE.replace("  rootLevel: 4\n", ""))).toBe(
      "s.yaml:5:3: vm.rootLevel: required key is missing",
    );
    expect(errorOf(BASE.replace("schemaVersion: 1\n", ""))).toBe(
      "s.yaml:1:1: schemaVersion: required key is missing",
    );
  });

  it("schemaVersion and names", () => {
    expect(errorOf(BASE.replace("schemaVersion: 1", "schemaVersion: 2"))).toBe(
      "s.yaml:1:16: schemaVersion: unsupported schemaVersion; this tdplab reads 1",
    );
    expect(errorOf(BASE.replace("name: base", "name: Base Case"))).toBe(
      "s.yaml:2:7: name: must be lowercase letters, digits and '-', starting with a letter or digit",
    );
  });

  it("cross-field rules name the field", () => {
    expect(errorOf(BASE.replace("vcpu: 0", "vcpu: 1"))).toBe(
      "s.yaml:11:11: tasks[0].vcpu: vCPU 1 does not exist; vcpus declares 1 vCPU (id 0)",
    );
    expect(errorOf(BASE.replace("{ gfn: 3 }", "{ gfn: 16 }"))).toBe(
      "s.yaml:12:46: tasks[0].faults[1].gfn: gfn 16 is outside the guest address space [0, 16) = 2^4 frames",
    );
    expect(errorOf(`${BASE}  - kind: destroy-vm\n  - kind: memslot-delete\n    slot: 0\n`)).toBe(
      "s.yaml:14:11: tasks[2].kind: destroy-vm (tasks[1]) must be the last task",
    );
  });

  it("reports every issue, in file order", () => {
    const e = errorOf(BASE.replace("kernel: v5.18", "kernel: v9").replace("rootLevel: 4", "rootLevel: 6"));
    expect(e.split("\n")).toEqual([
      's.yaml:3:9: kernel: must be one of v5.17, v5.18, v6.4, v6.6, v6.9, v6.15; got a string ("v9")',
      "s.yaml:5:14: vm.rootLevel: must be one of 4, 5; got the integer 6",
    ]);
  });
});

describe("positions", () => {
  it("count LF, CRLF and lone CR line breaks; columns stay within their line", () => {
    const idx = new LineIndex("ab\r\ncd\ref\ng");
    expect([0, 2, 3, 4, 6, 7, 9, 10, 99, -5].map((o) => idx.at(o))).toEqual([
      { line: 1, col: 1 },
      { line: 1, col: 3 },
      { line: 1, col: 3 },
      { line: 2, col: 1 },
      { line: 2, col: 3 },
      { line: 3, col: 1 },
      { line: 3, col: 3 },
      { line: 4, col: 1 },
      { line: 4, col: 2 },
      { line: 1, col: 1 },
    ]);
  });

  it("CRLF files report the same lines as LF files", () => {
    const crlf = BASE.replace("rootLevel: 4", "rootLevel: 3").replaceAll("\n", "\r\n");
    expect(errorOf(crlf)).toBe("s.yaml:5:14: vm.rootLevel: must be one of 4, 5; got the integer 3");
  });
});

describe("YAML-level errors", () => {
  it("syntax errors carry their position", () => {
    expect(errorOf(`${BASE}  - kind: age\n    start: [0\n`)).toMatch(
      /^s\.yaml:15:1: \(document\): invalid YAML: /,
    );
    expect(errorOf("schemaVersion: 1\n  name: x\n")).toMatch(/^s\.yaml:[12]:\d+: .*invalid YAML: /);
  });

  it("duplicate keys are errors", () => {
    expect(errorOf(`${BASE}name: again\n`)).toBe("s.yaml:13:1: name: duplicate key 'name'");
    expect(errorOf(BASE.replace("    vcpu: 0\n", "    vcpu: 0\n    vcpu: 0\n"))).toBe(
      "s.yaml:12:5: tasks[0].vcpu: duplicate key 'vcpu'",
    );
  });

  it("empty files and non-mapping documents", () => {
    const empty =
      "s.yaml:1:1: (document): the scenario is empty; expected a mapping with schemaVersion, name, kernel, vm, vcpus, tasks";
    expect(errorOf("")).toBe(empty);
    expect(errorOf("# just a comment\n")).toBe(empty);
    expect(errorOf("- 1\n- 2\n")).toBe("s.yaml:1:1: (document): expected a mapping, got a list");
    expect(errorOf("\n\n  hello\n")).toBe(
      's.yaml:3:3: (document): expected a mapping, got a string ("hello")',
    );
  });

  it("several documents, bad aliases, non-string keys, tags", () => {
    expect(errorOf(`${BASE}---\n${BASE}`)).toMatch(
      /^s\.yaml:13:1: \(document\): a scenario file holds one YAML document/,
    );
    expect(errorOf(`${BASE}description: *nope\n`)).toBe(
      "s.yaml:13:14: description: alias *nope has no matching anchor before it",
    );
    expect(errorOf(`${BASE}? [a, b]\n: 1\n`)).toBe(
      "s.yaml:13:3: (document): mapping keys must be plain strings, not lists or mappings",
    );
    expect(errorOf(`${BASE}description: !!binary aGk=\n`)).toBe(
      "s.yaml:13:23: description: expected a string, got binary data",
    );
    expect(errorOf(`${BASE}description: !!nosuchtag x\n`)).toMatch(
      /^s\.yaml:13:14: description: invalid YAML: /,
    );
  });

  it("deep nesting is refused without recursion", () => {
    expect(errorOf(`${BASE}description: ${"[".repeat(40)}${"]".repeat(40)}\n`)).toMatch(
      /^s\.yaml:13:\d+: description\[0\].*: nested more than 32 levels deep; a scenario needs at most 5$/,
    );
    expect(errorOf(`a: ${"[".repeat(5_000)}`)).toMatch(
      /^s\.yaml:1:\d+: \(document\): invalid YAML: nested too deeply/,
    );
  });

  it("an alias bomb is refused, not expanded", () => {
    let text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
    for (let i = 1; i < 12; i++)
      text += `a${i}: &a${i} [${Array(10)
        .fill(`*a${i - 1}`)
        .join(", ")}]\n`;
    expect(errorOf(text)).toMatch(/^s\.yaml:1:1: \(document\): cannot read the YAML: /);
  });

  it("unreadable files", () => {
    const missing = join(tmpdir(), "tdplab-no-such-dir", "x.yaml");
    try {
      loadScenarioFile(missing);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ScenarioError);
      expect(String(e)).toBe(`${missing}: (document): cannot read scenario: no such file`);
      expect((e as ScenarioError).exitCode).toBe(2);
    }
    expect(() => loadScenarioFile(EXAMPLES_DIR)).toThrow(/is a directory/);
  });

  it("a byte-order mark is fine", () => {
    expect(loadScenarioText(`\uFEFF${BASE}`, "s.yaml").name).toBe("base");
    expect(readFileSync(join(EXAMPLES_DIR, readdirSync(EXAMPLES_DIR)[0]), "utf8").length).toBeGreaterThan(0);
  });
});
