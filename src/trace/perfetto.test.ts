import { beforeAll, describe, expect, it } from "vitest";
import { runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { programFor, recordTraceDoc } from "../scenarios/check.js";
import { resolveScenario, runConfigFor } from "../scenarios/resolve.js";
import { buildTraceDoc } from "./build.js";
import { rootOf, toChromeTrace } from "./perfetto.js";
import { TraceDoc } from "./schema.js";
import type { RootState, TraceState } from "./state-schema.js";

interface Ev {
  ph: string;
  pid: number;
  tid: number;
  ts: number;
  dur?: number;
  id?: number;
  name: string;
  cat?: string;
  bp?: string;
  s?: string;
  args?: Record<string, unknown>;
}

const events = (doc: TraceDoc) => toChromeTrace(doc).traceEvents as Ev[];

/** A round-robin run of seed 002 as a bare trace (no spawn sites, no states), as older files are. */
let doc: TraceDoc;
/** The same run recorded the way check and replay record it: spawn sites and a state per step. */
let rich: TraceDoc;

beforeAll(async () => {
  const scenario = await resolveScenario("seed-002-zap-worker");
  const config = runConfigFor(scenario, null, {});
  const program = programFor({ scenario, config, variant: null });
  const r = runProgram(program, { scheduler: new RoundRobinScheduler(), record: true });
  const run = { scenario: scenario.scenario.name, kernel: config.kernel, features: [], variant: null };
  doc = buildTraceDoc(r, run, "tdp1.test");
  rich = recordTraceDoc(program, r.choices, { overrides: new Map(), run, replay: "tdp1.test" }).doc;
});

/** A root as a state lists it, with defaults for the fields a test does not care about. */
function root(name: string, refcount: number, more: Partial<RootState> = {}): RootState {
  return {
    name,
    level: 4,
    asId: 0,
    invalid: false,
    role: 0,
    refcount,
    onList: true,
    freed: false,
    pageTables: 0,
    leaves: 0,
    flags: [],
    ...more,
  };
}

function state(roots: RootState[], pagesLive = 0): TraceState {
  return {
    roots,
    locks: [],
    rcu: { readers: [], pendingCallbacks: [], waiters: [] },
    workqueues: [],
    tasks: [],
    pages: { live: pagesLive, freed: 0 },
  };
}

/** The value a counter track shows at time ts: its last sample at or before ts. */
function counterAt(ev: Ev[], name: string, key: string, ts: number): unknown {
  let v: unknown;
  for (const e of ev)
    if (e.ph === "C" && e.name === name && e.ts <= ts && e.args && key in e.args) v = e.args[key];
  return v;
}

/** A small hand-written document, for rules a round-robin run does not reach. */
function handDoc(
  tasks: string[],
  objects: string[],
  steps: [task: number, obj: number, fn: string, step: string][],
): TraceDoc {
  return {
    schemaVersion: 1,
    tool: { name: "tdplab", version: "0" },
    run: { scenario: "hand", kernel: "v6.6", features: [], variant: null },
    replay: "tdp1.x",
    tasks: tasks.map((name, id) => ({ id, name, lane: name })),
    objects,
    steps: steps.map(([task, obj, fn, step], i) => ({ i, task, kind: "rmw" as const, obj, fn, step })),
    violation: null,
  };
}

describe("toChromeTrace", () => {
  it("names one thread per task (tid = task id + 1) and the process after the run", () => {
    const ev = events(doc);
    const names = ev.filter((e) => e.ph === "M" && e.name === "thread_name");
    expect(names.map((e) => [e.tid, e.args?.name])).toEqual(doc.tasks.map((t) => [t.id + 1, t.name]));
    expect(names.every((e) => e.pid === 1)).toBe(true);
    expect(names.map((e) => e.args?.name)).toContain("vcpu0");
    expect(names.some((e) => String(e.args?.name).startsWith("kworker:"))).toBe(true);
    expect(names.some((e) => String(e.args?.name).startsWith("rcu_cb:"))).toBe(true);
    const proc = ev.find((e) => e.ph === "M" && e.name === "process_name");
    expect(proc?.args?.name).toContain("seed-002-zap-worker");
  });

  it("emits one 1 µs complete event per step, labelled fn: step, never overlapping on a thread", () => {
    const xs = events(doc).filter((e) => e.ph === "X");
    expect(xs).toHaveLength(doc.steps.length);
    for (const s of doc.steps) {
      const x = xs[s.i];
      expect(x).toMatchObject({ ts: s.i, dur: 1, tid: s.task + 1, name: `${s.fn}: ${s.step}` });
      expect(x.args).toEqual({ obj: doc.objects[s.obj], kind: s.kind });
    }
    const byTid = new Map<number, Ev[]>();
    for (const e of xs) byTid.set(e.tid, [...(byTid.get(e.tid) ?? []), e]);
    for (const list of byTid.values()) {
      const sorted = [...list].sort((a, b) => a.ts - b.ts);
      for (let k = 1; k < sorted.length; k++)
        expect(sorted[k].ts).toBeGreaterThanOrEqual(sorted[k - 1].ts + (sorted[k - 1].dur ?? 0));
    }
  });

  it("draws a flow from queue_work to the first step of the kworker it spawned", () => {
    const ev = events(doc);
    const qw = doc.steps.find((s) => s.step === "queue_work");
    const kw = doc.tasks.find((t) => t.name === `kworker:${doc.objects[qw!.obj]}`);
    expect(qw && kw).toBeTruthy();
    const kFirst = doc.steps.find((s) => s.task === kw!.id)!;
    const start = ev.find((e) => e.ph === "s" && e.name === "queue_work");
    const finish = ev.find((e) => e.ph === "f" && e.id === start?.id);
    expect(start).toMatchObject({ ts: qw!.i, tid: qw!.task + 1 });
    expect(finish).toMatchObject({ ts: kFirst.i, tid: kw!.id + 1, bp: "e" });
  });

  it("draws a flow from every call_rcu to its callback task", () => {
    const ev = events(doc);
    const calls = doc.steps.filter((s) => s.step === "call_rcu");
    const cbs = doc.tasks.filter((t) => t.name.startsWith("rcu_cb:"));
    expect(calls.length).toBe(cbs.length);
    expect(calls.length).toBeGreaterThan(0);
    const starts = ev.filter((e) => e.ph === "s" && e.name === "call_rcu");
    expect(starts.map((e) => e.ts)).toEqual(calls.map((s) => s.i));
    const ends = starts.map((s) => ev.find((e) => e.ph === "f" && e.id === s.id)!);
    expect(ends.map((e) => e.tid).sort()).toEqual(cbs.map((t) => t.id + 1).sort());
  });

  it("matches a kworker to the queue_work that found the item idle, not a later no-op one", () => {
    const d = handDoc(
      ["a", "b", "kworker:w"],
      ["w"],
      [
        [0, 0, "f", "INIT_WORK"],
        [0, 0, "f", "queue_work"], // spawns the kworker
        [1, 0, "g", "queue_work"], // PENDING: returns false
        [2, 0, "process_one_work", "clear PENDING"],
        [1, 0, "g", "queue_work"], // idle again, but no kworker in this run
      ],
    );
    const ev = events(d);
    const flows = ev.filter((e) => e.ph === "s");
    expect(flows).toHaveLength(1);
    expect(flows[0]).toMatchObject({ ts: 1, tid: 1 });
    expect(ev.find((e) => e.ph === "f")).toMatchObject({ ts: 3, tid: 3 });
  });

  it("gives every root a balanced async slice, ending at its kfree", () => {
    const ev = events(doc).filter((e) => e.cat === "root");
    const roots = new Set(doc.objects.map(rootOf).filter((r) => r !== null));
    expect(roots.size).toBeGreaterThan(0);
    for (const root of roots) {
      const b = ev.filter((e) => e.ph === "b" && e.name === root);
      const e = ev.filter((x) => x.ph === "e" && x.name === root);
      expect(b).toHaveLength(1);
      expect(e).toHaveLength(1);
      expect(e[0].id).toBe(b[0].id);
      const firstTouch = doc.steps.find((s) => rootOf(doc.objects[s.obj]) === root)!;
      expect(b[0].ts).toBe(firstTouch.i);
      const kfree = doc.steps.find((s) => doc.objects[s.obj] === root && s.step === "kfree")!;
      expect(e[0].ts).toBe(kfree.i + 1);
    }
  });

  it("closes a root never freed at the end of the run, and counts live roots", () => {
    const d = handDoc(
      ["t"],
      ["root#1.tdp_mmu_root_count", "root#2.spte[0]", "root#1"],
      [
        [0, 0, "f", "refcount_set"],
        [0, 1, "f", "READ_ONCE"],
        [0, 2, "tdp_mmu_free_sp", "kfree"],
        [0, 0, "f", "refcount_read"], // after the kfree: no second slice
      ],
    );
    const ev = events(d);
    const slices = ev.filter((e) => e.cat === "root").map((e) => [e.ph, e.name, e.ts]);
    expect(slices).toEqual([
      ["b", "root#1", 0],
      ["b", "root#2", 1],
      ["e", "root#1", 3],
      ["e", "root#2", 4],
    ]);
    const live = ev.filter((e) => e.ph === "C" && e.name === "roots").map((e) => [e.ts, e.args?.live]);
    expect(live).toEqual([
      [0, 1],
      [1, 2],
      [3, 1],
    ]);
  });

  it("emits no state counters for a document without states", () => {
    const names = new Set(
      events(doc)
        .filter((e) => e.ph === "C")
        .map((e) => e.name),
    );
    expect([...names]).toEqual(["roots"]);
  });

  it("draws counters that follow the states: live and invalid roots, each root's refcount, pages", () => {
    const d = handDoc(
      ["t"],
      ["x"],
      [
        [0, 0, "f", "a"],
        [0, 0, "f", "b"],
        [0, 0, "f", "c"],
        [0, 0, "f", "d"],
      ],
    );
    d.initialState = state([root("root#1", 1)]);
    d.states = [
      state([root("root#1", 2)], 1),
      state([root("root#1", 2, { invalid: true }), root("root#2", 1)], 1),
      state([root("root#1", 2, { invalid: true }), root("root#2", 1)], 1),
      state([root("root#1", 0, { invalid: true, freed: true }), root("root#2", 1)], 0),
    ];
    const cs = events(d).filter((e) => e.ph === "C");
    expect(cs.filter((e) => e.name === "roots").map((e) => [e.ts, e.args])).toEqual([
      [0, { live: 1, invalid: 0 }],
      [2, { live: 2, invalid: 1 }],
      [4, { live: 1, invalid: 0 }],
    ]);
    expect(cs.filter((e) => e.name === "root#1").map((e) => [e.ts, e.args])).toEqual([
      [0, { refcount: 1 }],
      [1, { refcount: 2 }],
    ]);
    expect(cs.filter((e) => e.name === "root#2").map((e) => [e.ts, e.args])).toEqual([[2, { refcount: 1 }]]);
    expect(cs.filter((e) => e.name === "pages").map((e) => [e.ts, e.args?.live])).toEqual([
      [0, 0],
      [1, 1],
      [4, 0],
    ]);
    expect(cs.every((e) => e.pid === 1 && Object.values(e.args ?? {}).every(Number.isInteger))).toBe(true);
  });

  it("draws root lifetimes from the states: allocation to free, balanced, one id per root", () => {
    const d = handDoc(
      ["a", "b"],
      ["x"],
      [
        [0, 0, "f", "a"],
        [1, 0, "f", "b"],
        [1, 0, "f", "c"],
      ],
    );
    d.initialState = state([root("root#1", 1)]);
    d.states = [
      state([root("root#1", 1)]),
      state([root("root#1", 0, { freed: true }), root("root#2", 1)]),
      state([root("root#1", 0, { freed: true }), root("root#2", 1)]),
    ];
    const slices = events(d)
      .filter((e) => e.cat === "root")
      .map((e) => [e.ph, e.name, e.ts, e.tid, e.id]);
    expect(slices).toEqual([
      ["b", "root#1", 0, 0, 1],
      ["e", "root#1", 2, 2, 1],
      ["b", "root#2", 1, 2, 2],
      ["e", "root#2", 3, 2, 2],
    ]);
  });

  it("marks the violation as a global instant named after the invariant", () => {
    const d: TraceDoc = {
      ...doc,
      violation: {
        invariant: "use-after-free",
        message: "m",
        task: 1,
        taskName: "vcpu0",
        step: 5,
        fn: "f",
        details: {},
      },
    };
    const inst = events(d).filter((e) => e.ph === "i");
    expect(inst).toEqual([expect.objectContaining({ name: "use-after-free", s: "g", ts: 5, tid: 2 })]);
    expect(events(doc).some((e) => e.ph === "i")).toBe(false);
  });

  it("survives a JSON round trip and says its time unit", () => {
    const t = toChromeTrace(doc);
    expect(JSON.parse(JSON.stringify(t))).toEqual(t);
    expect(t.displayTimeUnit).toBe("ns");
  });
});

describe("toChromeTrace on a recorded trace (spawn sites and states)", () => {
  it("records a state per step that the schema accepts", () => {
    expect(rich.states).toHaveLength(rich.steps.length);
    expect(rich.steps).toEqual(doc.steps);
    expect(TraceDoc.parse(JSON.parse(JSON.stringify(rich)))).toEqual(rich);
  });

  it("draws one well-formed flow from each queue_work to the kworker it started", () => {
    const ev = events(rich);
    const kworkers = rich.tasks.filter((t) => t.name.startsWith("kworker:"));
    expect(kworkers.length).toBeGreaterThan(0);
    const starts = ev.filter((e) => e.ph === "s" && e.name === "queue_work");
    expect(starts).toHaveLength(kworkers.length);
    for (const kw of kworkers) {
      // The kworker is spawned by the insertion (__queue_work), where the flow starts; the
      // queue_work step before it set the item's PENDING bit.
      const at = rich.steps[kw.spawnStep!];
      expect(at).toMatchObject({ task: kw.parent, step: "__queue_work" });
      const qw = rich.steps
        .filter((x) => x.i < at.i && x.task === at.task && x.step === "queue_work")
        .at(-1)!;
      expect(rich.objects[qw.obj]).toBe(kw.name.slice("kworker:".length));
      const s = starts.find((e) => e.ts === at.i && e.tid === at.task + 1)!;
      const f = ev.filter((e) => e.ph === "f" && e.id === s.id);
      const first = rich.steps.find((x) => x.task === kw.id)!;
      expect(f).toEqual([
        expect.objectContaining({ ts: first.i, tid: kw.id + 1, bp: "e", name: "queue_work" }),
      ]);
      expect(first.i).toBeGreaterThan(at.i);
    }
  });

  it("pairs every flow start with exactly one finish, and call_rcu flows reach their callbacks", () => {
    const ev = events(rich);
    const s = ev.filter((e) => e.ph === "s");
    const f = ev.filter((e) => e.ph === "f");
    expect(new Set(s.map((e) => e.id)).size).toBe(s.length);
    expect(f.map((e) => e.id).sort()).toEqual(s.map((e) => e.id).sort());
    for (const start of s) {
      const end = f.find((e) => e.id === start.id)!;
      expect(end.ts).toBeGreaterThan(start.ts);
      expect(end.name).toBe(start.name);
    }
    const cbs = rich.tasks.filter((t) => t.name.startsWith("rcu_cb:"));
    const rcu = s.filter((e) => e.name === "call_rcu");
    expect(rcu.length).toBe(cbs.length);
    expect(rcu.map((e) => rich.steps[e.ts].step)).toEqual(rcu.map(() => "call_rcu"));
  });

  it("has counter values that follow the states at every step", () => {
    const ev = events(rich);
    rich.states!.forEach((st, i) => {
      const live = st.roots.filter((r) => !r.freed);
      expect(counterAt(ev, "roots", "live", i + 1)).toBe(live.length);
      expect(counterAt(ev, "roots", "invalid", i + 1)).toBe(live.filter((r) => r.invalid).length);
      for (const r of live) expect(counterAt(ev, r.name, "refcount", i + 1)).toBe(r.refcount);
      expect(counterAt(ev, "pages", "live", i + 1)).toBe(st.pages.live);
    });
  });

  it("ends each root's slice with the step that freed it", () => {
    const ev = events(rich).filter((e) => e.cat === "root");
    const freedRoots = rich.states!.at(-1)!.roots.filter((r) => r.freed);
    expect(freedRoots.length).toBeGreaterThan(0);
    for (const r of rich.states!.at(-1)!.roots) {
      const b = ev.filter((e) => e.ph === "b" && e.name === r.name);
      const e = ev.filter((x) => x.ph === "e" && x.name === r.name);
      expect(b).toHaveLength(1);
      expect(e).toHaveLength(1);
      expect(e[0].id).toBe(b[0].id);
      if (!r.freed) continue;
      const kfree = rich.steps.find((s) => rich.objects[s.obj] === r.name && s.step === "kfree")!;
      expect(e[0].ts).toBe(kfree.i + 1);
    }
  });
});
