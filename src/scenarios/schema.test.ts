import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { MachineConfig } from "../kernel/machine.js";
import { FEATURE_NAMES } from "../mmu/features.js";
import { PRESETS, resolveFeatures } from "../mmu/presets.js";
import {
  FeaturesSchema,
  featureOverrides,
  KERNEL_NAMES,
  type ScenarioDoc,
  ScenarioSchema,
  scenarioJsonSchema,
  scenarioJsonSchemaText,
  TASK_KINDS,
} from "./schema.js";

const root = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const EXAMPLES = readdirSync(root("scenarios/examples")).filter((f) => f.endsWith(".yaml"));

type Json = Record<string, unknown>;

/**
 * A validator for the JSON Schema subset z.toJSONSchema emits for this schema. It throws on any
 * keyword it does not implement, so it cannot silently accept what it does not understand.
 */
function validate(schema: Json, value: unknown, defs: Json, at = "$"): string[] {
  const errs: string[] = [];
  const known = new Set(
    (
      "$schema $ref $defs title description type const enum properties required additionalProperties items " +
      "minItems maxItems minimum maximum minLength maxLength pattern anyOf oneOf"
    ).split(" "),
  );
  for (const k of Object.keys(schema))
    if (!known.has(k)) throw new Error(`unsupported JSON Schema keyword ${k}`);
  if (typeof schema.$ref === "string") {
    const name = schema.$ref.replace(/^#\/\$defs\//, "");
    if (!(name in defs)) throw new Error(`unresolved $ref ${schema.$ref}`);
    errs.push(...validate(defs[name] as Json, value, defs, at));
  }
  const type = schema.type as string | undefined;
  if (type !== undefined) {
    const ok =
      type === "object"
        ? typeof value === "object" && value !== null && !Array.isArray(value)
        : type === "array"
          ? Array.isArray(value)
          : type === "integer"
            ? Number.isInteger(value)
            : type === "null"
              ? value === null
              : typeof value === type;
    if (!ok) return [...errs, `${at}: not ${type}`];
  }
  if ("const" in schema && value !== schema.const) errs.push(`${at}: not ${schema.const}`);
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) errs.push(`${at}: not in enum`);
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum) errs.push(`${at}: < minimum`);
    if (typeof schema.maximum === "number" && value > schema.maximum) errs.push(`${at}: > maximum`);
  }
  if (typeof value === "string") {
    if (typeof schema.minLength === "number" && value.length < schema.minLength) errs.push(`${at}: short`);
    if (typeof schema.maxLength === "number" && value.length > schema.maxLength) errs.push(`${at}: long`);
    if (typeof schema.pattern === "string" && !new RegExp(schema.pattern, "u").test(value)) {
      errs.push(`${at}: pattern`);
    }
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === "number" && value.length < schema.minItems) errs.push(`${at}: few items`);
    if (typeof schema.maxItems === "number" && value.length > schema.maxItems) errs.push(`${at}: many items`);
    if (schema.items) {
      for (const [i, v] of value.entries())
        errs.push(...validate(schema.items as Json, v, defs, `${at}[${i}]`));
    }
  }
  if (type === "object" && typeof value === "object" && value !== null) {
    const obj = value as Json;
    const props = (schema.properties ?? {}) as Json;
    for (const r of (schema.required ?? []) as string[]) if (!(r in obj)) errs.push(`${at}.${r}: required`);
    for (const [k, v] of Object.entries(obj)) {
      if (k in props) errs.push(...validate(props[k] as Json, v, defs, `${at}.${k}`));
      else if (schema.additionalProperties === false) errs.push(`${at}.${k}: not allowed`);
    }
  }
  for (const key of ["anyOf", "oneOf"] as const) {
    const alts = schema[key] as Json[] | undefined;
    if (alts === undefined) continue;
    const passing = alts.filter((s) => validate(s, value, defs, at).length === 0).length;
    if (key === "anyOf" ? passing === 0 : passing !== 1) errs.push(`${at}: ${key} matched ${passing}`);
  }
  return errs;
}

