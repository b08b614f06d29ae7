import { describe, expect, it } from "vitest";
import { host } from "../engine/host.js";
import type { Gen } from "../engine/op.js";
import type { Program } from "../engine/runtime.js";
import { DEFAULT_COSTS } from "../engine/sim/cost-model.js";
import { Atomic, atomic_fetch_add, READ_ONCE, WRITE_ONCE } from "../kernel/atomic.js";
import { bootMachine } from "../kernel/machine.js";
import { synchronize_rcu } from "../kernel/rcu.js";
import { cond_resched } from "../kernel/sched.js";
import { Spinlock, spin_lock } from "../kernel/spinlock.js";
import { simulateKernel as simulate, spinlockContention, taskStats as task } from "./sim-fixtures.js";
import { simMachineConfig } from "./sim-view.js";

/** Holder takes the lock first (CPU 0), does `work` units of priced work inside, and releases it. */
const contention = (work: number): Program => spinlockContention(work);

const twoCpus = { cpus: 2, preemption: "none" as const, binding: (n: string) => (n === "holder" ? 0 : 1) };

/** `n` tasks on `n` CPUs, each doing `k` atomic increments of one shared word. */
function sharedCounter(n: number, k: number): Program {
  return ({ spawn }) => {
    bootMachine(simMachineConfig("none"));
    const w = new Atomic("counter", 0);
    for (let i = 0; i < n; i++) {
      spawn(
        `cpu${i}`,
        (function* (): Gen<void> {
          for (let j = 0; j < k; j++) yield* atomic_fetch_add(w, 1);
        })(),
      );
    }
  };
}

describe("cache-line contention (CostModel.cacheLineTransferNs)", () => {
  const run = (n: number, transfer: number) =>
    simulate(sharedCounter(n, 20), {
      cpus: n,
      preemption: "none",
      binding: (name) => Number(name.slice(3)),
      costs: { cacheLineTransferNs: transfer },
    });

  it("one CPU keeps the line: every increment costs its flat price", () => {
    const r = run(1, 60);
    expect(r.stats.lineTransfers).toBe(0);
    expect(r.virtualNs).toBe(20 * DEFAULT_COSTS.rmwNs);
  });

  it("CPUs that share a word queue for its line: the time per increment grows with their number", () => {
    const per = (n: number, t: number) => run(n, t).virtualNs / 20;
    expect(per(2, 60)).toBeGreaterThan(per(1, 60));
    expect(per(16, 60)).toBeGreaterThan(4 * per(2, 60));
    // Off, the word is free of contention: 16 CPUs take as long as one.
    expect(per(16, 0)).toBe(per(1, 0));
    const r = run(8, 60);
    expect(r.stats.lineTransfers).toBeGreaterThan(8 * 19);
    expect(r.stats.lineNs).toBeGreaterThanOrEqual(r.stats.lineTransfers * 60);
  });
});

describe("simulate", () => {
  it("is deterministic: the same input gives byte-for-byte the same result", () => {
    const run = () =>
      JSON.stringify(simulate(contention(7), { ...twoCpus, costs: { extra: { work: 333 } } }));
    expect(run()).toBe(run());
  });

  it("a spinning waiter is blocked exactly for the holder's critical section (5030 ns here)", () => {
    const work = 5;
    // Flat prices: cache-line transfers have a test of their own.
    const costs = { extra: { work: 1000 }, cacheLineTransferNs: 0 };
    const r = simulate(contention(work), { ...twoCpus, costs });
    expect(r.status).toBe("ok");
    const c = DEFAULT_COSTS;
    // Held from the start of the acquire to the start of the release.
    const critical = c.lockAcquireNs + work * (1000 + c.writeNs);
    expect(task(r, "holder").busyNs).toBe(critical + c.lockReleaseNs);
    expect(task(r, "waiter").blockedNs).toBe(critical);
    expect(task(r, "waiter").busyNs).toBe(c.lockAcquireNs + c.readNs + c.lockReleaseNs);
    expect(r.virtualNs).toBe(critical + task(r, "waiter").busyNs);
  });

  it("more work inside the lock means proportionally more waiting", () => {
    const blocked = (work: number) =>
      task(simulate(contention(work), { ...twoCpus, costs: { extra: { work: 500 } } }), "waiter").blockedNs;
    expect(blocked(20) - blocked(10)).toBe(10 * (500 + DEFAULT_COSTS.writeNs));
  });

  it("two tasks bound to one CPU run one after the other", () => {
    const r = simulate(contention(3), {
      cpus: 1,
      preemption: "none",
      costs: { extra: { work: 100 } },
    });
    expect(r.status).toBe("ok");
    const h = task(r, "holder");
    const w = task(r, "waiter");
    expect(w.firstStepNs).toBeGreaterThanOrEqual(h.doneNs!);
    expect(r.virtualNs).toBe(h.busyNs + w.busyNs);
  });

  it("rejects a program whose machine does not let the simulator answer need_resched", () => {
    const p: Program = ({ spawn }) => {
      bootMachine({ preemption: "none", needResched: "never" });
      spawn("t", (function* (): Gen<void> {})());
    };
    expect(() => simulate(p, { cpus: 1, preemption: "none" })).toThrow(/simMachineConfig/);
    expect(() => simulate(p, { cpus: 1, preemption: "full" })).toThrow(/preemption=none/);
  });

  it("reports a deadlock when a task never gets its lock", () => {
    const p: Program = ({ spawn }) => {
      bootMachine(simMachineConfig("none"));
      const l = new Spinlock("l");
      spawn(
        "a",
        (function* (): Gen<void> {
          yield* spin_lock(l);
        })(),
      );
      spawn(
        "b",
        (function* (): Gen<void> {
          yield* spin_lock(l);
        })(),
      );
    };
    const r = simulate(p, { cpus: 2, preemption: "none" });
    expect(r.status).toBe("deadlock");
    expect(r.unfinished).toEqual(["b"]);
  });
});

