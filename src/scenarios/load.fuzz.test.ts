/**
 * Fuzz test of the scenario loader: valid documents generated from arbitraries must load; mutated
 * documents (structural edits and raw text noise) must either load or fail with a ScenarioError whose
 * positions lie inside the text. Anything else (a crash, a TypeError, a position outside the text) fails.
 */

import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { FEATURE_NAMES } from "../mmu/features.js";
import { INVARIANT_NAMES } from "../mmu/invariants/catalog.js";
import { PRESETS } from "../mmu/presets.js";
import { ScenarioError } from "./errors.js";
import { loadScenarioText } from "./load.js";
import { ScenarioSchema } from "./schema.js";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Doc = { [k: string]: Json };

const RUNS = { valid: 2_000, structural: 3_300, text: 3_200, soup: 1_500 };
const tally = { loaded: 0, rejected: 0, total: 0, structuralLoaded: 0, structuralRejected: 0 };

const nameArb = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,15}$/);
const onOffArb = fc.constantFrom<Json>(true, false, "on", "off");

/** A valid scenario document, respecting every cross-field rule. */
const validDoc: fc.Arbitrary<Doc> = fc
  .record({
    rootLevel: fc.constantFrom(4, 5),
    ptesPerTable: fc.oneof(fc.integer({ min: 2, max: 4 }), fc.constantFrom(8, 512)),
  })
  .chain(({ rootLevel, ptesPerTable }) => {
    const maxGfn = ptesPerTable ** rootLevel;
    return fc
      .option(fc.integer({ min: 1, max: Math.min(maxGfn, 64) }), { nil: undefined })
      .chain((memslotPages) => {
        const slotPages = memslotPages ?? maxGfn;
        const gfn = fc.nat({ max: Math.min(slotPages, 2 ** 31) - 1 });
        const vcpuTask = (vcpu: number) =>
          fc.oneof(
            fc.record(
              {
                kind: fc.constant("vcpu"),
                vcpu: fc.constant(vcpu),
                faults: fc.array(fc.record({ gfn, write: fc.boolean() }, { requiredKeys: ["gfn"] }), {
                  maxLength: 4,
                }),
                iterations: fc.integer({ min: 1, max: 16 }),
              },
              { requiredKeys: ["kind", "vcpu"] },
            ),
            fc.tuple(gfn, fc.boolean()).chain(([start, write]) =>
              fc.record({
                kind: fc.constant("vcpu"),
                vcpu: fc.constant(vcpu),
                range: fc.record({
                  start: fc.constant(start),
                  count: fc.integer({ min: 1, max: Math.min(slotPages - start, 2 ** 20) }),
                  write: fc.constant(write),
                }),
              }),
            ),
          );
        const span = fc
          .tuple(fc.nat({ max: Math.min(maxGfn, 2 ** 31) - 1 }), fc.nat({ max: 64 }))
          .map(([s, len]) => ({ start: s, end: Math.min(maxGfn, s + 1 + len) }));
        const otherTask = fc.oneof(
          span.map((r) => ({ kind: "notifier-invalidate", ...r })),
          fc
            .tuple(span, fc.option(fc.boolean(), { nil: undefined }))
            .map(([r, t]) => ({ kind: "age", ...r, testOnly: t })),
          fc.constantFrom({ kind: "dirty-log-enable", slot: 0 }, { kind: "dirty-log-clear", slot: 0 }),
        );
        return fc
          .record({
            vcpus: fc.array(fc.record({ smm: fc.constantFrom(0, 1) }, { requiredKeys: [] }), {
              maxLength: 4,
            }),
            others: fc.array(otherTask, { maxLength: 4 }),
            memslotDelete: fc.boolean(),
            destroy: fc.boolean(),
            named: fc.boolean(),
          })
          .chain(({ vcpus, others, memslotDelete, destroy, named }) =>
            fc
              .tuple(
                fc.shuffledSubarray([...vcpus.keys()]).chain((ids) => fc.tuple(...ids.map(vcpuTask))),
                fc.constant(others),
              )
              .chain(([vt, ot]) => {
                const body: Doc[] = [...(vt as Doc[]), ...(ot as Doc[])];
                if (memslotDelete) body.push({ kind: "memslot-delete", slot: 0 });
                return fc.shuffledSubarray(body, { minLength: body.length }).map((tasks) => {
                  if (destroy || tasks.length === 0) tasks.push({ kind: "destroy-vm" });
                  const out = tasks.map((t, i) => (named ? { ...t, name: `t${i}` } : t));
                  return { vcpus: vcpus as Json[], tasks: out as Json[] };
                });
              }),
          )
          .chain(({ vcpus, tasks }) =>
            fc.record(
              {
                schemaVersion: fc.constant(1),
                name: nameArb,
                description: fc.string({ maxLength: 60 }),
                kernel: fc.constantFrom(...PRESETS.map((p) => p.name)),
                features: fc
                  .subarray([...FEATURE_NAMES])
                  .chain((ns) =>
                    fc.tuple(
                      ...ns.map((n) =>
                        (n === "zapPasses"
                          ? fc.constantFrom("single", "two-pass", "four-pass")
                          : onOffArb
                        ).map((v) => [n, v] as const),
                      ),
                    ),
                  )
                  .map((kv) => Object.fromEntries(kv) as Json),
                variant: fc.option(nameArb, { nil: null }),
                machine: fc.record(
                  {
                    preemption: fc.constantFrom("none", "voluntary", "full"),
                    needResched: fc.constantFrom("choice", "never", "always"),
                    needReschedBudget: fc.integer({ min: 0, max: 16 }),
                    debugList: fc.boolean(),
                    proveMmu: fc.boolean(),
                  },
                  { requiredKeys: [] },
                ),
                vm: fc.constant(
                  memslotPages === undefined
                    ? { rootLevel, ptesPerTable }
                    : { rootLevel, ptesPerTable, memslotPages },
                ),
                vcpus: fc.constant(vcpus),
                tasks: fc.constant(tasks),
                check: fc.record(
                  {
                    maxSteps: fc.integer({ min: 1, max: 1e9 }),
                    invariants: fc.oneof(
                      fc.constant(["all"]),
                      fc.uniqueArray(fc.constantFrom(...INVARIANT_NAMES), { minLength: 1, maxLength: 4 }),
                    ),
                  },
                  { requiredKeys: [] },
                ),
              },
              { requiredKeys: ["schemaVersion", "name", "kernel", "vm", "vcpus", "tasks"] },
            ),
          ) as fc.Arbitrary<Doc>;
      });
  });

