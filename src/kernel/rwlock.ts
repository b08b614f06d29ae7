import { host } from "../engine/host.js";
import type { Gen } from "../engine/op.js";
import { TaskAbort } from "../engine/violation.js";
import type { KObject } from "./alloc.js";
import {
  lock_acquired,
  lock_recursion,
  lock_released,
  lockdep_assert_held_read,
  lockdep_assert_held_write,
} from "./lockdep.js";
import { ktask, machine } from "./machine.js";
import { drain_store_buffer, plain_store } from "./memory.js";
import { cond_resched, need_resched, preempt_disable, preempt_enable } from "./sched.js";
import { commutingOp, op, Shared, touch } from "./shared.js";

/**
 * rwlock_t as the queued rwlock (kernel/locking/qrwlock.c, v4.x+) implements it:
 * a reader takes the fast path unless a writer holds the lock or is waiting;
 * everyone else queues FIFO on the wait_lock. The writer at the head of the
 * queue sets _QW_WAITING, which turns new readers away, then waits for the
 * readers to drain. So a waiting writer blocks new readers in process context,
 * and a writer behind a stream of readers waits for the readers already inside,
 * not for the stream. Readers in interrupt context (in_interrupt(): softirq,
 * here an RCU callback) are the exception: they never queue and only wait for a
 * writer that holds the lock, so they do pass a waiting writer.
 */
export class RwLock extends Shared {
  /** Task ids of the current readers (a multiset). */
  readonly readers: number[] = [];
  writer = -1;
  /**
   * Readers in interrupt context spinning for a writer to let go: their _QR_BIAS is already in the
   * lock word, so no writer can take the lock from under them.
   */
  irqSpinners = 0;
  /** _QW_WAITING: set by the writer at the queue head. */
  waiting = false;
  /** Tasks queued on the wait_lock, head first. */
  readonly queue: number[] = [];
  constructor(name: string, owner: KObject | null = null) {
    super(name, owner);
  }
}

/**
 * Commutativity class of the qrwlock's blind updates of its lock word, a reader's exit (atomic_sub
 * of _QR_BIAS) and the head writer's atomic_or(_QW_WAITING), and of rwlock_needbreak(), which
 * reads only the wait queue. None looks at what another changes, and none can block or unblock
 * another.
 */
const QRW_BLIND = "qrwlock-blind-update";

function me(): number {
  return host().current.id;
}

/** read_lock(): queued_read_lock() and queued_read_lock_slowpath() (kernel/locking/qrwlock.c, v6.x). */
export function* read_lock(l: RwLock): Gen<void> {
  if (lock_recursion(l, "read")) throw new TaskAbort(`read_lock(${l.name}) while holding it for write`);
  const id = me();
  // in_interrupt(): the slow path's first test, before the reader would give its bias back and queue.
  const inInterrupt = ktask().inSoftirq;
  // atomic_add_return_acquire(): a locked xadd, which drains the store buffer first.
  yield* drain_store_buffer("read_lock");
  yield op("acquire", l, "read_lock");
  touch(l, "read_lock");
  if (l.writer === -1 && (!l.waiting || inInterrupt)) {
    l.readers.push(id);
  } else if (inInterrupt) {
    // Its bias stays in the count, so a writer still waiting cannot take the lock under it; it only
    // spins until the writer that holds the lock lets go.
    l.irqSpinners++;
    yield op("acquire", l, "read_lock slowpath: in_interrupt, wait for the writer", () => l.writer === -1);
    touch(l, "read_lock slowpath");
    l.irqSpinners--;
    l.readers.push(id);
  } else {
    // queued_read_lock_slowpath: queue, and at the head wait only for the writer to go.
    l.queue.push(id);
    yield op("acquire", l, "read_lock slowpath", () => l.queue[0] === id && l.writer === -1);
    touch(l, "read_lock slowpath");
    l.queue.shift();
    l.readers.push(id);
  }
  preempt_disable();
  lock_acquired(l, "read");
}

/**
 * read_unlock(). Readers leaving commute with each other (class "rwlock-reader-exit"): each takes
 * only itself off the reader count, and none looks at who else is leaving.
 */
export function* read_unlock(l: RwLock): Gen<void> {
  // atomic_sub_return_release(): a locked xadd on x86, so unlike write_unlock() it drains.
  yield* drain_store_buffer("read_unlock");
  yield commutingOp("release", l, "read_unlock", QRW_BLIND);
  touch(l, "read_unlock");
  if (lock_released(l, "read")) {
    const i = l.readers.indexOf(me());
    if (i >= 0) l.readers.splice(i, 1);
    preempt_enable();
  }
}

