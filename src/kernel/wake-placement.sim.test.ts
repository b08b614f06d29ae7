import { describe, expect, it } from "vitest";
import { host } from "../engine/host.js";
import type { Gen } from "../engine/op.js";
import type { Program } from "../engine/runtime.js";
import type { SimOptions } from "../engine/sim/simulator.js";
import { Atomic, READ_ONCE, WRITE_ONCE } from "./atomic.js";
import { bootMachine } from "./machine.js";
import { cond_resched, hrtimer_nanosleep } from "./sched.js";
import { simulateKernel as simulate, taskStats as task } from "./sim-fixtures.js";
import { simMachineConfig } from "./sim-view.js";

const US = 1_000;

/**
 * "sleeper": free to run anywhere; writes a word, then sleeps `wakes` times on a 100 µs timer (plus a little, so that
 * wake-ups do not line up with ticks) and works 5 µs after each. "hog<i>" for each CPU in `hogs`:
 * kernel code bound there that runs 20 µs between cond_resched() calls until the sleeper is done.
 */
function sleeperAndHogs(wakes: number, hogs: readonly number[]): Program {
  return ({ spawn }) => {
    bootMachine(simMachineConfig("none"));
    const stop = new Atomic("stop");
    const x = new Atomic("x");
    spawn(
      "sleeper",
      (function* (): Gen<void> {
        // A first step before the first sleep, so that it gets its first CPU at once.
        yield* WRITE_ONCE(x, -1);
        for (let i = 0; i < wakes; i++) {
          yield* hrtimer_nanosleep(100 * US + i * 317);
          host().cost("ns", 5 * US);
          yield* WRITE_ONCE(x, i);
        }
        yield* WRITE_ONCE(stop, 1);
      })(),
    );
    for (const c of hogs) {
      spawn(
        `hog${c}`,
        (function* (): Gen<void> {
          for (;;) {
            host().cost("ns", 20 * US);
            if ((yield* READ_ONCE(stop)) !== 0) return;
            yield* cond_resched();
          }
        })(),
      );
    }
  };
}

/** The sleeper first runs on `first`; hogs are bound to their CPUs. */
function run(
  o: { first: number; hogs: readonly number[]; cpus?: number; wakes?: number } & Partial<SimOptions>,
) {
  const r = simulate(sleeperAndHogs(o.wakes ?? 10, o.hogs), {
    cpus: 4,
    preemption: "none",
    costs: { extra: { ns: 1 } },
    ...o,
    binding: (n) => (n.startsWith("hog") ? Number(n.slice(3)) : null),
    wakeCpu: (n) => (n === "sleeper" ? o.first : null),
  });
  expect(r.status).toBe("ok");
  return r;
}

describe("CPU selection for a woken task (select_idle_sibling)", () => {
  it("a task wakes on its previous CPU when that CPU is idle", () => {
    expect(task(run({ first: 2, hogs: [] }), "sleeper").cpusUsed).toEqual([2]);
    // Placed by whichever idle CPU looks first, it leaves CPU 2 at its first wake-up.
    expect(task(run({ first: 2, hogs: [], wakePlacement: "first-idle" }), "sleeper").cpusUsed).toContain(0);
  });

  it("else on the first idle CPU of its LLC above the previous one", () => {
    // CPU 2 is busy; its LLC is {2, 3}, so the sleeper goes to 3 although 0 and 1 are idle too.
    const r = run({ first: 2, hogs: [2], llcCpus: 2 });
    expect(task(r, "sleeper").cpusUsed).toEqual([2, 3]);
    expect(task(r, "sleeper").wakeLatency!.maxNs).toBe(0);
    // One LLC of four: the scan from 2 wraps past 3 to 0 only when 3 is busy too.
    expect(task(run({ first: 2, hogs: [2, 3] }), "sleeper").cpusUsed).toEqual([0, 2]);
  });

  it("else it stays queued on its previous CPU: only that CPU's task is asked to give the CPU up", () => {
    const r = run({ first: 3, hogs: [0, 1, 2, 3] });
    // Every CPU is busy at each wake-up: the sleeper waits on CPU 3 until hog3's slice is over.
    expect(task(r, "sleeper").cpusUsed).toEqual([3]);
    expect(task(r, "sleeper").wakeLatency!.medianNs).toBeGreaterThan(100 * US);
    // Without placement a runnable free task waits for every CPU, and the lowest one takes it.
    const any = run({ first: 3, hogs: [0, 1, 2, 3], wakePlacement: "first-idle" });
    expect(task(any, "sleeper").cpusUsed).toContain(0);
  });

  it("an idle CPU of another LLC pulls a queued task at the next tick", () => {
    // CPUs 0 and 1 (one LLC) are busy, 2 and 3 (the other) idle: the sleeper, last on 1, is queued
    // there until the tick kicks an idle CPU of the other LLC into balancing.
    const r = run({ first: 1, hogs: [0, 1], llcCpus: 2, wakes: 5 });
    const s = task(r, "sleeper");
    expect(s.cpusUsed).toEqual([1, 2]);
    expect(s.wakeLatency!.maxNs).toBeGreaterThan(0);
    expect(s.wakeLatency!.maxNs).toBeLessThanOrEqual(1_000_000);
    // In one LLC the idle CPU 2 takes it at once.
    expect(task(run({ first: 1, hogs: [0, 1], wakes: 5 }), "sleeper").wakeLatency!.maxNs).toBe(0);
  });
});