/** JSON with sorted keys and undefined members dropped: equal for deep-equal documents (cheaper than toEqual). */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_, x) =>
    x !== null && typeof x === "object" && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  );
}

/** A document rendered as YAML (block or flow style) or JSON. */
const render = (doc: Json, how: number): string => {
  switch (how) {
    case 0:
      return stringify(doc);
    case 1:
      return stringify(doc, { collectionStyle: "flow" });
    case 2:
      return JSON.stringify(doc, null, 2);
    default:
      return JSON.stringify(doc);
  }
};

/** Paths to every value in a document (the root is []). */
function paths(
  v: Json,
  at: (string | number)[] = [],
  out: (string | number)[][] = [],
): (string | number)[][] {
  out.push(at);
  if (Array.isArray(v)) for (const [i, x] of v.entries()) paths(x, [...at, i], out);
  else if (v !== null && typeof v === "object")
    for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out);
  return out;
}

function getAt(v: Json, p: (string | number)[]): Json {
  let cur: Json = v;
  for (const s of p) cur = (cur as Record<string | number, Json>)[s];
  return cur;
}

/** Replace the value at p (p non-empty), or delete it when `value` is undefined. */
function setAt(root: Json, p: (string | number)[], value: Json | undefined): void {
  const parent = getAt(root, p.slice(0, -1)) as Record<string | number, Json>;
  const k = p[p.length - 1];
  // An own property even for a key such as "__proto__" (plain assignment would set the prototype
  // and could make the document cyclic).
  if (value !== undefined)
    Object.defineProperty(parent, k, { value, enumerable: true, writable: true, configurable: true });
  else if (Array.isArray(parent)) parent.splice(k as number, 1);
  else delete parent[k];
}

const OUT_OF_RANGE = [
  -1,
  0,
  1,
  3,
  6,
  17,
  65,
  513,
  1e9,
  2 ** 53 + 2,
  1.5,
  -0.5,
  1e300,
  Number.MAX_SAFE_INTEGER,
];