/** write_lock(). */
export function* write_lock(l: RwLock): Gen<void> {
  if (lock_recursion(l, "write")) throw new TaskAbort(`write_lock(${l.name}) would self-deadlock`);
  const id = me();
  // atomic_try_cmpxchg_acquire(): locked.
  yield* drain_store_buffer("write_lock");
  yield op("acquire", l, "write_lock");
  touch(l, "write_lock");
  if (l.readers.length === 0 && l.irqSpinners === 0 && l.writer === -1 && !l.waiting) {
    l.writer = id;
  } else {
    // queued_write_lock_slowpath: reach the head, announce _QW_WAITING, wait for readers to drain.
    l.queue.push(id);
    // At the head of the queue the wait_lock is ours at once and atomic_or(_QW_WAITING) only sets a
    // bit nobody else writes: blind, like a reader's exit, so the two commute (same class). Behind
    // another waiter it is a wait for the head and conflicts as usual.
    if (l.queue[0] === id) yield commutingOp("acquire", l, "write_lock slowpath: set _QW_WAITING", QRW_BLIND);
    else yield op("acquire", l, "write_lock slowpath: set _QW_WAITING", () => l.queue[0] === id);
    touch(l, "write_lock slowpath");
    l.waiting = true;
    yield op(
      "acquire",
      l,
      "write_lock slowpath: wait for readers",
      () => l.readers.length === 0 && l.irqSpinners === 0 && l.writer === -1,
    );
    touch(l, "write_lock slowpath");
    l.waiting = false;
    l.queue.shift();
    l.writer = id;
  }
  preempt_disable();
  lock_acquired(l, "write");
}

/**
 * write_unlock(): queued_write_unlock() (v4.x+) is smp_store_release() of 0 to the writer byte, a
 * plain store on x86: under TSO other CPUs see the lock free once the store buffer flushes it.
 */
export function* write_unlock(l: RwLock): Gen<void> {
  const released = () => lock_released(l, "write");
  if (
    yield* plain_store(
      l,
      "release",
      "write_unlock",
      undefined,
      () => {
        l.writer = -1;
      },
      released,
    )
  )
    preempt_enable();
}

/**
 * rwlock_needbreak(): someone is queued on the lock, and only when the kernel
 * is fully preemptible (CONFIG_PREEMPTION); otherwise it is always false,
 * which is what seed 000 means by CONFIG_PREEMPTION=n "neutering" it.
 */
export function* rwlock_needbreak(l: RwLock): Gen<boolean> {
  if (machine().config.preemption !== "full") return false;
  // It looks only at the wait queue (rwlock_is_contended: is the wait_lock taken), which neither a
  // reader leaving nor the head writer's _QW_WAITING changes: a read in their class.
  yield commutingOp("read", l, "rwlock_needbreak", QRW_BLIND);
  touch(l, "rwlock_needbreak");
  return l.queue.length > 0;
}

/** cond_resched_rwlock_read(): drop and retake the read lock if someone needs it or the CPU is wanted. */
export function* cond_resched_rwlock_read(l: RwLock): Gen<boolean> {
  lockdep_assert_held_read(l);
  const resched = yield* need_resched();
  const contended = yield* rwlock_needbreak(l);
  if (!contended && !resched) return false;
  yield* read_unlock(l);
  yield* cond_resched();
  yield* read_lock(l);
  return true;
}

/** cond_resched_rwlock_write(): the same for the write lock. */
export function* cond_resched_rwlock_write(l: RwLock): Gen<boolean> {
  lockdep_assert_held_write(l);
  const resched = yield* need_resched();
  const contended = yield* rwlock_needbreak(l);
  if (!contended && !resched) return false;
  yield* write_unlock(l);
  yield* cond_resched();
  yield* write_lock(l);
  return true;
}

/** Who holds and who waits, for deadlock reports and traces. */
export function describeRwLock(l: RwLock): string {
  const holders =
    l.writer !== -1 ? `writer T${l.writer}` : l.readers.length ? `readers T${l.readers.join(",T")}` : "free";
  const irq = l.irqSpinners ? `, ${l.irqSpinners} in_interrupt reader(s) spinning` : "";
  return `${l.name} [${holders}${irq}${l.waiting ? ", writer waiting" : ""}${l.queue.length ? `, queue T${l.queue.join(",T")}` : ""}]`;
}