/** A task that loops on cond_resched() with `cpuHog` bound beside another on CPU 0. */
function hogs(preemption: "none" | "full", rival: boolean): Program {
  return ({ spawn }) => {
    bootMachine(simMachineConfig(preemption));
    const x = new Atomic("x");
    spawn(
      "hog",
      (function* (): Gen<void> {
        for (let i = 0; i < 100; i++) {
          host().cost("work", 1);
          yield* WRITE_ONCE(x, i);
          yield* cond_resched();
        }
      })(),
    );
    if (rival) {
      spawn(
        "rival",
        (function* (): Gen<void> {
          yield* READ_ONCE(x);
        })(),
      );
    }
  };
}

describe("scheduler and preemption models", () => {
  const costs = { extra: { work: 100 }, sliceNs: 1_000, tickNs: 100 };
  const opts = (preemption: "none" | "full") => ({ cpus: 1, preemption, costs });

  it("PREEMPT_NONE: need_resched() turns true once the slice is used and someone waits; cond_resched yields", () => {
    const r = simulate(hogs("none", true), opts("none"));
    expect(r.status).toBe("ok");
    expect(r.stats.needReschedAsked).toBeGreaterThan(0);
    expect(r.stats.needReschedTrue).toBe(1);
    expect(r.stats.preemptions).toBe(0);
    const rival = task(r, "rival");
    // The rival waited for the slice (1 µs, at tick granularity) and no longer.
    expect(rival.firstStepNs!).toBeGreaterThanOrEqual(1_000);
    expect(rival.firstStepNs!).toBeLessThan(1_000 + 200 + DEFAULT_COSTS.contextSwitchNs);
    expect(task(r, "hog").doneNs!).toBeGreaterThan(rival.doneNs!);
  });

  it("PREEMPT_NONE with nobody waiting: need_resched() never turns true", () => {
    const r = simulate(hogs("none", false), opts("none"));
    expect(r.stats.needReschedAsked).toBe(100);
    expect(r.stats.needReschedTrue).toBe(0);
    expect(r.stats.contextSwitches).toBe(0);
  });

  it("PREEMPT_FULL: cond_resched() asks nothing; the scheduler preempts the hog instead", () => {
    const r = simulate(hogs("full", true), opts("full"));
    expect(r.status).toBe("ok");
    expect(r.stats.needReschedAsked).toBe(0);
    expect(r.stats.preemptions).toBe(1);
    const rival = task(r, "rival");
    expect(rival.firstStepNs!).toBeGreaterThanOrEqual(1_000);
    expect(rival.firstStepNs!).toBeLessThan(1_000 + 200 + DEFAULT_COSTS.contextSwitchNs);
  });

  it("without a preemption point or preemption, PREEMPT_NONE lets the hog finish first", () => {
    const p =
      (preemption: "none" | "full"): Program =>
      ({ spawn }) => {
        bootMachine(simMachineConfig(preemption));
        const x = new Atomic("x");
        spawn(
          "hog",
          (function* (): Gen<void> {
            for (let i = 0; i < 100; i++) {
              host().cost("work", 1);
              yield* WRITE_ONCE(x, i);
            }
          })(),
        );
        spawn(
          "rival",
          (function* (): Gen<void> {
            yield* READ_ONCE(x);
          })(),
        );
      };
    const none = simulate(p("none"), opts("none"));
    const full = simulate(p("full"), opts("full"));
    expect(task(none, "rival").firstStepNs!).toBeGreaterThanOrEqual(task(none, "hog").doneNs!);
    expect(task(full, "rival").firstStepNs!).toBeLessThan(task(full, "hog").doneNs!);
  });
});

