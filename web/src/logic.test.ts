import { describe, expect, it } from "vitest";
import type { TraceDoc } from "../../src/trace/schema.js";
import type { SimTraceRun } from "../../src/trace/sim-trace-schema.js";
import type { TraceState } from "../../src/trace/state-schema.js";
import { formatNs, lockModeOf, messageOf, ticks } from "./format.js";
import { fnRuns, heldAt, laneOrder, lockHolds, stepOfTask } from "./lanes.js";
import { roleFields } from "./role.js";
import { pxRects, simHolds, simSnapshot, simStepOfTask } from "./sim-model.js";
import { StateDiff } from "./state-diff.js";
import { formatHash, parseHash, replayParam, withReplay } from "./url.js";

type Kind = TraceDoc["steps"][number]["kind"];

function doc(steps: [task: number, kind: Kind, obj: number, fn: string, step: string][]): TraceDoc {
  return {
    schemaVersion: 1,
    tool: { name: "tdplab", version: "0" },
    run: { scenario: "s", kernel: "v5.18", features: [], variant: null },
    replay: "tdp1.x.y",
    tasks: [
      { id: 0, name: "vcpu0", lane: "vcpu" },
      { id: 1, name: "rcu_cb:free root#1", lane: "rcu" },
      { id: 2, name: "vcpu1", lane: "vcpu" },
    ],
    objects: ["kvm.mmu_lock", "root#1.count", "kvm.tdp_mmu_pages_lock"],
    steps: steps.map(([task, kind, obj, fn, step], i) => ({ i, task, kind, obj, fn, step })),
    violation: null,
  };
}

const d = doc([
  [0, "acquire", 0, "kvm_mmu_load", "read_lock"],
  [0, "rmw", 1, "kvm_tdp_mmu_get_root", "refcount_inc_not_zero"],
  [2, "acquire", 0, "kvm_mmu_load", "read_lock"],
  [0, "read", 1, "kvm_tdp_mmu_get_root", "refcount_read"],
  [0, "release", 0, "kvm_mmu_load", "read_unlock"],
  [1, "write", 1, "tdp_mmu_free_sp", "kfree"],
  [2, "acquire", 2, "tdp_mmu_link_sp", "spin_lock"],
]);

describe("lanes of a checker trace", () => {
  it("orders tasks by lane kind, then id", () => {
    expect(laneOrder(d)).toEqual([0, 2, 1]);
  });

  it("groups a task's consecutive steps in one function, across other tasks' steps", () => {
    expect(fnRuns(d).map((r) => [r.task, r.fn, r.first, r.last])).toEqual([
      [0, "kvm_mmu_load", 0, 0],
      [0, "kvm_tdp_mmu_get_root", 1, 3],
      [2, "kvm_mmu_load", 2, 2],
      [0, "kvm_mmu_load", 4, 4],
      [1, "tdp_mmu_free_sp", 5, 5],
      [2, "tdp_mmu_link_sp", 6, 6],
    ]);
  });

  it("derives lock holds from acquire/release, open ones to the end", () => {
    const h = lockHolds(d);
    expect(h.map((x) => [x.task, x.name, x.mode, x.from, x.to])).toEqual([
      [0, "kvm.mmu_lock", "read", 0, 4],
      [2, "kvm.mmu_lock", "read", 2, null],
      [2, "kvm.tdp_mmu_pages_lock", "exclusive", 6, null],
    ]);
    expect(heldAt(h, 3).map((x) => x.task)).toEqual([0, 2]);
    expect(heldAt(h, 4).map((x) => x.task)).toEqual([2]);
  });

  it("finds the next and previous step of a task", () => {
    expect(stepOfTask(d, 0, 2)).toBe(2);
    expect(stepOfTask(d, 2, 2)).toBe(6);
    expect(stepOfTask(d, 6, 2)).toBeNull();
    expect(stepOfTask(d, 6, 0, true)).toBe(4);
    expect(stepOfTask(d, 0, 0, true)).toBeNull();
  });
});