function jsonSchemaErrors(value: unknown): string[] {
  const s = scenarioJsonSchema();
  return validate(s, value, (s.$defs ?? {}) as Json);
}

function example(f: string): unknown {
  return parse(readFileSync(root(`scenarios/examples/${f}`), "utf8"));
}

const BASE = {
  schemaVersion: 1,
  name: "base",
  kernel: "v5.18",
  vm: { rootLevel: 4, ptesPerTable: 2, memslotPages: 8 },
  vcpus: [{}, { smm: 0 }],
  tasks: [{ kind: "vcpu", vcpu: 0, faults: [{ gfn: 1 }] }],
};

/** Issues of BASE with `edit` applied, as [path, message] pairs. */
function issues(edit: (d: Json & typeof BASE) => void): [string, string][] {
  const d = structuredClone(BASE) as Json & typeof BASE;
  edit(d);
  const r = ScenarioSchema.safeParse(d);
  return r.success ? [] : r.error.issues.map((i) => [i.path.join("."), i.message]);
}

describe("JSON Schema", () => {
  it("the committed schema/scenario.schema.json is what write-schema generates", () => {
    // Compared as data: the committed file is biome-formatted (npm run schema formats it).
    const committed = JSON.parse(readFileSync(root("schema/scenario.schema.json"), "utf8"));
    expect(committed).toEqual(JSON.parse(scenarioJsonSchemaText()));
    expect(JSON.stringify(committed)).toBe(JSON.stringify(scenarioJsonSchema()));
  });

  it("has examples to check", () => {
    expect(EXAMPLES.length).toBeGreaterThanOrEqual(3);
  });

  it.each(EXAMPLES)("validates example %s", (f) => {
    const text = readFileSync(root(`scenarios/examples/${f}`), "utf8");
    expect(text.startsWith("# yaml-language-server: $schema=../../schema/scenario.schema.json\n")).toBe(true);
    expect(jsonSchemaErrors(example(f))).toEqual([]);
    expect(ScenarioSchema.safeParse(example(f)).success).toBe(true);
  });

  it("rejects what the zod schema rejects field by field (the validator is not vacuous)", () => {
    expect(jsonSchemaErrors(BASE)).toEqual([]);
    const bad: [string, (d: Json & typeof BASE) => void][] = [
      ["unknown key", (d) => Object.assign(d, { extra: 1 })],
      ["unknown task key", (d) => Object.assign(d.tasks[0], { fualts: [] })],
      ["unknown kind", (d) => Object.assign(d.tasks[0], { kind: "vpcu" })],
      ["bad kernel", (d) => Object.assign(d, { kernel: "v5.19" })],
      ["bad level", (d) => Object.assign(d.vm, { rootLevel: 3 })],
      ["too many ptes", (d) => Object.assign(d.vm, { ptesPerTable: 513 })],
      ["bad feature value", (d) => Object.assign(d, { features: { asyncZapWorker: "yes" } })],
      ["bad name", (d) => Object.assign(d, { name: "Has Space" })],
      ["missing vm", (d) => delete (d as Partial<typeof BASE>).vm],
    ];
    for (const [what, edit] of bad) {
      const d = structuredClone(BASE) as Json & typeof BASE;
      edit(d);
      expect(jsonSchemaErrors(d), what).not.toEqual([]);
      expect(ScenarioSchema.safeParse(d).success, what).toBe(false);
    }
  });
});

