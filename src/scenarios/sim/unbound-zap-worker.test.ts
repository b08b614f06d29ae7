import { describe, expect, it } from "vitest";
import { defunctRootZap } from "./defunct-root-zap.js";
import { unboundZap, unboundZapWorkerScenario } from "./unbound-zap-worker.js";

const GiB = 2 ** 30;

describe("unbound-zap-worker", () => {
  const runs = unboundZapWorkerScenario.run({ guestSize: 2 * GiB }, {});
  const by = (label: string) => runs.find((r) => r.label === label)!.metrics;
  // What the worker spends on one 1 GiB region, the unit between two of its yield points.
  const region = defunctRootZap({ kernel: "v5.18", guestSize: GiB }).metrics.workerZapMs!;

  it("runs every placement under both preemption models", () => {
    expect(runs.map((r) => r.label)).toEqual([
      "bound/none",
      "unbound/none",
      "unbound@rt/none",
      "bound/full",
      "unbound/full",
      "unbound@rt/full",
    ]);
  });

  it("a worker on a CPU of its own leaves the SCHED_FIFO thread's wake-ups alone", () => {
    for (const p of ["none", "full"]) {
      const m = by(`bound/${p}`);
      expect(m.workerOnRtCpu).toBe(0);
      expect(m.rtWakeMaxMs!).toBeLessThan(0.05);
      expect(m.rtWakeups!).toBeGreaterThan(10);
    }
  });

  it("woken on the SCHED_FIFO thread's CPU, it delays a wake-up by up to one 1 GiB region, under either model", () => {
    for (const p of ["none", "full"]) {
      const m = by(`unbound@rt/${p}`);
      expect(m.workerOnRtCpu).toBe(1);
      // mmu_lock held for read keeps preemption off until tdp_mmu_iter_cond_resched().
      expect(m.rtWakeMaxMs!).toBeGreaterThan(0.5 * region);
      expect(m.rtWakeMaxMs!).toBeLessThanOrEqual(region + 0.1);
      // At that point it yields to the higher-priority thread and another CPU takes it.
      expect(m.workerCpus).toBe(2);
      expect(m.rtCpuOccupancy!).toBeGreaterThan(by(`bound/${p}`).rtCpuOccupancy! + 0.1);
    }
  });

  it("the worker does not inherit the VMM thread's priority: a nice-0 user task on its CPU shares it", () => {
    const alone = unboundZap({ guestSize: 2 * GiB, worker: "bound", cpus: 4, busyCpus: 0 });
    const shared = unboundZap({ guestSize: 2 * GiB, worker: "bound", cpus: 4, busyCpus: 2 });
    expect(shared.metrics.zapMs!).toBeGreaterThan(alone.metrics.zapMs! * 1.2);
    // The same VMM thread zapping in its own context (6.6+, no worker) keeps its SCHED_FIFO priority.
    const own = unboundZap({ guestSize: 2 * GiB, kernel: "v6.6", cpus: 4, busyCpus: 2 });
    expect(own.metrics.zapMs!).toBeLessThan(shared.metrics.zapMs!);
  });

  it("reports per-CPU occupancy: the bound worker's CPU is the busy one", () => {
    const r = runs.find((x) => x.label === "bound/none")!.results![0];
    const occ = r.perCpu.map((c) => c.occupancy);
    expect(occ[2]).toBe(Math.max(...occ));
    expect(occ[2]).toBeGreaterThan(10 * occ[0]);
    expect(r.perCpu[2].busyNs).toBeGreaterThanOrEqual(r.perCpu[2].execNs);
    expect(by("bound/none").meanCpuOccupancy).toBeCloseTo(occ.reduce((a, b) => a + b) / 4, 12);
  });

  it("RCU callbacks run on the CPU that queued them", () => {
    const r = runs.find((x) => x.label === "bound/none")!.results![0];
    const cbs = r.perTask.filter((t) => t.name.startsWith("rcu_cb"));
    expect(cbs.length).toBeGreaterThan(0);
    for (const t of cbs) expect(t.cpusUsed).toEqual([2]);
  });

  it("refuses a layout without room for the worker", () => {
    expect(() => unboundZap({ cpus: 4, rtCpu: 2 })).toThrow(RangeError);
    expect(() => unboundZap({ cpus: 4, busyCpus: 3 })).toThrow(RangeError);
  });
});
