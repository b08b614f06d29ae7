import type { Host } from "../host.js";
import type { AccessOp } from "../op.js";
import type { Task } from "../task.js";

/** CONFIG_PREEMPT_NONE / _VOLUNTARY / full, as the timed engine schedules them. */
export type SimPreemption = "none" | "voluntary" | "full";

/**
 * The one seam through which the timed engine reads kernel-layer state. The checker needs none of
 * this, but a CPU scheduler must know whether a task may be preempted (preempt_count), whether a
 * blocked task spins on its CPU or sleeps, and which waits are RCU grace periods. Everything else
 * the simulator sees is ops. The kernel layer implements it (src/kernel/sim-view.ts); the engine only calls it.
 */
export interface SimKernelView {
  /** Check (or boot) the program's machine so that the simulator answers need_resched(). */
  prepare(host: Host, preemption: SimPreemption): void;
  /** preempt_count == 0 and not in softirq: the kernel may take the CPU away at any point. */
  preemptible(t: Task): boolean;
  /** The task was switched out by the scheduler: __schedule() clears TIF_NEED_RESCHED. */
  switchedOut(t: Task): void;
  /** Whether a task blocked on `op` gives its CPU up (sleeps) rather than spinning on it. */
  sleepsWhenBlocked(op: AccessOp): boolean;
  /** Whether `op` waits for an RCU grace period (its end is priced by the grace-period clock). */
  isGracePeriodWait(op: AccessOp): boolean;
  /**
   * RCU callbacks `t` has queued that still wait for a grace period to be asked for (call_rcu()
   * inside a read-side section, handed over when the section ends). The kernel starts that grace
   * period at once, so the simulator counts it as wanted from then on.
   */
  queuedCallbacks(t: Task): number;
  /**
   * Whether `t` (just spawned) is the body of a softirq raised on the CPU that spawned it: it runs
   * there as soon as it is ready, ahead of the task on that CPU and without switching it out, as
   * do_softirq() does on irq exit. False for a task the scheduler places like any other.
   */
  runsAsSoftirq(host: Host, t: Task): boolean;
}