describe("names come from the MMU model", () => {
  it("kernels are the presets", () => {
    expect(KERNEL_NAMES).toEqual(PRESETS.map((p) => p.name));
  });

  it("every preset's value of every feature is a valid override", () => {
    for (const p of PRESETS) {
      for (const n of FEATURE_NAMES) {
        const r = FeaturesSchema.safeParse({ [n]: p.features[n] });
        expect(r.success, `${p.name} ${n}`).toBe(true);
      }
    }
    expect(Object.keys(FeaturesSchema.shape)).toEqual([...FEATURE_NAMES]);
  });

  it("task kinds", () => {
    expect(TASK_KINDS).toEqual([
      "vcpu",
      "vcpu-rounds",
      "root-walker",
      "memslot-delete",
      "notifier-invalidate",
      "age",
      "dirty-log-enable",
      "dirty-log-disable",
      "dirty-log-clear",
      "write-track",
      "nx-recovery",
      "destroy-vm",
    ]);
  });

  it("feature overrides resolve through presets.ts", () => {
    const doc = ScenarioSchema.parse({
      ...BASE,
      features: { asyncZapWorker: "off", defunctRoots: false, zapPasses: "four-pass", rootTypes: true },
    });
    const o = featureOverrides(doc);
    expect(o).toEqual(["asyncZapWorker=off", "defunctRoots=off", "zapPasses=four-pass", "rootTypes=on"]);
    const f = resolveFeatures(doc.kernel, o);
    expect([f.asyncZapWorker, f.defunctRoots, f.zapPasses, f.rootTypes]).toEqual([
      false,
      false,
      "four-pass",
      true,
    ]);
    expect(f.persistentRoots).toBe(false);
  });

  it("machine settings are a partial MachineConfig", () => {
    const doc: ScenarioDoc = ScenarioSchema.parse({
      ...BASE,
      machine: { preemption: "none", needReschedBudget: 3 },
    });
    const m: Partial<MachineConfig> = doc.machine ?? {};
    expect(m).toEqual({ preemption: "none", needReschedBudget: 3 });
  });
});

