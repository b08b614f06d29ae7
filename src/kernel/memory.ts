import { host } from "../engine/host.js";
import { currentFn } from "../engine/model-fn.js";
import type { AccessOp, Gen } from "../engine/op.js";
import type { Task } from "../engine/task.js";
import { machine } from "./machine.js";
import { op, type Shared, touch } from "./shared.js";

/**
 * Where the kernel primitives' plain stores and loads go, so that one switch (MachineConfig
 * .memoryModel) decides what other tasks see.
 *
 * sc: a store is a step that writes memory; every task sees it at once.
 *
 * tso: x86-TSO, operationally (Owens, Sarkar, Sewell, "A better x86 memory model: x86-TSO",
 * TPHOLs 2009), one CPU per task. A plain store enters the task's FIFO store buffer and a load
 * forwards the youngest buffered store to its location, else reads memory. Each buffered store
 * reaches memory in a step of a task of its own (its flush task, spawned by the store): the flush
 * writes the location, so DPOR orders it against every other access to it like any write, and
 * explores every point at which it can land. FIFO order is the flush's enabling condition: it
 * waits for the flush of the task's previous store and reads that store's location, which is
 * what that flush writes. Locked RMWs, lock acquisitions and smp_mb() first wait until the buffer
 * is empty (drain_store_buffer()); by FIFO that is when the youngest store is flushed, so the wait
 * reads that store's location, which is what the enabling flush writes.
 *
 * Every footprint is a function of the task's own steps (the stores since its last drain, never
 * which of them happen to be flushed), which stateless DPOR needs to recognise an event across
 * executions. Invariant checks read memory, which only steps write. A run ends once every flush
 * task has run, so final-state checks see drained memory.
 */

/** One store in a task's store buffer. */
interface BufferedStore {
  readonly loc: Shared;
  /** What a load of `loc` by the storing task forwards (undefined: the store has no word value). */
  readonly value: number | undefined;
  /** Makes the store visible: runs in its flush step. */
  readonly apply: () => void;
  flushed: boolean;
}

class StoreBuffer {
  constructor(
    /** The task's private object its stores into the buffer write (nobody else touches it). */
    readonly obj: number,
  ) {}
  /** Stores not yet in memory, oldest first. Written by the owner (push) and the flushes (shift). */
  readonly pending: BufferedStore[] = [];
  /** Every store since the owner's last drain, flushed or not: known from the owner's steps alone. */
  sinceDrain: BufferedStore[] = [];
  /** Stores so far, to name the flush tasks. */
  count = 0;
}

/** Each task's store buffer, created by its first buffered store (there are none under sc). */
const buffers = new WeakMap<Task, StoreBuffer>();

/** True when the run's machine follows x86-TSO. */
export function isTso(): boolean {
  return machine().config.memoryModel === "tso";
}

/**
 * A plain store to `loc` (WRITE_ONCE(), atomic_set(), smp_store_release(), a bitfield store, a
 * lock release): under sc one step that writes `loc` and runs `apply`; under tso the store enters
 * the running task's buffer and `apply` runs when a flush task takes it to memory. `value` is the
 * word the store leaves, for store forwarding. `owner`, when given, runs in the storing task right
 * after the store's step (a release's lockdep bookkeeping) and may cancel the store by returning
 * false. Returns whether the store was made.
 */
export function* plain_store(
  loc: Shared,
  kind: "write" | "release",
  step: string,
  value: number | undefined,
  apply: () => void,
  owner?: () => boolean,
): Gen<boolean> {
  if (!isTso()) {
    yield op(kind, loc, step);
    touch(loc, step);
    if (owner !== undefined && !owner()) return false;
    apply();
    return true;
  }
  const t = host().current;
  let sb = buffers.get(t);
  if (sb === undefined) {
    sb = new StoreBuffer(host().newObject(`${t.name}.store_buffer`));
    buffers.set(t, sb);
  }
  // The store is a step of its own, on the task's private buffer object: it conflicts with nothing,
  // but the code after it (a lock's release bookkeeping, say) runs after the checks that follow the
  // step before, as it does under sc.
  yield { kind: "write", obj: sb.obj, fn: currentFn(), step: `${step}: into the store buffer` };
  if (owner !== undefined && !owner()) return false;
  const prev = sb.sinceDrain.length === 0 ? undefined : sb.sinceDrain[sb.sinceDrain.length - 1];
  const s: BufferedStore = { loc, value, apply, flushed: false };
  sb.pending.push(s);
  sb.sinceDrain.push(s);
  const body = store_buffer_flush(sb, s, prev, kind, currentFn(), step);
  yield { kind: "spawn", name: `${t.name}:sb${sb.count++}`, body, lane: `${t.lane}:sb` };
  return true;
}

/** The store buffer writing `s` to memory, after `prev` (the owner's store before it, if not drained). */
function* store_buffer_flush(
  sb: StoreBuffer,
  s: BufferedStore,
  prev: BufferedStore | undefined,
  kind: "write" | "release",
  fn: string,
  step: string,
): Gen<void> {
  const deps = s.loc.deps;
  const flush: AccessOp = {
    kind,
    obj: s.loc.id,
    objs: prev === undefined ? deps : [...(deps ?? []), prev.loc.id],
    fn,
    step: `${step}: store buffer to memory`,
    enabled: prev === undefined ? undefined : () => prev.flushed,
  };
  yield flush;
  // A store that lands in memory freed meanwhile is a use-after-free, whoever freed it.
  touch(s.loc, step);
  sb.pending.shift();
  s.flushed = true;
  s.apply();
}

/**
 * The value the running task's youngest buffered store to `loc` left (store forwarding), or
 * undefined when none is buffered and a load reads memory.
 */
export function forwarded(loc: Shared): number | undefined {
  const sb = buffers.get(host().current);
  if (sb === undefined) return undefined;
  const p = sb.pending;
  for (let i = p.length - 1; i >= 0; i--) if (p[i].loc === loc) return p[i].value;
  return undefined;
}

/**
 * Wait until the running task's stores are all in memory: what a locked instruction (every atomic
 * RMW, xchg, cmpxchg, a lock acquisition) and MFENCE do on x86. No step when the task stored
 * nothing since its last drain, so sc runs, which buffer nothing, are unchanged.
 */
export function* drain_store_buffer(step: string): Gen<void> {
  const sb = buffers.get(host().current);
  if (sb === undefined || sb.sinceDrain.length === 0) return;
  // FIFO: the buffer is empty once the youngest store is flushed, and that flush writes its location.
  const last = sb.sinceDrain[sb.sinceDrain.length - 1];
  sb.sinceDrain = [];
  yield {
    kind: "wait",
    obj: last.loc.id,
    fn: currentFn(),
    step: `${step}: drain the store buffer`,
    enabled: () => last.flushed,
  };
}

/** smp_mb() (arch/x86/include/asm/barrier.h, any version): MFENCE, or a locked add to the stack. */
export function* smp_mb(): Gen<void> {
  yield* drain_store_buffer("smp_mb");
}

/**
 * smp_mb__before_atomic() / smp_mb__after_atomic() (arch/x86/include/asm/barrier.h, v4.x+): only
 * compiler barriers on x86, because the atomic RMW next to them is a locked instruction, which
 * drains the buffer itself. No step under either model.
 */
export function* smp_mb__before_atomic(): Gen<void> {}

/** smp_mb__after_atomic(): see smp_mb__before_atomic(). */
export function* smp_mb__after_atomic(): Gen<void> {}
