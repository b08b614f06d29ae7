import { describe, expect, it } from "vitest";
import { type SimResult, type SimStepSpan, type SimWaitSpan, simulate } from "../engine/sim/simulator.js";
import { spinlockContention } from "../kernel/sim-fixtures.js";
import { kernelView } from "../kernel/sim-view.js";
import { simPerfetto } from "./perfetto-sim.js";

interface Ev {
  ph: string;
  pid: number;
  tid: number;
  ts: number;
  dur?: number;
  id?: number;
  name: string;
  cat?: string;
  args?: Record<string, unknown>;
}

function step(
  task: number,
  startNs: number,
  endNs: number,
  fn: string,
  st: string,
  obj = "x",
  kind = "read",
) {
  return {
    task,
    cpu: task,
    startNs,
    endNs,
    kind,
    fn,
    step: st,
    objName: obj,
    weight: 1,
  } satisfies SimStepSpan;
}

function result(
  names: string[],
  steps: SimStepSpan[],
  waits: SimWaitSpan[] = [],
  virtualNs = 10_000,
): SimResult {
  return {
    status: "ok",
    virtualNs,
    perTask: names.map((name, i) => ({
      name,
      lane: name,
      cpu: i === 0 ? 0 : null,
      busyNs: 0,
      blockedNs: 0,
      spawnNs: 0,
      firstStepNs: null,
      lastStepNs: null,
      doneNs: null,
      steps: 0,
      priority: 0,
      cpusUsed: [],
      wakeLatency: null,
    })),
    events: steps.length,
    stats: {
      steps: steps.length,
      contextSwitches: 0,
      preemptions: 0,
      needReschedAsked: 0,
      needReschedTrue: 0,
      gracePeriods: 0,
      switchNs: 0,
      rcuForcedResched: 0,
      bulkSteps: 0,
      strayWakes: 0,
      lineTransfers: 0,
      lineNs: 0,
    },
    violations: [],
    unfinished: [],
    timeline: { steps, waits },
    rcuStalls: [],
    overridesRan: [],
    perCpu: [],
  };
}

const events = (runs: Parameters<typeof simPerfetto>[0]) => simPerfetto(runs).traceEvents as Ev[];

/** Complete slices on each thread nest or are disjoint (what Perfetto needs to draw them). */
function expectNested(ev: Ev[]): void {
  const byThread = new Map<string, Ev[]>();
  for (const e of ev) {
    if (e.ph !== "X") continue;
    const k = `${e.pid}/${e.tid}`;
    byThread.set(k, [...(byThread.get(k) ?? []), e]);
  }
  for (const list of byThread.values()) {
    const sorted = [...list].sort((a, b) => a.ts - b.ts || b.dur! - a.dur!);
    const open: number[] = [];
    for (const e of sorted) {
      while (open.length > 0 && open.at(-1)! <= e.ts) open.pop();
      if (open.length > 0) expect(e.ts + e.dur!).toBeLessThanOrEqual(open.at(-1)!);
      open.push(e.ts + e.dur!);
    }
  }
}

