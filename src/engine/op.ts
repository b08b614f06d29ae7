import type { BulkProfile } from "./bulk.js";

/**
 * The few generic operations a task may yield. The engine interprets them and
 * knows nothing else: locks, RCU, workqueues and roots are all built by the
 * kernel layer out of these.
 *
 * An access op announces the *next* shared access a task is about to make; the
 * task performs it when the scheduler resumes it. The code between two yields
 * therefore runs atomically, and every interleaving point is explicit.
 */

/** Kind of shared access. `wait` only reads; `acquire`/`release` are rmw on a lock word. */
export type AccessKind = "read" | "write" | "rmw" | "acquire" | "release" | "wait";

export interface AccessOp {
  readonly kind: AccessKind;
  /** Object id (from Host.newObject) the access touches. */
  readonly obj: number;
  /**
   * Further objects this access only *reads*: the allocation owning `obj` (so a
   * free conflicts with every access to the object's fields), or every reader
   * a grace-period wait looks at.
   */
  readonly objs?: readonly number[];
  /** Model function performing the access (its kernel name). */
  readonly fn: string;
  /** Step name inside that function, e.g. the primitive called. */
  readonly step: string;
  /**
   * A commutativity class (see docs/reductions.md). Two writing accesses to `obj` that carry the
   * same class are declared to commute: in every state where both can run, either order gives the
   * same state and the same results to both tasks, and neither disables the other. Every other
   * access to `obj` (a plain read or write, or another class) still conflicts with them. The
   * access must not be blocking; a read in a class counts as a write of it (it must look only at what
   * the class's writes leave alone). Examples: rwlock reader exit and rwlock_needbreak(),
   * refcount_inc_not_zero(), call_rcu() and workqueue insertion.
   */
  readonly commute?: string;
  /** When present the task is disabled (blocked) until this returns true. Must be side-effect free. */
  readonly enabled?: () => boolean;
  /**
   * This write *completes* `obj` (a one-shot event: a callback finished, a work item finished, a
   * read-side section ended). Waits that list `obj` in `awaits` cannot run before it.
   */
  readonly completes?: boolean;
  /**
   * For a blocking op: objects (among `obj`/`objs`) whose completion write must have happened for
   * this op to be enabled. The engine checks the promise when the op runs, and the explorer uses
   * it to skip reorderings that would put this op before such a completion: they cannot happen.
   */
  readonly awaits?: readonly number[];
  /**
   * This access stands for a whole recorded block of steps (src/engine/bulk.ts): one access to the
   * checker, the block's steps and prices to the simulator.
   */
  readonly bulk?: BulkProfile;
  /**
   * A timer: the task reaches this access only `delayNs` virtual nanoseconds after its previous
   * step, sleeping off its CPU meanwhile (hrtimer_nanosleep). The checker ignores it: every delay is
   * one of the interleavings it already explores. The simulator measures the wake-up latency from
   * the timer's expiry to the access.
   */
  readonly delayNs?: number;
}

/** Create a task. Handled inline: the yield returns the new task's id. */
export interface SpawnOp {
  readonly kind: "spawn";
  readonly name: string;
  readonly body: Gen<void>;
  /** Free-form lane hint for traces (e.g. "kworker", "rcu"). */
  readonly lane?: string;
}

/** A nondeterministic data choice among n >= 1 values, explored like a scheduling choice. */
export interface ChooseOp {
  readonly kind: "choose";
  readonly n: number;
  readonly fn: string;
  readonly step: string;
  /** Key an engine may use to answer from its own model (e.g. the simulator answers `need_resched`). */
  readonly key?: string;
}

export type Yielded = AccessOp | SpawnOp | ChooseOp;

/** A model function body: yields operations, returns R. */
export type Gen<R = void> = Generator<Yielded, R, unknown>;

export function isAccess(y: Yielded): y is AccessOp {
  return y.kind !== "spawn" && y.kind !== "choose";
}

/** True when two accesses to the same object do not commute. */
export function conflicts(a: AccessKind, b: AccessKind): boolean {
  const ra = a === "read" || a === "wait";
  const rb = b === "read" || b === "wait";
  return !(ra && rb);
}
