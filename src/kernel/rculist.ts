import { host } from "../engine/host.js";
import { currentFn } from "../engine/model-fn.js";
import type { AccessKind, AccessOp, Gen } from "../engine/op.js";
import type { KObject } from "./alloc.js";
import { machine } from "./machine.js";
import { rcu_dereference_check } from "./rcu.js";
import { Shared, touch } from "./shared.js";

/**
 * struct list_head, with the RCU list discipline of include/linux/rculist.h:
 * list_del_rcu() unlinks an entry but leaves its ->next intact, so a reader
 * standing on it can still move on; only the grace period makes freeing safe.
 * Every pointer read is an access of the node it is read from, so reading a
 * node whose container was freed is a use-after-free.
 */
export class ListHead<T> extends Shared {
  next: ListHead<T>;
  prev: ListHead<T>;
  /** The structure this node is embedded in (null for a list's head). */
  readonly container: T | null;
  onList = false;

  constructor(name: string, container: T | null = null, owner: KObject | null = null) {
    super(name, owner);
    this.container = container;
    this.next = this;
    this.prev = this;
  }
}

/** LIST_POISON1/2: what list_del() leaves behind. */
const POISON: ListHead<never> = Object.freeze(Object.create(ListHead.prototype)) as ListHead<never>;

function listOp<T>(kind: AccessKind, at: ListHead<T>, step: string, also: readonly ListHead<T>[]): AccessOp {
  const objs: number[] = at.deps ? [...at.deps] : [];
  for (const n of also) {
    if (n === POISON) continue;
    objs.push(n.id);
    if (n.deps) objs.push(...n.deps);
  }
  return { kind, obj: at.id, objs, fn: currentFn(), step };
}

function corruption(message: string): void {
  host().report({ invariant: "list-corruption", message: `${message} in ${currentFn()}` });
}

/** list_add_rcu(): publish `n` right after `head` (newest first). */
export function* list_add_rcu<T>(n: ListHead<T>, head: ListHead<T>): Gen<void> {
  yield listOp("write", head, "list_add_rcu", [n, head.next]);
  touch(head, "list_add_rcu");
  touch(n, "list_add_rcu");
  touch(head.next, "list_add_rcu");
  if (machine().config.debugList && n.onList) {
    corruption(`list_add double add: ${n.name} is already on a list`);
    return;
  }
  const next = head.next;
  n.next = next;
  n.prev = head;
  next.prev = n;
  head.next = n;
  n.onList = true;
}

/** list_add_tail_rcu(): publish `n` just before `head` (oldest first). */
export function* list_add_tail_rcu<T>(n: ListHead<T>, head: ListHead<T>): Gen<void> {
  const prev = head.prev;
  yield listOp("write", prev, "list_add_tail_rcu", [n, head]);
  touch(prev, "list_add_tail_rcu");
  touch(n, "list_add_tail_rcu");
  touch(head, "list_add_tail_rcu");
  if (machine().config.debugList && n.onList) {
    corruption(`list_add double add: ${n.name} is already on a list`);
    return;
  }
  n.next = head;
  n.prev = prev;
  prev.next = n;
  head.prev = n;
  n.onList = true;
}

function unlink<T>(n: ListHead<T>, step: string): boolean {
  if (!n.onList || n.prev === POISON || n.next === POISON) {
    corruption(`${step} of ${n.name}, which is not on a list`);
    return false;
  }
  // Unlinking writes both neighbours.
  touch(n.prev, step);
  touch(n.next, step);
  n.prev.next = n.next;
  n.next.prev = n.prev;
  n.onList = false;
  return true;
}

/** list_del_rcu(): unlink, keep ->next for readers standing on `n`, poison ->prev. */
export function* list_del_rcu<T>(n: ListHead<T>): Gen<void> {
  yield listOp("write", n.prev === POISON ? n : n.prev, "list_del_rcu", [n, n.next]);
  touch(n, "list_del_rcu");
  if (unlink(n, "list_del_rcu")) n.prev = POISON;
}

