import type { TraceDoc } from "./schema.js";
import type { TraceState } from "./state-schema.js";

type Step = TraceDoc["steps"][number];

const WRITES = new Set(["write", "rmw", "acquire", "release"]);

/**
 * Two steps of different tasks conflict when one writes what the other touches. An access to a
 * field ("root#1.role") also touches the allocation that owns it ("root#1"): a kfree of the
 * allocation conflicts with it, which is what puts the free into a use-after-free's diagram.
 */
function conflict(doc: TraceDoc, a: Step, b: Step): boolean {
  if (a.task === b.task || !(WRITES.has(a.kind) || WRITES.has(b.kind))) return false;
  if (a.obj === b.obj) return true;
  const na = doc.objects[a.obj];
  const nb = doc.objects[b.obj];
  return na !== undefined && nb !== undefined && (na.startsWith(`${nb}.`) || nb.startsWith(`${na}.`));
}

/** Tasks a deadlock report names as blocked (details.blocked[].task). */
function blockedTasks(doc: TraceDoc): number[] {
  const b = doc.violation?.details?.blocked;
  if (!Array.isArray(b)) return [];
  return b.map((x) => (x as { task?: unknown }).task).filter((t): t is number => typeof t === "number");
}

/**
 * The steps that matter for a violation: the violating step, and, walking
 * back, every step another included step depends on across tasks (a
 * conflicting access to the same object), plus earlier accesses of the same
 * task to objects already in the slice. On a shrunk counterexample this is
 * the handful of steps a commit message would show.
 */
export function relevantSteps(doc: TraceDoc, limit = 40): Step[] {
  const steps = doc.steps;
  if (steps.length === 0) return [];
  const vStep = doc.violation
    ? Math.min(Math.max(doc.violation.step, 0), steps.length - 1)
    : steps.length - 1;
  const keep = new Set<number>([vStep]);
  const objs = new Set<number>([steps[vStep].obj]);
  // Objects the violation names (e.g. "root#1") anchor the slice too: an invariant checked at the
  // end of a walk is about those objects, not about the step that happened to end it.
  const named = namedInDetails(doc.violation?.details);
  if (named.length > 0) {
    doc.objects.forEach((name, id) => {
      if (named.some((n) => name === n || name.startsWith(`${n}.`))) objs.add(id);
    });
  }
  const tasks = new Set<number>([steps[vStep].task]);
  if (doc.violation && doc.violation.task >= 0) tasks.add(doc.violation.task);
  // Every party to a deadlock: the locks each blocked task took are what the others wait for.
  const blocked = new Set(blockedTasks(doc));
  for (const t of blocked) tasks.add(t);
  const included: Step[] = [steps[vStep]];
  for (let j = vStep - 1; j >= 0; j--) {
    const s = steps[j];
    let take = false;
    for (const k of included) {
      if (conflict(doc, s, k)) {
        take = true;
        break;
      }
    }
    if (!take && objs.has(s.obj) && (tasks.has(s.task) || named.length > 0) && WRITES.has(s.kind))
      take = true;
    if (!take && blocked.has(s.task) && (s.kind === "acquire" || s.kind === "release")) take = true;
    if (take) {
      keep.add(j);
      included.push(s);
      objs.add(s.obj);
      tasks.add(s.task);
    }
  }
  let out = [...keep].sort((a, b) => a - b).map((i) => steps[i]);
  if (out.length > limit) {
    // Too much history: keep lock traffic, frees and accesses to the violating object.
    const vObj = steps[vStep].obj;
    out = out.filter(
      (s) =>
        s.obj === vObj || s.kind === "acquire" || s.kind === "release" || s.step === "kfree" || s.i === vStep,
    );
    if (out.length > limit) out = out.slice(out.length - limit);
  }
  return out;
}