describe("cross-field rules", () => {
  it("accepts the base document", () => {
    expect(issues(() => {})).toEqual([]);
  });

  it("a vCPU task names an existing vCPU, and each vCPU runs one task", () => {
    expect(issues((d) => Object.assign(d.tasks[0], { vcpu: 2 }))).toEqual([
      ["tasks.0.vcpu", "vCPU 2 does not exist; vcpus declares 2 vCPUs (ids 0..1)"],
    ]);
    expect(issues((d) => Object.assign(d, { vcpus: [] }))).toEqual([
      ["tasks.0.vcpu", "vCPU 0 does not exist; vcpus declares no vCPUs"],
    ]);
    expect(issues((d) => d.tasks.push({ kind: "vcpu", vcpu: 0 } as never))).toEqual([
      ["tasks.1.vcpu", "vCPU 0 already runs tasks[0]; a vCPU is one thread"],
    ]);
  });

  it("gfns fit the address space and the memslot", () => {
    expect(issues((d) => Object.assign(d.tasks[0], { faults: [{ gfn: 0 }, { gfn: 16 }] }))).toEqual([
      ["tasks.0.faults.1.gfn", "gfn 16 is outside the guest address space [0, 16) = 2^4 frames"],
    ]);
    expect(issues((d) => Object.assign(d.tasks[0], { faults: [{ gfn: 8 }] }))).toEqual([
      ["tasks.0.faults.0.gfn", "gfn 8 is outside memslot 0, which covers gfns [0, 8)"],
    ]);
    expect(issues((d) => Object.assign(d.vm, { memslotPages: 17 }))).toEqual([
      ["vm.memslotPages", "17 frames do not fit in the guest address space [0, 16) = 2^4 frames"],
    ]);
    expect(issues((d) => Object.assign(d.vm, { rootLevel: 5, memslotPages: 32 }))).toEqual([]);
  });

  it("fault ranges", () => {
    const range = (start: number, count: number) => (d: Json & typeof BASE) =>
      Object.assign(d.tasks[0], { faults: undefined, range: { start, count } });
    expect(issues(range(0, 8))).toEqual([]);
    expect(issues(range(4, 5))).toEqual([["tasks.0.range.count", "gfns [4, 9) run past memslot 0 [0, 8)"]]);
    expect(issues(range(9, 1))).toEqual([
      ["tasks.0.range.start", "gfn 9 is outside memslot 0, which covers gfns [0, 8)"],
    ]);
    expect(issues((d) => Object.assign(d.tasks[0], { range: { start: 0, count: 1 } }))).toEqual([
      ["tasks.0.range", "give either faults or range, not both"],
    ]);
  });

  it("gfn ranges have start < end within the address space", () => {
    const task = (kind: string, start: number, end: number) => (d: Json & typeof BASE) =>
      d.tasks.push({ kind, start, end } as never);
    expect(issues(task("notifier-invalidate", 0, 16))).toEqual([]);
    expect(issues(task("age", 3, 3))).toEqual([["tasks.1.end", "end (3) must be greater than start (3)"]]);
    expect(issues(task("age", 0, 17))).toEqual([
      ["tasks.1.end", "end 17 is past the end of the guest address space [0, 16) = 2^4 frames"],
    ]);
    expect(issues(task("notifier-invalidate", 16, 20))).toEqual([
      ["tasks.1.start", "gfn 16 is outside the guest address space [0, 16) = 2^4 frames"],
    ]);
  });

  it("destroy-vm: at most one, and last", () => {
    const push =
      (...kinds: string[]) =>
      (d: Json & typeof BASE) =>
        d.tasks.push(...kinds.map((kind) => ({ kind, slot: 0 }) as never));
    expect(issues((d) => d.tasks.push({ kind: "destroy-vm" } as never))).toEqual([]);
    expect(issues((d) => d.tasks.unshift({ kind: "destroy-vm" } as never))).toEqual([
      ["tasks.1.kind", "destroy-vm (tasks[0]) must be the last task"],
    ]);
    expect(
      issues((d) => d.tasks.push({ kind: "destroy-vm" } as never, { kind: "destroy-vm" } as never)),
    ).toEqual([["tasks.2.kind", "only one destroy-vm task is allowed (the first is tasks[1])"]]);
    expect(issues(push("dirty-log-enable", "dirty-log-clear"))).toEqual([]);
  });

  it("memslots exist and are deleted once", () => {
    expect(issues((d) => d.tasks.push({ kind: "dirty-log-clear", slot: 1 } as never))).toEqual([
      ["tasks.1.slot", "memslot 1 does not exist; the VM has memslot 0 only"],
    ]);
    expect(
      issues((d) =>
        d.tasks.push(
          { kind: "memslot-delete", slot: 0 } as never,
          { kind: "memslot-delete", slot: 0 } as never,
        ),
      ),
    ).toEqual([["tasks.2.slot", "memslot 0 is already deleted by tasks[1]"]]);
  });

  it("task names and invariant names are unique; 'all' stands alone", () => {
    expect(
      issues((d) => {
        Object.assign(d.tasks[0], { name: "t" });
        d.tasks.push({ kind: "age", start: 0, end: 1, name: "t" } as never);
      }),
    ).toEqual([["tasks.1.name", "task name 't' is already used by tasks[0]"]]);
    expect(issues((d) => Object.assign(d, { check: { invariants: ["all", "inv4-no-uaf-roots"] } }))).toEqual([
      ["check.invariants.0", "'all' cannot be combined with names"],
    ]);
    expect(
      issues((d) => Object.assign(d, { check: { invariants: ["inv4-no-uaf-roots", "inv4-no-uaf-roots"] } })),
    ).toEqual([["check.invariants.1", "invariant 'inv4-no-uaf-roots' is listed twice"]]);
    expect(issues((d) => Object.assign(d, { check: { invariants: ["inv4"] } }))).toEqual([
      ["check.invariants.0", "unknown invariant 'inv4'; `tdplab list invariants` shows them"],
    ]);
  });
});
