import { describe, expect, it } from "vitest";
import { host } from "../engine/host.js";
import type { Gen } from "../engine/op.js";
import type { Program } from "../engine/runtime.js";
import { Atomic, READ_ONCE, WRITE_ONCE } from "./atomic.js";
import { bootMachine, MACHINE_OVERRIDES_ENV, type MachineConfig } from "./machine.js";
import { call_rcu, RcuHead } from "./rcu.js";
import { simulateKernel as simulate, taskStats as task } from "./sim-fixtures.js";
import { simMachineConfig } from "./sim-view.js";

const US = 1_000;
const CB_NS = 200 * US;

/**
 * "queuer" (bound to CPU 1) queues one RCU callback, then runs kernel code in 50 µs pieces for
 * `pieces` pieces; the callback works CB_NS. CPU 0 has nothing to do.
 */
function queuerProgram(pieces: number): Program {
  return ({ spawn }) => {
    bootMachine(simMachineConfig("full"));
    const done = new Atomic("done");
    const freed = new Atomic("freed");
    spawn(
      "queuer",
      (function* (): Gen<void> {
        yield* call_rcu(new RcuHead(null), function* (): Gen<void> {
          host().cost("ns", CB_NS);
          yield* WRITE_ONCE(freed, 1);
        });
        for (let i = 0; i < pieces; i++) {
          host().cost("ns", 50 * US);
          yield* READ_ONCE(freed);
        }
        yield* WRITE_ONCE(done, 1);
      })(),
    );
  };
}

function run(context?: MachineConfig["rcuCallbackContext"], pieces = 2000) {
  const r = simulate(queuerProgram(pieces), {
    cpus: 2,
    preemption: "full",
    costs: {
      extra: { ns: 1 },
      cacheLineTransferNs: 0,
      rcuGracePeriodNs: { min: 10_000 * US, max: 10_000 * US },
    },
    binding: (n) => (n === "queuer" ? 1 : null),
    env:
      context === undefined ? undefined : new Map([[MACHINE_OVERRIDES_ENV, { rcuCallbackContext: context }]]),
  });
  expect(r.status).toBe("ok");
  const cb = r.perTask.find((t) => t.name.startsWith("rcu_cb:"))!;
  return { r, cb, queuer: task(r, "queuer") };
}

describe("RCU callbacks as RCU_SOFTIRQ (rcu_core -> rcu_do_batch) on the CPU that queued them", () => {
  it("run after the grace period on the queuing CPU, ahead of the task there, which they delay", () => {
    const { r, cb, queuer } = run();
    expect(cb.cpusUsed).toEqual([1]);
    // After the 10 ms grace period, in the middle of the queuer's 100 ms of work.
    expect(cb.firstStepNs!).toBeGreaterThanOrEqual(10_000 * US);
    expect(cb.doneNs!).toBeLessThan(queuer.doneNs!);
    // The queuer was not switched out: the softirq ran on top of it, and its CPU time is its own.
    expect(r.stats.contextSwitches).toBe(0);
    expect(queuer.cpusUsed).toEqual([1]);
    // The idle CPU 0 never ran anything.
    expect(r.perCpu[0].busyNs).toBe(0);
    expect(r.perCpu[1].occupancy).toBe(1);
  });

  it("on an idle CPU they run when the grace period ends", () => {
    // The queuer is done long before the grace period ends: the softirq finds CPU 1 idle.
    const { r, cb, queuer } = run("softirq", 1);
    expect(queuer.doneNs!).toBeLessThan(10_000 * US);
    expect(cb.cpusUsed).toEqual([1]);
    expect(r.perCpu[1].busyNs).toBeGreaterThanOrEqual(CB_NS + queuer.busyNs);
  });

  it("offloaded (rcu_nocbs=), an rcuoc kthread runs them wherever the scheduler puts it", () => {
    const soft = run("softirq");
    const nocb = run("rcuoc");
    // CPU 1 is busy with the queuer, so select_idle_sibling() gives the kthread the idle CPU 0.
    expect(nocb.cb.cpusUsed).toEqual([0]);
    // As a softirq the callback's time was taken from the queuer; offloaded, it is not.
    expect(soft.cb.busyNs).toBeGreaterThanOrEqual(CB_NS);
    expect(nocb.queuer.doneNs!).toBe(soft.queuer.doneNs! - soft.cb.busyNs);
    expect(nocb.r.perCpu[0].busyNs).toBeGreaterThanOrEqual(CB_NS);
  });
});