describe("simPerfetto", () => {
  it("gives each run a process and each task a thread, and says its time unit", () => {
    const a = result(["vcpu0", "kworker"], [step(0, 0, 1000, "f", "s")]);
    const b = result(["vcpu0"], [step(0, 0, 2000, "g", "s")]);
    const t = simPerfetto([
      { label: "5.17 sync", result: a },
      { label: "5.18 async", result: b },
    ]);
    expect(t.displayTimeUnit).toBe("ns");
    const ev = t.traceEvents as Ev[];
    const procs = ev.filter((e) => e.name === "process_name").map((e) => [e.pid, e.args?.name]);
    expect(procs).toEqual([
      [1, "5.17 sync"],
      [2, "5.18 async"],
    ]);
    const threads = ev.filter((e) => e.name === "thread_name").map((e) => [e.pid, e.tid, e.args?.name]);
    expect(threads).toEqual([
      [1, 1, "vcpu0 (cpu0)"],
      [1, 2, "kworker"],
      [2, 1, "vcpu0 (cpu0)"],
    ]);
    expect(ev.filter((e) => e.ph === "X").map((e) => [e.pid, e.name, e.dur])).toEqual([
      [1, "f", 1],
      [2, "g", 2],
    ]);
  });

  it("merges consecutive steps of one function into one slice, in virtual microseconds", () => {
    const r = result(
      ["t"],
      [
        step(0, 0, 500, "kvm_tdp_mmu_put_root", "refcount_dec_and_test"),
        step(0, 500, 1500, "kvm_tdp_mmu_put_root", "xchg", "root#1.role"),
        step(0, 2500, 3000, "tdp_mmu_zap_root", "READ_ONCE"),
        step(0, 3000, 3250, "kvm_tdp_mmu_put_root", "call_rcu"),
      ],
    );
    const xs = events([{ label: "r", result: r }]).filter((e) => e.ph === "X");
    expect(xs.map((e) => [e.name, e.ts, e.dur, e.args?.steps])).toEqual([
      ["kvm_tdp_mmu_put_root", 0, 1.5, 2],
      ["tdp_mmu_zap_root", 2.5, 0.5, 1],
      ["kvm_tdp_mmu_put_root", 3, 0.25, 1],
    ]);
    expect(xs[0].args).toMatchObject({ first: "refcount_dec_and_test x", last: "xchg root#1.role" });
  });

  it("draws waits between or inside function slices, clipped to the task's steps", () => {
    const r = result(
      ["t"],
      [step(0, 0, 1000, "f", "a"), step(0, 3000, 4000, "f", "b"), step(0, 6000, 7000, "g", "c")],
      [
        {
          task: 0,
          cpu: 0,
          startNs: 1000,
          endNs: 3000,
          kind: "spin",
          fn: "f",
          step: "spin_lock",
          objName: "l",
        },
        // Overlapping the steps on both sides: clipped to [4000, 6000].
        { task: 0, cpu: -1, startNs: 3500, endNs: 6500, kind: "sleep", fn: "g", step: "wait", objName: "wq" },
      ],
    );
    const ev = events([{ label: "r", result: r }]);
    const waits = ev.filter((e) => e.cat === "wait").map((e) => [e.name, e.ts, e.dur, e.args?.cpu]);
    expect(waits).toEqual([
      ["spin l", 1, 2, 0],
      ["sleep wq", 4, 2, -1],
    ]);
    expectNested(ev);
  });

  it("draws lock holds from acquire to release, with rwlock slowpaths and failed trylocks", () => {
    const acq = (t: number, at: number, st: string, obj: string) =>
      step(t, at, at + 100, "f", st, obj, "acquire");
    const rel = (t: number, at: number, st: string, obj: string) =>
      step(t, at, at + 100, "f", st, obj, "release");
    const r = result(
      ["a", "b"],
      [
        acq(0, 0, "write_lock", "mmu_lock"),
        acq(0, 1000, "write_lock slowpath: set _QW_WAITING", "mmu_lock"),
        acq(0, 2000, "write_lock slowpath: wait for readers", "mmu_lock"),
        acq(1, 2100, "spin_trylock", "pages_lock"),
        acq(1, 2200, "spin_lock", "pages_lock"),
        acq(0, 2500, "spin_lock", "s"),
        rel(0, 3000, "write_unlock", "mmu_lock"),
        rel(1, 3500, "spin_unlock", "pages_lock"),
        acq(1, 4000, "read_lock", "mmu_lock"),
        acq(1, 4500, "read_lock", "mmu_lock"),
        rel(1, 5000, "read_unlock", "mmu_lock"),
        rel(1, 5500, "read_unlock", "mmu_lock"),
        acq(1, 6000, "spin_trylock", "x"),
      ],
      [],
      8000,
    );
    const ev = events([{ label: "r", result: r }]).filter((e) => e.cat === "lock");
    const spans = (name: string, holder: string) => {
      const bs = ev.filter((e) => e.ph === "b" && e.name === name && e.args?.holder === holder);
      return bs.map((b) => {
        const e = ev.filter((x) => x.ph === "e" && x.id === b.id && x.ts >= b.ts);
        return [b.ts, b.args?.mode, e.length > 0];
      });
    };
    // The writer holds mmu_lock from its last slowpath step; the crossing hold of s ends with the run.
    expect(spans("mmu_lock", "a")).toEqual([[2, "write", true]]);
    expect(spans("s", "a")).toEqual([[2.5, "exclusive", true]]);
    expect(ev.find((e) => e.ph === "e" && e.name === "s")?.ts).toBe(8);
    // The failed trylock is replaced by the spin_lock that followed; the last one, left open, is dropped.
    expect(spans("pages_lock", "b")).toEqual([[2.2, "exclusive", true]]);
    expect(spans("x", "b")).toEqual([]);
    // Recursive read holds nest on one track.
    const reads = ev.filter((e) => e.name === "mmu_lock" && e.args?.holder === "b");
    expect(reads.map((e) => e.ts).sort()).toEqual([4, 4.5]);
    expect(new Set(reads.map((e) => e.id)).size).toBe(1);
    const ends = ev.filter((e) => e.ph === "e" && e.id === reads[0].id).map((e) => e.ts);
    expect(ends.sort()).toEqual([5, 5.5]);
    // Each lock and holder is its own track.
    const ids = new Set(ev.filter((e) => e.ph === "b").map((e) => `${e.name}/${e.args?.holder}/${e.id}`));
    expect(new Set([...ids].map((k) => k.split("/")[2])).size).toBe(4);
  });

  it("refuses a run simulated without a timeline", () => {
    const r = result(["t"], []);
    const { timeline: _t, ...bare } = r;
    expect(() => simPerfetto([{ label: "bare", result: bare }])).toThrow(/no timeline/);
  });
});