/** Object names mentioned in a violation's details (strings, and strings in arrays, one level deep). */
function namedInDetails(details: Record<string, unknown> | undefined): string[] {
  const out: string[] = [];
  for (const v of Object.values(details ?? {})) {
    if (typeof v === "string" && /^[\w-]+#\d+/.test(v)) out.push(v);
    else if (Array.isArray(v))
      for (const x of v) if (typeof x === "string" && /^[\w-]+#\d+/.test(x)) out.push(x);
  }
  return out;
}

function clip(s: string, w: number): string {
  return s.length <= w ? s.padEnd(w) : `${s.slice(0, w - 1)}…`;
}

/**
 * The race diagram kernel developers put in commit messages: one column per
 * task, the steps that matter in order, labelled with kernel function names.
 */
export function formatRaceDiagram(doc: TraceDoc, width = 34): string {
  const rows = relevantSteps(doc);
  const taskIds = [...new Set(rows.map((r) => r.task))].sort((a, b) => a - b);
  const col = new Map(taskIds.map((t, i) => [t, i]));
  const header = taskIds.map((t, i) => clip(`CPU${i} (${doc.tasks[t]?.name ?? `T${t}`})`, width));
  const lines: string[] = [header.join(" | "), taskIds.map(() => "-".repeat(width)).join("-+-")];
  const lastFn = new Map<number, string>();
  const vStep = doc.violation?.step ?? -1;
  for (const r of rows) {
    const cells = taskIds.map(() => " ".repeat(width));
    const c = col.get(r.task)!;
    const obj = doc.objects[r.obj] ?? `#${r.obj}`;
    if (lastFn.get(r.task) !== r.fn) {
      cells[c] = clip(`${r.fn}()`, width);
      lines.push(cells.join(" | ").trimEnd());
      lastFn.set(r.task, r.fn);
    }
    const mark = r.i === vStep ? "!! " : "  ";
    cells[c] = clip(`${mark}${r.step} ${shortObj(obj)}`, width);
    lines.push(cells.join(" | ").trimEnd());
  }
  if (doc.violation) lines.push("", `!! ${doc.violation.invariant}: ${doc.violation.message}`);
  return lines.join("\n");
}

function shortObj(name: string): string {
  return name.length > 26 ? `…${name.slice(-25)}` : name;
}

/** Every step, one per line. */
export function formatStepList(doc: TraceDoc): string {
  const vStep = doc.violation?.step ?? -1;
  const w = String(doc.steps.length).length;
  return doc.steps
    .map((s, k) => {
      const t = doc.tasks[s.task]?.name ?? `T${s.task}`;
      const mark = s.i === vStep ? ` <== ${doc.violation?.invariant ?? ""}` : "";
      const before = k === 0 ? doc.initialState : doc.states?.[k - 1];
      const after = doc.states?.[k];
      const changes = before && after ? rootChanges(before, after) : "";
      return `${String(s.i).padStart(w)}  ${t.padEnd(18)} ${s.kind.padEnd(7)} ${s.fn}: ${s.step} [${doc.objects[s.obj] ?? s.obj}]${changes}${mark}`;
    })
    .join("\n");
}

/** What a step changed in the roots, as " {root#1 refcount 1→0, invalid 0→1}", or "". */
function rootChanges(before: TraceState, after: TraceState): string {
  const out: string[] = [];
  const old = new Map(before.roots.map((r) => [r.name, r]));
  const bit = (b: boolean) => (b ? "1" : "0");
  for (const r of after.roots) {
    const o = old.get(r.name);
    if (o === undefined) {
      out.push(`${r.name} new, refcount ${r.refcount}`);
      continue;
    }
    const d: string[] = [];
    if (o.refcount !== r.refcount) d.push(`refcount ${o.refcount}→${r.refcount}`);
    if (o.invalid !== r.invalid) d.push(`invalid ${bit(o.invalid)}→${bit(r.invalid)}`);
    if (o.onList !== r.onList) d.push(r.onList ? "on the list" : "off the list");
    if (o.freed !== r.freed) d.push(r.freed ? "freed" : "allocated");
    if (d.length > 0) out.push(`${r.name} ${d.join(", ")}`);
  }
  return out.length === 0 ? "" : `  {${out.join("; ")}}`;
}
