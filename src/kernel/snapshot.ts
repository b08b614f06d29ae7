import type { Task } from "../engine/task.js";
import type { LockState, RcuState, TaskState, WorkqueueState } from "../trace/state-schema.js";
import type { KTask, Machine } from "./machine.js";
import { RwLock } from "./rwlock.js";
import { Mutex, Spinlock } from "./spinlock.js";
import type { Workqueue, WorkStruct } from "./workqueue.js";

/**
 * Observers of the kernel model's state, for the per-step states of a trace. They read the JS
 * objects directly: no op is yielded and nothing is changed, so taking a snapshot never alters
 * the run it looks at. Tasks are the engine's task list (Runtime.tasks).
 */

export type AnyLock = Spinlock | Mutex | RwLock;
type Mode = LockState["holders"][number]["mode"];

/** The kernel state of `t`, if it ever ran kernel code (ktask() creates it lazily). */
function ktaskOf(t: Task): KTask | undefined {
  return t.local as KTask | undefined;
}

/** A pending op whose `enabled` answers false: the task cannot run until someone else acts. */
function isBlocked(t: Task): boolean {
  const op = t.pending;
  return op !== null && op.enabled !== undefined && !op.enabled();
}

/** The mode a pending acquire asks for, from the primitive that announced it (rwlock.ts step names). */
function acquireMode(l: AnyLock, step: string): Mode {
  if (!(l instanceof RwLock)) return "exclusive";
  return step.startsWith("read_lock") ? "read" : "write";
}

/**
 * Every lock in `known`, plus any other lock some task holds, with holders and waiters. Holders
 * come from the lock word itself (spinlock/mutex owner, qrwlock readers and writer); a waiter is a
 * task whose next access is an acquire of the lock and which cannot take it now (its `enabled` is
 * false), or which sits in the qrwlock's wait queue. A task about to try a free lock is not one.
 */
export function snapshotLocks(tasks: readonly Task[], known: Iterable<AnyLock>): LockState[] {
  const locks = new Map<number, AnyLock>();
  for (const l of known) locks.set(l.id, l);
  for (const t of tasks) {
    for (const h of ktaskOf(t)?.held ?? []) {
      const l = h.lock;
      if (l instanceof RwLock || l instanceof Spinlock || l instanceof Mutex) locks.set(l.id, l);
    }
  }
  const out: LockState[] = [];
  for (const l of [...locks.values()].sort((a, b) => a.id - b.id)) {
    const holders: LockState["holders"] = [];
    if (l instanceof RwLock) {
      if (l.writer !== -1) holders.push({ task: l.writer, mode: "write" });
      // readers is a multiset (recursive read_lock); one entry per task is what a reader of the panel wants.
      for (const r of new Set(l.readers)) holders.push({ task: r, mode: "read" });
    } else if (l.holder !== -1) {
      holders.push({ task: l.holder, mode: "exclusive" });
    }
    const waiters: LockState["waiters"] = [];
    const queued = l instanceof RwLock ? new Set(l.queue) : new Set<number>();
    for (const t of tasks) {
      const op = t.pending;
      if (op === null || op.kind !== "acquire" || op.obj !== l.id) continue;
      if (queued.has(t.id) || isBlocked(t)) waiters.push({ task: t.id, mode: acquireMode(l, op.step) });
    }
    out.push({
      name: l.name,
      kind: l instanceof RwLock ? "rwlock" : l instanceof Mutex ? "mutex" : "spinlock",
      holders,
      waiters,
    });
  }
  return out;
}

const CB_PREFIX = "rcu_cb:";
const GP_STEP = "GP for ";

/**
 * RCU: the tasks inside a read-side section, the callbacks queued and not yet invoked (held in
 * their queuer's section batch, or in a callback task still waiting for its grace period in
 * rcu_do_batch), the ones running, and the tasks waiting in synchronize_rcu() or rcu_barrier()
 * (a wait on the grace-period object). A batch task is listed under its batch's label.
 */
export function snapshotRcu(m: Machine, tasks: readonly Task[]): RcuState {
  const readers: number[] = [];
  const waiters: number[] = [];
  const pendingCallbacks: string[] = [];
  const runningCallbacks: string[] = [];
  const cbObjs = new Set<number>();
  for (const serial of m.rcuPending) {
    const o = m.cbObjs.get(serial);
    if (o !== undefined) cbObjs.add(o);
  }
  for (const t of tasks) {
    const k = ktaskOf(t);
    if ((k?.rcuDepth ?? 0) > 0) readers.push(t.id);
    // "per-section" callbacks wait in their queuer's section for its end to hand them to a batch task.
    for (const e of k?.rcuBatch ?? []) pendingCallbacks.push(e.label);
    const op = t.pending;
    if (op === null) continue;
    if (op.kind === "wait" && op.obj === m.rcuObj) waiters.push(t.id);
    if (!t.name.startsWith(CB_PREFIX)) continue;
    const label = t.name.slice(CB_PREFIX.length);
    if (cbObjs.has(op.obj) && op.fn === "rcu_do_batch" && op.step.startsWith(GP_STEP))
      pendingCallbacks.push(label);
    else runningCallbacks.push(label);
  }
  return { readers, pendingCallbacks, waiters, runningCallbacks };
}

/** One workqueue and the items of it the caller knows about, queued or running ones only. */
export function snapshotWorkqueue(wq: Workqueue, items: Iterable<WorkStruct>): WorkqueueState {
  const list: WorkqueueState["items"] = [];
  for (const w of items) {
    if (!w.pending && !w.onList && w.runningOn === -1) continue;
    list.push({
      name: w.name,
      pending: w.pending,
      running: w.runningOn !== -1,
      ...(w.runningOn !== -1 ? { worker: w.runningOn } : {}),
    });
  }
  return {
    name: wq.wqName,
    items: list,
    draining: wq.draining,
    destroyed: wq.kobj.freed !== null,
    destroying: wq.destroying,
    inFlight: wq.inflight.size,
  };
}

/** Every task: done, blocked (its next access is disabled) or runnable, and its kernel context. */
export function snapshotTasks(tasks: readonly Task[]): TaskState[] {
  return tasks.map((t) => {
    const k = ktaskOf(t);
    const op = t.pending;
    const f = t.frames;
    return {
      id: t.id,
      status: t.done || op === null ? "done" : isBlocked(t) ? "blocked" : "runnable",
      fn: f.length > 0 ? f[f.length - 1] : "",
      preemptCount: k?.preemptCount ?? 0,
      rcuDepth: k?.rcuDepth ?? 0,
      stack: [...f],
      ...(op !== null ? { next: `${op.fn}: ${op.step}` } : {}),
      held: (k?.held ?? []).map((h) => `${h.lock.name} (${h.mode})`),
    };
  });
}
