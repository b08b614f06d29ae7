import { host } from "../engine/host.js";
import type { Gen } from "../engine/op.js";
import { TaskAbort } from "../engine/violation.js";
import type { KObject } from "./alloc.js";
import { lock_acquired, lock_recursion, lock_released, might_sleep } from "./lockdep.js";
import { drain_store_buffer, plain_store } from "./memory.js";
import { preempt_disable, preempt_enable } from "./sched.js";
import { op, Shared, touch } from "./shared.js";

/** spinlock_t: one owner; holding it disables preemption. */
export class Spinlock extends Shared {
  holder = -1;
  constructor(name: string, owner: KObject | null = null) {
    super(name, owner);
  }
}

/** spin_lock(): spins (is disabled) until the lock is free. */
export function* spin_lock(l: Spinlock): Gen<void> {
  if (lock_recursion(l, "spin")) throw new TaskAbort(`spin_lock(${l.name}) would self-deadlock`);
  // queued_spin_lock(): a locked cmpxchg, so it drains the store buffer first.
  yield* drain_store_buffer("spin_lock");
  yield op("acquire", l, "spin_lock", () => l.holder === -1);
  touch(l, "spin_lock");
  l.holder = host().current.id;
  preempt_disable();
  lock_acquired(l, "spin");
}

/** spin_trylock(): one attempt. */
export function* spin_trylock(l: Spinlock): Gen<boolean> {
  yield* drain_store_buffer("spin_trylock");
  yield op("acquire", l, "spin_trylock");
  touch(l, "spin_trylock");
  if (l.holder !== -1) return false;
  l.holder = host().current.id;
  preempt_disable();
  lock_acquired(l, "spin");
  return true;
}

/**
 * spin_unlock(): queued_spin_unlock() (v4.2+) is smp_store_release() of 0, a plain store on x86,
 * so under TSO the lock is free for other CPUs only once the store buffer has flushed it, after
 * every store of the critical section. The releasing task's own bookkeeping (lockdep, preemption)
 * is immediate.
 */
export function* spin_unlock(l: Spinlock): Gen<void> {
  const released = () => lock_released(l, "spin");
  if (
    yield* plain_store(
      l,
      "release",
      "spin_unlock",
      undefined,
      () => {
        l.holder = -1;
      },
      released,
    )
  )
    preempt_enable();
}

/** struct mutex: a sleeping lock (slots_lock). */
export class Mutex extends Shared {
  holder = -1;
  constructor(name: string, owner: KObject | null = null) {
    super(name, owner);
  }
}

/** mutex_lock(): may sleep; blocks until free. */
export function* mutex_lock(m: Mutex): Gen<void> {
  might_sleep(`mutex_lock(${m.name})`);
  if (lock_recursion(m, "mutex")) throw new TaskAbort(`mutex_lock(${m.name}) would self-deadlock`);
  yield* drain_store_buffer("mutex_lock");
  yield op("acquire", m, "mutex_lock", () => m.holder === -1);
  touch(m, "mutex_lock");
  m.holder = host().current.id;
  lock_acquired(m, "mutex");
}

/** mutex_unlock(): a locked cmpxchg of the owner word (__mutex_unlock_fast), so it drains too. */
export function* mutex_unlock(m: Mutex): Gen<void> {
  yield* drain_store_buffer("mutex_unlock");
  yield op("release", m, "mutex_unlock");
  touch(m, "mutex_unlock");
  if (lock_released(m, "mutex")) m.holder = -1;
}
