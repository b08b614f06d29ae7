import { host } from "../engine/host.js";
import type { Task } from "../engine/task.js";

/** CONFIG_PREEMPT_NONE, CONFIG_PREEMPT_VOLUNTARY or CONFIG_PREEMPT (full: CONFIG_PREEMPTION=y). */
export type PreemptionModel = "none" | "voluntary" | "full";

/**
 * How need_resched() is answered when no engine answers it from a clock:
 * "choice" lets the checker explore both answers (up to `needReschedBudget`
 * true answers per task: a per-task budget keeps one task's choices from
 * deciding whether another task has a choice at all)
 * true answers per run), "never"/"always" pin it.
 */
export type NeedReschedPolicy = "choice" | "never" | "always";

export interface MachineConfig {
  readonly preemption: PreemptionModel;
  readonly needResched: NeedReschedPolicy;
  readonly needReschedBudget: number;
  /** CONFIG_DEBUG_LIST: list_add of an entry already on a list is reported. */
  readonly debugList: boolean;
  /** CONFIG_KVM_PROVE_MMU: KVM_MMU_WARN_ON is live. */
  readonly proveMmu: boolean;
  /**
   * __WQ_DESTROYING (kernel/workqueue.c, v6.3): destroy_workqueue() refuses new work for its whole
   * run. Before v6.3 only drain_workqueue() refused it, and work queued between the drain and the
   * sanity checks made destroy_workqueue() WARN about a busy pwq and leak the workqueue.
   */
  readonly wqDestroying: boolean;
  /**
   * How queued RCU callbacks are invoked. "per-callback": each callback is its own task, so the
   * checker explores every order in which callbacks of one grace period can run. "per-section": the
   * callbacks a task queues inside one read-side critical section form one batch, invoked in queue
   * order by one softirq task after a grace period that starts when the section ends (rcu_do_batch
   * runs a CPU's ready callbacks back to back); the timed simulator uses it, because a grace period
   * cannot end inside the queuing task's own section anyway.
   */
  readonly rcuCallbacks: "per-callback" | "per-section";
  /**
   * Where the timed simulator runs RCU callbacks once their grace period is over. "softirq": as
   * RCU_SOFTIRQ on the CPU that queued them (call_rcu() queues on the local CPU's list, and rcu_core()
   * invokes them through rcu_do_batch() on irq exit, ahead of whatever task is on that CPU; kernel/
   * rcu/tree.c, v6.6). "rcuoc": offloaded (CONFIG_RCU_NOCB_CPU with rcu_nocbs=), invoked by an rcuoc
   * kthread, an ordinary SCHED_OTHER task the scheduler places like any other (kernel/rcu/tree_nocb.h).
   * The checker explores every order either way and ignores it.
   */
  readonly rcuCallbackContext: "softirq" | "rcuoc";
  /**
   * The memory model plain stores and loads follow (src/kernel/memory.ts). "sc": every store is
   * visible to every task the moment it runs. "tso": x86-TSO, a FIFO store buffer per task that
   * locked RMWs and smp_mb() drain; its flushes are tasks of their own, explored like any other.
   */
  readonly memoryModel: MemoryModel;
  /**
   * L3 (bounded hold): the most units of work a task may do between two preemption points while it
   * holds mmu_lock or is inside an RCU read-side section; the TDP MMU counts SPTEs it changes.
   * Unset: the kernel's own unit for the preset (src/mmu/invariants/bounded_hold.ts).
   */
  readonly holdBound?: number;
}

/** The memory models `check` explores the kernel model under. */
export type MemoryModel = "sc" | "tso";
export const MEMORY_MODELS: readonly MemoryModel[] = ["sc", "tso"];

export const DEFAULT_MACHINE: MachineConfig = {
  preemption: "full",
  needResched: "choice",
  needReschedBudget: 1,
  debugList: true,
  proveMmu: true,
  wqDestroying: true,
  rcuCallbacks: "per-callback",
  rcuCallbackContext: "softirq",
  memoryModel: "sc",
};

/**
 * Key of a run's env entry (RunOptions.env) holding machine settings that bootMachine() applies over
 * whatever the program asks for: how a simulate run passes --set rcuCallbacks=... to every scenario.
 */
export const MACHINE_OVERRIDES_ENV = "kernel.machine.overrides";

/** A lock held by a task, as lockdep tracks it. */
export interface HeldLock {
  readonly lock: { readonly id: number; readonly name: string };
  readonly mode: "spin" | "mutex" | "read" | "write";
}

