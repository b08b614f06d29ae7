import type { TraceDoc } from "./schema.js";
import type { TraceState } from "./state-schema.js";

/**
 * Export a trace document as Chrome Trace Event JSON, the format ui.perfetto.dev
 * (and chrome://tracing) opens. The checker has no clock, so one step is one
 * microsecond: step i is the slice [i, i+1), and the state after it is drawn at i+1.
 *
 * - one thread per task (pid 1, tid = task id + 1), named by "M" metadata;
 * - one complete ("X") slice per step, "<fn>: <step>", args {obj, kind};
 * - flows ("s" → "f") from the step that spawned a task to the task's first step: queue_work to
 *   the kworker it started, call_rcu to its callback task, any other spawn. Traces that record
 *   spawn sites (tasks[].spawnStep) are exact; older ones are paired by the kernel's rules;
 * - an async slice ("b"/"e", cat "root") per root: from its allocation to its kfree when the
 *   document carries states, else from its first touch to its kfree;
 * - counters ("C"): "roots" {live, invalid}, "<root>" {refcount} per root, "pages" {live},
 *   from the states when present (else only live roots, from the steps);
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

  const spawnSites = doc.tasks.some((t) => t.spawnStep !== undefined);
  ev.push(...(spawnSites ? spawnFlows(doc) : flowEvents(doc, objName)));
  if (doc.states !== undefined) {
    ev.push(...rootLifetimesFromStates(doc, doc.states));
    ev.push(...stateCounters(doc.initialState, doc.states));
  } else ev.push(...rootEvents(doc, objName, end));

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

/**
 * The flow's name: "queue_work" for a kworker, "call_rcu" for an RCU callback task (spawned by
 * call_rcu(), or by the rcu_read_unlock() that ends a section whose callbacks were batched),
 * "spawn" for anything else.
 */
function flowName(child: TraceDoc["tasks"][number]): string {
  return child.lane === "kworker" ? "queue_work" : child.lane === "rcu" ? "call_rcu" : "spawn";
}

/**
 * Flows from recorded spawn sites: the step of the parent during which the task was created
 * (queue_work's insertion, call_rcu's queuing) to the task's first step. A task created during
 * setup, or one that never ran, has none.
 */
function spawnFlows(doc: TraceDoc): unknown[] {
  const ev: unknown[] = [];
  const first = firstSteps(doc);
  let id = 1;
  for (const t of doc.tasks) {
    const at = t.spawnStep ?? -1;
    const to = first.get(t.id);
    const from = doc.steps[at];
    // The spawner's step must be on its parent's track (a task primed inside another's step is not).
    if (at < 0 || to === undefined || from === undefined || from.task !== t.parent) continue;
    const name = flowName(t);
    ev.push({ ph: "s", id, pid: PID, tid: tid(from.task), ts: from.i, name, cat: "flow" });
    ev.push({ ph: "f", bp: "e", id, pid: PID, tid: tid(to.task), ts: to.i, name, cat: "flow" });
    id++;
  }
  return ev;
}

/**
 * Root lifetimes from the states: a root appearing in states[i] was allocated by step i (the slice
 * begins with that step), or by the setup when it is in the initial state; it is freed by the
 * first step j after which it shows freed (the slice ends when step j does).
 */
function rootLifetimesFromStates(doc: TraceDoc, states: readonly TraceState[]): unknown[] {
  const ev: unknown[] = [];
  const ids = new Map<string, { id: number; tid: number }>();
  const ended = new Set<string>();
  const taskAt = (i: number) => (i >= 0 && i < doc.steps.length ? tid(doc.steps[i].task) : 0);
  const visit = (st: TraceState, i: number) => {
    for (const r of st.roots) {
      if (!ids.has(r.name)) {
        const b = { id: ids.size + 1, tid: taskAt(i) };
        ids.set(r.name, b);
        ev.push({ ph: "b", cat: "root", id: b.id, pid: PID, tid: b.tid, ts: Math.max(0, i), name: r.name });
      }
      if (r.freed && !ended.has(r.name)) {
        ended.add(r.name);
        ev.push({
          ph: "e",
          cat: "root",
          id: ids.get(r.name)!.id,
          pid: PID,
          tid: taskAt(i),
          ts: i + 1,
          name: r.name,
          args: { freedBy: i >= 0 ? (doc.tasks[doc.steps[i].task]?.name ?? null) : null },
        });
      }
    }
  };
  if (doc.initialState !== undefined) visit(doc.initialState, -1);
  for (let i = 0; i < states.length; i++) visit(states[i], i);
  // A root still allocated when the run ended: close its slice at the end so the track stays balanced.
  for (const [name, b] of ids) {
    if (ended.has(name)) continue;
    ev.push({
      ph: "e",
      cat: "root",
      id: b.id,
      pid: PID,
      tid: b.tid,
      ts: states.length,
      name,
      args: { freedBy: null },
    });
  }
  return ev;
}

/**
 * Counter tracks from the states, each emitted when its value changes: "roots" {live, invalid}
 * (allocated and not freed; of those, role.invalid), one "<root>" {refcount} per root while it is
 * allocated, and "pages" {live} (non-root page tables).
 */
function stateCounters(initial: TraceState | undefined, states: readonly TraceState[]): unknown[] {
  const ev: unknown[] = [];
  const last = new Map<string, string>();
  const counter = (ts: number, name: string, args: Record<string, number>) => {
    const key = JSON.stringify(args);
    if (last.get(name) === key) return;
    last.set(name, key);
    ev.push({ ph: "C", pid: PID, tid: 0, ts, name, args });
  };
  const visit = (st: TraceState, ts: number) => {
    let live = 0;
    let invalid = 0;
    for (const r of st.roots) {
      if (r.freed) continue;
      live++;
      if (r.invalid) invalid++;
      counter(ts, r.name, { refcount: r.refcount });
    }
    counter(ts, "roots", { live, invalid });
    counter(ts, "pages", { live: st.pages.live });
  };
  if (initial !== undefined) visit(initial, 0);
  for (let i = 0; i < states.length; i++) visit(states[i], i + 1);
  return ev;
}