/** list_del(): unlink and poison both pointers; a reader still on `n` would crash. */
export function* list_del<T>(n: ListHead<T>): Gen<void> {
  yield listOp("write", n.prev === POISON ? n : n.prev, "list_del", [n, n.next]);
  touch(n, "list_del");
  if (unlink(n, "list_del")) {
    n.prev = POISON;
    n.next = POISON;
  }
}

/**
 * list_del_init(): unlink and point `n` at itself, so that list_empty(n) tells whether it is on a
 * list and it may be added again (the possible-NX-huge-page link is used this way).
 */
export function* list_del_init<T>(n: ListHead<T>): Gen<void> {
  yield listOp("write", n.prev === POISON ? n : n.prev, "list_del_init", [n, n.next]);
  touch(n, "list_del_init");
  if (unlink(n, "list_del_init")) {
    n.next = n;
    n.prev = n;
  }
}

/** list_empty(). */
export function* list_empty<T>(head: ListHead<T>): Gen<boolean> {
  yield listOp("read", head, "list_empty", []);
  touch(head, "list_empty");
  return head.next === head;
}

export interface ListWalk {
  /** The walk is list_for_each_entry_rcu(): each step is an rcu_dereference. */
  readonly rcu: boolean;
  /** lockdep condition that also makes an RCU walk legal (e.g. mmu_lock held for write). */
  readonly cond?: () => boolean;
}

/**
 * One step of a list walk: read `pos->next` and return the entry it leads to,
 * or null at the end of the list. `pos` is the head for the first step.
 */
export function* list_next_entry<T>(
  head: ListHead<T>,
  pos: ListHead<T>,
  walk: ListWalk,
): Gen<ListHead<T> | null> {
  const step = walk.rcu ? "list_for_each_entry_rcu" : "list_for_each_entry";
  yield listOp("read", pos, step, []);
  touch(pos, step);
  if (walk.rcu) rcu_dereference_check(`${pos.name}->next`, walk.cond);
  const nx = pos.next;
  if (nx === POISON) {
    corruption(`${step} followed the poisoned ->next of ${pos.name}`);
    return null;
  }
  return nx === head ? null : nx;
}

/** Every entry of a list, read as a walk would read it (convenience for list_for_each_entry loops). */
export function* list_entries<T>(head: ListHead<T>, walk: ListWalk): Gen<T[]> {
  const out: T[] = [];
  for (
    let n = yield* list_next_entry(head, head, walk);
    n !== null;
    n = yield* list_next_entry(head, n, walk)
  ) {
    out.push(n.container as T);
  }
  return out;
}

/** Entries currently linked, read without any access (for invariant checks and traces only). */
export function peekEntries<T>(head: ListHead<T>): T[] {
  const out: T[] = [];
  for (let n = head.next; n !== head && n !== POISON; n = n.next) out.push(n.container as T);
  return out;
}

/**
 * The loop of list_for_each_entry_rcu() / list_for_each_entry(): `body` runs on
 * each entry, and `pos->next` is read after the body, as the macro does, so a
 * body that frees its own entry makes the next step a use-after-free. `body`
 * returns true to break out of the loop.
 */
export function* list_for_each_entry<T>(
  head: ListHead<T>,
  walk: ListWalk,
  body: (entry: T, node: ListHead<T>) => Gen<boolean | undefined>,
): Gen<void> {
  for (
    let n = yield* list_next_entry(head, head, walk);
    n !== null;
    n = yield* list_next_entry(head, n, walk)
  ) {
    if ((yield* body(n.container as T, n)) === true) return;
  }
}

/** list_for_each_entry_rcu(head, member, cond): the RCU walk, legal inside RCU or when `cond` holds. */
export function list_for_each_entry_rcu<T>(
  head: ListHead<T>,
  body: (entry: T, node: ListHead<T>) => Gen<boolean | undefined>,
  cond?: () => boolean,
): Gen<void> {
  return list_for_each_entry(head, { rcu: true, cond }, body);
}
