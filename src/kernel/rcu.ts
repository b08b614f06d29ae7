import { host } from "../engine/host.js";
import { currentFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import type { KObject } from "./alloc.js";
import { might_sleep } from "./lockdep.js";
import { type KTask, ktask, machine, type RcuBatchEntry } from "./machine.js";
import { drain_store_buffer } from "./memory.js";
import { Shared, touch } from "./shared.js";

/**
 * RCU (Tree RCU semantics, any version): a grace period that starts at time T
 * ends only after every reader that was inside rcu_read_lock() at T has left
 * that section. Readers are the explicit rcu_read_lock() sections only; the
 * model does not let preempt-disabled regions stand in for readers, so a design
 * that leans on a spinlock to hold off call_rcu() is reported, not excused.
 */

/** The lane of every task that invokes RCU callbacks (rcu_do_batch). */
export const RCU_CALLBACK_LANE = "rcu";

/** rcu_read_lock(): nests; the outermost one starts a new read-side section. */
export function* rcu_read_lock(): Gen<void> {
  const k = ktask();
  // Entering a section writes the section's state and reads the grace-period state: it is
  // ordered against call_rcu()/synchronize_rcu() (which decide whether to wait for it), but
  // not against other readers. An outermost section gets an object of its own: a grace period
  // waits for the sections open when it started, and whether it ends before or after this
  // reader's later sections start is no race of theirs.
  // A nested entry changes nothing another task can see: it is a point on the task's own object.
  const outer = k.rcuDepth === 0;
  if (outer) {
    if (k.rcuSecName === undefined) k.rcuSecName = `rcu_section:${host().current.name}`;
    k.rcuSecObj = host().newObject(k.rcuSecName);
  }
  const obj = outer ? k.rcuSecObj : k.rcuObj;
  yield { kind: "write", obj, objs: machine().rcuObjs, fn: currentFn(), step: "rcu_read_lock" };
  if (k.rcuDepth++ === 0) {
    k.rcuSerial++;
    k.rcuLastSec = k.rcuSecObj;
  }
}

/** rcu_read_unlock(). */
export function* rcu_read_unlock(): Gen<void> {
  const k = ktask();
  // The outermost exit completes the section: grace periods waiting for it may end. It touches
  // nothing but the section: a grace period that starts (or a callback queued) before or after it
  // waits for the section either way, finished or not (see snapshotReaders()).
  const outer = k.rcuDepth === 1;
  // Under TSO a grace period may end only once the section's stores are in memory (the CPU passes
  // a quiescent state, a full barrier, before the grace period can end). Draining here gives that,
  // at the price of ordering the section's stores before the task's later loads, which x86 does
  // not: conservative, see docs/memory-models.md.
  if (outer) yield* drain_store_buffer("rcu_read_unlock");
  yield {
    kind: "write",
    obj: outer ? k.rcuSecObj : k.rcuObj,
    fn: currentFn(),
    step: "rcu_read_unlock",
    completes: outer,
  };
  if (k.rcuDepth === 0) {
    host().report({
      invariant: "lockdep",
      message: `rcu_read_unlock() without rcu_read_lock() in ${currentFn()}`,
    });
    return;
  }
  k.rcuDepth--;
  if (k.rcuDepth === 0 && k.preemptCount === 0) k.preemptPoints++;
  if (k.rcuDepth === 0 && k.rcuBatch.length > 0) yield* rcu_spawn_batch(k.rcuBatch.splice(0));
}

/**
 * Hand queued callbacks to one softirq task that waits for a grace period starting now and invokes
 * them in queue order: one callback per task in "per-callback" mode, or everything a read-side
 * section queued in "per-section" mode (spawned when the section ends).
 */
function* rcu_spawn_batch(batch: RcuBatchEntry[]): Gen<void> {
  const m = machine();
  const snap = snapshotReaders();
  const cbObj = host().newObject(`rcu_cb#${batch[0].serial}`);
  for (const e of batch) m.cbObjs.set(e.serial, cbObj);
  const label = batch.length === 1 ? batch[0].label : `${batch[0].label} and ${batch.length - 1} more`;
  function* rcu_do_batch(): Gen<void> {
    yield {
      kind: "wait",
      obj: cbObj,
      objs: snap.objs,
      fn: "rcu_do_batch",
      step: `GP for ${label}`,
      enabled: () => gracePeriodOver(snap),
      awaits: snap.objs,
    };
    const me = ktask();
    me.inSoftirq = true;
    for (const e of batch) {
      e.head.queued = false;
      yield* e.cb();
    }
    me.inSoftirq = false;
    yield { kind: "write", obj: cbObj, fn: "rcu_do_batch", step: `done ${label}`, completes: true };
    for (const e of batch) m.rcuPending.delete(e.serial);
  }
  yield { kind: "spawn", name: `rcu_cb:${label}`, body: rcu_do_batch(), lane: RCU_CALLBACK_LANE };
}

interface GpSnapshot {
  readonly readers: readonly { k: KTask; serial: number }[];
  readonly objs: readonly number[];
}

/**
 * What a grace period starting now waits for: each task's latest read-side section, if it started
 * one. A section that has already ended is included too, and costs nothing to wait for. That makes
 * the snapshot depend only on which sections have *started* (rcu_read_lock() is ordered against
 * the grace-period start, call_rcu() and synchronize_rcu()), not on which have ended, so a reader
 * leaving its section never races with a grace period starting: in both orders the grace period
 * ends after the section does.
 */
function snapshotReaders(): GpSnapshot {
  const readers: { k: KTask; serial: number }[] = [];
  const objs: number[] = [];
  for (const k of machine().ktasks) {
    if (k.rcuLastSec >= 0) {
      readers.push({ k, serial: k.rcuSerial });
      objs.push(k.rcuLastSec);
    }
  }
  return { readers, objs };
}

function gracePeriodOver(s: GpSnapshot): boolean {
  for (const r of s.readers) if (r.k.rcuDepth > 0 && r.k.rcuSerial === r.serial) return false;
  return true;
}

/** synchronize_rcu(): sleep until a full grace period has elapsed. */
export function* synchronize_rcu(): Gen<void> {
  might_sleep("synchronize_rcu()");
  const m = machine();
  const fn = currentFn();
  // synchronize_rcu() is a full barrier on its caller.
  yield* drain_store_buffer("synchronize_rcu");
  // Starting a grace period is ordered against every reader entering or leaving its section.
  yield { kind: "rmw", obj: m.rcuObj, fn, step: "synchronize_rcu: start GP" };
  const snap = snapshotReaders();
  yield {
    kind: "wait",
    obj: m.rcuObj,
    objs: snap.objs,
    fn,
    step: "synchronize_rcu: wait GP",
    enabled: () => gracePeriodOver(snap),
    awaits: snap.objs,
  };
}

/** struct rcu_head, embedded in the object its callback frees. */
export class RcuHead extends Shared {
  queued = false;
  constructor(owner: KObject | null) {
    super("rcu_head", owner);
  }
}

/**
 * call_rcu(): queue `cb` to run after a grace period, as a callback task in
 * softirq context. Queuing the same rcu_head twice before it ran is reported
 * (CONFIG_DEBUG_OBJECTS_RCU_HEAD).
 */
export function* call_rcu(head: RcuHead, cb: () => Gen<void>, name?: string): Gen<void> {
  const m = machine();
  // The callback runs after a grace period, which orders the caller's earlier stores before it.
  yield* drain_store_buffer("call_rcu");
  // Queuing looks at the readers (to decide whom the grace period waits for) and appends: two
  // call_rcu()s commute, each waiting for the same readers. A grace-period start, rcu_barrier()
  // or a reader entering or leaving still conflicts with it.
  yield { kind: "rmw", obj: m.rcuObj, fn: currentFn(), step: "call_rcu", commute: "call_rcu" };
  touch(head, "call_rcu");
  if (head.queued) {
    host().report({
      invariant: "debugobjects",
      message: `call_rcu() on ${head.name}, which is already queued, in ${currentFn()}`,
    });
    return;
  }
  head.queued = true;
  const k = ktask();
  if (m.config.rcuCallbacks === "per-section" && k.rcuDepth > 0) {
    const serial = m.rcuNextSerial++;
    m.rcuPending.add(serial);
    k.rcuBatch.push({ head, cb, label: name ?? head.name, serial });
    return;
  }
  const serial = m.rcuNextSerial++;
  m.rcuPending.add(serial);
  yield* rcu_spawn_batch([{ head, cb, label: name ?? head.name, serial }]);
}

/**
 * call_rcu() for a callback whose call_rcu() access a bulk access already stood for (a summarised
 * subtree, src/engine/bulk.ts): only the queuing, with no access of its own. Needs "per-section"
 * callbacks and a read-side section to queue into, which is where summarised teardown runs.
 */
export function call_rcu_summarised(head: RcuHead, cb: () => Gen<void>, name: string): void {
  const m = machine();
  const k = ktask();
  if (m.config.rcuCallbacks !== "per-section" || k.rcuDepth === 0) {
    throw new Error(`call_rcu_summarised(${name}) outside a read-side section with per-section callbacks`);
  }
  touch(head, "call_rcu");
  head.queued = true;
  const serial = m.rcuNextSerial++;
  m.rcuPending.add(serial);
  k.rcuBatch.push({ head, cb, label: name, serial });
}

/** rcu_barrier(): wait until every callback queued before this call has been invoked. */
export function* rcu_barrier(): Gen<void> {
  might_sleep("rcu_barrier()");
  const m = machine();
  const fn = currentFn();
  // The snapshot looks at which callbacks were queued (call_rcu() writes that), not at which have
  // run: the wait below covers every queued one, finished or not, so a callback finishing before
  // or after the snapshot is the same execution.
  yield { kind: "read", obj: m.rcuObj, fn, step: "rcu_barrier: snapshot" };
  const upto = m.rcuNextSerial;
  const waitFor: number[] = [];
  for (let s = 0; s < upto; s++) waitFor.push(s);
  // A callback still in its queuer's section has no completion object yet; the section's end spawns it.
  const objs = [...new Set(waitFor.flatMap((s) => m.cbObjs.get(s) ?? []))];
  yield {
    kind: "wait",
    obj: m.rcuObj,
    objs,
    fn,
    step: "rcu_barrier: wait callbacks",
    enabled: () => waitFor.every((s) => !m.rcuPending.has(s)),
    awaits: objs,
  };
}

/** rcu_dereference_check(): a lockdep-RCU splat unless inside RCU or `cond` holds. */
export function rcu_dereference_check(what: string, cond?: () => boolean): void {
  if (ktask().rcuDepth > 0) return;
  if (cond?.()) return;
  host().report({
    invariant: "suspicious-rcu",
    message: `suspicious rcu_dereference_check() usage: ${what} in ${currentFn()} outside rcu_read_lock() without the protecting lock`,
  });
}
