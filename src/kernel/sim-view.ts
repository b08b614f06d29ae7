import { setActiveHost } from "../engine/host.js";
import type { SimKernelView } from "../engine/sim/view.js";
import type { Task } from "../engine/task.js";
import { bootMachine, type KTask, type MachineConfig, type PreemptionModel } from "./machine.js";
import { RCU_CALLBACK_LANE } from "./rcu.js";

/**
 * The machine configuration a simulated program should boot: the given preemption model,
 * need_resched() asked of the engine every time (the simulator answers from its run queues), and RCU
 * callbacks batched per read-side section, as rcu_do_batch() invokes them.
 */
export function simMachineConfig(preemption: PreemptionModel): Partial<MachineConfig> {
  return {
    preemption,
    needResched: "choice",
    needReschedBudget: Number.MAX_SAFE_INTEGER,
    rcuCallbacks: "per-section",
  };
}

const MACHINE_KEY = "kernel.machine";

function ktaskOf(t: Task): KTask | undefined {
  return t.local as KTask | undefined;
}

/** Spinning waits: cpu_relax() loops and smp_call_function_many(wait=true) in the kick. */
function spins(step: string): boolean {
  return step.startsWith("cpu_relax") || step.startsWith("kick vcpu");
}

export const kernelView: SimKernelView = {
  prepare(host, preemption) {
    const m = host.env.get(MACHINE_KEY) as { config: MachineConfig } | undefined;
    if (m === undefined) {
      const prev = setActiveHost(host);
      try {
        bootMachine(simMachineConfig(preemption));
      } finally {
        setActiveHost(prev);
      }
      return;
    }
    const c = m.config;
    if (c.preemption !== preemption) {
      throw new Error(
        `the program booted preemption=${c.preemption} but the simulation asks for ${preemption}: boot with simMachineConfig("${preemption}")`,
      );
    }
    if (c.needResched !== "choice" || c.needReschedBudget < Number.MAX_SAFE_INTEGER) {
      throw new Error(
        `the simulator answers need_resched(): boot with simMachineConfig("${preemption}"), not needResched=${c.needResched} (budget ${c.needReschedBudget})`,
      );
    }
  },
  preemptible(t) {
    const k = ktaskOf(t);
    return k === undefined || (k.preemptCount === 0 && !k.inSoftirq);
  },
  switchedOut(t) {
    const k = ktaskOf(t);
    if (k !== undefined) k.needResched = false;
  },
  sleepsWhenBlocked(op) {
    if (op.kind === "wait") return !spins(op.step);
    // A mutex sleeps; spinlocks and the queued rwlock spin (with preemption still enabled while
    // they wait, which is how the kernel builds them).
    return op.kind === "acquire" && op.step === "mutex_lock";
  },
  queuedCallbacks(t) {
    return ktaskOf(t)?.rcuBatch.length ?? 0;
  },
  runsAsSoftirq(host, t) {
    // rcu_core() -> rcu_do_batch() in RCU_SOFTIRQ, unless callbacks are offloaded to rcuoc kthreads.
    const m = host.env.get(MACHINE_KEY) as { config: MachineConfig } | undefined;
    return t.lane === RCU_CALLBACK_LANE && m?.config.rcuCallbackContext !== "rcuoc";
  },
  isGracePeriodWait(op) {
    return op.kind === "wait" && (op.step === "synchronize_rcu: wait GP" || op.step.startsWith("GP for "));
  },
};