function state(refcount: number, freed: boolean, holders: { task: number; mode: "read" }[] = []): TraceState {
  return {
    roots: [
      {
        name: "root#1",
        level: 4,
        asId: 0,
        invalid: freed,
        role: 0,
        refcount,
        onList: !freed,
        freed,
        pageTables: 0,
        leaves: 0,
        flags: [],
      },
    ],
    locks: [{ name: "kvm.mmu_lock", kind: "rwlock", holders, waiters: [] }],
    rcu: { readers: [], pendingCallbacks: [], waiters: [] },
    workqueues: [],
    tasks: [{ id: 0, status: "runnable", fn: "", preemptCount: 0, rcuDepth: 0 }],
    pages: { live: 1, freed: 0 },
  };
}

describe("what changed at a step", () => {
  it("names the changed fields of each object, with the old value", () => {
    const diff = new StateDiff(state(1, false), state(0, true, [{ task: 0, mode: "read" }]));
    expect(diff.keys().sort()).toEqual([
      "lock/kvm.mmu_lock/holders",
      "root/root#1/freed",
      "root/root#1/invalid",
      "root/root#1/onList",
      "root/root#1/refcount",
    ]);
    expect(diff.was("root/root#1/refcount")).toBe("1");
    expect(diff.changed("root/root#1")).toBe(true);
    expect(diff.changed("root/root#1/level")).toBe(false);
    expect(diff.changed("pages")).toBe(false);
  });

  it("marks nothing without a previous state, and tells new objects", () => {
    expect(new StateDiff(undefined, state(1, false)).size).toBe(0);
    const before = { ...state(1, false), roots: [] };
    const diff = new StateDiff(before, state(1, false));
    expect(diff.isNew("root/root#1")).toBe(true);
    expect(diff.changed("root/root#1")).toBe(true);
  });
});

describe("the URL", () => {
  it("round-trips cursor, task and run through the hash", () => {
    const v = { cursor: 12, task: 2, run: 1 };
    expect(formatHash(v)).toBe("#run=1&cursor=12&task=2");
    expect(parseHash(formatHash(v))).toEqual(v);
    expect(parseHash("#cursor=abc&task=-1")).toEqual({ cursor: null, task: null, run: null });
    expect(formatHash({ cursor: null, task: null, run: null })).toBe("");
  });

  it("carries the replay string in the query", () => {
    const t = "tdp1.eyJzIjoic2VlZCJ9.AgQB-_";
    expect(replayParam(withReplay("", t))).toBe(t);
    expect(replayParam(withReplay("?a=1&replay=old", t))).toBe(t);
    expect(withReplay("?a=1", t)).toMatch(/^\?a=1&replay=/);
    expect(replayParam("?replay=")).toBeNull();
  });
});

describe("formatting", () => {
  it("writes virtual time in the largest unit", () => {
    expect(formatNs(512)).toBe("512 ns");
    expect(formatNs(1500)).toBe("1.5 µs");
    expect(formatNs(41_716_257)).toBe("41.7 ms");
    expect(formatNs(946_558_493_207)).toBe("947 s");
  });

  it("puts round ticks over a range", () => {
    expect(ticks(0, 10_000, 5)).toEqual([0, 2000, 4000, 6000, 8000, 10_000]);
    expect(ticks(5, 5, 4)).toEqual([5]);
  });

  it("reads the lock mode off the step name", () => {
    expect(lockModeOf("read_lock")).toBe("read");
    expect(lockModeOf("write_lock")).toBe("write");
    expect(lockModeOf("spin_lock")).toBe("exclusive");
  });

  it("does not repeat the invariant in the message", () => {
    expect(messageOf({ invariant: "use-after-free", message: "use-after-free: x" })).toBe("x");
    expect(messageOf({ invariant: "refcount", message: "refcount_t: underflow" })).toBe(
      "refcount_t: underflow",
    );
  });
});