type Edit = { kind: number; pick: number; value: Json; key: string; num: number };

const editArb: fc.Arbitrary<Edit> = fc.record({
  kind: fc.nat({ max: 5 }),
  pick: fc.nat(),
  value: fc.oneof<fc.Arbitrary<Json>[]>(
    fc.string({ maxLength: 8 }),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.boolean(),
    fc.constant(null),
    fc.constant<Json>([]),
    fc.constant<Json>({}),
    fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
  ),
  key: fc.oneof(
    fc.string({ maxLength: 10 }),
    fc.constantFrom("kind", "vcpu", "gfn", "start", "fualts", "__proto__", "name"),
  ),
  num: fc.constantFrom(...OUT_OF_RANGE),
});

/** A deep copy that keeps a "__proto__" key as an own property (JSON.parse defines, not assigns). */
const copy = (v: Json): Json => JSON.parse(JSON.stringify(v)) as Json;

/** Structural mutations: delete a key, change a type, add an unknown key, out-of-range number, swap list/map. */
function mutate(doc: Doc, edits: Edit[]): Json {
  let root: Json = structuredClone(doc);
  const replace = (p: (string | number)[], v: Json) => {
    if (p.length > 0) setAt(root, p, v);
    else root = v;
  };
  for (const e of edits) {
    const all = paths(root);
    const p = all[e.pick % all.length];
    const target = getAt(root, p);
    switch (e.kind) {
      case 0: // delete a key or list entry
        if (p.length > 0) setAt(root, p, undefined);
        break;
      case 1: // change the value (and usually its type); a copy, so no edit can make the document cyclic
        replace(p, copy(e.value));
        break;
      case 2: // add a key
        if (target !== null && typeof target === "object" && !Array.isArray(target)) {
          Object.defineProperty(target, e.key, {
            value: copy(e.value),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        break;
      case 3: // out-of-range number somewhere numeric
        {
          const nums = all.filter((q) => typeof getAt(root, q) === "number");
          if (nums.length > 0) replace(nums[e.pick % nums.length], e.num);
        }
        break;
      default: {
        // swap list <-> map
        let swapped: Json = target;
        if (Array.isArray(target)) swapped = Object.fromEntries(target.map((x, i) => [String(i), x]));
        else if (target !== null && typeof target === "object")
          swapped = e.kind === 4 ? [target] : Object.values(target);
        replace(p, swapped);
      }
    }
  }
  return root;
}

const NOISE = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.constantFrom(
    ":",
    "- ",
    "[",
    "]",
    "{",
    "}",
    "#",
    "&a ",
    "*a",
    "!!str ",
    "|",
    ">",
    "'",
    '"',
    "%",
    "@",
    "`",
    "\t",
    "\n",
    "\r\n",
    ",",
    "? ",
    "---\n",
    "...\n",
    "<<: ",
    "\u00a0",
    "\uFEFF",
    "\\",
    "  ",
  ),
);

type TextEdit = { kind: number; at: number; len: number; noise: string };
const textEditArb: fc.Arbitrary<TextEdit> = fc.record({
  kind: fc.nat({ max: 5 }),
  at: fc.nat(),
  len: fc.nat({ max: 20 }),
  noise: NOISE,
});

/** Raw text mutations: insert noise, delete a slice, truncate, duplicate/swap lines, re-indent. */
function mutateText(text: string, edits: TextEdit[]): string {
  for (const e of edits) {
    const i = text.length === 0 ? 0 : e.at % (text.length + 1);
    const lines = text.split("\n");
    const l = e.at % lines.length;
    switch (e.kind) {
      case 0:
        text = text.slice(0, i) + e.noise + text.slice(i);
        break;
      case 1:
        text = text.slice(0, i) + text.slice(i + e.len);
        break;
      case 2:
        text = text.slice(0, i);
        break;
      case 3:
        lines.splice(l, 0, lines[l]);
        text = lines.join("\n");
        break;
      case 4: {
        const m = (l + 1 + e.len) % lines.length;
        [lines[l], lines[m]] = [lines[m], lines[l]];
        text = lines.join("\n");
        break;
      }
      default:
        lines[l] = e.len % 2 === 0 ? `  ${lines[l]}` : lines[l].replace(/^ {1,2}/, "");
        text = lines.join("\n");
    }
  }
  return text;
}

/** Load `text`: it loads (and is then schema-valid), or fails with a well-formed ScenarioError. */
function loadOrCleanError(text: string): "loaded" | "rejected" {
  tally.total++;
  let doc: unknown;
  try {
    doc = loadScenarioText(text, "fuzz.yaml");
  } catch (e) {
    if (!(e instanceof ScenarioError))
      throw new Error(`loader threw ${String(e)} for ${JSON.stringify(text)}`);
    const lines = text.split(/\r\n|\r|\n/);
    const fail = (why: string) => {
      throw new Error(`${why}: ${e.report()}\nin ${JSON.stringify(text)}`);
    };
    if (e.issues.length === 0) fail("no issues");
    for (const iss of e.issues) {
      if (!(Number.isInteger(iss.line) && iss.line >= 1 && iss.line <= lines.length))
        fail("line outside the text");
      if (!(Number.isInteger(iss.col) && iss.col >= 1 && iss.col <= lines[iss.line - 1].length + 1)) {
        fail("column outside the line");
      }
      if (iss.message.trim() === "" || iss.field.trim() === "") fail("empty message or field");
    }
    if (e.toString() !== `fuzz.yaml:${e.line}:${e.col}: ${e.field}: ${e.message}`) fail("toString format");
    tally.rejected++;
    return "rejected";
  }
  if (!ScenarioSchema.safeParse(doc).success) throw new Error(`loaded an invalid document from ${text}`);
  tally.loaded++;
  return "loaded";
}

describe("scenario loader fuzz", () => {
  afterAll(() => {
    expect(tally.total).toBeGreaterThanOrEqual(10_000);
    console.log(
      `scenario fuzz: ${tally.total} documents, ${tally.loaded} loaded, ${tally.rejected} rejected ` +
        `(structural mutations: ${tally.structuralLoaded} loaded, ${tally.structuralRejected} rejected)`,
    );
  });

  it("valid generated documents load and round-trip", () => {
    fc.assert(
      fc.property(validDoc, fc.nat({ max: 3 }), (doc, how) => {
        const text = render(doc, how);
        tally.total++;
        const loaded = loadScenarioText(text, "fuzz.yaml");
        if (canonical(loaded) !== canonical(doc)) expect(loaded).toEqual(doc);
        tally.loaded++;
      }),
      { numRuns: RUNS.valid },
    );
  });

  it("structurally mutated documents load or give a clear error", () => {
    fc.assert(
      fc.property(
        validDoc,
        fc.array(editArb, { minLength: 1, maxLength: 3 }),
        fc.nat({ max: 3 }),
        (doc, edits, how) => {
          const mutated = mutate(doc, edits);
          const text = render(mutated, how);
          if (loadOrCleanError(text) === "loaded") tally.structuralLoaded++;
          else tally.structuralRejected++;
        },
      ),
      { numRuns: RUNS.structural },
    );
    expect(tally.structuralRejected).toBeGreaterThan(RUNS.structural / 2);
    expect(tally.structuralLoaded).toBeGreaterThan(0);
  });

  it("random YAML token soup gives a clear error", () => {
    const token = fc.oneof(
      NOISE,
      fc.constantFrom(
        "schemaVersion: 1\n",
        "kind: ",
        "tasks:\n",
        "  - ",
        "vcpu",
        "gfn: ",
        "name: a\n",
        "vm: ",
      ),
      fc.integer().map(String),
      fc.constantFrom(
        "1e400",
        "-.inf",
        ".nan",
        "0x1f",
        "0o17",
        "~",
        "null",
        "true",
        "on",
        "2001-12-14",
        "&x ",
        "*x",
      ),
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 40 }), (parts) => {
        loadOrCleanError(parts.join(""));
      }),
      { numRuns: RUNS.soup },
    );
  });

  it("text-mutated documents load or give a clear error", () => {
    fc.assert(
      fc.property(
        validDoc,
        fc.nat({ max: 3 }),
        fc.array(textEditArb, { minLength: 1, maxLength: 4 }),
        (doc, how, edits) => {
          loadOrCleanError(mutateText(render(doc, how), edits));
        },
      ),
      { numRuns: RUNS.text },
    );
  });
});
