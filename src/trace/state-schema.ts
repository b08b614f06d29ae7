import { z } from "zod";

/**
 * The model state after one step, as the explorer's state panel and the Perfetto counters read it.
 * TraceDoc.states[i] is the state after steps[i]. Every field is plain data (names and numbers), so
 * a trace stays self-contained: nothing in it points back into a live run. Kernel objects are named
 * the way the model named them (root#3, kvm.mmu_lock, ...), the same names as TraceDoc.objects.
 */

export const RootState = z.strictObject({
  /** The root's page name (root#N). */
  name: z.string(),
  /** Root level (4 or 5). */
  level: z.number().int(),
  /** Address space (1 = SMM). */
  asId: z.number().int(),
  /** role.invalid. */
  invalid: z.boolean(),
  /** The raw role word, for the bits the panel does not name. */
  role: z.number().int(),
  /** tdp_mmu_root_count. */
  refcount: z.number().int(),
  /** On kvm->arch.tdp_mmu_roots. */
  onList: z.boolean(),
  /** Its allocation was freed (kfree'd after RCU). */
  freed: z.boolean(),
  /** Non-root page tables reachable under it, and present leaf SPTEs. */
  pageTables: z.number().int().nonnegative(),
  leaves: z.number().int().nonnegative(),
  /** Era-specific flags that are set (e.g. "scheduled_to_zap", "work_queued"). */
  flags: z.array(z.string()),
  /** vCPU references to it: "vcpu0" (the loaded root) or "vcpu0.prev_roots[1]" (a cached one). */
  heldBy: z.array(z.string()).optional(),
});

export const LockState = z.strictObject({
  name: z.string(),
  kind: z.enum(["rwlock", "spinlock", "mutex"]),
  holders: z.array(z.strictObject({ task: z.number().int(), mode: z.enum(["read", "write", "exclusive"]) })),
  waiters: z.array(z.strictObject({ task: z.number().int(), mode: z.enum(["read", "write", "exclusive"]) })),
});

export const RcuState = z.strictObject({
  /** Tasks inside an RCU read-side critical section. */
  readers: z.array(z.number().int()),
  /** Callbacks queued and not yet invoked, by label. */
  pendingCallbacks: z.array(z.string()),
  /** synchronize_rcu()/rcu_barrier() callers waiting. */
  waiters: z.array(z.number().int()),
  /** Callbacks whose grace period ended and that are running now, by label. */
  runningCallbacks: z.array(z.string()).optional(),
});

export const WorkqueueState = z.strictObject({
  name: z.string(),
  items: z.array(
    z.strictObject({
      name: z.string(),
      pending: z.boolean(),
      running: z.boolean(),
      /** The kworker task executing it, when running. */
      worker: z.number().int().optional(),
    }),
  ),
  draining: z.boolean(),
  destroyed: z.boolean(),
  /** __WQ_DESTROYING (v6.3+): destroy_workqueue() is running. */
  destroying: z.boolean().optional(),
  /** Items queued and not yet finished (nr_in_flight). */
  inFlight: z.number().int().nonnegative().optional(),
});

export const TaskState = z.strictObject({
  id: z.number().int(),
  status: z.enum(["runnable", "blocked", "done"]),
  /** The kernel function the task is in (innermost model function), or "". */
  fn: z.string(),
  preemptCount: z.number().int(),
  rcuDepth: z.number().int(),
  /** Model functions on the task's stack, outermost first. */
  stack: z.array(z.string()).optional(),
  /** The access it performs when next scheduled, "<fn>: <step>" (absent once done). */
  next: z.string().optional(),
  /** Locks it holds, "<name> (<mode>)", in acquisition order. */
  held: z.array(z.string()).optional(),
});

export const TraceState = z.strictObject({
  roots: z.array(RootState),
  locks: z.array(LockState),
  rcu: RcuState,
  workqueues: z.array(WorkqueueState),
  tasks: z.array(TaskState),
  /** Live and freed page-table pages of the VM. */
  pages: z.strictObject({ live: z.number().int(), freed: z.number().int() }),
});

export type TraceState = z.infer<typeof TraceState>;
export type RootState = z.infer<typeof RootState>;
export type LockState = z.infer<typeof LockState>;
export type RcuState = z.infer<typeof RcuState>;
export type WorkqueueState = z.infer<typeof WorkqueueState>;
export type TaskState = z.infer<typeof TaskState>;
