import { host } from "../engine/host.js";
import { currentFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { type KObject, kfree, kzalloc } from "./alloc.js";
import { might_sleep } from "./lockdep.js";
import { machine } from "./machine.js";
import { op, Shared, touch } from "./shared.js";
import { WARN_ON_ONCE } from "./warn.js";

/**
 * Workqueues (kernel/workqueue.c). The rules that matter to the seeds:
 * - queue_work() on an item whose PENDING bit is set does nothing and returns
 *   false, so an item queued twice before it runs runs once;
 * - the worker clears PENDING before calling the function, so the item may be
 *   queued again while it runs;
 * - flush_workqueue() waits for every item queued before it was called;
 * - destroy_workqueue() drains, and warns about work queued while draining.
 * Each queued item runs in a kworker task the runtime creates (an unbound pool:
 * items run concurrently).
 */
export class WorkStruct extends Shared {
  /** WORK_STRUCT_PENDING. */
  pending = false;
  /** On a pool's worklist (queued and not yet picked up). */
  onList = false;
  fn: ((w: WorkStruct) => Gen<void>) | null = null;
  constructor(name: string, owner: KObject | null = null) {
    super(name, owner);
  }
}

export class Workqueue extends Shared {
  readonly kobj: KObject;
  /** Sequence numbers of items queued and not yet finished. */
  readonly inflight = new Set<number>();
  nextSeq = 0;
  draining = false;
  /** Items dropped because they were queued while draining (PENDING left set). */
  dropped = 0;
  constructor(name: string, kobj: KObject) {
    super(name, kobj);
    this.kobj = kobj;
  }
}

/** alloc_workqueue(). */
export function alloc_workqueue(name: string): Workqueue {
  return new Workqueue(name, kzalloc("workqueue_struct", `wq:${name}`));
}

/** INIT_WORK(): resets the item's data word, PENDING included. */
export function* INIT_WORK(w: WorkStruct, fn: (w: WorkStruct) => Gen<void>): Gen<void> {
  yield op("write", w, "INIT_WORK");
  touch(w, "INIT_WORK");
  w.pending = false;
  w.fn = fn;
}

/** The kworker's process_one_work() for one queued item. */
function* process_one_work(wq: Workqueue, w: WorkStruct, seq: number): Gen<void> {
  yield { kind: "rmw", obj: w.id, objs: w.deps, fn: "process_one_work", step: "clear PENDING" };
  touch(w, "process_one_work");
  w.pending = false;
  w.onList = false;
  const fn = w.fn;
  if (fn !== null) yield* fn(w);
  yield { kind: "write", obj: wq.id, objs: wq.deps, fn: "process_one_work", step: "work done" };
  wq.inflight.delete(seq);
}

/** queue_work(): false if the item was already pending. */
export function* queue_work(wq: Workqueue, w: WorkStruct): Gen<boolean> {
  yield {
    kind: "rmw",
    obj: w.id,
    objs: [...(w.deps ?? []), wq.id, wq.kobj.id],
    fn: currentFn(),
    step: "queue_work",
  };
  touch(w, "queue_work");
  touch(wq, "queue_work");
  if (w.pending) return false;
  w.pending = true;
  if (wq.draining) {
    // __queue_work(): only chained work may be queued while draining; anything else is dropped.
    wq.dropped++;
    WARN_ON_ONCE(true, `queue_work on draining ${wq.name}`);
    return true;
  }
  if (machine().config.debugList && w.onList) {
    host().report({
      invariant: "list-corruption",
      message: `list_add double add: ${w.name} is already on ${wq.name}'s worklist, in ${currentFn()}`,
    });
    return true;
  }
  w.onList = true;
  const seq = wq.nextSeq++;
  wq.inflight.add(seq);
  yield { kind: "spawn", name: `kworker:${w.name}`, body: process_one_work(wq, w, seq), lane: "kworker" };
  return true;
}

/** flush_workqueue(): sleep until every item queued before this call has finished. */
export function* flush_workqueue(wq: Workqueue): Gen<void> {
  might_sleep(`flush_workqueue(${wq.name})`);
  yield op("read", wq, "flush_workqueue");
  touch(wq, "flush_workqueue");
  const upto = wq.nextSeq;
  yield op("wait", wq, "flush_workqueue: wait", () => {
    for (const s of wq.inflight) if (s < upto) return false;
    return true;
  });
}

/** destroy_workqueue(): drain, warn about dropped or still-pending work, free. */
export function* destroy_workqueue(wq: Workqueue): Gen<void> {
  might_sleep(`destroy_workqueue(${wq.name})`);
  yield op("write", wq, "destroy_workqueue: drain");
  touch(wq, "destroy_workqueue");
  wq.draining = true;
  yield op("wait", wq, "destroy_workqueue: wait", () => wq.inflight.size === 0);
  WARN_ON_ONCE(wq.dropped > 0, `${wq.name} destroyed with ${wq.dropped} work item(s) pending`);
  yield* kfree(wq.kobj);
}
