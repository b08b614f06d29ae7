import { host } from "../engine/host.js";
import { currentFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { type KObject, kfree, kzalloc } from "./alloc.js";
import { might_sleep } from "./lockdep.js";
import { machine } from "./machine.js";
import { drain_store_buffer } from "./memory.js";
import { op, Shared, touch } from "./shared.js";
import { WARN_ON, WARN_ON_ONCE } from "./warn.js";

/**
 * Workqueues (kernel/workqueue.c). The rules that matter to the seeds:
 * - queue_work() on an item whose PENDING bit is set does nothing and returns
 *   false, so an item queued twice before it runs runs once;
 * - the worker clears PENDING before calling the function, so the item may be
 *   queued again while it runs; a work item never runs on two workers at once
 *   (the second instance waits for the first, PENDING still set);
 * - flush_workqueue() waits for every item queued before it was called;
 * - drain_workqueue() (and destroy_workqueue(), which drains first) refuses,
 *   with a WARN, work not queued by the workqueue's own items.
 * Each queued item runs in a kworker task the runtime creates (an unbound pool:
 * different items run concurrently).
 */
export class WorkStruct extends Shared {
  /** WORK_STRUCT_PENDING. */
  pending = false;
  /** On a pool's worklist (queued and not yet picked up). */
  onList = false;
  fn: ((w: WorkStruct) => Gen<void>) | null = null;
  /**
   * Task id of the kworker executing this item, or -1: the pool's busy hash,
   * which find_worker_executing_work() consults (it lives in the pool, so it
   * is kept even if the function frees the item).
   */
  runningOn = -1;
  constructor(name: string, owner: KObject | null = null) {
    super(name, owner);
  }
}

export class Workqueue extends Shared {
  readonly kobj: KObject;
  /** The name given to alloc_workqueue() (the Shared name is qualified by the allocation's). */
  readonly wqName: string;
  /** Sequence numbers of items queued and not yet finished (the pwq's nr_in_flight). */
  readonly inflight = new Set<number>();
  nextSeq = 0;
  /**
   * Per queued item (by sequence number), the object its worker completes when the item is done.
   * Flushes wait for these: an item finishing writes only its own, so it is not a race with a flush
   * that already knows to wait for it, nor with insertions.
   */
  readonly doneObjs: number[] = [];
  /** __WQ_DRAINING: set by drain_workqueue() while it runs. */
  draining = false;
  /** __WQ_DESTROYING (v6.3+): set by destroy_workqueue() for its whole run. */
  destroying = false;
  nrDrainers = 0;
  /** Items refused because they were queued while draining or destroying (PENDING left set). */
  dropped = 0;
  /** kworker tasks executing an item of this workqueue right now (is_chained_work()). */
  readonly workers = new Set<number>();
  /**
   * The workqueue's flags word (__WQ_DRAINING, __WQ_DESTROYING), an object of its own: setting a
   * flag is ordered against insertions, which test it, but not against an item finishing, which
   * only changes the in-flight set (the workqueue's own object).
   */
  readonly flags: Shared;
  /**
   * alloc_workqueue()'s max_active: how many of its items may run at once (0: the default, which
   * is more than any model scenario queues). Items beyond it wait, in queue order, for a slot.
   */
  readonly maxActive: number;
  /** Items running now, when max_active limits them (the pwq's nr_active), and the slot object. */
  active = 0;
  readonly slots: Shared;
  /** Sequence numbers of items waiting for a slot, oldest first (the pwq's inactive_works). */
  readonly inactive: number[] = [];
  constructor(name: string, kobj: KObject, maxActive = 0) {
    super(name, kobj);
    this.kobj = kobj;
    this.wqName = name;
    this.flags = new Shared(`${name}.flags`, kobj);
    this.maxActive = maxActive;
    this.slots = new Shared(`${name}.nr_active`, kobj);
  }
}

/** alloc_workqueue(name, flags, max_active). */
export function alloc_workqueue(name: string, maxActive = 0): Workqueue {
  return new Workqueue(name, kzalloc("workqueue_struct", `wq:${name}`), maxActive);
}

/** INIT_WORK(): resets the item's data word, PENDING included. */
export function* INIT_WORK(w: WorkStruct, fn: (w: WorkStruct) => Gen<void>): Gen<void> {
  yield op("write", w, "INIT_WORK");
  touch(w, "INIT_WORK");
  w.pending = false;
  w.fn = fn;
}

/**
 * The kworker's process_one_work() for one queued item. An item another worker
 * is still executing is handed to that worker (non-reentrancy), so this
 * instance waits, PENDING still set, until the first one is done.
 */
function* process_one_work(wq: Workqueue, w: WorkStruct, seq: number, doneObj: number): Gen<void> {
  const limited = wq.maxActive > 0;
  if (limited) {
    // pwq_activate_inactive_work(): the oldest inactive item gets the slot an item gave back.
    yield {
      kind: "acquire",
      obj: wq.slots.id,
      objs: [wq.id],
      fn: "process_one_work",
      step: "wait for max_active",
      enabled: () => wq.active < wq.maxActive && wq.inactive[0] === seq,
    };
    wq.inactive.shift();
    wq.active++;
  }
  yield {
    kind: "rmw",
    obj: w.id,
    objs: [...(w.deps ?? []), wq.id],
    fn: "process_one_work",
    step: "clear PENDING",
    enabled: () => w.runningOn === -1,
  };
  touch(w, "process_one_work");
  const me = host().current.id;
  w.runningOn = me;
  wq.workers.add(me);
  w.pending = false;
  w.onList = false;
  const fn = w.fn;
  if (fn !== null) yield* fn(w);
  // The function may have freed the item: from here on only the pool's own state is touched.
  // The pool lock the worker takes to finish the item drains its store buffer: a flusher sees the
  // item's stores.
  yield* drain_store_buffer("process_one_work");
  if (limited) {
    yield {
      kind: "release",
      obj: wq.slots.id,
      fn: "process_one_work",
      step: "give back the max_active slot",
    };
    wq.active--;
  }
  yield {
    kind: "write",
    obj: doneObj,
    objs: wq.deps,
    fn: "process_one_work",
    step: "work done",
    completes: true,
  };
  if (w.runningOn === me) w.runningOn = -1;
  wq.workers.delete(me);
  wq.inflight.delete(seq);
}

/** is_chained_work(): the running task is a kworker executing an item of `wq`. */
function is_chained_work(wq: Workqueue): boolean {
  return wq.workers.has(host().current.id);
}

/**
 * queue_work(): false if the item was already pending. Otherwise PENDING is set
 * and __queue_work() inserts it, unless the workqueue is draining or being
 * destroyed and the caller is not one of its own items: then it WARNs once and
 * returns with PENDING left set, so the item never runs.
 *
 * Two steps, as in the kernel: test_and_set_bit(WORK_STRUCT_PENDING) on the
 * item, then the insertion under the pool's lock, which changes the workqueue's
 * in-flight set (what flush_workqueue() waits for). Insertions of different
 * items commute with each other (class "workqueue-insert"); a flush or drain
 * that looks at the in-flight set does not.
 */
export function* queue_work(wq: Workqueue, w: WorkStruct): Gen<boolean> {
  // test_and_set_bit(WORK_STRUCT_PENDING) is locked: the item's function sees the caller's stores.
  yield* drain_store_buffer("queue_work");
  yield {
    kind: "rmw",
    obj: w.id,
    objs: w.deps,
    fn: currentFn(),
    step: "queue_work",
  };
  touch(w, "queue_work");
  if (w.pending) return false;
  w.pending = true;
  // The item is claimed for the worklist from here: a list_add of an item already on a list is
  // what CONFIG_DEBUG_LIST would catch in __queue_work().
  if (machine().config.debugList && w.onList) {
    host().report({
      invariant: "list-corruption",
      message: `list_add double add: ${w.name} is already on ${wq.wqName}'s worklist, in ${currentFn()}`,
    });
    return true;
  }
  w.onList = true;
  yield {
    kind: "rmw",
    obj: wq.id,
    objs: [...(wq.deps ?? []), wq.kobj.id, wq.flags.id],
    fn: currentFn(),
    step: "__queue_work",
    commute: "workqueue-insert",
  };
  touch(wq, "queue_work");
  if ((wq.draining || wq.destroying) && !is_chained_work(wq)) {
    wq.dropped++;
    WARN_ON_ONCE(true, `__queue_work on ${wq.destroying ? "destroying" : "draining"} ${wq.wqName}`);
    return true;
  }
  const seq = wq.nextSeq++;
  wq.inflight.add(seq);
  if (wq.maxActive > 0) wq.inactive.push(seq);
  const doneObj = host().newObject(`${wq.name}.work#${seq}`);
  wq.doneObjs.push(doneObj);
  yield {
    kind: "spawn",
    name: `kworker:${w.name}`,
    body: process_one_work(wq, w, seq, doneObj),
    lane: "kworker",
  };
  return true;
}

/** flush_workqueue(): sleep until every item queued before this call has finished. */
export function* flush_workqueue(wq: Workqueue): Gen<void> {
  might_sleep(`flush_workqueue(${wq.wqName})`);
  yield* drain_store_buffer("flush_workqueue");
  yield op("read", wq, "flush_workqueue");
  touch(wq, "flush_workqueue");
  yield* wait_for_items(wq, wq.nextSeq, "flush_workqueue: wait");
}

/**
 * Sleep until the items queued before sequence number `upto` have finished (a flush color in
 * the kernel). The wait reads only those items' completions, so items queued after the snapshot
 * are no race of it.
 */
function* wait_for_items(wq: Workqueue, upto: number, step: string): Gen<void> {
  const objs = wq.doneObjs.slice(0, upto);
  yield {
    kind: "wait",
    obj: wq.kobj.id,
    objs,
    fn: currentFn(),
    step,
    enabled: () => {
      for (const s of wq.inflight) if (s < upto) return false;
      return true;
    },
    awaits: objs,
  };
}

/**
 * drain_workqueue(): refuse new work except chained work, flush until nothing
 * is in flight (chained work included), then accept work again.
 */
export function* drain_workqueue(wq: Workqueue): Gen<void> {
  might_sleep(`drain_workqueue(${wq.wqName})`);
  yield* drain_store_buffer("drain_workqueue");
  yield op("write", wq.flags, "drain_workqueue: set __WQ_DRAINING");
  touch(wq, "drain_workqueue");
  if (wq.nrDrainers++ === 0) wq.draining = true;
  // Flush until a flush found nothing new queued (chained work may queue more while it runs).
  yield op("read", wq, "drain_workqueue: snapshot");
  touch(wq, "drain_workqueue");
  for (;;) {
    const upto = wq.nextSeq;
    yield* wait_for_items(wq, upto, "drain_workqueue: flush");
    yield op("read", wq, "drain_workqueue: check drained");
    touch(wq, "drain_workqueue");
    if (wq.nextSeq === upto) break;
  }
  yield op("write", wq.flags, "drain_workqueue: clear __WQ_DRAINING");
  touch(wq, "drain_workqueue");
  if (--wq.nrDrainers === 0) wq.draining = false;
}

/**
 * destroy_workqueue(): mark it destroying (v6.3+), drain, then the sanity
 * check: work still in flight is a WARN, and the workqueue is left allocated
 * (the kernel returns without freeing it). Otherwise free it.
 */
export function* destroy_workqueue(wq: Workqueue): Gen<void> {
  might_sleep(`destroy_workqueue(${wq.wqName})`);
  if (machine().config.wqDestroying) {
    yield op("write", wq.flags, "destroy_workqueue: set __WQ_DESTROYING");
    touch(wq, "destroy_workqueue");
    wq.destroying = true;
  }
  yield* drain_workqueue(wq);
  // The sanity check counts what is still in flight: it reads every item's completion.
  yield { ...op("read", wq, "destroy_workqueue: sanity checks"), objs: [...(wq.deps ?? []), ...wq.doneObjs] };
  touch(wq, "destroy_workqueue");
  if (WARN_ON(wq.inflight.size > 0, `destroy_workqueue: ${wq.wqName} has busy pwq`)) return;
  yield* kfree(wq.kobj);
}
