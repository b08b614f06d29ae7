import { host } from "../engine/host.js";
import { currentFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { __might_sleep } from "./lockdep.js";
import { __schedule, type KTask, ktask, machine } from "./machine.js";

/** preempt_disable(): task-local, no shared access. */
export function preempt_disable(): void {
  ktask().preemptCount++;
}

/** True when the kernel may take the CPU from `k` at any instruction (CONFIG_PREEMPTION, count 0). */
function preemptible(k: KTask): boolean {
  return machine().config.preemption === "full" && k.preemptCount === 0 && !k.inSoftirq;
}

/**
 * preempt_enable(): task-local; an unbalanced enable is reported. With
 * CONFIG_PREEMPTION, dropping the count to 0 with TIF_NEED_RESCHED set calls
 * preempt_schedule() right there, so the flag does not survive the unlock.
 */
export function preempt_enable(): void {
  const k = ktask();
  if (k.preemptCount === 0) {
    host().report({
      invariant: "lockdep",
      message: `preempt_enable() with preempt_count 0 in ${currentFn()}`,
    });
    return;
  }
  k.preemptCount--;
  if (k.preemptCount === 0 && k.rcuDepth === 0 && !k.inSoftirq) k.preemptPoints++;
  if (k.needResched && preemptible(k)) __schedule(k);
}

/**
 * need_resched(): whether the scheduler wants this CPU back (TIF_NEED_RESCHED).
 * With no clock to ask, it is a nondeterministic choice the checker explores
 * (bounded by the machine's budget of "true" answers); once true the flag
 * stays set until the task schedules. The simulator answers it from its own
 * scheduler through the `need_resched` key. On a fully preemptible kernel a
 * task that is preemptible is switched out as soon as the flag is set, so it
 * reads true once and comes back with the flag clear.
 */
export function* need_resched(): Gen<boolean> {
  const k = ktask();
  // Asking is the preemption point, whatever the answer: had the tick wanted the CPU, it got it here.
  k.preemptPoints++;
  if (k.needResched) return true;
  const m = machine();
  const cfg = m.config;
  if (cfg.needResched === "never") return false;
  if (cfg.needResched === "choice") {
    if (k.reschedUsed >= cfg.needReschedBudget) return false;
    const v = (yield {
      kind: "choose",
      n: 2,
      fn: currentFn(),
      step: "need_resched",
      key: "need_resched",
    }) as number;
    if (v === 0) return false;
    k.reschedUsed++;
  }
  k.needResched = true;
  if (preemptible(k)) __schedule(k);
  return true;
}

/**
 * schedule() at a voluntary preemption point: gives other tasks the CPU. Every
 * access is already an interleaving point in the checker, so this is a plain
 * point of its own on a task-private object (it conflicts with nothing); the
 * simulator charges the context switch through the cost hook.
 */
export function* schedule(): Gen<void> {
  const k = ktask();
  __schedule(k);
  yield { kind: "read", obj: k.rcuObj, fn: currentFn(), step: "schedule" };
}

/**
 * cond_resched() (include/linux/sched.h): the sleep check, then a reschedule
 * if TIF_NEED_RESCHED is set; returns whether it rescheduled. With
 * CONFIG_PREEMPTION (preempt=full) it is a no-op that returns false: the kernel
 * already preempts at preempt_enable() and on return from interrupt.
 */
export function* cond_resched(): Gen<boolean> {
  __might_sleep("cond_resched()");
  ktask().preemptPoints++;
  if (machine().config.preemption === "full") return false;
  if (yield* need_resched()) {
    yield* schedule();
    return true;
  }
  return false;
}

/**
 * hrtimer_nanosleep() (kernel/time/hrtimer.c, v6.x), as clock_nanosleep() reaches it: sleep `ns`
 * on a high-resolution timer, off the CPU, then run again once the scheduler gives the CPU back.
 * The checker sees one point on a task-private object (every delay is an interleaving it explores
 * anyway); the simulator wakes the task when the timer expires and measures how long it then
 * waited for its CPU (SimTaskStats.wakeLatency).
 */
export function* hrtimer_nanosleep(ns: number): Gen<void> {
  __might_sleep("hrtimer_nanosleep()");
  const k = ktask();
  k.needResched = false;
  yield { kind: "read", obj: k.rcuObj, fn: currentFn(), step: "hrtimer_nanosleep", delayNs: ns };
}