/** Per-task kernel state: held locks, RCU nesting, preempt count. */
export interface KTask {
  readonly held: HeldLock[];
  rcuDepth: number;
  /** Incremented on every outermost rcu_read_lock(); a grace period waits for the serial to move on. */
  rcuSerial: number;
  /** This task's private object (a point of its own for schedule()). */
  readonly rcuObj: number;
  /**
   * The object of the current (or last) outermost read-side section, written by its
   * rcu_read_lock()/rcu_read_unlock(). A grace period reads the sections it waits for, so the
   * sections a reader opens after the grace period started are independent of it.
   */
  rcuSecObj: number;
  /** The object of the latest outermost section whose rcu_read_lock() has run (-1: none yet). */
  rcuLastSec: number;
  /** The name every section object of this task gets (one string, however many sections). */
  rcuSecName?: string;
  preemptCount: number;
  /** Set while running an RCU callback (softirq context: may not sleep). */
  inSoftirq: boolean;
  /** The task that tears the VM down and drops the reference every other user's put leaves. */
  isTeardown?: boolean;
  /** TIF_NEED_RESCHED: once set it stays set until the task schedules. */
  needResched: boolean;
  /** How many times need_resched() answered true by choice for this task. */
  reschedUsed: number;
  /**
   * Preemption points this task has passed: need_resched() asked, cond_resched(), or the task
   * became preemptible again (last spinning lock released, outermost RCU section left, preemption
   * enabled). Work meters above the kernel (the TDP MMU's L3 bound) count from the latest one; it
   * changes nothing the task or the explorers see.
   */
  preemptPoints: number;
  /** Callbacks queued inside the current read-side section (MachineConfig.rcuCallbacks "per-section"). */
  readonly rcuBatch: RcuBatchEntry[];
}

/** A callback waiting for the end of its queuer's read-side section. */
export interface RcuBatchEntry {
  readonly head: { queued: boolean };
  readonly cb: () => import("../engine/op.js").Gen<void>;
  readonly label: string;
  readonly serial: number;
}

/** Kernel-wide state of one run. Lives in the host's env, so each run gets a fresh one. */
export class Machine {
  readonly config: MachineConfig;
  /** RCU callbacks queued and not yet invoked, by callback serial. */
  readonly rcuPending = new Set<number>();
  rcuNextSerial = 0;
  /** Object id each pending callback writes when it is done (rcu_barrier reads them). */
  readonly cbObjs = new Map<number, number>();
  readonly rcuObj: number;
  /** [rcuObj], shared by every reader's ops. */
  readonly rcuObjs: readonly number[];
  readonly warnedOnce = new Set<string>();
  /** Every task's kernel state, so grace periods can look at all readers. */
  readonly ktasks: KTask[] = [];
  /** Live allocations, for leak reports. */
  readonly live = new Set<import("./alloc.js").KObject>();
  /** Remote TLB flushes performed (priced by the simulator). */
  tlbFlushes = 0;

  constructor(config: MachineConfig) {
    this.config = config;
    this.rcuObj = host().newObject("rcu");
    this.rcuObjs = [this.rcuObj];
  }
}

const KEY = "kernel.machine";

/** Boot the kernel model for this run (call from a program's setup). */
export function bootMachine(config: Partial<MachineConfig> = {}): Machine {
  const over = host().env.get(MACHINE_OVERRIDES_ENV) as Partial<MachineConfig> | undefined;
  const m = new Machine({ ...DEFAULT_MACHINE, ...config, ...over });
  host().env.set(KEY, m);
  return m;
}

export function machine(): Machine {
  const h = host();
  let m = h.env.get(KEY) as Machine | undefined;
  if (m === undefined) {
    m = new Machine(DEFAULT_MACHINE);
    h.env.set(KEY, m);
  }
  return m;
}

/** Kernel state of `t` (default: the running task). */
export function ktask(t: Task = host().current): KTask {
  let k = t.local as KTask | undefined;
  if (k === undefined) {
    k = {
      held: [],
      rcuDepth: 0,
      rcuSerial: 0,
      rcuObj: host().newObject(`rcu_reader:${t.name}`),
      rcuSecObj: -1,
      rcuLastSec: -1,
      preemptCount: 0,
      inSoftirq: false,
      needResched: false,
      reschedUsed: 0,
      preemptPoints: 0,
      rcuBatch: [],
    };
    t.local = k;
    machine().ktasks.push(k);
  }
  return k;
}

/**
 * __schedule(): the task gives up the CPU and comes back with TIF_NEED_RESCHED
 * clear. No shared access: in the checker every step is already a point where
 * another task may run; the simulator charges the context switch.
 */
export function __schedule(k: KTask): void {
  k.needResched = false;
  host().cost("schedule", 1);
}
