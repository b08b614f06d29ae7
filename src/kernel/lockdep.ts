import { host } from "../engine/host.js";
import { currentFn } from "../engine/model-fn.js";
import { __schedule, type HeldLock, ktask, machine } from "./machine.js";

interface LockRef {
  readonly id: number;
  readonly name: string;
}

function lockdepFail(message: string, details?: Readonly<Record<string, unknown>>): void {
  host().report({ invariant: "lockdep", message: `${message} in ${currentFn()}`, details });
}

function findHeld(lock: LockRef): HeldLock | undefined {
  for (const h of ktask().held) if (h.lock.id === lock.id) return h;
  return undefined;
}

function heldList(): string[] {
  return ktask().held.map((h) => `${h.lock.name}(${h.mode})`);
}

/** True when the running task holds `lock` in any mode. */
export function lockdep_is_held(lock: LockRef): boolean {
  return findHeld(lock) !== undefined;
}

/**
 * lockdep_is_held_type(): the running task holds `lock` exclusively (`read` = 0: a write lock,
 * spinlock or mutex) or shared (`read` = 1: a read lock).
 */
export function lockdep_is_held_type(lock: LockRef, read: 0 | 1): boolean {
  const h = findHeld(lock);
  return h !== undefined && (h.mode === "read") === (read === 1);
}

/** lockdep_assert_held(): the running task holds `lock` in some mode. */
export function lockdep_assert_held(lock: LockRef): void {
  if (findHeld(lock) === undefined)
    lockdepFail(`lockdep_assert_held(${lock.name}) failed`, { held: heldList() });
}

/** lockdep_assert_held_read(): held for read (rwlock). */
export function lockdep_assert_held_read(lock: LockRef): void {
  const h = findHeld(lock);
  if (h === undefined || h.mode !== "read")
    lockdepFail(`lockdep_assert_held_read(${lock.name}) failed`, { held: heldList() });
}

/** lockdep_assert_held_write(): held for write (rwlock) or held exclusively (spinlock, mutex). */
export function lockdep_assert_held_write(lock: LockRef): void {
  const h = findHeld(lock);
  if (h === undefined || h.mode === "read")
    lockdepFail(`lockdep_assert_held_write(${lock.name}) failed`, { held: heldList() });
}

/** lockdep_assert_not_held(). */
export function lockdep_assert_not_held(lock: LockRef): void {
  if (findHeld(lock) !== undefined) lockdepFail(`lockdep_assert_not_held(${lock.name}) failed`);
}

/**
 * lockdep_assert_preemption_disabled(). Softirq context (an RCU callback)
 * counts as disabled, and so does an RCU read-side section on a kernel without
 * CONFIG_PREEMPTION, where rcu_read_lock() is preempt_disable() (no
 * CONFIG_PREEMPT_RCU).
 */
export function lockdep_assert_preemption_disabled(): void {
  const k = ktask();
  const rcuDisables = k.rcuDepth > 0 && machine().config.preemption !== "full";
  if (k.preemptCount === 0 && !k.inSoftirq && !rcuDisables)
    lockdepFail("lockdep_assert_preemption_disabled() failed");
}

/** rcu_read_lock_held() as lockdep answers it. */
export function rcu_read_lock_held(): boolean {
  return ktask().rcuDepth > 0;
}

/**
 * __might_sleep(): sleeping while atomic (spinlock or rwlock held, preemption
 * disabled, inside an RCU read-side section or an RCU callback) is a bug.
 * Returns whether the context may sleep.
 */
export function __might_sleep(what: string): boolean {
  const k = ktask();
  if (k.preemptCount > 0 || k.rcuDepth > 0 || k.inSoftirq) {
    host().report({
      invariant: "sleep-in-atomic",
      message: `BUG: sleeping function called from invalid context: ${what} in ${currentFn()} (preempt_count=${k.preemptCount}, rcu depth=${k.rcuDepth}${k.inSoftirq ? ", softirq" : ""})`,
      details: { held: heldList() },
    });
    return false;
  }
  return true;
}

/**
 * might_sleep(): the sleep check, and with CONFIG_PREEMPT_VOLUNTARY also a
 * voluntary preemption point (might_resched()): a pending TIF_NEED_RESCHED is
 * acted on here.
 */
export function might_sleep(what: string): void {
  if (!__might_sleep(what)) return;
  const k = ktask();
  if (k.needResched && machine().config.preemption === "voluntary") __schedule(k);
}

/** Record that the running task now holds `lock`; reports recursive acquisition. */
export function lock_acquired(lock: LockRef, mode: HeldLock["mode"]): void {
  ktask().held.push({ lock, mode });
}

/** Report and return true if the running task already holds `lock` (acquiring again would self-deadlock). */
export function lock_recursion(lock: LockRef, mode: HeldLock["mode"]): boolean {
  const h = findHeld(lock);
  if (h === undefined) return false;
  if (h.mode === "read" && mode === "read") return false;
  lockdepFail(`possible recursive locking detected: ${lock.name} (${mode}) already held (${h.mode})`, {
    held: heldList(),
  });
  return true;
}

/** Record a release; reports releasing a lock that is not held, or in the wrong mode. */
export function lock_released(lock: LockRef, mode: HeldLock["mode"]): boolean {
  const held = ktask().held;
  for (let i = held.length - 1; i >= 0; i--) {
    if (held[i].lock.id === lock.id) {
      if (held[i].mode !== mode) {
        lockdepFail(`bad unlock: ${lock.name} released as ${mode} but held as ${held[i].mode}`);
      }
      held.splice(i, 1);
      return true;
    }
  }
  lockdepFail(`bad unlock balance: ${lock.name} (${mode}) released but not held`, { held: heldList() });
  return false;
}
