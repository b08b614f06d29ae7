import type { TraceDoc } from "./schema.js";

/**
 * Export a trace document as Chrome Trace Event JSON, the format ui.perfetto.dev
 * (and chrome://tracing) opens. The checker has no clock, so one step is one
 * microsecond: ts is the step index.
 *
 * - one thread per task (pid 1, tid = task id + 1), named by "M" metadata;
 * - one complete ("X") slice per step, "<fn>: <step>", args {obj, kind};
 * - flows ("s" → "f") from queue_work to the kworker it spawned and from
 *   call_rcu to its callback task;
 * - an async slice ("b"/"e", cat "root") per root, from its first touch to its kfree;
 * - counters ("C"): live roots, and every numeric field of `states` when present;
 * - the violation as a global instant event named after the invariant.
 */

const PID = 1;

export interface ChromeTrace {
  traceEvents: unknown[];
  displayTimeUnit: "ns";
}

type Step = TraceDoc["steps"][number];

const tid = (task: number) => task + 1;

/** "root#3", "root#3.spte[1]", "root#3.tdp_mmu_root_count" → "root#3"; anything else → null. */
export function rootOf(objName: string): string | null {
  const m = /^(root#\d+)(?:\.|$)/.exec(objName);
  return m ? m[1] : null;
}

export function toChromeTrace(doc: TraceDoc): ChromeTrace {
  const ev: unknown[] = [];
  const objName = (s: Step) => doc.objects[s.obj] ?? `obj#${s.obj}`;
  const end = doc.steps.length;

  ev.push({
    ph: "M",
    pid: PID,
    tid: 0,
    name: "process_name",
    args: {
      name: `tdplab ${doc.run.scenario} [${doc.run.kernel}${doc.run.variant ? `, ${doc.run.variant}` : ""}]`,
    },
  });
  for (const t of doc.tasks) {
    ev.push({ ph: "M", pid: PID, tid: tid(t.id), name: "thread_name", args: { name: t.name } });
    ev.push({ ph: "M", pid: PID, tid: tid(t.id), name: "thread_sort_index", args: { sort_index: t.id } });
  }

  for (const s of doc.steps) {
    ev.push({
      ph: "X",
      pid: PID,
      tid: tid(s.task),
      ts: s.i,
      dur: 1,
      name: `${s.fn}: ${s.step}`,
      cat: s.kind,
      args: { obj: objName(s), kind: s.kind },
    });
  }

  ev.push(...flowEvents(doc, objName));
  ev.push(...rootEvents(doc, objName, end));
  ev.push(...stateCounters(doc));

  const v = doc.violation;
  if (v) {
    ev.push({
      ph: "i",
      s: "g",
      pid: PID,
      tid: v.task >= 0 ? tid(v.task) : 0,
      ts: Math.max(0, v.step),
      name: v.invariant,
      cat: "violation",
      args: { message: v.message, task: v.taskName, fn: v.fn },
    });
  }
  return { traceEvents: ev, displayTimeUnit: "ns" };
}

/** First step of every task, by task id. */
function firstSteps(doc: TraceDoc): Map<number, Step> {
  const first = new Map<number, Step>();
  for (const s of doc.steps) if (!first.has(s.task)) first.set(s.task, s);
  return first;
}

/**
 * queue_work → kworker and call_rcu → rcu callback. The trace does not record
 * who spawned whom, so the pairing is rebuilt from the kernel's own rules:
 * - queue_work() spawns only when the item is not PENDING; PENDING is set by
 *   that call and cleared by the kworker's first step (process_one_work) or
 *   by INIT_WORK. The kworker "kworker:W" thus comes from the last queue_work
 *   on W that found it idle before the kworker's first step.
 * - call_rcu() numbers its callbacks rcu_cb#0, #1, … in call order, and the
 *   callback's first step waits on that object: the n-th call_rcu that did not
 *   report a double queue spawned the task whose first object is rcu_cb#n.
 */
function flowEvents(doc: TraceDoc, objName: (s: Step) => string): unknown[] {
  const ev: unknown[] = [];
  const first = firstSteps(doc);
  const kworkerOfFirstStep = new Map<number, number>();
  const rcuCbBySerial = new Map<number, Step>();
  for (const t of doc.tasks) {
    const f = first.get(t.id);
    if (f === undefined) continue;
    if (t.name.startsWith("kworker:")) kworkerOfFirstStep.set(f.i, t.id);
    const m = /^rcu_cb#(\d+)$/.exec(objName(f));
    if (t.name.startsWith("rcu_cb:") && m) rcuCbBySerial.set(Number(m[1]), f);
  }
  let nextId = 1;
  const flow = (name: string, from: Step, to: Step) => {
    const id = nextId++;
    ev.push({ ph: "s", id, pid: PID, tid: tid(from.task), ts: from.i, name, cat: "flow" });
    ev.push({ ph: "f", bp: "e", id, pid: PID, tid: tid(to.task), ts: to.i, name, cat: "flow" });
  };

  const pending = new Map<string, boolean>();
  const lastIdleQueue = new Map<string, Step>();
  let rcuSerial = 0;
  const v = doc.violation;
  for (const s of doc.steps) {
    const w = objName(s);
    const kw = kworkerOfFirstStep.get(s.i);
    if (kw !== undefined) {
      const work = doc.tasks[kw].name.slice("kworker:".length);
      const q = lastIdleQueue.get(work);
      if (q !== undefined) flow("queue_work", q, s);
      lastIdleQueue.delete(work);
      pending.set(work, false);
    }
    if (s.step === "queue_work" && pending.get(w) !== true) {
      pending.set(w, true);
      lastIdleQueue.set(w, s);
    } else if (s.step === "INIT_WORK") {
      pending.set(w, false);
      lastIdleQueue.delete(w);
    } else if (s.step === "call_rcu") {
      const doubleQueue = v !== null && v.step === s.i && v.invariant === "debugobjects";
      if (doubleQueue) continue;
      const cb = rcuCbBySerial.get(rcuSerial++);
      if (cb !== undefined && cb.i > s.i) flow("call_rcu", s, cb);
    }
  }
  return ev;
}

/** Root lifetimes as async slices, and a "live roots" counter that follows them. */
function rootEvents(doc: TraceDoc, objName: (s: Step) => string, end: number): unknown[] {
  const ev: unknown[] = [];
  const born = new Map<string, Step>();
  const freed = new Set<string>();
  let live = 0;
  let asyncId = 1;
  const ids = new Map<string, number>();
  const counter = (ts: number) => ev.push({ ph: "C", pid: PID, tid: 0, ts, name: "roots", args: { live } });
  for (const s of doc.steps) {
    const name = objName(s);
    const root = rootOf(name);
    if (root === null || freed.has(root)) continue;
    if (!born.has(root)) {
      born.set(root, s);
      ids.set(root, asyncId++);
      live++;
      ev.push({ ph: "b", cat: "root", id: ids.get(root), pid: PID, tid: tid(s.task), ts: s.i, name: root });
      counter(s.i);
    }
    if (name === root && s.step === "kfree") {
      freed.add(root);
      live--;
      ev.push({
        ph: "e",
        cat: "root",
        id: ids.get(root),
        pid: PID,
        tid: tid(s.task),
        ts: s.i + 1,
        name: root,
        args: { freedBy: doc.tasks[s.task]?.name ?? `task ${s.task}` },
      });
      counter(s.i + 1);
    }
  }
  // A root still allocated when the run ended: close its slice at the end so the track stays balanced.
  for (const [root, s] of born) {
    if (freed.has(root)) continue;
    ev.push({
      ph: "e",
      cat: "root",
      id: ids.get(root),
      pid: PID,
      tid: tid(s.task),
      ts: end,
      name: root,
      args: { freedBy: null },
    });
  }
  return ev;
}

/** When the document carries per-step states, each numeric top-level field becomes a counter track. */
function stateCounters(doc: TraceDoc): unknown[] {
  const ev: unknown[] = [];
  const states = doc.states;
  if (!states) return ev;
  let prev = "";
  states.forEach((st, i) => {
    if (typeof st !== "object" || st === null || Array.isArray(st)) return;
    const args: Record<string, number> = {};
    for (const [k, val] of Object.entries(st))
      if (typeof val === "number" && Number.isFinite(val)) args[k] = val;
    const key = JSON.stringify(args);
    if (Object.keys(args).length === 0 || key === prev) return;
    prev = key;
    ev.push({ ph: "C", pid: PID, tid: 0, ts: i, name: "state", args });
  });
  return ev;
}
