import { host } from "../engine/host.js";
import { currentFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { might_sleep } from "./lockdep.js";
import { ktask, machine } from "./machine.js";

/** preempt_disable(): task-local, no shared access. */
export function preempt_disable(): void {
  ktask().preemptCount++;
}

/** preempt_enable(): task-local; an unbalanced enable is reported. */
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
}

/**
 * need_resched(): whether the scheduler wants this CPU back. With no clock to
 * ask, it is a nondeterministic choice the checker explores (bounded by the
 * machine's budget of "true" answers). The simulator answers it from its own
 * scheduler through the `need_resched` key.
 */
export function* need_resched(): Gen<boolean> {
  const k = ktask();
  if (k.needResched) return true;
  const m = machine();
  const cfg = m.config;
  if (cfg.needResched === "never") return false;
  if (cfg.needResched === "always") {
    k.needResched = true;
    return true;
  }
  if (m.reschedUsed >= cfg.needReschedBudget) return false;
  const v = (yield {
    kind: "choose",
    n: 2,
    fn: currentFn(),
    step: "need_resched",
    key: "need_resched",
  }) as number;
  if (v === 1) {
    m.reschedUsed++;
    k.needResched = true;
  }
  return v === 1;
}

/**
 * schedule() at a voluntary preemption point: gives other tasks the CPU. Every
 * access is already an interleaving point in the checker, so this is a plain
 * point of its own on a task-private object (it conflicts with nothing); the
 * simulator charges the context switch through the cost hook.
 */
export function* schedule(): Gen<void> {
  const k = ktask();
  k.needResched = false;
  host().cost("schedule", 1);
  yield { kind: "read", obj: k.rcuObj, fn: currentFn(), step: "schedule" };
}

/** cond_resched(): might_sleep, then reschedule if need_resched(). Returns whether it did. */
export function* cond_resched(): Gen<boolean> {
  might_sleep("cond_resched()");
  if (yield* need_resched()) {
    yield* schedule();
    return true;
  }
  return false;
}