describe("RCU grace periods", () => {
  it("synchronize_rcu() sleeps for a grace period drawn from the cost model's range", () => {
    const p: Program = ({ spawn }) => {
      bootMachine(simMachineConfig("none"));
      spawn(
        "waiter",
        (function* (): Gen<void> {
          yield* synchronize_rcu();
        })(),
      );
    };
    const gp = { min: 1_000_000, max: 2_000_000 };
    const seen = new Set<number>();
    for (let seed = 0; seed < 8; seed++) {
      const r = simulate(p, { cpus: 1, preemption: "none", seed, costs: { rcuGracePeriodNs: gp } });
      expect(r.status).toBe("ok");
      expect(r.stats.gracePeriods).toBe(1);
      const b = task(r, "waiter").blockedNs;
      expect(b).toBeGreaterThanOrEqual(gp.min);
      expect(b).toBeLessThanOrEqual(gp.max + DEFAULT_COSTS.contextSwitchNs);
      seen.add(b);
    }
    expect(seen.size).toBeGreaterThan(1);
  });
});

/**
 * Non-preemptible RCU in virtual time: a CPU that runs kernel code without a quiescent state holds
 * grace periods up until RCU forces one (rcu_urgent_qs, then need_resched() at the next tick), and
 * a grace period held up long enough is a stall warning.
 */
describe("RCU quiescent states (PREEMPT_NONE)", () => {
  /** A kernel loop on CPU 0 (1 ms per iteration, cond_resched() after each); synchronize_rcu() on CPU 1. */
  function program(iterations: number): Program {
    return ({ spawn }) => {
      bootMachine(simMachineConfig("none"));
      const x = new Atomic("x");
      spawn(
        "looper",
        (function* (): Gen<void> {
          for (let i = 0; i < iterations; i++) {
            host().cost("work", 1);
            yield* WRITE_ONCE(x, i);
            yield* cond_resched();
          }
        })(),
      );
      spawn(
        "gp",
        (function* (): Gen<void> {
          yield* READ_ONCE(x);
          yield* synchronize_rcu();
        })(),
      );
    };
  }
  const opts = (urgent: number) => ({
    cpus: 2,
    preemption: "none" as const,
    binding: (n: string) => (n === "looper" ? 0 : 1),
    costs: { extra: { work: 1_000_000 }, rcuUrgentQsNs: urgent, rcuStallNs: 500_000_000 },
  });

  it("the looping CPU holds the grace period up until the forced quiescent state (~rcuUrgentQsNs)", () => {
    const r = simulate(program(1000), opts(100_000_000));
    expect(r.status).toBe("ok");
    expect(r.stats.rcuForcedResched).toBeGreaterThan(0);
    const gp = task(r, "gp").doneNs!;
    // Wanted from about 0; forced at the first tick after 100 ms; the looper yields at its next check (1 ms).
    expect(gp).toBeGreaterThanOrEqual(100_000_000);
    expect(gp).toBeLessThan(100_000_000 + DEFAULT_COSTS.rcuGracePeriodNs.max + 3_000_000);
    expect(r.rcuStalls).toEqual([]);
  });

  it("without the forcing it waits for the whole loop, and a long enough hold is a stall warning", () => {
    const r = simulate(program(1000), opts(0));
    expect(r.stats.rcuForcedResched).toBe(0);
    expect(task(r, "gp").doneNs!).toBeGreaterThanOrEqual(task(r, "looper").doneNs!);
    expect(r.rcuStalls.length).toBe(1);
    expect(r.rcuStalls[0].cpus).toEqual([0]);
    expect(r.rcuStalls[0].atNs).toBe(r.rcuStalls[0].gpStartNs + 500_000_000);
  });
});

describe("stopping a run (SimOptions.stop)", () => {
  it("is asked every 1024 events and ends the run there, as interrupted rather than deadlocked", () => {
    const full = simulate(sharedCounter(2, 5000), { cpus: 2, preemption: "none" });
    expect(full.status).toBe("ok");
    let asked = 0;
    const cut = simulate(sharedCounter(2, 5000), {
      cpus: 2,
      preemption: "none",
      stop: () => ++asked === 3,
    });
    expect(cut.status).toBe("interrupted");
    expect(asked).toBe(3);
    expect(cut.events).toBe(3 * 1024);
    expect(cut.events).toBeLessThan(full.events);
    expect(cut.unfinished.length).toBeGreaterThan(0);
  });
});