const run: SimTraceRun = {
  label: "r",
  kernel: "v6.9",
  virtualNs: 1000,
  status: "ok",
  tasks: [
    { id: 0, name: "holder", lane: "holder", cpu: 0 },
    { id: 1, name: "waiter", lane: "waiter", cpu: 1 },
  ],
  steps: [
    {
      task: 0,
      cpu: 0,
      startNs: 0,
      endNs: 100,
      kind: "acquire",
      fn: "f",
      step: "spin_lock",
      objName: "l",
      weight: 1,
    },
    {
      task: 1,
      cpu: 1,
      startNs: 10,
      endNs: 20,
      kind: "read",
      fn: "g",
      step: "READ_ONCE",
      objName: "x",
      weight: 1,
    },
    {
      task: 0,
      cpu: 0,
      startNs: 400,
      endNs: 420,
      kind: "release",
      fn: "f",
      step: "spin_unlock",
      objName: "l",
      weight: 1,
    },
    {
      task: 1,
      cpu: 1,
      startNs: 420,
      endNs: 500,
      kind: "acquire",
      fn: "g",
      step: "spin_lock",
      objName: "l",
      weight: 1,
    },
  ],
  waits: [
    { task: 1, cpu: 1, startNs: 20, endNs: 420, kind: "spin", fn: "g", step: "spin_lock", objName: "l" },
  ],
};

describe("simulator runs", () => {
  it("holds a lock from the start of the acquiring step to the start of the releasing one", () => {
    expect(simHolds(run).map((h) => [h.task, h.name, h.startNs, h.endNs, h.open])).toEqual([
      [0, "l", 0, 400, false],
      [1, "l", 420, 1000, true],
    ]);
  });

  it("tells what each task and lock is doing at a time", () => {
    const s = simSnapshot(run, simHolds(run), 200);
    expect(s.tasks.map((t) => [t.running?.step ?? null, t.waiting?.kind ?? null])).toEqual([
      [null, null],
      [null, "spin"],
    ]);
    expect(s.holds.map((h) => h.task)).toEqual([0]);
    expect(s.waitsByObj.get("l")?.map((w) => w.task)).toEqual([1]);
    // The release takes effect at the start of its step; the waiter still spins until it gets the lock.
    const at410 = simSnapshot(run, simHolds(run), 410);
    expect(at410.tasks.map((t) => [t.running?.step ?? null, t.waiting?.kind ?? null])).toEqual([
      ["spin_unlock", null],
      [null, "spin"],
    ]);
    expect(at410.holds).toEqual([]);
    const at420 = simSnapshot(run, simHolds(run), 420);
    expect(at420.tasks.map((t) => t.running?.step ?? null)).toEqual([null, "spin_lock"]);
    expect(at420.holds.map((h) => h.task)).toEqual([1]);
  });

  it("steps to the next span of a task", () => {
    expect(simStepOfTask(run, 0, 1)).toBe(1);
    expect(simStepOfTask(run, 1, 1)).toBe(3);
    expect(simStepOfTask(run, 3, 0, true)).toBe(2);
  });

  it("draws wide spans one by one and merges touching sub-pixel ones", () => {
    const spans = [
      { startNs: 0, endNs: 100 },
      { startNs: 200, endNs: 201 },
      { startNs: 201, endNs: 202 },
      { startNs: 202, endNs: 203 },
      { startNs: 900, endNs: 901 },
    ];
    const r = pxRects(spans, 0, 1000, 0.1);
    expect(r.map((p) => [Math.round(p.x), p.span === null ? p.count : "span"])).toEqual([
      [0, "span"],
      [20, 3],
      [90, 1],
    ]);
    expect(pxRects(spans, 150, 850, 1).map((p) => p.x)).toEqual([50, 51, 52]);
  });
});

describe("role words", () => {
  it("names the fields of a root's role, and the invalid bit when set", () => {
    // tdpRootRole(4, 0) with role.invalid set: 0x3f84 (what seed 003's freed root carries).
    expect(roleFields(0x3f84)).toEqual(["level=4", "direct", "access=7", "invalid", "efer_nx", "cr0_wp"]);
    expect(roleFields(0x1000000 | 4)).toEqual(["level=4", "smm=1"]);
  });
});
