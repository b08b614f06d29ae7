import { describe, expect, it } from "vitest";
import { host } from "../engine/host.js";
import type { Gen } from "../engine/op.js";
import type { Program } from "../engine/runtime.js";
import { DEFAULT_COSTS } from "../engine/sim/cost-model.js";
import { Atomic, READ_ONCE, WRITE_ONCE } from "./atomic.js";
import { bootMachine } from "./machine.js";
import { cond_resched, hrtimer_nanosleep } from "./sched.js";
import { simulateKernel as simulate, spinlockContention, taskStats as task } from "./sim-fixtures.js";
import { simMachineConfig } from "./sim-view.js";

const MS = 1_000_000;

/**
 * "rt": wakes every `period` ns on a timer (plus i * 7919 ns on the i-th, so that the expiries do
 * not stay in phase with the hog's chunks), does a short piece of work and sleeps again, `wakes`
 * times, then tells the hog to stop. "hog": kernel code that runs `chunk` ns between two
 * cond_resched() calls until told to stop.
 */
function rtAndHog(period: number, wakes: number, chunk: number): Program {
  return ({ spawn }) => {
    bootMachine(simMachineConfig("none"));
    const stop = new Atomic("stop");
    const data = new Atomic("data");
    spawn(
      "rt",
      (function* (): Gen<void> {
        for (let i = 0; i < wakes; i++) {
          yield* hrtimer_nanosleep(period + i * 7_919);
          host().cost("ns", 5_000);
          yield* WRITE_ONCE(data, i);
        }
        yield* WRITE_ONCE(stop, 1);
      })(),
    );
    spawn(
      "hog",
      (function* (): Gen<void> {
        for (;;) {
          host().cost("ns", chunk);
          if ((yield* READ_ONCE(stop)) !== 0) return;
          yield* cond_resched();
        }
      })(),
    );
  };
}

describe("priorities and wake-up latency", () => {
  const run = (o: { rtPrio: number; cpus?: number; chunk?: number; bind?: boolean }) =>
    simulate(rtAndHog(MS, 20, o.chunk ?? 170_000), {
      cpus: o.cpus ?? 1,
      preemption: "none",
      costs: { extra: { ns: 1 } },
      binding: o.bind === false ? () => null : () => 0,
      priority: (n) => (n === "rt" ? o.rtPrio : 0),
    });

  it("a task of higher priority gets the CPU at the running task's next cond_resched()", () => {
    const r = run({ rtPrio: 1 });
    expect(r.status).toBe("ok");
    const lat = task(r, "rt").wakeLatency!;
    expect(lat.count).toBe(20);
    // The hog checks need_resched() every 170 us (out of phase with the 1 ms timer, so the expiries
    // fall anywhere in a chunk); the switch costs contextSwitchNs.
    expect(lat.maxNs).toBeLessThanOrEqual(170_000 + DEFAULT_COSTS.contextSwitchNs + 10_000);
    expect(lat.maxNs).toBeGreaterThan(50_000);
    expect(lat.medianNs).toBeLessThan(lat.maxNs);
    expect(task(r, "rt").priority).toBe(1);
  });

  it("at equal priority the same task waits for the hog's slice to run out", () => {
    const lat = task(run({ rtPrio: 0 }), "rt").wakeLatency!;
    expect(lat.medianNs).toBeGreaterThan(DEFAULT_COSTS.sliceNs / 2);
    expect(lat.medianNs).toBeGreaterThan(10 * task(run({ rtPrio: 1 }), "rt").wakeLatency!.medianNs);
  });

  it("a task free to run anywhere wakes on an idle CPU at once", () => {
    const r = run({ rtPrio: 0, cpus: 2, bind: false });
    const rt = task(r, "rt");
    expect(rt.wakeLatency!.maxNs).toBe(0);
    expect(task(r, "hog").cpusUsed).toHaveLength(1);
    expect(rt.cpusUsed).not.toContain(task(r, "hog").cpusUsed[0]);
  });
});

describe("host-CPU occupancy", () => {
  it("a spinning waiter occupies its CPU as much as the holder computing; an idle CPU is at 0", () => {
    const r = simulate(spinlockContention(5), {
      cpus: 3,
      preemption: "none",
      binding: (n) => (n === "holder" ? 0 : 1),
      costs: { extra: { work: 10_000 }, cacheLineTransferNs: 0 },
    });
    expect(r.status).toBe("ok");
    const [c0, c1, c2] = r.perCpu;
    expect(c2).toEqual({ cpu: 2, busyNs: 0, execNs: 0, occupancy: 0 });
    // The holder runs from 0 to its release; the waiter spins from 0 and then runs to the end.
    expect(c0.busyNs).toBe(task(r, "holder").busyNs);
    expect(c1.busyNs).toBe(r.virtualNs);
    expect(c1.occupancy).toBe(1);
    expect(c1.execNs).toBe(task(r, "waiter").busyNs);
    expect(c0.occupancy).toBeCloseTo(c0.busyNs / r.virtualNs, 12);
  });

  it("a task that sleeps on a timer leaves its CPU idle meanwhile", () => {
    const r = simulate(
      ({ spawn }) => {
        bootMachine(simMachineConfig("none"));
        const x = new Atomic("x");
        spawn(
          "sleeper",
          (function* (): Gen<void> {
            for (let i = 0; i < 4; i++) {
              yield* hrtimer_nanosleep(MS);
              host().cost("ns", MS);
              yield* WRITE_ONCE(x, i);
            }
          })(),
        );
      },
      { cpus: 1, preemption: "none", costs: { extra: { ns: 1 } } },
    );
    expect(r.status).toBe("ok");
    expect(r.virtualNs).toBeGreaterThanOrEqual(8 * MS);
    // Busy for the four 1 ms pieces of work and the switches out to sleep, idle for the sleeps.
    expect(r.perCpu[0].occupancy).toBeGreaterThan(0.45);
    expect(r.perCpu[0].occupancy).toBeLessThan(0.55);
  });
});
