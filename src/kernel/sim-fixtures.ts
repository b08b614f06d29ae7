import { host } from "../engine/host.js";
import type { Gen } from "../engine/op.js";
import type { Program } from "../engine/runtime.js";
import { type SimOptions, type SimResult, simulate } from "../engine/sim/simulator.js";
import { Atomic, READ_ONCE, WRITE_ONCE } from "./atomic.js";
import { bootMachine } from "./machine.js";
import { kernelView, simMachineConfig } from "./sim-view.js";
import { Spinlock, spin_lock, spin_unlock } from "./spinlock.js";

/**
 * Lock contention in miniature, for tests of the timed engine and of what draws its runs: "holder"
 * takes spinlock `l` first, does `work` units of host().cost(`costKind`) inside it, and releases it;
 * "waiter" spins for `l`, reads what the holder wrote and releases it.
 */
export function spinlockContention(work: number, costKind = "work"): Program {
  return ({ spawn }) => {
    bootMachine(simMachineConfig("none"));
    const l = new Spinlock("l");
    const x = new Atomic("x");
    spawn(
      "holder",
      (function* (): Gen<void> {
        yield* spin_lock(l);
        for (let i = 0; i < work; i++) {
          host().cost(costKind, 1);
          yield* WRITE_ONCE(x, i);
        }
        yield* spin_unlock(l);
      })(),
    );
    spawn(
      "waiter",
      (function* (): Gen<void> {
        yield* spin_lock(l);
        yield* READ_ONCE(x);
        yield* spin_unlock(l);
      })(),
    );
  };
}

/** simulate() with the kernel layer's view of tasks. */
export function simulateKernel(p: Program, o: Omit<SimOptions, "kernel">): SimResult {
  return simulate(p, { kernel: kernelView, ...o });
}

/** The statistics of the task called `name` (throws if there is none). */
export function taskStats(r: SimResult, name: string): SimResult["perTask"][number] {
  const t = r.perTask.find((p) => p.name === name);
  if (t === undefined) throw new Error(`no task ${name}`);
  return t;
}