describe("simPerfetto on a simulated run", () => {
  /** holder takes l on CPU 0 and works inside; waiter spins for it on CPU 1. */
  const contention = spinlockContention(5);

  it("shows the holder's hold of l and the waiter spinning for it, on virtual time", () => {
    const r = simulate(contention, {
      kernel: kernelView,
      cpus: 2,
      preemption: "none",
      binding: (n) => (n === "holder" ? 0 : 1),
      costs: { extra: { work: 333 } },
      timeline: true,
    });
    expect(r.status).toBe("ok");
    const ev = events([{ label: "contention", result: r }]);
    const steps = r.timeline!.steps;
    const holder = r.perTask.findIndex((t) => t.name === "holder");
    const waiter = r.perTask.findIndex((t) => t.name === "waiter");
    const take = steps.find((s) => s.task === holder && s.step === "spin_lock")!;
    const drop = steps.find((s) => s.task === holder && s.step === "spin_unlock")!;
    const hold = ev.filter((e) => e.cat === "lock" && e.args?.holder !== "waiter" && e.ph === "b");
    expect(hold).toHaveLength(1);
    expect(hold[0]).toMatchObject({ name: "l", ts: take.startNs / 1000, tid: holder + 1 });
    const end = ev.find((e) => e.ph === "e" && e.id === hold[0].id)!;
    expect(end.ts).toBe(drop.startNs / 1000);
    const spin = ev.filter((e) => e.cat === "wait" && e.tid === waiter + 1 && e.args?.kind === "spin");
    expect(spin.length).toBeGreaterThan(0);
    // The waiter spins until the holder lets go.
    expect(Math.max(...spin.map((e) => e.ts + e.dur!))).toBeCloseTo(drop.startNs / 1000, 6);
    expectNested(ev);
    expect(JSON.parse(JSON.stringify(simPerfetto([{ label: "c", result: r }])))).toEqual(
      simPerfetto([{ label: "c", result: r }]),
    );
  });
});
